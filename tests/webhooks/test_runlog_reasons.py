"""A skipped event says why, in the run log: each active rule of the event's kind that it does not
fit leaves an entry with the reason in words ("moved to stage 3, the rule wants stage 4", "Value
900 is less than 1000"), the same words the editor's preview uses (Trigger.mismatch). The list
shows it next to the rule, the rule filter finds it, and once the rule is fixed a replay runs it."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.rules import service
from hub.rules.conditions import why_not
from hub.store import HubEvent, RunLog
from tests.rules.conftest import make_env  # noqa: F401  (fixture)
from tests.web.conftest import ADMIN
from tests.webhooks.test_ingest import stage_ids

TIER = {"1": "Gold", "2": "Silver"}


@pytest.mark.parametrize("condition, record, words", [
    ({"field": "value", "label": "Value", "op": "gte", "value": "1000"}, {"value": 900}, "Value 900 is less than 1000"),
    ({"field": "value", "op": "gt", "value": "1000"}, {"value": 1000.0}, "value 1000 is not greater than 1000"),
    ({"field": "value", "op": "lt", "value": "10"}, {"value": "12.5"}, "value 12.5 is not less than 10"),
    ({"field": "value", "op": "lte", "value": "10"}, {"value": 11}, "value 11 is greater than 10"),
    ({"field": "value", "op": "gt", "value": "10"}, {"value": "lots"}, "value lots is not a number"),
    ({"field": "value", "op": "gt", "value": "abc"}, {"value": 5}, "the rule compares value with 'abc', which is "
                                                                  "not a number"),
    ({"field": "tier", "label": "Tier", "op": "eq", "value": "1", "options": TIER}, {"tier": "2"},
     "Tier is Silver, not Gold"),
    ({"field": "tier", "label": "Tier", "op": "ne", "value": "1", "options": TIER}, {"tier": "1"}, "Tier is Gold"),
    ({"field": "title", "label": "Title", "op": "contains", "value": "renewal"}, {"title": "New logo"},
     "Title “New logo” does not contain “renewal”"),
    ({"field": "title", "label": "Title", "op": "empty"}, {"title": "New logo"}, "Title is New logo, not empty"),
    ({"field": "title", "label": "Title", "op": "not_empty"}, {"title": ""}, "Title is empty"),
    ({"field": "title", "label": "Title", "op": "eq", "value": "x"}, {}, "Title is empty"),
])
def test_a_condition_says_why_it_does_not_hold(condition, record, words):
    assert why_not(condition, record) == words


def test_why_not_is_none_when_it_holds():
    assert why_not({"field": "value", "op": "gte", "value": "1000"}, {"value": 1000}) is None
    assert why_not({"field": "title", "op": "empty"}, {"title": ""}) is None


def _events(env, **params) -> list[dict]:
    got = env.browser.get(f"/api/v1/installations/{env.iid}/events", params={"limit": 500, **params})
    assert got.status_code == 200, got.text[:300]
    return got.json()["events"]


def test_skipped_events_say_why_in_the_log(make_env, db_url):
    env = make_env(db_url)
    stages = stage_ids(env.pd)
    big = env.rule(name="Big wins", conditions=[{"field": "value", "op": "gte", "value": "1000"}])
    late = env.rule(name="Contract stage", trigger="deal.stage_changed", stage_id=str(stages[3]))
    deal = env.pd.create_deal("Small fry", stage_id=stages[0], value=900)
    env.pd.move_stage(deal["id"], stages[2])
    env.pd.mark_won(deal["id"])
    env.settle()
    assert env.runs() == []

    listed = {e["kind"]: e for e in _events(env, q=str(deal["id"]))}
    won, moved = listed["deal.won"], listed["deal.stage_changed"]
    assert won["outcome"] == "skipped" and won["rules"] == [
        {"rule_id": big["id"], "name": "Big wins", "status": "skipped", "status_label": "Skipped",
         "reason": "Value 900 is less than 1000"}]
    assert moved["rules"][0]["reason"] == f"moved to stage {stages[2]}, the rule wants stage {stages[3]}"
    assert moved["rules"][0]["rule_id"] == late["id"]
    assert "deal.created" not in listed            # no rule listens for it: hidden
    assert [e["id"] for e in _events(env, rule_id=big["id"])] == [won["id"]]
    assert {e["id"] for e in _events(env, status="skipped")} == {won["id"], moved["id"]}

    detail = env.browser.get(f"/api/v1/installations/{env.iid}/events/{won['id']}").json()
    entry = next(t for t in detail["trace"] if t["step"] == "rule.not_matched")
    assert entry["label"] == "Rule skipped this event" and entry["rule_id"] == big["id"]
    assert entry["message"] == "rule “Big wins” skipped it: Value 900 is less than 1000"
    page = env.browser.get(f"/i/{env.iid}/events?q={deal['id']}").text
    assert "Big wins: Skipped <span class=\"muted\">(Value 900 is less than 1000)</span>" in page
    assert "Rule skipped this event" in env.browser.get(f"/i/{env.iid}/events/{won['id']}").text

    # the editor's preview says it the same way
    preview = env.browser.post(f"/api/v1/installations/{env.iid}/rules/preview",
                               json={"rule": service.get(env.services, env.iid, big["id"]),
                                     "object_id": str(deal["id"])},
                               headers={"X-CSRF-Token": env.browser.csrf(f"/i/{env.iid}/events")})
    assert preview.status_code == 200, preview.text[:300]
    assert preview.json()["mismatch"] == "Value 900 is less than 1000"

    # the admin lowers the threshold and replays the event: now it runs, once
    service.update(env.services, env.iid, big["id"], {"conditions": [{"field": "value", "op": "gte", "value": "500"}]},
                   str(ADMIN))
    replayed = env.browser.post(f"/api/v1/installations/{env.iid}/events/{won['id']}/replay",
                                headers={"X-CSRF-Token": env.browser.csrf(f"/i/{env.iid}/events")}).json()
    assert len(replayed["new_runs"]) == 1
    env.settle()
    assert [r.status for r in env.runs()] == ["done"] and len(env.tasks("Won deals – onboarding")) == 1
    [again] = [e for e in _events(env, q=str(deal["id"])) if e["kind"] == "deal.won"]
    assert again["outcome"] == "done" and again["rules"][0]["reason"] == ""
    with env.services.db.begin() as s:
        event = s.get(HubEvent, won["id"])
        steps = list(s.scalars(select(RunLog.step).where(RunLog.hub_event_id == event.id).order_by(RunLog.id)))
    assert steps.index("rule.not_matched") < steps.index("replayed") < steps.index("rule.matched")
