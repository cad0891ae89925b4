"""One app-wide request carrying several accounts' events (routing "account", `Delivery.account`):
each event is stored for its own account's installation, events of unknown accounts and elements
the connector cannot read are refused and named while the others are kept, and a request that does
not verify for one of its accounts stores nothing. A made-up connector; nothing here is a provider."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from sqlalchemy import select

from hub import connectors
from hub.connectors.contract import Connector
from hub.connectors.contract.webhooks import CrmEvent, Delivery, MalformedPayload, RawRequest, Refused, Secrets, Webhooks
from hub.store import InboxEvent, Installation
from hub.webhooks.ingest import endpoints

KEY = "mixco-app-secret"


def verify(raw: RawRequest, secrets: Secrets) -> None:
    expected = hmac.new(KEY.encode(), raw.body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(raw.header("X-Mix-Signature") or "", expected):
        raise Refused("X-Mix-Signature: does not match")


def split(raw: RawRequest) -> list:
    events = raw.json()
    if not isinstance(events, list):
        raise MalformedPayload("body", "expected a JSON array")
    out: list = []
    for n, e in enumerate(events):
        if not isinstance(e, dict) or not e.get("id") or not e.get("account"):
            out.append(MalformedPayload(f"[{n}]", "not an event"))
        else:
            out.append(Delivery.of_json(e, f"mix-{e['id']}", f"deal:{e['id']}", str(e["account"])))
    return out


def first_account(raw: RawRequest) -> str | None:
    events = raw.json()
    return next((str(e["account"]) for e in events if isinstance(e, dict) and e.get("account")), None) \
        if isinstance(events, list) else None


MIXCO = Connector(name="mixco", title="Mix Co", roles=frozenset({"crm"}), auth=None, webhooks=Webhooks(
    verify=verify, split=split, kinds=frozenset({"deal.won"}), routing="account", account_key=first_account,
    normalize=lambda d, c: [CrmEvent("deal.won", "deal", d.key, d.key, None, {}, None)]))


@pytest.fixture
def hub(make_hub):
    connectors.register(MIXCO)
    endpoints._entries.clear()
    app = make_hub()
    services = app.extensions["hub"]
    with services.db.begin() as s:
        ids = {}
        for account in ("a-1", "b-2"):
            row = Installation(provider="mixco", company_id=account, installer_user_id="1", endpoint_token=f"t-{account}")
            s.add(row)
            s.flush()
            ids[account] = row.id
    yield type("Hub", (), {"services": services, "client": app.test_client(), "ids": ids})
    connectors.unregister("mixco")
    endpoints._entries.clear()


def post(hub, events):
    body = json.dumps(events).encode()
    return hub.client.post("/hooks/mixco", data=body, headers={
        "Content-Type": "application/json", "X-Mix-Signature": hmac.new(KEY.encode(), body, hashlib.sha256).hexdigest()})


def stored(hub):
    with hub.services.db.begin() as s:
        return sorted((r.installation_id, r.event_key) for r in s.scalars(select(InboxEvent)))


def test_each_event_goes_to_its_accounts_installation(hub):
    answer = post(hub, [{"id": 1, "account": "a-1"}, {"id": 2, "account": "b-2"}, {"id": 3, "account": "a-1"}])
    assert answer.status_code == 200 and answer.json["events"] == 3
    a, b = hub.ids["a-1"], hub.ids["b-2"]
    assert stored(hub) == sorted([(a, "mix-1"), (b, "mix-2"), (a, "mix-3")])
    # unknown accounts and unreadable elements are refused and named, the rest kept
    answer = post(hub, [{"id": 11, "account": "zz-9"}, {"id": 12, "account": "b-2"}, "junk"])
    assert answer.status_code == 200
    assert {r["field"] for r in answer.json["refused"]} == {"[2]", "account"}
    assert (b, "mix-12") in stored(hub) and len(stored(hub)) == 4
    assert post(hub, [{"id": 14, "account": "zz-9"}]).status_code == 404
    assert post(hub, ["junk", 7]).status_code == 400
    assert len(stored(hub)) == 4


def test_a_request_refused_for_one_of_its_accounts_stores_nothing(hub):
    original = MIXCO.webhooks.verify

    def picky(raw, secrets):
        original(raw, secrets)
        if secrets is endpoints.by_account(hub.services, "mixco", "b-2")[2]:
            raise Refused("X-Mix-Signature: not for this account")
    object.__setattr__(MIXCO.webhooks, "verify", picky)
    try:
        assert post(hub, [{"id": 1, "account": "a-1"}, {"id": 2, "account": "b-2"}]).status_code == 401
    finally:
        object.__setattr__(MIXCO.webhooks, "verify", original)
    assert stored(hub) == []
