"""Template names that will render empty for the rule's trigger (another object's namespace, a field
the object lacks) are warned about at save, on the page, and in preview; a lead rule names `lead.*`."""
from __future__ import annotations

import pytest

from hub.rules.records import crm_source
from hub.rules.template_names import problems
from hub.rules.validation import Crm
from tests.rules.test_api import Api, full_rule
from tests.rules.test_pages import submit

DEAL_FIELDS = [{"key": "title", "label": "Title"}, {"key": "value", "label": "Value"},
               {"key": "abc123", "label": "Tier", "custom": True}]


@pytest.fixture
def api(env):
    return Api(env)


def test_names_found_through_the_parser_not_by_pattern():
    assert problems("Call lead: {{ deal.title }}", "lead", None) == \
        ["deal.title is always empty in a rule about a lead; use lead.title"]
    assert problems("{{ deal['nonexistent'] }} {{ deal.nonexistent|upper }}", "deal", DEAL_FIELDS) == [
        "deal.nonexistent: a deal has no field 'nonexistent', so it renders empty (fields: id, owner, pipeline, "
        "stage, status, title, url, value, Tier ...)"]
    fine = ("{{ deal.title }} {{ deal.Tier }} {{ record.abc123 }} {{ person.name }} {{ org.address }} "
            "{% for n in notes %}{{ n.content }}{% endfor %}{% set deal2 = deal %}{{ deal2.whatever }}"
            "{{ 'deal.nonexistent' }} {{ rule.name }}")
    assert problems(fine, "deal", DEAL_FIELDS) == []
    assert problems("{{ person.nickname }}", "deal", DEAL_FIELDS) == \
        ["person.nickname: person has only email, emails, name, phone, phones, so it renders empty"]
    assert problems("{{ deal.nonexistent }}", "deal", None) == []          # fields unknown: no guess
    assert problems("{{ deal.title", "deal", DEAL_FIELDS) == []            # a syntax error is the renderer's


def lead_rule(env, template: str) -> dict:
    body = full_rule(env, trigger="lead.added", name_template=template)
    body.pop("pipeline_id")
    return body


def test_a_lead_rule_naming_deal_saves_with_a_warning(env, api):
    saved = api.call("POST", body=lead_rule(env, "Call lead: {{ deal.title }}"))
    assert saved.status_code == 201, saved.text
    assert saved.json()["warnings"] == ["Step 1, name: deal.title is always empty in a rule about a lead; "
                                        "use lead.title"]
    clean = api.call("POST", body=lead_rule(env, "Call lead: {{ lead.title }} ({{ lead.value }})"))
    assert clean.status_code == 201 and clean.json()["warnings"] == []


def test_an_unknown_deal_field_is_warned_at_save_on_the_page_and_in_preview(env, api):
    saved = api.call("POST", body=full_rule(env, description_template="Size: {{ deal.nonexistent }}"))
    assert saved.status_code == 201
    [warning] = saved.json()["warnings"]
    assert warning.startswith("Step 1, description: deal.nonexistent: a deal has no field 'nonexistent'")

    page = submit(env, saved.json()["id"], "save", description_template="Size: {{ deal.nonexistent }}")
    assert page.status_code == 200 and "Rule saved" in page.text
    assert "Warning: Step 1, description: deal.nonexistent: a deal has no field" in page.text

    rule = {k: v for k, v in full_rule(env, description_template="{{ deal.nonexistent }}").items()}
    preview = api.call("POST", "/preview", {"rule": rule, "object_id": env.deal("Nordwind GmbH - 40")["id"]})
    assert preview.status_code == 200, preview.text
    assert any("deal.nonexistent" in w for w in preview.json()["warnings"])


def test_lead_templates_render_the_lead(env):
    crm = Crm(env.services, env.iid)
    [lead, *_] = crm_source(env.services, crm.connection()).recent("lead")
    from hub.mappings import Limits, TargetRenderer
    from hub.mappings.context import Carry
    rendered = TargetRenderer(Limits()).render("Call lead: {{ lead.title }}", "", lead, Carry(), [])
    assert rendered.name == f"Call lead: {lead.title}" and lead.title
