"""Webhooks as Livespace documents them: the empty-body handshake, `X-Livespace-Signature` over the
endpoint URL and raw body, deliveries deduplicated on `id`, normalized to neutral events."""
from __future__ import annotations

import json
from datetime import datetime

import pytest

from hub.connectors.contract.webhooks import MalformedPayload, RawRequest, Refused, Secrets
from hub.connectors.livespace import webhooks
from hub.sandbox.common import Faults, SandboxState
from hub.sandbox.livespace import create_app, webhook_signature
from tests.support.live import live_server

from .conftest import FIXTURES, fixture

URL = "https://hub.example.org/hooks/livespace/tok7"
SECRETS = Secrets(user="relayhub-7", password="whsec-fixture")


def raw(body: bytes, url: str = URL, signature: str | None = None, secret: str = "whsec-fixture") -> RawRequest:
    sig = webhook_signature(secret, url, body) if signature is None else signature
    headers = {"content-type": "application/json", "x-livespace-signature": sig} if sig else {}
    return RawRequest("POST", url, headers, body, "application/json")


def test_the_handshake_is_answered_and_nothing_else_is():
    reply = webhooks.handshake(RawRequest("POST", URL, {}, b""))
    assert reply is not None and reply.status in (200, 204)
    assert webhooks.handshake(raw((FIXTURES / "deal-created.json").read_bytes())) is None
    assert webhooks.handshake(RawRequest("POST", URL, {}, b" \n")) is None
    with pytest.raises(MalformedPayload) as caught:
        webhooks.split(RawRequest("POST", URL, {}, b" \n"))
    assert caught.value.field == "body"


def test_a_signed_delivery_verifies():
    webhooks.verify(raw((FIXTURES / "deal-status-won.json").read_bytes()), SECRETS)


@pytest.mark.parametrize("case", ["altered body", "wrong secret", "other url", "missing", "no secret kept"])
def test_an_unproven_delivery_is_refused(case):
    body = (FIXTURES / "deal-status-won.json").read_bytes()
    request = {"altered body": lambda: raw(body.replace(b'"won"', b'"lost"'), signature=webhook_signature(
                   "whsec-fixture", URL, body)),
               "wrong secret": lambda: raw(body, secret="guess"),
               "other url": lambda: raw(body, url=URL.replace("tok7", "tok8"), signature=webhook_signature(
                   "whsec-fixture", URL, body)),
               "missing": lambda: raw(body, signature=""),
               "no secret kept": lambda: raw(body)}[case]()
    with pytest.raises(Refused):
        webhooks.verify(request, Secrets() if case == "no secret kept" else SECRETS)


def test_the_message_layout_lives_in_one_place_and_both_sides_must_agree():
    body = (FIXTURES / "deal-status-won.json").read_bytes()
    for layout, verifies in (("concat", True), ("newline", False), ("body", False)):
        request = raw(body, signature=webhook_signature("whsec-fixture", URL, body, layout))
        if verifies:
            webhooks.verify(request, SECRETS)
        else:
            with pytest.raises(Refused):
                webhooks.verify(request, SECRETS)
    assert webhooks.signed_message(URL, body) == URL.encode() + body


@pytest.mark.parametrize("name, kinds", [
    ("deal-created.json", ["deal.created"]), ("deal-stage-changed.json", ["deal.stage_changed"]),
    ("deal-status-won.json", ["deal.won"]), ("deal-status-lost.json", ["deal.lost"]),
    ("todo-created.json", ["task.created"]), ("todo-completed.json", ["task.completed"])])
def test_fixtures_normalize(name, kinds):
    body = fixture(name)
    [delivery] = webhooks.split(raw((FIXTURES / name).read_bytes()))
    assert delivery.key == body["id"] and delivery.ordering == f"{body['name'].split('.')[0]}:{body['data']['id']}"
    events = webhooks.normalize(delivery, None)
    assert [e.kind for e in events] == kinds
    event = events[0]
    assert event.event_id == body["id"] and event.object_id == body["data"]["id"]
    if name.startswith("deal"):
        assert (event.pipeline_id, event.to_stage_id) == (body["data"]["process_id"], body["data"]["stage_id"])
        assert event.extra["stage_name"] == body["data"]["stage_name"]


def test_a_completed_task_says_its_type_who_completed_it_and_what_it_is_linked_to():
    body = fixture("todo-completed.json")

    class Users:
        def users(self):
            return [{"id": body["data"]["completed_by_id"], "email": "bartek@demo.test"}]

    [event] = webhooks.events_of(body, Users())
    assert event.object_type == "task" and event.shows == {"is_completed": "1"}
    assert event.extra["task_type"] == "Offer"
    assert event.extra["completed_by"] == {"id": body["data"]["completed_by_id"], "email": "bartek@demo.test"}
    assert event.extra["links"] == {"deal": [body["data"]["objects"][0]["object_id"]]}
    assert event.occurrence == f"completed:{body['data']['completed_date']}"


def test_a_retry_is_the_same_occurrence_and_key():
    first, retried = fixture("deal-status-won.json"), fixture("deal-status-won.json")
    retried["webhook_delivery_attempt"] = 3
    a, b = webhooks.events_of(first)[0], webhooks.events_of(retried)[0]
    assert (a.event_id, a.occurrence) == (b.event_id, b.occurrence)


@pytest.mark.parametrize("body, field", [
    (b"[]", "body"), (b'{"name": "deal.created", "data": {}}', "id"),
    (b'{"id": "x", "name": "deal.created"}', "data"), (b'{"id": "x", "name": 5, "data": {}}', "name"),
    (b'{"id": "x", "name": "deal.created", "data": {}, "webhook_delivery_attempt": "1"}', "webhook_delivery_attempt")])
def test_a_body_that_is_no_delivery_names_the_field(body, field):
    with pytest.raises(MalformedPayload) as caught:
        webhooks.split(raw(body))
    assert caught.value.field == field


def test_an_unknown_trigger_gives_no_event():
    assert webhooks.events_of({"id": "x", "name": "invoice.created", "data": {"id": "1"}}) == []


def test_the_emulator_handshakes_signs_and_retries_with_an_attempt_counter():
    received: list[tuple[dict, bytes]] = []
    answers = iter([204, 500, 200])

    def receiver(environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        received.append(({k: v for k, v in environ.items() if k.startswith("HTTP_")}, environ["wsgi.input"].read(size)))
        code = next(answers)
        start_response(f"{code} X", [("Content-Type", "text/plain")])
        return [b""]

    app = create_app(state=SandboxState(), faults=Faults(seed=3))
    crm = app.extensions["sandbox"]
    with live_server(receiver) as server:
        url = server.url + "/hooks/livespace/tok"
        sub = crm.subscribe(url, "whsec")
        assert sub["active"] and received[0][1] == b""            # the handshake: an empty POST
        deal = crm.deals()[0]
        crm.set_status(deal["id"], "won")
        assert crm.deliver_pending() == [500]                      # failed: stays pending
        assert crm.deliver_pending() == [200]                      # the retry
        assert crm.deliver_pending() == []
    bodies = [json.loads(b) for _, b in received[1:]]
    assert [b["webhook_delivery_attempt"] for b in bodies] == [1, 2]
    assert bodies[0]["id"] == bodies[1]["id"] and bodies[0]["name"] == "deal.status_changed"
    for headers, body in received[1:]:
        request = RawRequest("POST", url, {"x-livespace-signature": headers["HTTP_X_LIVESPACE_SIGNATURE"]}, body)
        webhooks.verify(request, Secrets(password="whsec"))
    assert [e.kind for e in webhooks.events_of(bodies[1])] == ["deal.won"]


def test_reconciliation_finds_a_missed_win_under_the_webhooks_occurrence(client, crm):
    deal = next(d for d in crm.deals() if d["name"].endswith("Acme"))
    [known] = [s for s in webhooks.poll(client, None) if s.object_id == deal["id"]]
    crm.set_status(deal["id"], "won")
    since = datetime.strptime(known.version, "%Y-%m-%d %H:%M:%S")
    [now] = [s for s in webhooks.poll(client, since) if s.object_id == deal["id"]]
    [won] = webhooks.changes(known.data, now)
    as_delivered = webhooks.events_of({"id": "w-1", "name": "deal.status_changed", "data": crm.deal(deal["id"])})[0]
    assert (won.kind, won.occurrence) == ("deal.won", as_delivered.occurrence)
    assert webhooks.changes(now.data, now) == []
    assert [e.kind for e in webhooks.changes(None, now)] == ["deal.created", "deal.won"]
