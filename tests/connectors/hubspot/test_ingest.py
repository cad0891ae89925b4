"""HubSpot deliveries through the hub's ingest: one app-wide URL, each event to its own portal's
installation, unknown portals' and unreadable events refused without losing the others, a bad
signature or a stale timestamp storing nothing."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from hub.store import InboxEvent, Installation
from hub.webhooks.ingest import endpoints

from .test_webhook_parts import sign

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "hs-ingest-client-secret"


@pytest.fixture
def hub(make_hub):
    endpoints._entries.clear()
    app = make_hub(**{"hubspot.client_id": "hs-ingest-client", "hubspot.client_secret": SECRET})
    services = app.extensions["hub"]
    with services.db.begin() as s:
        ids = {}
        for portal in ("62515", "77001"):
            row = Installation(provider="hubspot", company_id=portal, installer_user_id="4123987",
                               endpoint_token=f"tok-hs-{portal}")
            s.add(row)
            s.flush()
            ids[portal] = row.id
    yield type("Hub", (), {"services": services, "client": app.test_client(), "ids": ids})
    endpoints._entries.clear()


def post(hub, events, *, secret=SECRET, ts=None, body=None):
    body = json.dumps(events).encode() if body is None else body
    ts = ts or str(int(time.time() * 1000))
    url = f"{hub.services.base_url}/hooks/hubspot"
    return hub.client.post("/hooks/hubspot", data=body, headers={
        "Content-Type": "application/json", "X-HubSpot-Request-Timestamp": ts,
        "X-HubSpot-Signature-v3": sign(body, ts, secret=secret, url=url)})


def inbox(hub) -> list[tuple[int, str]]:
    with hub.services.db.begin() as s:
        return [(r.installation_id, r.event_key) for r in s.scalars(select(InboxEvent).order_by(InboxEvent.id))]


def mixed():
    return json.loads((FIXTURES / "mixed-portals.json").read_text())


def test_each_portals_events_go_to_its_installation(hub):
    answer = post(hub, mixed())
    assert answer.status_code == 200, answer.json
    assert answer.json["events"] == 3 and "refused" not in answer.json
    a, b = hub.ids["62515"], hub.ids["77001"]
    assert sorted(inbox(hub)) == sorted([(b, "77001:2187612:900"), (a, "62515:2187612:900"), (b, "77001:2187630:901")])
    again = post(hub, mixed())                              # a retry: stored once
    assert again.json["duplicates"] == 3 and len(inbox(hub)) == 3


def test_an_unknown_portals_events_are_refused_and_the_others_kept(hub):
    events = mixed()
    for e in events[1:]:
        e["portalId"] = 99999
    answer = post(hub, events)
    assert answer.status_code == 200
    assert answer.json["refused"] == [{"field": "account", "message": "unknown account: 2 event(s) refused"}]
    assert inbox(hub) == [(hub.ids["62515"], "62515:2187612:900")]
    for e in events:                                        # only unknown portals: 404, nothing stored
        e["portalId"] = 99999
        e["eventId"] += 1000
    assert post(hub, events).status_code == 404
    assert len(inbox(hub)) == 1


def test_a_bad_element_is_named_and_the_good_ones_stored(hub):
    events = mixed()
    events[2]["occurredAt"] = "yesterday"
    answer = post(hub, events)
    assert answer.status_code == 200
    assert answer.json["refused"][0]["field"] == "[2].occurredAt"
    assert len(inbox(hub)) == 2


def test_malformed_arrays_bad_signatures_and_stale_timestamps_store_nothing(hub):
    for body, field in [(b'{"portalId": 62515}', "body"), (b'[{"portalId": 62515}]', "[0].eventId")]:
        answer = post(hub, None, body=body)
        assert answer.status_code == 400 and field in answer.json["fields"], answer.json
    assert post(hub, mixed(), secret="not-the-apps-secret").status_code == 401
    stale = str(int((time.time() - 600) * 1000))
    answer = post(hub, mixed(), ts=stale)
    assert answer.status_code == 401 and "older than 5 minutes" in answer.json["message"]
    assert inbox(hub) == []
