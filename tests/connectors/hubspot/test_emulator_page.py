"""The HubSpot sandbox page plays the CRM user (each action is the emulator's own change, with the
user's or a workflow's source), and the hub mounts the emulator with its webhooks aimed at the hub."""
from __future__ import annotations

from hub import create_app as create_hub, sandbox
from hub.sandbox.hubspot import create_app
from tests.conftest import hub_config

from .test_emulator_webhooks import Receiver, setup


def test_page_actions_change_records_and_fire_webhooks():
    rx = Receiver()
    app, sb, clock, (hub,) = setup(rx)
    web = app.test_client()
    page = web.get("/_sandbox/ui/")
    assert page.status_code == 200 and "Thomas Hardy - new business" in page.text and "Northwind Traders" in page.text
    contacts = sb.records(hub, "contacts")
    thomas = contacts[2]
    (lead_id,) = sb.open_leads(hub, thomas["id"])

    assert web.post(f"/_sandbox/ui/contacts/{contacts[0]['id']}/lifecycle", data={"stage": "1083247613"}).status_code == 302
    assert sb.value(hub, "contacts", contacts[0]["id"], "lifecyclestage") == "1083247613"
    company = sb.records(hub, "companies")[0]
    web.post(f"/_sandbox/ui/companies/{company['id']}/lifecycle", data={"stage": "customer"})
    assert sb.value(hub, "contacts", thomas["id"], "lifecyclestage") == "customer"        # synced down

    web.post(f"/_sandbox/ui/contacts/{thomas['id']}/activity", data={"what": "outreach:linkedin"})
    web.post(f"/_sandbox/ui/contacts/{thomas['id']}/activity", data={"what": "response:meeting"})
    comm = sb.records(hub, "communications")[-1]
    assert comm["properties"]["hs_communication_channel_type"] == "LINKEDIN_MESSAGE"
    assert lead_id in sb.associated_ids(hub, "communications", comm["id"], "leads")
    assert sb.records(hub, "meetings")[-1]["properties"]["hs_meeting_source"] == "MEETINGS_PUBLIC"
    web.post(f"/_sandbox/ui/contacts/{thomas['id']}/activity", data={"what": "outreach:call",
                                                                        "outcome": "73a0d17f-1163-4015-bdd5-ec830791da20"})
    call = sb.records(hub, "calls")[-1]
    assert f"/_sandbox/ui/calls/{call['id']}/outcome" in web.get("/_sandbox/ui/").text
    web.post(f"/_sandbox/ui/calls/{call['id']}/outcome", data={"outcome": "f240bbac-87c9-4f6e-bf70-924b57d47db7"})
    assert [h["value"] for h in sb.find(hub, "calls", call["id"])["history"]["hs_call_disposition"]] == [
        "f240bbac-87c9-4f6e-bf70-924b57d47db7", "73a0d17f-1163-4015-bdd5-ec830791da20"]
    bad = web.post(f"/_sandbox/ui/contacts/{thomas['id']}/activity", data={"what": "response:linkedin"})
    assert bad.status_code == 400

    web.post("/_sandbox/ui/who", data={"portal": str(hub), "actor": "workflow"})
    web.post(f"/_sandbox/ui/leads/{lead_id}/stage", data={"stage": "connected-stage-id"})
    web.post("/_sandbox/ui/who", data={"portal": str(hub), "actor": str(sb.users(hub)[1]["id"])})
    web.post(f"/_sandbox/ui/leads/{lead_id}/stage", data={"stage": "new-stage-id"})
    web.post(f"/_sandbox/ui/leads/{lead_id}/disqualify", data={"reason": "WRONG_TIMING"})
    lead = sb.find(hub, "leads", lead_id)
    assert lead["properties"]["hs_lead_disqualification_reason"] == "WRONG_TIMING"
    sources = [h["sourceType"] for h in lead["history"]["hs_pipeline_stage"]]
    assert sources[:3] == ["CRM_UI", "CRM_UI", "AUTOMATION_PLATFORM"]
    assert lead["history"]["hs_pipeline_stage"][1]["sourceId"] == f"userId:{sb.users(hub)[1]['id']}"

    created = web.post("/_sandbox/ui/leads", data={"name": "Ana - follow up", "contact": contacts[1]["id"]})
    assert created.status_code == 302 and sb.open_leads(hub, contacts[1]["id"])
    deal = sb.records(hub, "deals")[1]
    web.post(f"/_sandbox/ui/deals/{deal['id']}/stage", data={"stage": "lost"})
    assert sb.value(hub, "deals", deal["id"], "dealstage") == "closedlost"
    task = sb.records(hub, "tasks")[0]
    web.post(f"/_sandbox/ui/tasks/{task['id']}/complete")
    assert sb.value(hub, "tasks", task["id"], "hs_task_status") == "COMPLETED"

    flushed = web.post("/_sandbox/webhooks/deliver").get_json()
    assert flushed["sent"] >= 1 and flushed["pending"] == 0
    kinds = {(e["subscriptionType"], e.get("propertyName")) for c in rx.calls for e in c["events"]}
    assert ("object.propertyChange", "hs_task_status") in kinds and ("deal.propertyChange", "dealstage") in kinds
    assert ("object.propertyChange", "hs_call_disposition") in kinds
    assert web.get("/_sandbox/ui/webhooks").status_code == 200
    assert web.get("/_sandbox/ui/faults").status_code == 200


def test_the_hub_mounts_it_with_webhooks_aimed_at_the_hub(tmp_path):
    sandbox.register("hubspot", create_app, "HubSpot", "_sandbox/ui/")
    try:
        app = create_hub(hub_config(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path / "instance", sandbox=True,
                                    base_url="http://hub.test", **{"sandbox.persist": False}))
        try:
            emu = app.extensions["hub"].extras["sandbox"]["hubspot"]
            sb = emu.extensions["sandbox"]
            client_id = next(iter(sb.client_options))
            assert sb.webhooks.target_url(client_id) == "http://hub.test/hooks/hubspot"
            web = app.test_client()
            assert "/sandbox/hubspot/_sandbox/ui/" in web.get("/sandbox/").text
            page = web.get("/sandbox/hubspot/_sandbox/ui/")
            assert page.status_code == 200 and "sandbox-nav" in page.text
        finally:
            app.extensions["hub"].stop()
            app.extensions["hub"].db.dispose()
    finally:
        sandbox.unregister("hubspot")
