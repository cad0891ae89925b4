"""Livespace through the whole hub, which knows it only through `hub.connectors`: installed with the
admin's API key and the account's address, the webhook subscription set up by hand as the settings
page says (the handshake answered, nothing stored), a won deal's signed delivery taken in once
however often it comes, a rule making a Livespace todo linked to the deal, exactly once; a task
completed in Livespace arriving as task.completed with its type and who completed it."""
from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from hub.rules import engine, service
from hub.sandbox.livespace import webhook_signature
from hub.store import HubEvent, InboxEvent, Installation
from hub.store.models import Connection, RuleRun

KEY, SECRET, ADDRESS = "demo-key", "demo-secret", "https://demo.livespace.io"


def install(hub):
    admin = hub.browser()
    landed = admin.form_post("/install/livespace", {"key": KEY, "secret": SECRET, "account": ADDRESS},
                             csrf_from="/install/livespace")
    assert landed.status_code == 200, landed.text[:500]
    iid = int(re.search(r"/i/(\d+)/", landed.url).group(1))
    done = admin.form_post(f"/i/{iid}/visibility", {"visibility": "only_me", "setup": "1"},
                           csrf_from=f"/i/{iid}/visibility?setup=1")
    assert done.status_code == 200, done.text[:500]
    return admin, iid


@pytest.fixture
def installed(make_live_hub):
    hub = make_live_hub()
    admin, iid = install(hub)
    hub.run_jobs()
    return hub, admin, iid


def inbox(services) -> list[InboxEvent]:
    with services.db.begin() as s:
        return list(s.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def test_a_wrong_secret_is_refused_on_the_form(make_live_hub):
    hub = make_live_hub()
    answer = hub.browser().form_post("/install/livespace", {"key": KEY, "secret": "not-it", "account": ADDRESS},
                                     csrf_from="/install/livespace")
    assert answer.status_code in (400, 401, 403) and "not-it" not in answer.text
    bad = hub.browser().form_post("/install/livespace", {"key": KEY, "secret": SECRET, "account": "https://evil.test"},
                                  csrf_from="/install/livespace")
    assert bad.status_code == 400 and "Livespace address" in bad.text
    with hub.services.db.begin() as s:
        assert s.scalar(select(Installation.id)) is None


def test_a_won_deal_makes_one_linked_todo(installed):
    hub, admin, iid = installed
    services, crm = hub.services, hub.emulator("livespace")
    with services.db.begin() as s:
        installation = s.get(Installation, iid)
        assert installation.provider == "livespace"
        connection_id = s.scalar(select(Connection.id).where(Connection.installation_id == iid,
                                                             Connection.provider == "livespace"))

    # the admin follows the settings page: URL and secret into Livespace's subscription form
    page = admin.get(f"/i/{iid}/settings").text
    url = html.unescape(re.search(r"Endpoint URL: <code>([^<]+)</code>", page).group(1))
    secret = html.unescape(re.search(r"Secret: <code>([^<]+)</code>", page).group(1))
    assert url.startswith(f"{services.base_url}/hooks/livespace/")
    assert hub.browser().post(url.rsplit("/", 1)[0] + "/not-a-token", data=b"").status_code == 404
    sub = crm.subscribe(url, secret)
    assert sub["active"] and sub["handshake"] in (200, 204)      # answered at once, nothing stored
    assert inbox(services) == []
    blank = hub.browser().post(url, data=b" ", headers={"X-Livespace-Signature": webhook_signature(secret, url, b" ")})
    assert blank.status_code == 400 and "body" in blank.text       # no handshake (not empty), no delivery
    unsigned = hub.browser().post(url, data=b'{"id": "x", "name": "deal.created", "data": {"id": "1"}}',
                                  headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    assert inbox(services) == []

    meeting = next(t["id"] for t in crm.todo_types() if t["name"] == "Meeting")
    seller = crm.user_by_email("bartek@demo.test")["id"]
    deal = next(d for d in crm.deals() if d["name"].endswith("Acme"))
    service.create(services, iid, {
        "name": "Kick off won deals", "trigger": "deal.won", "pipeline_id": deal["process_id"], "status": "active",
        "steps": [{"kind": "livespace.task", "connection_id": connection_id,
                   "settings": {"type_id": meeting, "owner_id": seller, "link_record": True},
                   "templates": {"name": "Kick-off: {{ deal.title }}"}}]}, "admin")

    crm.set_status(deal["id"], "won")
    [delivery] = crm.deliveries("pending")
    assert crm.deliver_pending() == [200]
    assert crm.send(delivery["id"]) == 200                       # Livespace retries: attempt 2, same id
    sent_url, headers, body = crm.signed(crm.deliveries()[0], 3)
    forged = body.replace(b'"won"', b'"lost"')
    assert hub.browser().post(sent_url, data=forged, headers=headers).status_code == 401
    assert len(inbox(services)) == 1
    hub.run_jobs()

    [todo] = [t for t in crm.todos() if t["title"].startswith("Kick-off")]
    assert todo["title"] == f"Kick-off: {deal['name']}"
    assert (todo["type_name"], todo["owner_id"]) == ("Meeting", seller)
    assert [(o["object_type"], o["object_id"]) for o in todo["objects"]] == [("deal", deal["id"])]
    with services.db.begin() as s:
        [run] = s.scalars(select(RuleRun)).all()
        assert run.status == "done"
        services.queue.enqueue(s, engine.JOB_KIND, {"run_id": run.id}, installation_id=iid)   # replayed
    crm.send(delivery["id"])
    hub.run_jobs()
    assert [t["id"] for t in crm.todos() if t["title"].startswith("Kick-off")] == [todo["id"]]

    # the seller completes it in Livespace: task.completed with the type and who completed it
    crm.complete_todo(todo["id"], seller)
    assert crm.deliver_pending() == [200, 200]                   # todo.created (the hub's own), todo.completed
    hub.run_jobs()
    with services.db.begin() as s:
        done = s.scalar(select(HubEvent).where(HubEvent.kind == "task.completed"))
        assert done is not None and done.object_id == todo["id"]
    assert "Meeting" in str(done.data) and "bartek@demo.test" in str(done.data)


LINK = re.compile(r"https?://[^\s]+(/login/link/[A-Za-z0-9_-]+)")


def test_a_colleague_invited_by_e_mail_signs_in_with_the_link_and_no_key(make_live_hub, smtp):
    hub = make_live_hub()
    admin, iid = install(hub)
    crm = hub.emulator("livespace")
    bartek = crm.user_by_email("bartek@demo.test")
    page = admin.get(f"/i/{iid}/visibility").text
    assert "Bartek Sprzedawca" in page and "Celina Handlowiec" in page      # the account's users, from Livespace
    shared = admin.form_post(f"/i/{iid}/visibility", {"visibility": "specific", "users": [bartek["id"]],
                                                      "notify": "1"}, csrf_from=f"/i/{iid}/visibility")
    assert shared.status_code == 200, shared.text[:300]
    hub.run_jobs()
    [(to, message)] = smtp.wait_for(1)
    assert to == ["bartek@demo.test"]
    path = LINK.search(message.get_payload(decode=True).decode()).group(1)
    colleague = hub.browser()
    signed_in = colleague.form_post(path, {}, csrf_from=path)
    assert signed_in.status_code == 200 and signed_in.url.endswith(f"/i/{iid}/settings"), signed_in.text[:300]
    assert colleague.get("/api/v1/me").json()["crm_user_id"] == bartek["id"]
    assert "Show the secret" not in signed_in.text                         # the webhook secret is for admins
