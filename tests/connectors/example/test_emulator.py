"""The emulator keeps ../API.md's promises: every request signed, errors in its shape, external ids
unique, webhooks signed with the subscription's secret and redelivered with the same event id."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import requests

from tests.support.live import live_server

from .conftest import ACCOUNT
from .emulator import DEMO_ACCOUNT, signature

KEY, SECRET = DEMO_ACCOUNT["api_key"], DEMO_ACCOUNT["api_secret"]


def call(url: str, method: str, target: str, body: bytes = b"", *, key=KEY, secret=SECRET, sig=None):
    headers = {"X-Api-Key": key, "X-Signature": sig if sig is not None else signature(secret, method, target, body)}
    if body:
        headers["Content-Type"] = "application/json"
    return requests.request(method, url + target, data=body, headers=headers, timeout=5)


def test_a_signed_request_is_answered(emulator):
    url, _ = emulator
    resp = call(url, "GET", "/api/v1/me")
    assert resp.status_code == 200, resp.text
    assert resp.json()["account"]["id"] == ACCOUNT


@pytest.mark.parametrize("case", ["no key", "unknown key", "wrong secret", "other path", "other body", "no signature"])
def test_an_unsigned_or_missigned_request_is_refused(emulator, case):
    url, _ = emulator
    body = json.dumps({"title": "x", "stage_id": 1}).encode()
    target = "/api/v1/deals"
    kwargs = {
        "no key": {"key": ""}, "unknown key": {"key": "nope"}, "wrong secret": {"secret": "nope"},
        "other path": {"sig": signature(SECRET, "POST", "/api/v1/tasks", body)},
        "other body": {"sig": signature(SECRET, "POST", target, body + b" ")},
        "no signature": {"sig": ""},
    }[case]
    resp = call(url, "POST", target, body, **kwargs)
    assert resp.status_code == 401
    assert resp.json()["error"] == "unauthorized"
    assert SECRET not in resp.text


def test_the_query_string_is_signed(emulator):
    url, _ = emulator
    assert call(url, "GET", "/api/v1/deals?limit=1").status_code == 200
    forged = signature(SECRET, "GET", "/api/v1/deals?limit=1", b"")
    assert call(url, "GET", "/api/v1/deals?limit=2", sig=forged).status_code == 401


def test_bad_input_names_the_field(emulator):
    url, _ = emulator
    resp = call(url, "POST", "/api/v1/deals", json.dumps({"title": "x", "stage_id": 999}).encode())
    assert resp.status_code == 400 and resp.json()["field"] == "stage_id"
    resp = call(url, "GET", "/api/v1/deals?limit=0")
    assert resp.status_code == 400 and resp.json()["field"] == "limit"


def test_an_external_id_is_used_once(emulator, crm):
    url, _ = emulator
    body = json.dumps({"title": "Call", "external_id": "ext-1"}).encode()
    first = call(url, "POST", "/api/v1/tasks", body)
    assert first.status_code == 201
    again = call(url, "POST", "/api/v1/tasks", body)
    assert again.status_code == 409
    assert again.json()["task_id"] == first.json()["id"]
    assert len(crm.tasks()) == 1


def test_webhooks_are_signed_with_the_subscriptions_secret_and_redelivered_alike(emulator, crm):
    url, _ = emulator
    received: list[tuple[dict, bytes]] = []

    def receiver(environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        received.append(({k: v for k, v in environ.items() if k.startswith("HTTP_")}, environ["wsgi.input"].read(size)))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    hook_url = "http://127.0.0.1:9/hook"   # never reached: the delivery is sent by hand below
    made = call(url, "POST", "/api/v1/webhooks", json.dumps({"url": hook_url, "secret": "whsec"}).encode())
    assert made.status_code == 201, made.text
    deal = crm.deals(ACCOUNT)[0]
    crm.update_deal(ACCOUNT, deal["id"], {"status": "won"})
    crm.update_deal(ACCOUNT, deal["id"], {"status": "won"})    # no change, no delivery
    [delivery] = crm.deliveries()
    body = delivery["body"].encode()
    digest = hmac.new(b"whsec", body, hashlib.sha256).hexdigest()
    assert delivery["headers"]["X-Example-Signature"] == f"sha256={digest}"
    event = json.loads(body)
    assert event["type"] == "deal.updated" and event["data"]["previous"] == {"status": "open"}
    assert crm.flush() == [0]                          # nobody listens on port 9
    # a receiver comes up: a redelivery carries the same body (the same event id) under a new delivery id
    with live_server(receiver) as server:
        crm.data["deliveries"][delivery["id"]]["url"] = server.url + "/hook"
        assert crm.redeliver(delivery["id"]) == 200
    headers, raw = received[0]
    assert raw == body
    assert headers["HTTP_X_EXAMPLE_DELIVERY"] != delivery["id"]
