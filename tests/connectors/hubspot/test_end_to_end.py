"""HubSpot through the whole hub, which knows it only through `hub.connectors`: installed from the
sandbox's marketplace screen (OAuth with the v1 token endpoint, the account from token metadata),
the emulator's signed app-wide deliveries taken in, and rules that create a HubSpot task when a
deal is won and a lead when a contact's lifecycle stage changes, each exactly once however often
the delivery comes."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
from sqlalchemy import select

from hub.rules import service
from hub.store import InboxEvent, Installation
from hub.store.models import Connection, HubEvent, RuleRun


def install(hub, emu):
    """The admin installs the app from HubSpot's install screen, for the demo account."""
    admin = hub.browser()
    start = admin.get("/install/hubspot", allow_redirects=False)
    assert start.status_code == 302, start.text[:300]
    authorize = start.headers["Location"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    assert "crm.objects.leads.write" in query["scope"].split(" ")
    portal = emu.portals()[0]
    consent = admin.post(authorize.split("?")[0], data={**query, "account": f"{portal['hub_id']}:{portal['admin_user_id']}",
                                                        "decision": "allow"}, allow_redirects=False)
    assert consent.status_code == 302, consent.text[:300]
    landed = admin.get(urljoin(authorize, consent.headers["Location"]))
    assert landed.status_code == 200, landed.text[:500]
    iid = int(re.search(r"/i/(\d+)/", landed.url).group(1))
    done = admin.form_post(f"/i/{iid}/visibility", {"visibility": "only_me", "setup": "1"},
                           csrf_from=f"/i/{iid}/visibility?setup=1")
    assert done.status_code == 200, done.text[:500]
    return iid, portal["hub_id"]


@pytest.fixture
def installed(make_live_hub):
    hub = make_live_hub()
    emu = hub.emulator("hubspot")
    emu.faults.update({"webhooks_paused": True})   # the test sends deliveries itself (force), when it says so
    iid, hub_id = install(hub, emu)
    hub.run_jobs()
    emu.deliver_pending(force=True)        # whatever the install itself caused
    hub.run_jobs()
    return hub, emu, iid, hub_id


def records(emu, hub_id, kind):
    return emu.records(hub_id, kind)


def test_a_won_deal_creates_one_hubspot_task_and_a_lifecycle_change_one_lead(installed):
    hub, emu, iid, hub_id = installed
    services = hub.services
    with services.db.begin() as s:
        installation = s.get(Installation, iid)
        assert (installation.provider, installation.company_id) == ("hubspot", str(hub_id))
        connection_id = s.scalar(select(Connection.id).where(Connection.installation_id == iid,
                                                             Connection.provider == "hubspot"))
    owner = str(emu.users(hub_id)[0]["ownerId"])
    service.create(services, iid, {
        "name": "Kick off won deals", "trigger": "deal.won", "pipeline_id": "default", "status": "active",
        "steps": [{"kind": "hubspot.task", "connection_id": connection_id,
                   "settings": {"type": "TODO", "priority": "HIGH", "owner_id": owner},
                   "templates": {"name": "Kick-off: {{ deal.title }}"}}]}, "admin")
    service.create(services, iid, {
        "name": "Lead for a new MQL", "trigger": "person.lifecycle_changed", "status": "active",
        "steps": [{"kind": "hubspot.lead", "connection_id": connection_id,
                   "settings": {"pipeline_id": "lead-pipeline-id"},
                   "templates": {"name": "{{ person.name }} - inbound"}}]}, "admin")

    deal = next(d for d in records(emu, hub_id, "deals") if d["properties"]["dealname"] == "Northwind web shop")
    maria = next(c for c in records(emu, hub_id, "contacts") if c["properties"]["firstname"] == "Maria")
    tasks_before, leads_before = len(records(emu, hub_id, "tasks")), len(records(emu, hub_id, "leads"))
    emu.faults.update({"webhook_duplicate_rate": 1.0, "webhook_reorder_rate": 1.0})   # every event twice, batches reversed
    emu.close_deal(hub_id, deal["id"], True)
    emu.set_lifecycle(hub_id, "contacts", maria["id"], "marketingqualifiedlead")
    sent = emu.deliver_pending(force=True)
    assert sent and all(d["status"] == 200 for d in sent), [(d["status"], d.get("error")) for d in sent]
    assert sum(d["duplicates"] for d in sent) >= 2
    hub.run_jobs()

    tasks = records(emu, hub_id, "tasks")[tasks_before:]
    assert [t["properties"]["hs_task_subject"] for t in tasks] == ["Kick-off: Northwind web shop"]
    assert tasks[0]["properties"]["hubspot_owner_id"] == owner
    assert str(deal["id"]) in emu.associated_ids(hub_id, "tasks", tasks[0]["id"], "deals")
    leads = records(emu, hub_id, "leads")[leads_before:]
    assert [(l["properties"]["hs_lead_name"], l["properties"]["hs_pipeline_stage"]) for l in leads] == \
        [("Maria Anders - inbound", "new-stage-id")]
    assert str(leads[0]["id"]) in emu.associated_ids(hub_id, "contacts", maria["id"], "leads")

    with services.db.begin() as s:
        kinds = set(s.scalars(select(HubEvent.kind).where(HubEvent.installation_id == iid)))
        runs = list(s.scalars(select(RuleRun).where(RuleRun.installation_id == iid)))
        inbox = list(s.scalars(select(InboxEvent).where(InboxEvent.installation_id == iid)))
    assert {"deal.won", "deal.stage_changed", "person.lifecycle_changed"} <= kinds
    assert sorted(r.status for r in runs) == ["done", "done"]
    assert all(i.status in ("processed", "ignored") for i in inbox), [(i.status, i.error) for i in inbox]
