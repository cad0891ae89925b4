"""The four ready-made automations Asana ships: the rule API's shape (contract.triggers.Preset),
triggers some CRM connector emits, step kinds and settings Asana offers, templates that parse."""
from __future__ import annotations

import jinja2

from hub.connectors import connector, connectors


def test_presets_are_rules_in_the_documented_shape():
    asana = connector("asana")
    emitted = {t.kind: t for c in connectors(role="crm") for t in c.triggers}
    assert [p.key for p in asana.presets] == ["stage_tasks", "won_handoff", "lost_followup", "lead_nurture"]
    env = jinja2.Environment()
    for preset in asana.presets:
        rule = preset.rule
        assert preset.needs == ("crm",) and preset.title and preset.description
        assert set(rule) == {"name", "trigger", "fires", "conditions", "steps"}
        trigger = emitted[rule["trigger"]["kind"]]
        assert rule["trigger"]["params"] == {} and rule["fires"] == trigger.default_fires
        [step] = rule["steps"]
        connector_name, what = step["kind"].split(".")
        kind = connector(connector_name).targets[what]
        assert set(step) == {"kind", "settings", "templates", "carry"} and set(step["settings"]) <= set(kind.settings)
        assert set(step["carry"]) == {"value", "contacts", "notes", "attachments"}
        assert step["carry"]["attachments"] <= kind.attachments
        for text in step["templates"].values():
            env.parse(text)
    won = next(p for p in asana.presets if p.key == "won_handoff").rule
    assert won["trigger"]["kind"] == "deal.won" and won["steps"][0]["templates"]["name"] == "Onboard {{ deal.title }}"
    assert won["steps"][0]["carry"] == {"value": True, "contacts": True, "notes": True, "attachments": True}
