"""Bitrix24 through the whole hub, which knows it only through `hub.connectors`: installed by OAuth
at the portal (the account asked first, GET token exchange), its events bound by the generic
registration, the install event's application token claimed and proven, a deal won in the portal
delivered as Bitrix24 does (a form with only the id), the rule run, and a task in the portal
linked to the deal, exactly once. Reconciliation finds a win whose delivery was dropped, once; the
uninstall event ends the installation."""
from __future__ import annotations

from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
from sqlalchemy import select

from hub.rules import service
from hub.rules.catalogs import CACHE
from hub.store import HubEvent, InboxEvent, Installation, RegisteredWebhook
from hub.store.models import Connection, RuleRun
from hub.webhooks.credentials import delivery_token
from hub.webhooks.reconcile import reconcile_installation

PORTAL = "demo"


def install(hub):
    """The admin names the portal, allows the app there, lands on the hub, confirms who may use it."""
    emu = hub.emulator("bitrix24")
    emu.dispatcher.auto = False                       # the test decides when Bitrix24's POSTs happen
    emu.faults.update({"bucket_enabled": False})
    admin = hub.browser()
    domain = emu.portals()[0]["domain"]
    start = admin.get(f"/install/bitrix24?account={domain}", allow_redirects=False)
    assert start.status_code == 302, start.text[:500]
    authorize = start.headers["Location"]
    assert "/sandbox/bitrix24/oauth/authorize/" in authorize and "redirect_uri" not in authorize
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    consent = admin.post(authorize.split("?")[0], data={"client_id": query["client_id"], "state": query["state"],
                                                        "portal": PORTAL, "user_id": str(emu.admin_id(PORTAL)),
                                                        "decision": "allow"}, allow_redirects=False)
    assert consent.status_code == 302, consent.text[:500]
    landed = admin.get(urljoin(authorize, consent.headers["Location"]))
    assert landed.status_code == 200 and "Who may use Relay Hub" in landed.text, landed.text[:500]
    iid = int(landed.url.split("/i/")[1].split("/")[0])
    done = admin.form_post(f"/i/{iid}/visibility", {"visibility": "only_me", "setup": "1"},
                           csrf_from=f"/i/{iid}/visibility?setup=1")
    assert done.status_code == 200, done.text[:500]
    return admin, iid


@pytest.fixture
def installed(make_live_hub):
    CACHE.clear()           # the catalogs' cache is keyed by connection id, which every test's hub reuses
    yield _installed(make_live_hub)
    CACHE.clear()


def _installed(make_live_hub):
    hub = make_live_hub()
    admin, iid = install(hub)
    hub.run_jobs()                                    # event.bind for each event, at the app-wide URL
    emu = hub.emulator("bitrix24")
    sent = emu.dispatcher.deliver_pending()           # ONAPPINSTALL, queued by the token exchange
    assert [(d["event"], d["status"]) for d in sent] == [("ONAPPINSTALL", 200)]
    reconcile_installation(hub.services, iid)          # the first poll: the baseline, no events
    return hub, iid


def connection_of(services, iid) -> int:
    with services.db.begin() as s:
        return s.scalar(select(Connection.id).where(Connection.installation_id == iid, Connection.role == "crm"))


def deliver(hub) -> list[tuple[str, int | None]]:
    return [(d["event"], d["status"]) for d in hub.emulator("bitrix24").dispatcher.deliver_pending()]


def won_rule(services, iid):
    return service.create(services, iid, {
        "name": "Hand over won deals", "trigger": "deal.won", "pipeline_id": "0", "status": "active",
        "steps": [{"kind": "bitrix24.task", "connection_id": connection_of(services, iid),
                   "settings": {"deadline_hours": 48, "priority": "2", "control": "Y"},
                   "templates": {"name": "Hand over: {{ deal.title }}",
                                 "description": "<p>Won: <b>{{ deal.title }}</b> ({{ deal.amount }})</p>"}}]}, "admin")


def runs(services) -> list[RuleRun]:
    with services.db.begin() as s:
        return list(s.scalars(select(RuleRun).order_by(RuleRun.id)))


def test_install_binds_events_and_keeps_the_application_token(installed):
    hub, iid = installed
    services, emu = hub.services, hub.emulator("bitrix24")
    with services.db.begin() as s:
        installation = s.get(Installation, iid)
        assert installation.company_id == emu.portals()[0]["member_id"]
        assert installation.company_domain == urlsplit(installation.api_domain).hostname   # the portal's host
        assert delivery_token(services, s, iid) == emu.application_token(PORTAL, "relay-hub-sandbox")
        hooks = s.scalars(select(RegisteredWebhook).where(RegisteredWebhook.installation_id == iid)).all()
    bound = {(b["event"], b["handler"]) for b in emu.bindings(PORTAL)}
    assert {("ONCRMDEALUPDATE", f"{services.base_url}/hooks/bitrix24"),
            ("ONTASKUPDATE", f"{services.base_url}/hooks/bitrix24")} <= bound
    assert len(hooks) == len([b for b in bound if b[1] == f"{services.base_url}/hooks/bitrix24"])
    hub.run_jobs()
    with services.db.begin() as s:
        [inbox] = s.scalars(select(InboxEvent)).all()
        assert inbox.status == "ignored" and "access_token" not in inbox.body   # the install event itself
    for preset in ("bitrix24-won-handover", "bitrix24-stage-contract", "bitrix24-lead-call"):
        draft = service.create(services, iid, {"preset": preset}, "admin")
        assert draft["status"] == "draft" and [s["kind"] for s in draft["steps"]] == ["bitrix24.task"]
    # registration again (the reconciliation job does it): nothing new, nothing duplicated
    from hub.webhooks.registration import ensure_webhooks
    assert ensure_webhooks(services, iid)["created"] == 0
    assert len(emu.bindings(PORTAL)) == len(bound)


def test_a_won_deal_makes_one_task_linked_to_the_deal(installed):
    hub, iid = installed
    services, emu = hub.services, hub.emulator("bitrix24")
    won_rule(services, iid)
    deal = emu.win_deal(PORTAL, 1)
    assert deliver(hub) == [("ONCRMDEALUPDATE", 200)]
    hub.run_jobs()
    [task] = [t for t in emu.tasks(PORTAL) if t["title"].startswith("Hand over")]
    assert task["title"] == f"Hand over: {deal['TITLE']}"
    assert task["ufCrmTask"] == ["D_1"] and str(task["responsibleId"]) == str(deal["ASSIGNED_BY_ID"])
    assert task["taskControl"] and str(task["priority"]) == "2" and task["deadline"]
    assert "[B]" in task["description"] and task["xmlId"].startswith("relayhub-")
    [run] = runs(services)
    assert run.status == "done"
    with services.db.begin() as s:
        kinds = sorted(e.kind for e in s.scalars(select(HubEvent)))
    assert kinds == ["deal.stage_changed", "deal.updated", "deal.won"]

    # the task's own event comes back: a task linked to the deal, in neutral words
    assert ("ONTASKADD", 200) in deliver(hub)
    hub.run_jobs()
    with services.db.begin() as s:
        created = s.scalar(select(HubEvent).where(HubEvent.kind == "task.created"))
    assert created.object_id == str(task["id"]) and created.data["extra"]["deal_id"] == "1"
    assert created.data["extra"]["status"] == "not_viewed"

    # the responsible completes it; under control it awaits review, then the creator approves it
    emu.task_action(PORTAL, task["id"], "complete", actor=int(task["responsibleId"]))
    deliver(hub)
    hub.run_jobs()
    emu.task_action(PORTAL, task["id"], "approve", actor=int(task["createdBy"]))
    deliver(hub)
    hub.run_jobs()
    with services.db.begin() as s:
        kinds = [e.kind for e in s.scalars(select(HubEvent).where(HubEvent.object_type == "task")
                                           .order_by(HubEvent.id))]
        statuses = [e.data["extra"]["status"] for e in s.scalars(select(HubEvent).where(
            HubEvent.kind == "task.status_changed").order_by(HubEvent.id))]
    assert kinds.count("task.completed") == 1, kinds
    assert statuses[-2:] == ["awaiting_review", "completed"], statuses

    # the delivery again, the deal won again by the same webhook: nothing more is made
    emu.update_deal(PORTAL, 1, {"COMMENTS": "signed"})
    deliver(hub)
    hub.run_jobs()
    assert len([t for t in emu.tasks(PORTAL) if t["title"].startswith("Hand over")]) == 1
    assert len(runs(services)) == 1


def test_a_dropped_win_is_found_by_the_poll_exactly_once(installed):
    hub, iid = installed
    services, emu = hub.services, hub.emulator("bitrix24")
    won_rule(services, iid)
    emu.faults.update({"drop_events": 1})
    emu.win_deal(PORTAL, 2)
    [dropped] = hub.emulator("bitrix24").dispatcher.deliver_pending()
    assert dropped["error"].startswith("dropped")              # Bitrix24 never retries
    hub.run_jobs()
    assert runs(services) == []
    found = reconcile_installation(services, iid)
    assert found["events"] >= 1
    hub.run_jobs()
    assert len([t for t in emu.tasks(PORTAL) if t["title"].startswith("Hand over")]) == 1
    deliver(hub)                                                # the new task's own event
    hub.run_jobs()
    again = reconcile_installation(services, iid)
    hub.run_jobs()
    assert again["events"] == 0 and len(runs(services)) == 1
    with services.db.begin() as s:
        wins = s.scalars(select(HubEvent).where(HubEvent.kind == "deal.won")).all()
    assert [(w.object_id, w.source) for w in wins] == [("2", "reconcile")]


def test_forged_or_foreign_deliveries_are_refused_and_nothing_is_stored(installed):
    hub, iid = installed
    services, emu = hub.services, hub.emulator("bitrix24")
    emu.win_deal(PORTAL, 3)
    [job] = emu.dispatcher.pending()
    from hub.sandbox.bitrix24.util import flatten
    from urllib.parse import urlencode
    body = job["body"]
    forged = dict(body, auth={**body["auth"], "application_token": "0" * 32, "access_token": "forged"})
    other = dict(body, auth={**body["auth"], "member_id": "f" * 32})
    browser = hub.browser()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert browser.post("/hooks/bitrix24", data=urlencode(flatten(forged)), headers=headers).status_code == 401
    assert browser.post("/hooks/bitrix24", data=urlencode(flatten(other)), headers=headers).status_code == 404
    bad = browser.post("/hooks/bitrix24", data="event=ONCRMDEALUPDATE&data%5BFIELDS%5D%5BID%5D=3", headers=headers)
    assert bad.status_code == 400 and "auth[member_id]" in bad.text
    with services.db.begin() as s:
        assert s.scalars(select(InboxEvent).where(InboxEvent.event_key.like("ONCRMDEAL%"))).all() == []
        assert delivery_token(services, s, iid) == emu.application_token(PORTAL, "relay-hub-sandbox")


def test_the_uninstall_event_ends_the_installation(installed):
    hub, iid = installed
    services, emu = hub.services, hub.emulator("bitrix24")
    assert emu.uninstall(PORTAL, "relay-hub-sandbox")
    assert ("ONAPPUNINSTALL", 200) in deliver(hub)
    hub.run_jobs()
    with services.db.begin() as s:
        installation = s.get(Installation, iid)
        assert installation.status == "uninstalled"
        assert s.scalars(select(RegisteredWebhook).where(RegisteredWebhook.installation_id == iid)).all() == []
        assert delivery_token(services, s, iid) == ""
        assert all(c.status == "disconnected" for c in s.scalars(select(Connection).where(
            Connection.installation_id == iid)))


def test_closing_a_deal_sends_its_controlled_task_to_review_and_the_mirror_follows(installed):
    """The core's "closing a deal finishes its tasks" with Bitrix24 tasks: the task a rule made when
    the deal moved, under control and created by a colleague, goes to review when the deal is won;
    its own events keep the hub's mirror in step."""
    from hub.store.models import TaskStatus

    hub, iid = installed
    services, emu = hub.services, hub.emulator("bitrix24")
    service.create(services, iid, {
        "name": "Contract task", "trigger": "deal.stage_changed", "pipeline_id": "0", "stage_id": "EXECUTING",
        "status": "active",
        "steps": [{"kind": "bitrix24.task", "connection_id": connection_of(services, iid),
                   "settings": {"control": "Y", "created_by": "3", "deadline_hours": 72},
                   "templates": {"name": "Contract: {{ deal.title }}"}}]}, "admin")
    emu.move_deal(PORTAL, 2, "EXECUTING")
    deliver(hub)
    hub.run_jobs()
    [task] = [t for t in emu.tasks(PORTAL) if t["title"].startswith("Contract:")]
    assert task["ufCrmTask"] == ["D_2"] and str(task["createdBy"]) == "3" and task["taskControl"]
    deliver(hub)                                       # ONTASKADD: the mirror hears of it
    hub.run_jobs()
    emu.win_deal(PORTAL, 2)
    deliver(hub)
    hub.run_jobs()                                     # deal.won -> the core completes its open linked tasks
    assert emu.task(PORTAL, task["id"])["status"] == 4  # awaiting the creator's control, not completed
    deliver(hub)
    hub.run_jobs()
    with services.db.begin() as s:
        [row] = s.scalars(select(TaskStatus).where(TaskStatus.external_id == str(task["id"]))).all()
        assert (row.connector, row.object_type, row.object_id, row.status) == ("bitrix24", "deal", "2",
                                                                               "awaiting_review")
