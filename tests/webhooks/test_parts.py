"""The ingest and the worker through the connector contract only, with two made-up connectors:
`acme` routes by account on one app-wide URL, signs the full URL and body, batches events in a JSON
array, pings on activation and sends only ids (normalize reads the API); `formco` posts form bodies
to per-installation URLs. Nothing here is a real provider."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from sqlalchemy import func, select

from hub import connectors
from hub.connectors.contract import Connector
from hub.connectors.contract.webhooks import (CrmEvent, Delivery, MalformedPayload, RawRequest, Refused, Reply,
                                              Secrets, Webhooks)
from hub.jobs import Worker
from hub.store import HubEvent, InboxEvent, Installation, Job
from hub.webhooks import processing
from hub.webhooks.credentials import webhook_credentials
from hub.webhooks.ingest import endpoints


def sign(secret: str, method: str, url: str, body: bytes) -> str:
    return hmac.new(secret.encode(), method.encode() + url.encode() + body, hashlib.sha256).hexdigest()


def acme_verify(raw: RawRequest, secrets: Secrets) -> None:
    if not hmac.compare_digest(raw.header("X-Acme-Signature") or "", sign(secrets.password, raw.method, raw.url, raw.body)):
        raise Refused("X-Acme-Signature: does not match")


def acme_events(raw: RawRequest) -> list[dict]:
    events = raw.json()
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise MalformedPayload("body", "expected a JSON array of event objects")
    return events


def acme_account(raw: RawRequest) -> str | None:
    portals = {str(e.get("portalId")) for e in acme_events(raw) if e.get("portalId") is not None}
    if len(portals) > 1:
        raise MalformedPayload("portalId", "one request, one account")
    return portals.pop() if portals else None


def acme_split(raw: RawRequest) -> list[Delivery]:
    return [Delivery.of_json(e, f"acme-{e.get('eventId')}", f"deal:{e.get('objectId')}") for e in acme_events(raw)]


def acme_normalize(delivery: Delivery, client) -> list[CrmEvent]:
    event = delivery.json()
    deal = client.deal(event["objectId"])            # the delivery names the deal only
    return [CrmEvent(kind="deal.won", object_type="deal", object_id=str(deal["id"]), event_id=delivery.key,
                     occurred_at=None, current=deal, previous=None, version=deal["updated"],
                     occurrence=deal["closed"], shows={"stage": "won"})]


ACME = Connector(name="acme", title="Acme CRM", roles=frozenset({"crm"}), auth=None, webhooks=Webhooks(
    verify=acme_verify, split=acme_split, normalize=acme_normalize, kinds=frozenset({"deal.won"}),
    routing="account", account_key=acme_account,
    handshake=lambda raw: Reply(200, "ready") if not raw.body else None))


def formco_verify(raw: RawRequest, secrets: Secrets) -> None:
    if raw.form.get("auth[token]") != secrets.password:
        raise Refused("auth[token]: not this installation's")


def formco_split(raw: RawRequest) -> list[Delivery]:
    form = raw.form
    if not form.get("data[ID]"):
        raise MalformedPayload("data[ID]", "missing")
    part = {k: v for k, v in form.items() if not k.startswith("auth[")}
    return [Delivery(f"{form.get('event')}:{form['data[ID]']}:{form.get('ts')}", json.dumps(part), f"task:{form['data[ID]']}")]


def formco_normalize(delivery: Delivery, client) -> list[CrmEvent]:
    form = delivery.json()
    return [CrmEvent(kind="task.completed", object_type="task", object_id=form["data[ID]"], event_id=delivery.key,
                     occurred_at=None, current=form, previous=None, version=None, occurrence=form["ts"], shows={})]


FORMCO = Connector(name="formco", title="Form Co", roles=frozenset({"crm"}), auth=None, webhooks=Webhooks(
    verify=formco_verify, split=formco_split, normalize=formco_normalize, kinds=frozenset({"task.completed"})))


class Api:
    """The installation's CRM as `normalize` sees it; counts how often a client was made."""

    made = 0
    deals = {"5": {"id": 5, "stage": "won", "closed": "2026-11-20T10:00:00Z", "updated": "2026-11-20T10:00:01Z"},
             "6": {"id": 6, "stage": "won", "closed": "2026-11-20T11:00:00Z", "updated": "2026-11-20T11:00:01Z"}}

    def deal(self, deal_id):
        return dict(self.deals[str(deal_id)])


@pytest.fixture
def hub(make_hub, monkeypatch):
    for c in (ACME, FORMCO):
        connectors.register(c)
    app = make_hub()
    services = app.extensions["hub"]

    def client(services_, installation_id):
        Api.made += 1
        return Api()
    Api.made = 0
    monkeypatch.setattr(processing, "crm_api", client)
    endpoints._entries.clear()
    with services.db.begin() as s:
        made = {}
        for name, account in (("acme", "portal-1"), ("formco", "fc-1")):
            row = Installation(provider=name, company_id=account, installer_user_id="1", endpoint_token=f"tok-{name}-1")
            s.add(row)
            s.flush()
            made[name] = (row.id, webhook_credentials(services, s, row.id, create=True)[1])
    yield type("Hub", (), {"app": app, "services": services, "client": app.test_client(), "made": made,
                           "worker": Worker(services.queue, app=app, worker_id="t")})
    for c in (ACME, FORMCO):
        connectors.unregister(c.name)
    endpoints._entries.clear()


def stored(hub) -> tuple[int, int]:
    with hub.services.db.begin() as s:
        return (s.scalar(select(func.count()).select_from(InboxEvent)),
                s.scalar(select(func.count()).select_from(Job).where(Job.kind == "webhook.process")))


def post_acme(hub, events, *, path="/hooks/acme?v=3", secret=None, sign_url=None):
    body = json.dumps(events).encode()
    secret = hub.made["acme"][1] if secret is None else secret
    signature = sign(secret, "POST", sign_url or f"{hub.services.base_url}{path}", body)
    return hub.client.post(path, data=body, headers={"Content-Type": "application/json", "X-Acme-Signature": signature})


def test_an_app_wide_delivery_is_routed_by_its_account_split_and_stored_at_once(hub):
    events = [{"portalId": "portal-1", "eventId": 1, "objectId": 5}, {"portalId": "portal-1", "eventId": 2, "objectId": 6},
              {"portalId": "portal-1", "eventId": 1, "objectId": 5}]           # the array repeats event 1
    answer = post_acme(hub, events)
    assert answer.status_code == 200 and answer.get_json() == {"ok": True, "events": 3, "duplicates": 1}
    assert stored(hub) == (2, 2)
    with hub.services.db.begin() as s:
        rows = s.scalars(select(InboxEvent).order_by(InboxEvent.id)).all()
        assert [(r.installation_id, r.provider, r.event_key) for r in rows] == \
            [(hub.made["acme"][0], "acme", "acme-1"), (hub.made["acme"][0], "acme", "acme-2")]
        assert json.loads(rows[1].body) == events[1]                    # each part stored as its own body
        jobs = s.scalars(select(Job).where(Job.kind == "webhook.process").order_by(Job.id)).all()
        assert [j.ordering_key for j in jobs] == [f"{hub.made['acme'][0]}:deal:5", f"{hub.made['acme'][0]}:deal:6"]
    again = post_acme(hub, events[:2])
    assert again.get_json() == {"ok": True, "duplicate": True, "events": 2, "duplicates": 2} and stored(hub) == (2, 2)


def test_normalize_reads_the_api_through_a_client_made_on_demand(hub):
    post_acme(hub, [{"portalId": "portal-1", "eventId": 1, "objectId": 5}, {"portalId": "portal-1", "eventId": 2, "objectId": 6}])
    assert Api.made == 0                     # receiving never touches the provider
    hub.worker.drain()
    assert Api.made == 2                     # one per delivery that needed it
    # a redelivery with a new event id but the same win (the connector's occurrence): one event
    post_acme(hub, [{"portalId": "portal-1", "eventId": 3, "objectId": 5}])
    hub.worker.drain()
    with hub.services.db.begin() as s:
        found = s.execute(select(HubEvent.object_id, HubEvent.occurrence).order_by(HubEvent.id)).all()
        assert [tuple(r) for r in found] == [("5", "deal:5:deal.won:2026-11-20T10:00:00Z"),
                                             ("6", "deal:6:deal.won:2026-11-20T11:00:00Z")]
        assert {r.status for r in s.scalars(select(InboxEvent))} == {"processed"}


@pytest.mark.parametrize("case", ["no account", "unknown account", "two accounts", "token url", "bad signature",
                                  "signed without the query", "not an array"])
def test_refusals_store_nothing_and_name_what_is_wrong(hub, case):
    event = {"portalId": "portal-1", "eventId": 1, "objectId": 5}
    answer = {
        "no account": lambda: post_acme(hub, [{"eventId": 1}]),
        "unknown account": lambda: post_acme(hub, [{**event, "portalId": "portal-2"}]),
        "two accounts": lambda: post_acme(hub, [event, {**event, "portalId": "portal-2"}]),
        "token url": lambda: post_acme(hub, [event], path="/hooks/acme/tok-acme-1"),
        "bad signature": lambda: post_acme(hub, [event], secret="guess"),
        "signed without the query": lambda: post_acme(hub, [event], sign_url=f"{hub.services.base_url}/hooks/acme"),
        "not an array": lambda: post_acme(hub, {"portalId": "portal-1"}),
    }[case]()
    expected = {"no account": (400, "body"), "unknown account": (404, None), "two accounts": (400, "portalId"),
                "token url": (404, None), "bad signature": (401, None), "signed without the query": (401, None),
                "not an array": (400, "body")}[case]
    assert answer.status_code == expected[0], answer.get_data(as_text=True)
    if expected[1]:
        assert expected[1] in answer.get_json()["fields"]
    assert stored(hub) == (0, 0)


def test_a_handshake_is_answered_and_stores_nothing(hub):
    answer = hub.client.post("/hooks/acme", data=b"")
    assert (answer.status_code, answer.get_data(as_text=True)) == (200, "ready")
    assert stored(hub) == (0, 0)


def test_a_form_body_is_verified_split_and_normalized(hub):
    iid, password = hub.made["formco"]
    form = {"event": "ONTASKDONE", "data[ID]": "77", "ts": "1795000000", "auth[token]": password}
    assert hub.client.post("/hooks/formco/tok-formco-1", data={**form, "auth[token]": "nope"}).status_code == 401
    assert hub.client.post("/hooks/formco", data=form).status_code == 404      # routed by token, not account
    bad = hub.client.post("/hooks/formco/tok-formco-1", data={**form, "data[ID]": "7\x007"})
    assert bad.status_code == 400 and "data[ID]" in bad.get_json()["fields"]
    assert stored(hub) == (0, 0)
    assert hub.client.post("/hooks/formco/tok-formco-1", data=form).get_json() == {"ok": True}
    hub.worker.drain()
    with hub.services.db.begin() as s:
        [inbox] = s.scalars(select(InboxEvent)).all()
        assert password not in inbox.body and inbox.event_key == "ONTASKDONE:77:1795000000"
        [event] = s.scalars(select(HubEvent)).all()
        assert (event.installation_id, event.kind, event.object_type, event.object_id) == (iid, "task.completed", "task", "77")
    assert Api.made == 0                       # a delivery that carries what it needs makes no client


def test_every_part_is_stored_in_one_transaction(hub, monkeypatch):
    """The second part's job cannot be written: neither part is kept, and the provider is not told 2xx."""
    enqueue, calls = hub.services.queue.enqueue_core, []

    def failing(conn, kind, payload, **kw):
        calls.append(kind)
        if len(calls) == 2:
            raise RuntimeError("database gone")
        return enqueue(conn, kind, payload, **kw)
    monkeypatch.setattr(hub.services.queue, "enqueue_core", failing)
    hub.app.config["PROPAGATE_EXCEPTIONS"] = False
    answer = post_acme(hub, [{"portalId": "portal-1", "eventId": 1, "objectId": 5},
                             {"portalId": "portal-1", "eventId": 2, "objectId": 6}])
    assert answer.status_code >= 500 and stored(hub) == (0, 0)
