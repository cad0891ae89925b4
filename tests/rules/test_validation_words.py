"""Rule conditions are checked against the trigger's object's fields when a rule is saved: the
field exists, the operator fits its type, the value parses for it; refused with a 400 naming the
field and saying what is wrong in words. Without the CRM's field list the rule saves, with a warning."""
from __future__ import annotations

import pytest

from hub.errors import Retriable
from hub.rules import records
from hub.rules.conditions import condition_holds, type_problems, why_not
from tests.rules.test_api import Api, full_rule
from tests.rules.test_pages import error_after, submit


@pytest.fixture
def api(env):
    return Api(env)


@pytest.mark.parametrize("condition, where, words", [
    ({"field": "value", "op": "gt", "value": "abc"}, "conditions.0.value", "'abc' is not a number"),
    ({"field": "expected_close_date", "op": "gte", "value": "next week"}, "conditions.0.value", "is not a date"),
    ({"field": "title", "op": "gt", "value": "5"}, "conditions.0.op", "cannot be compared"),
    ({"field": "status", "op": "eq", "value": "maybe"}, "conditions.0.value", "no choice 'maybe'; one of: Open, Won"),
    ({"field": "nonexistent", "op": "eq", "value": "1"}, "conditions.0.field", "no deal field 'nonexistent'"),
])
def test_a_condition_that_cannot_hold_is_refused_naming_the_field(env, api, condition, where, words):
    refused = api.call("POST", body=full_rule(env, conditions=[condition]))
    assert refused.status_code == 400, refused.text
    assert words in refused.json()["fields"][where]
    assert api.call("GET").json() == {"rules": []}


def test_values_that_parse_are_kept_and_choices_named_by_label_stored_by_id(env, api):
    saved = api.call("POST", body=full_rule(env, conditions=[
        {"field": "value", "op": "gte", "value": "1250.50"},
        {"field": "expected_close_date", "op": "lt", "value": "2030-01-31"},
        {"field": "status", "op": "eq", "value": "Won"}]))
    assert saved.status_code == 201, saved.text
    assert [c["value"] for c in saved.json()["conditions"]] == ["1250.50", "2030-01-31", "won"]
    assert saved.json()["warnings"] == []


def test_a_step_condition_and_a_field_mapping_are_checked_the_same_way(env, api):
    body = full_rule(env)
    step = {"kind": "asana.task", "connection_id": env.asana_id, "settings": {
        k: v for k, v in body["target"].items() if k != "connection_id"},
        "templates": {"name": "x", "description": ""}, "condition": {"field": "value", "op": "lt", "value": "lots"}}
    refused = api.call("POST", body={"name": "r", "trigger": "deal.won", "pipeline_id": env.pipeline("Sales"),
                                     "steps": [step]})
    assert refused.status_code == 400
    assert "not a number" in refused.json()["fields"]["steps.0.condition.value"]
    mapped = api.call("POST", body=full_rule(env, field_mappings=[{"key": "no_such_field"}]))
    assert mapped.status_code == 400
    assert "no deal field 'no_such_field'" in mapped.json()["fields"]["field_mappings.0.key"]


def test_the_settings_page_shows_the_words_next_to_the_value(env):
    rule = env.rule(status="draft")
    bad = submit(env, rule["id"], "save", cond_field_0="value", cond_op_0="gt", cond_value_0="abc",
                 condition_rows="2")
    assert bad.status_code == 400
    assert "is not a number" in error_after(bad.text, 'name="cond_value_0"', "conditions-0-value-error")


def test_provider_down_saves_unchecked_with_a_warning(env, api, monkeypatch):
    def down(*args, **kwargs):
        raise Retriable("timed out")
    monkeypatch.setattr(records, "fields", down)
    saved = api.call("POST", body=full_rule(env, conditions=[{"field": "value", "op": "gt", "value": "1000"}]))
    assert saved.status_code == 201, saved.text
    [warning] = saved.json()["warnings"]
    assert warning.startswith("conditions.0: saved without checking the field 'value'") and "timed out" in warning


def test_type_rules_in_isolation():
    money = {"key": "value", "label": "Value", "type": "money", "options": []}
    assert type_problems({"op": "gt", "value": "abc"}, money) == {
        "value": "Value is an amount of money: 'abc' is not a number (write it like 1000 or 1250.50)"}
    assert type_problems({"op": "contains", "value": "1"}, money)["op"].startswith("Value is an amount of money")
    flag = {"key": "done", "label": "Done", "type": "bool"}
    condition = {"op": "eq", "value": "Yes"}
    assert type_problems(condition, flag) == {} and condition["value"] == "true"
    assert "write true or false" in type_problems({"op": "eq", "value": "perhaps"}, flag)["value"]
    assert type_problems({"op": "empty"}, money) == {}


def test_dates_compare_as_dates_when_a_rule_runs():
    later = {"field": "expected_close_date", "op": "gt", "value": "2025-03-01"}
    assert condition_holds(later, {"expected_close_date": "2025-03-31"})
    assert condition_holds(later, {"expected_close_date": "2025-03-02 10:00:00"})
    assert not condition_holds(later, {"expected_close_date": "2025-02-28"})
    assert why_not(later, {"expected_close_date": "2025-02-28"}) == \
        "expected_close_date 2025-02-28 is not greater than 2025-03-01"
