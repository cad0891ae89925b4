"""HubSpot events as the emulator delivers them (signed arrays), verified, split and normalized by the
connector, which re-reads each object (with the changed property's history) from the emulator."""
from __future__ import annotations

import json

import pytest

from hub.connectors.contract.webhooks import Delivery, RawRequest, Secrets
from hub.connectors.hubspot import CONNECTOR
from hub.sandbox.hubspot import Source

from .harness import CLIENT_SECRET, live

HOOK = "https://hub.test/hooks/hubspot"


class Capture:
    def __init__(self):
        self.requests: list[tuple[dict, bytes]] = []

    def __call__(self, url, headers, body):
        assert url == HOOK
        self.requests.append((dict(headers), body if isinstance(body, bytes) else body.encode()))
        return 200, {}


@pytest.fixture
def env(tmp_path):
    capture = Capture()
    with live(tmp_path, transport=capture, webhook_url=HOOK) as running:
        running.emu.deliver_pending(force=True)       # the seed's own events
        capture.requests.clear()
        running.capture = capture
        yield running


def events(env, *, verify=True):
    """Send what is pending, and run each request through the connector like the ingest and worker."""
    env.emu.deliver_pending(force=True)
    out = []
    for headers, body in env.capture.requests:
        raw = RawRequest("POST", HOOK, {k.lower(): v for k, v in headers.items()}, body)
        if verify:
            CONNECTOR.webhooks.verify(raw, Secrets(app_secret_source=lambda: CLIENT_SECRET))
        for part in CONNECTOR.webhooks.split(raw):
            assert isinstance(part, Delivery), part
            out += CONNECTOR.webhooks.normalize(part, env.client)
    env.capture.requests.clear()
    return out


def of(evs, kind):
    return [e for e in evs if e.kind == kind]


def contact(env, first):
    return next(c for c in env.emu.records(env.hub_id, "contacts") if c["properties"]["firstname"] == first)


def the_lead(env):
    return env.emu.records(env.hub_id, "leads")[0]


def test_a_persons_lifecycle_change_and_a_company_sync_have_their_causes(env):
    maria = contact(env, "Maria")
    env.emu.set_lifecycle(env.hub_id, "contacts", maria["id"], "marketingqualifiedlead")
    [changed] = of(events(env), "person.lifecycle_changed")
    assert (changed.object_id, changed.extra["from_lifecycle"], changed.extra["to_lifecycle"]) == \
        (str(maria["id"]), "subscriber", "marketingqualifiedlead")
    assert changed.extra["cause"] == "person" and changed.current["firstname"] == "Maria"

    company = env.emu.records(env.hub_id, "companies")[0]
    env.emu.set_lifecycle(env.hub_id, "companies", company["id"], "salesqualifiedlead")
    synced = of(events(env), "person.lifecycle_changed")
    assert synced and {e.extra["cause"] for e in synced} == {"company_sync"}
    assert {e.extra["change_source"] for e in synced} == {"COMPANIES"}


def test_a_lead_moved_back_by_a_person_and_forward_by_a_workflow(env):
    lead = the_lead(env)
    env.emu.move_lead(env.hub_id, lead["id"], "new-stage-id")
    [back] = of(events(env), "lead.stage_changed")
    assert (back.from_stage_id, back.to_stage_id, back.pipeline_id) == ("attempting-stage-id", "new-stage-id",
                                                                        "lead-pipeline-id")
    assert (back.extra["direction"], back.extra["moved_by"]) == ("back", "person")
    env.emu.move_lead(env.hub_id, lead["id"], "connected-stage-id", source=Source("workflow", "wf:1", None))
    [forward] = of(events(env), "lead.stage_changed")
    assert (forward.extra["direction"], forward.extra["moved_by"]) == ("forward", "automation")


def test_a_disqualified_lead_says_why(env):
    lead = the_lead(env)
    env.emu.disqualify_lead(env.hub_id, lead["id"], "NOT_A_GOOD_FIT")
    evs = events(env)
    [out] = of(evs, "lead.disqualified")
    assert out.extra["reason"] == "NOT_A_GOOD_FIT" and out.to_stage_id == "unqualified-stage-id"
    assert len(of(evs, "lead.stage_changed")) == 1


def test_a_deal_closed_won_is_a_stage_change_and_a_win(env):
    deal = next(d for d in env.emu.records(env.hub_id, "deals") if d["properties"]["pipeline"] == "default")
    env.emu.close_deal(env.hub_id, deal["id"], True)
    evs = events(env)
    [moved], [won] = of(evs, "deal.stage_changed"), of(evs, "deal.won")
    assert moved.from_stage_id == deal["properties"]["dealstage"] and moved.to_stage_id == "closedwon"
    assert won.pipeline_id == "default" and won.current["dealname"] == deal["properties"]["dealname"]


@pytest.mark.parametrize("activity, response, expected", [
    ("email", False, [("outreach", "email")]),
    ("email", True, [("response", "email")]),
    ("linkedin", False, [("outreach", "linkedin")]),
    ("meeting", True, [("response", "meeting")]),
    ("call", True, [("outreach", "call"), ("response", "call")]),
])
def test_logged_activities_reach_the_contacts_open_lead(env, activity, response, expected):
    thomas, lead = contact(env, "Thomas"), the_lead(env)
    env.emu.log_activity(env.hub_id, thomas["id"], activity, response=response)
    logged = of(events(env), "activity.logged")
    assert {(e.extra["direction"], e.extra["activity"]) for e in logged} == set(expected)
    assert {e.object_id for e in logged} == {str(lead["id"])}
    assert all(e.to_stage_id == "attempting-stage-id" and e.pipeline_id == "lead-pipeline-id" for e in logged)


def test_activity_of_a_contact_without_open_leads_is_no_event(env):
    env.emu.log_activity(env.hub_id, contact(env, "Maria")["id"], "email")
    assert of(events(env), "activity.logged") == []


def test_a_task_completed(env):
    task = env.emu.records(env.hub_id, "tasks")[0]
    env.emu.complete_task(env.hub_id, task["id"])
    [done] = of(events(env), "task.completed")
    assert done.object_id == str(task["id"]) and done.current["hs_task_subject"] == "Call Thomas"


def test_an_event_keeps_its_own_value_and_time_when_the_object_moved_on(env):
    """Two moves delivered together: the first event's re-read shows the newer stage, but the event
    keeps its own (value, history's before, version), so the hub's event log can order them."""
    lead = the_lead(env)
    env.emu.move_lead(env.hub_id, lead["id"], "connected-stage-id")
    env.emu.move_lead(env.hub_id, lead["id"], "qualified-stage-id")
    a, b = of(events(env), "lead.stage_changed")
    assert (a.from_stage_id, a.to_stage_id) == ("attempting-stage-id", "connected-stage-id")
    assert (b.from_stage_id, b.to_stage_id) == ("connected-stage-id", "qualified-stage-id")
    assert a.current["hs_pipeline_stage"] == "connected-stage-id"
    assert a.version <= b.version and a.occurrence != b.occurrence


def test_signed_deliveries_verify_and_altered_ones_do_not(env):
    env.emu.set_lifecycle(env.hub_id, "contacts", contact(env, "Ana")["id"], "customer")
    env.emu.deliver_pending(force=True)
    [(headers, body)] = env.capture.requests
    raw = RawRequest("POST", HOOK, {k.lower(): v for k, v in headers.items()}, body.replace(b"customer", b"other"))
    with pytest.raises(Exception, match="does not match"):
        CONNECTOR.webhooks.verify(raw, Secrets(app_secret_source=lambda: CLIENT_SECRET))
    assert json.loads(body)[0]["propertyValue"] == "customer"
