"""The core of pipeline automation, provider-neutral, on the Example CRM: per-object flags (a
manual move back turns auto-advance off; advancing steps are skipped with a reason; an admin
switches it back on, audited), trigger params holding lists, and the automation settings page
writing ordinary rules (saving again updates them).

The Example CRM connector is extended here (not in its folder) the way a CRM with leads would
be: an event with moved_by/direction extras, an advancing step kind, and presets configured per
entry of a catalog. Events are recorded directly (hub.events.record), as a connector emits them."""
from __future__ import annotations

import dataclasses
import itertools
import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from hub import connectors, sandbox
from hub.connectors.contract.records import Catalog
from hub.connectors.contract.targets import Made, StepKind
from hub.connectors.contract.triggers import Fill, Preset, Trigger
from hub.connectors.contract.webhooks import CrmEvent
from hub.events import record
from hub.rules import service
from hub.rules.validation import Invalid
from hub.store import AuditEvent, RunLog
from hub.store.models import ObjectFlag, Rule, RuleRun, RuleStepRun
from tests.connectors.example.connector import CONNECTOR
from tests.connectors.example.emulator import DEMO_ACCOUNT, create_app
from tests.connectors.example.test_end_to_end import install

ACCOUNT = DEMO_ACCOUNT["id"]
MOVES: list[tuple[str, dict]] = []          # what the advancing step did: (deal id, its settings)
_ids = itertools.count(1)


class Advance:
    """A step that moves the deal to a later stage (recorded in MOVES)."""

    max_attachment_bytes = 0

    def __init__(self, ctx):
        self.ctx = ctx

    def ensure(self, spec, effect_key, *, first_try):
        MOVES.append((spec.record.id, dict(spec.settings)))
        return Made(external_id=str(spec.record.id), name=f"moved to {spec.settings.get('to_stage_id')}")

    def complete(self, external_id):
        return "completed"

    def status(self, external_id):
        return "open"

    def attach(self, *a, **k):
        raise NotImplementedError


FUNNELS = [{"id": "f1", "name": "Inbound", "stages": [{"id": "s1", "name": "New"}, {"id": "s2", "name": "Reached"},
                                                        {"id": "s3", "name": "Talking"}]},
           {"id": "f2", "name": "Partners", "stages": [{"id": "s7", "name": "Intro"}, {"id": "s8", "name": "Pilot"}]}]
ACTIVITIES = [{"id": "email", "name": "E-mail"}, {"id": "call", "name": "Call"}, {"id": "meeting", "name": "Meeting"}]

ADVANCE = StepKind(what="advance", label="Move the deal to a stage", makes="record", settings=("to_stage_id",),
                   validate=lambda settings, catalog, complete: {} if settings.get("to_stage_id") or not complete
                   else {"to_stage_id": "pick the stage"}, target=Advance, advances=True)
OUTREACH = Preset(
    key="advance-on-outreach", title="Move forward when someone reaches out",
    description="From one stage to another when an activity is logged.",
    rule={"name": "Advance on outreach",
          "trigger": {"kind": "activity.logged", "params": {"direction": "outreach"}}, "fires": "every",
          "conditions": [], "steps": [{"kind": "example.advance", "settings": {}}]},
    per="funnels",
    fills=(Fill("params.pipeline", "Pipeline", kind="entry"),
           Fill("params.activity", "Which activities count", catalog="activity_kinds", many=True),
           Fill("steps.0.settings.to_stage_id", "Move to", catalog="funnels.stages")))
WELCOME = Preset(
    key="welcome-task", title="A task when a deal is moved",
    description="A task named from a template.",
    rule={"name": "Welcome", "trigger": {"kind": "deal.stage_changed", "params": {}}, "fires": "every",
          "conditions": [], "steps": [{"kind": "example.task", "settings": {"link_deal": True},
                                       "templates": {"name": "Hello {{ deal.title }}"}, "delay": 3600}]},
    per="funnels",
    fills=(Fill("stage_id", "When a deal enters", catalog="funnels.stages"),
           Fill("steps.0.templates.name", "Task name", kind="template"),
           Fill("steps.0.delay_seconds", "Delay", kind="seconds", required=False)))
VARIANT = dataclasses.replace(
    CONNECTOR,
    triggers=CONNECTOR.triggers + (
        Trigger("activity.logged", "Activity logged", "deal", ("direction", "activity", "pipeline"),
                (("activity", "activity_kinds"),)),),
    targets={**CONNECTOR.targets, "advance": ADVANCE},
    catalogs={**CONNECTOR.catalogs, "funnels": Catalog("funnels", "Funnels", lambda client: FUNNELS),
              "activity_kinds": Catalog("activity_kinds", "Activities", lambda client: ACTIVITIES)},
    presets=CONNECTOR.presets + (OUTREACH, WELCOME))


@pytest.fixture
def env(make_live_hub):
    connectors.register(VARIANT)
    sandbox.register(VARIANT.name, create_app, VARIANT.title)
    MOVES.clear()
    hub = make_live_hub()
    admin, iid = install(hub)
    hub.run_jobs()
    crm = hub.emulator("example")
    yield hub, admin, iid, crm
    sandbox.unregister(VARIANT.name)
    connectors.unregister(VARIANT.name)


def emit(hub, iid, kind, deal_id, **extra):
    """The connector's normalized event, recorded as a webhook's would be; then the jobs run."""
    n = next(_ids)
    event = CrmEvent(kind=kind, object_type="deal", object_id=str(deal_id), event_id=f"e{n}",
                     occurred_at=datetime(2026, 12, 1, 10, n % 60, tzinfo=timezone.utc), current=None, previous=None,
                     from_stage_id=extra.pop("from_stage_id", None), to_stage_id=extra.pop("to_stage_id", None),
                     extra=extra, occurrence=f"n{n}")
    with hub.services.db.begin() as s:
        made = record(hub.services, s, iid, event, source="webhook")
        event_id = made.id
    hub.run_jobs()
    return event_id


def connection_id(hub, iid):
    from hub.store import Connection
    with hub.services.db.begin() as s:
        return s.scalar(select(Connection.id).where(Connection.installation_id == iid))


def test_a_manual_move_back_stops_advancing_steps_until_an_admin_switches_it_on(env):
    hub, admin, iid, crm = env
    deal, other = crm.deals(ACCOUNT)[0], crm.deals(ACCOUNT)[1]
    conn = connection_id(hub, iid)
    service.create(hub.services, iid, {
        "name": "Advance on outreach", "trigger": "activity.logged", "status": "active",
        "params": {"direction": "outreach"},
        "steps": [{"kind": "example.advance", "connection_id": conn, "settings": {"to_stage_id": "s2"}},
                  {"kind": "example.task", "connection_id": conn, "templates": {"name": "Follow up {{ deal.title }}"}}]},
        "admin")
    emit(hub, iid, "activity.logged", deal["id"], direction="outreach", activity="email")
    assert [m[0] for m in MOVES] == [str(deal["id"])]

    # automation moving it back, or a person moving it forward: auto-advance stays on
    emit(hub, iid, "deal.stage_changed", deal["id"], moved_by="automation", direction="back")
    emit(hub, iid, "deal.stage_changed", deal["id"], moved_by="person", direction="forward")
    with hub.services.db.begin() as s:
        assert s.scalars(select(ObjectFlag)).all() == []

    moved_back = emit(hub, iid, "deal.stage_changed", deal["id"], moved_by="person", direction="back",
                      from_stage_id="s2", to_stage_id="s1")
    with hub.services.db.begin() as s:
        [flag] = s.scalars(select(ObjectFlag)).all()
        assert (flag.connector, flag.object_type, flag.object_id, flag.key, flag.value) == \
            ("example", "deal", str(deal["id"]), "auto_advance", False)
        assert "moved it back from stage s2 to stage s1" in flag.reason
        assert s.scalar(select(RunLog.message).where(RunLog.step == "flag.set", RunLog.hub_event_id == moved_back))

    emit(hub, iid, "activity.logged", deal["id"], direction="outreach", activity="call")
    emit(hub, iid, "activity.logged", other["id"], direction="outreach", activity="call")   # another deal: moved
    assert [m[0] for m in MOVES] == [str(deal["id"]), str(other["id"])]
    assert len(crm.tasks(ACCOUNT)) == 3                      # the run's other steps still ran
    with hub.services.db.begin() as s:
        skipped = s.scalars(select(RuleStepRun).where(RuleStepRun.status == "skipped")).all()
        assert len(skipped) == 1 and "auto-advance is off for deal" in skipped[0].detail["reason"]
        assert s.scalars(select(RuleRun.status)).all() == ["done"] * 3
        log = s.scalar(select(RunLog.message).where(RunLog.step == "rule.step_skipped"))
        assert "a person moved it back" in log and "switch it back on" in log

    # the trace shows it; a member who is not an admin cannot switch it; the admin does (audited)
    page = admin.get(f"/i/{iid}/events/{moved_back}")
    assert "Automation state of deal" in page.text and "Switch auto-advance back on" in page.text
    api = admin.get(f"/api/v1/installations/{iid}/objects/deal/{deal['id']}/flags").json()
    assert api["flags"][0]["value"] is False
    switched = admin.form_post(f"/i/{iid}/objects/deal/{deal['id']}/auto-advance", {"on": "1", "event_id": moved_back},
                               csrf_from=f"/i/{iid}/events/{moved_back}")
    assert switched.status_code == 200 and "Auto-advance is on" in switched.text
    with hub.services.db.begin() as s:
        assert s.scalar(select(ObjectFlag.value)) is True
        assert s.scalar(select(AuditEvent.action).where(AuditEvent.action == "object.auto_advance_on"))
    emit(hub, iid, "activity.logged", deal["id"], direction="outreach", activity="meeting")
    assert [m[0] for m in MOVES][-1] == str(deal["id"]) and len(MOVES) == 3

    # the JSON API switches it too (CSRF header), and refuses a body without a boolean
    token = admin.csrf(f"/i/{iid}/events/{moved_back}")
    bad = admin.put(f"/api/v1/installations/{iid}/objects/deal/{deal['id']}/flags/auto_advance", json={"value": "x"},
                    headers={"X-CSRF-Token": token})
    assert bad.status_code == 400 and "value" in bad.json()["fields"]
    off = admin.put(f"/api/v1/installations/{iid}/objects/deal/{deal['id']}/flags/auto_advance", json={"value": False},
                    headers={"X-CSRF-Token": token})
    assert off.status_code == 200 and off.json()["changed"] is True and off.json()["flags"][0]["value"] is False
    odd = admin.put(f"/api/v1/installations/{iid}/objects/de-al!/{deal['id']}/flags/auto_advance",
                    json={"value": True}, headers={"X-CSRF-Token": token})
    assert odd.status_code == 400 and "object_type" in odd.json()["fields"]
    no_csrf = admin.put(f"/api/v1/installations/{iid}/objects/deal/{deal['id']}/flags/auto_advance",
                        json={"value": True})
    assert no_csrf.status_code in (400, 403)


def test_trigger_params_hold_a_list_and_single_values_still_work(env):
    hub, admin, iid, crm = env
    deal = crm.deals(ACCOUNT)[0]
    conn = connection_id(hub, iid)
    step = {"kind": "example.advance", "connection_id": conn, "settings": {"to_stage_id": "s2"}}
    any_of = service.create(hub.services, iid, {"name": "Any of", "trigger": "activity.logged", "status": "active",
                                                "params": {"activity": ["email", "call"], "direction": "outreach"},
                                                "steps": [step]}, "admin")
    assert any_of["params"] == {"activity": ["email", "call"], "direction": "outreach"}
    emit(hub, iid, "activity.logged", deal["id"], direction="outreach", activity="call")
    emit(hub, iid, "activity.logged", deal["id"], direction="outreach", activity="meeting")
    emit(hub, iid, "activity.logged", deal["id"], direction="response", activity="email")
    assert len(MOVES) == 1
    with hub.services.db.begin() as s:
        reasons = s.scalars(select(RunLog.message).where(RunLog.step == "rule.not_matched").order_by(RunLog.id)).all()
    assert "activity is meeting, the rule wants activity one of email, call" in reasons[0]
    assert "direction is response, the rule wants direction outreach" in reasons[1]

    # checked: a param the trigger lacks, a value its catalog lacks
    with pytest.raises(Invalid) as refused:
        service.create(hub.services, iid, {"name": "x", "trigger": "activity.logged", "params": {"colour": "red"},
                                           "steps": [step]}, "admin")
    assert "params.colour" in refused.value.errors
    with pytest.raises(Invalid) as refused:
        service.create(hub.services, iid, {"name": "x", "trigger": "activity.logged",
                                           "params": {"activity": ["email", "fax"]}, "steps": [step]}, "admin")
    assert "fax" in refused.value.errors["params.activity"]
    answer = admin.post(f"/api/v1/installations/{iid}/rules", json={
        "name": "x", "trigger": "activity.logged", "params": {"activity": [{"no": 1}]}, "steps": [step]},
        headers={"X-CSRF-Token": admin.csrf(f"/i/{iid}/rules")})
    assert answer.status_code == 400 and "params" in str(answer.json()["fields"])

    # the editor: a multi-select for a param with choices; saving keeps the list
    page = admin.get(f"/i/{iid}/rules/{any_of['id']}")
    assert re.search(r'<select name="param_activity" id="param_activity" multiple', page.text)
    form = {"name": "Any of", "trigger": "activity.logged", "fires": "every", "param_activity": ["meeting", "email"],
            "param_activity_many": "1", "param_direction": "outreach", "step_count": "1",
            "step_0_kind": "example.advance", "step_0_id": any_of["steps"][0]["id"], "step_0_connection_id": str(conn),
            "step_0_setting_to_stage_id": "s3", "do": "activate"}
    saved = admin.form_post(f"/i/{iid}/rules/{any_of['id']}", form, csrf_from=f"/i/{iid}/rules/{any_of['id']}")
    assert saved.status_code == 200, re.findall(r"id=\"([^\"]*-error)\">([^<]*)", saved.text)
    assert service.get(hub.services, iid, any_of["id"])["params"] == {"activity": ["meeting", "email"],
                                                                       "direction": "outreach"}
    emit(hub, iid, "activity.logged", deal["id"], direction="outreach", activity="meeting")
    assert len(MOVES) == 2


def test_the_automation_page_writes_rules_and_saving_again_updates_them(env):
    hub, admin, iid, crm = env
    settings = admin.get(f"/i/{iid}/settings")
    assert 'id="lead-automation-link"' in settings.text
    page = admin.get(f"/i/{iid}/automation")
    assert page.status_code == 200 and "Inbound" in page.text and "Partners" in page.text
    # fields: s0 (funnels) e0 (Inbound) p0 (outreach): f1 activities, f2 stage; p1 (welcome): f0 stage, f1 name,
    # f2 delay
    form = {"s0e0": "f1", "s0e1": "f2", "s0e0p0on": "1", "s0e0p0f1": ["email", "call"], "s0e0p0f2": "s3",
            "s0e1p1on": "1", "s0e1p1f0": "s8", "s0e1p1f1": "Welcome {{ deal.title }}", "s0e1p1f2": "2",
            "s0e1p1f2_unit": "hours"}
    # a stage of another pipeline is refused, and nothing at all is saved
    refused = admin.form_post(f"/i/{iid}/automation", {**form, "s0e0p0f2": "s8"}, csrf_from=f"/i/{iid}/automation")
    assert refused.status_code == 400 and "Nothing was saved" in refused.text
    with hub.services.db.begin() as s:
        assert s.scalars(select(Rule)).all() == []
    done = admin.form_post(f"/i/{iid}/automation", form, csrf_from=f"/i/{iid}/automation")
    assert done.status_code == 200 and "switched on" in done.text, re.findall(r"class=\"error[^>]*>([^<]*)", done.text)
    with hub.services.db.begin() as s:
        rules = {r.origin: r for r in s.scalars(select(Rule))}
    assert set(rules) == {"automation:funnels:f1:advance-on-outreach", "automation:funnels:f2:welcome-task"}
    outreach = service.get(hub.services, iid, rules["automation:funnels:f1:advance-on-outreach"].id)
    assert outreach["status"] == "active" and outreach["params"] == {"direction": "outreach", "pipeline": "f1",
                                                                     "activity": ["email", "call"]}
    assert outreach["steps"][0]["settings"] == {"to_stage_id": "s3"}
    welcome = service.get(hub.services, iid, rules["automation:funnels:f2:welcome-task"].id)
    assert welcome["steps"][0]["templates"]["name"] == "Welcome {{ deal.title }}"
    assert welcome["steps"][0]["delay_seconds"] == 7200 and welcome["stage_id"] == "s8"

    # the rule it wrote runs like any other
    deal = crm.deals(ACCOUNT)[0]
    emit(hub, iid, "activity.logged", deal["id"], direction="outreach", activity="call", pipeline="f1")
    emit(hub, iid, "activity.logged", deal["id"], direction="outreach", activity="call", pipeline="f2")
    assert MOVES == [(str(deal["id"]), {"to_stage_id": "s3"})]

    # an admin adds a step in the editor; the page shows where the rule comes from
    edited = service.update(hub.services, iid, welcome["id"], {"steps": [
        *welcome["steps"], {"kind": "wait", "delay_seconds": 60}]}, "admin")
    assert len(edited["steps"]) == 2
    assert "lead automation settings" in admin.get(f"/i/{iid}/rules/{welcome['id']}").text
    assert admin.get(f"/i/{iid}/rules").text.count(">lead automation</a>") == 2

    # saved again with other choices: the same rules, updated (the added step kept); one switched off
    again = {**form, "s0e0p0f1": ["meeting"], "s0e1p1f1": "Hi {{ deal.title }}"}
    again.pop("s0e1p1on")
    done = admin.form_post(f"/i/{iid}/automation", again, csrf_from=f"/i/{iid}/automation")
    assert done.status_code == 200 and "updated" in done.text and "switched off" in done.text
    with hub.services.db.begin() as s:
        after = {r.origin: r for r in s.scalars(select(Rule))}
    assert {k: r.id for k, r in after.items()} == {k: r.id for k, r in rules.items()}
    assert service.get(hub.services, iid, outreach["id"])["params"]["activity"] == ["meeting"]
    assert after["automation:funnels:f2:welcome-task"].status == "draft"
    again["s0e1p1on"] = "1"
    admin.form_post(f"/i/{iid}/automation", again, csrf_from=f"/i/{iid}/automation")
    welcome = service.get(hub.services, iid, welcome["id"])
    assert welcome["status"] == "active" and [s["kind"] for s in welcome["steps"]] == ["example.task", "wait"]
    assert welcome["steps"][0]["templates"]["name"] == "Hi {{ deal.title }}"

    # the page is for admins
    member = hub.browser()
    assert member.get(f"/i/{iid}/automation").status_code in (302, 401, 403, 404)
