"""The client keeps Livespace's calling convention: a fresh one-shot session per call, signed with
SHA1(key + token + secret), and the result code inside an HTTP 200 mapped to the hub's outcomes."""
from __future__ import annotations

import hashlib
import json
from urllib.parse import parse_qsl

import pytest
import requests

from hub.connectors import retry
from hub.connectors.livespace.client import SESSION_HEADER, TOKEN_HEADER, sign
from hub.connectors.livespace.manifest import api_base_for
from hub.errors import Fatal, NeedsReauth, Retriable

from .harness import client_for


def prepared(url: str, data: dict, headers: dict | None = None) -> requests.PreparedRequest:
    return requests.Request("POST", url, data=data, headers=headers or {}).prepare()


def test_sign_puts_the_key_token_hash_and_session_inside_data():
    request = prepared("https://acme.livespace.io/api/public/json/Deal/get", {"data": json.dumps({"id": "d-1"})},
                       {TOKEN_HEADER: "tok", SESSION_HEADER: "ses"})
    sign(request, "K", "S")
    assert TOKEN_HEADER not in request.headers and SESSION_HEADER not in request.headers
    form = dict(parse_qsl(request.body.decode()))
    data = json.loads(form["data"])
    assert data == {"id": "d-1", "_api_auth": "key", "_api_key": "K", "_api_session": "ses",
                    "_api_sha": hashlib.sha1(b"KtokS").hexdigest()}
    assert "S" not in {v for k, v in data.items() if k != "_api_sha"} and int(request.headers["Content-Length"]) == len(request.body)


def test_sign_gives_the_token_call_only_the_key():
    request = prepared("https://acme.livespace.io/api/public/json/_Api/auth_call/_api_method/getToken",
                       {"_api_auth": "key"})
    sign(request, "K", "S")
    assert dict(parse_qsl(request.body.decode())) == {"_api_auth": "key", "_api_key": "K"}
    with pytest.raises(ValueError, match="token and session"):
        sign(prepared("https://acme.livespace.io/api/public/json/Deal/get", {"data": "{}"}), "K", "S")


@pytest.mark.parametrize("typed, base", [("https://acme.livespace.io", "https://acme.livespace.io"),
                                         ("acme.livespace.io/", "https://acme.livespace.io"), ("ACME", "https://acme.livespace.io")])
def test_the_account_field_gives_the_api_root(typed, base):
    assert api_base_for(typed) == base


@pytest.mark.parametrize("typed", ["https://evil.test", "https://acme.livespace.io.evil.test", "a/b", "", "http://x@acme.livespace.io"])
def test_an_address_that_is_not_livespace_is_refused(typed):
    with pytest.raises(ValueError, match="Livespace address"):
        api_base_for(typed)


def test_every_call_fetches_its_own_session(client, crm):
    before = crm.data.get("tokens_issued", 0)
    assert client.me()["email"] == "anna@demo.test"
    assert client.me()["email"] == "anna@demo.test"
    assert crm.data["tokens_issued"] == before + 2
    assert all(s["used"] for s in crm.data["sessions"].values())


def test_a_spent_session_is_refused_by_the_emulator(emulator):
    url, _ = emulator
    token = requests.post(f"{url}/api/public/json/_Api/auth_call/_api_method/getToken",
                          data={"_api_auth": "key", "_api_key": "demo-key"}, timeout=5).json()["data"]
    auth = {"_api_auth": "key", "_api_key": "demo-key", "_api_session": token["session_id"],
            "_api_sha": hashlib.sha1(("demo-key" + token["token"] + "demo-secret").encode()).hexdigest()}
    first = requests.post(f"{url}/api/public/json/Default/User_getInfo", data={"data": json.dumps(auth)}, timeout=5)
    again = requests.post(f"{url}/api/public/json/Default/User_getInfo", data={"data": json.dumps(auth)}, timeout=5)
    assert (first.status_code, first.json()["result"]) == (200, 200)
    assert (again.status_code, again.json()["result"], again.json()["status"]) == (200, 561, False)


def test_a_wrong_secret_or_key_needs_the_admin(emulator):
    url, _ = emulator
    with pytest.raises(NeedsReauth, match="563"):
        client_for(url, secret="wrong").me()
    with pytest.raises(NeedsReauth, match="562"):
        client_for(url, key="nobody").me()


def test_validation_names_the_field(client):
    with pytest.raises(Fatal, match="todo.title") as caught:
        client.add_todo({"title": ""})
    assert caught.value.status == 422


@pytest.mark.parametrize("knob, outcome, status", [("result_540", Fatal, 403), ("result_550", Fatal, 404),
                                                   ("result_520", Retriable, None)])
def test_result_codes_map_to_outcomes(client, crm, knob, outcome, status):
    crm.faults.update({knob: 1})
    with pytest.raises(outcome) as caught:
        client.deal(crm.deals()[0]["id"])
    assert type(caught.value) is outcome and getattr(caught.value, "status", None) == status
    assert client.deal(crm.deals()[0]["id"])["id"] == crm.deals()[0]["id"]   # one call only


def test_a_missing_object_is_fatal(client):
    with pytest.raises(Fatal, match="550"):
        client.todo("00000000-0000-0000-0000-000000000000")


def test_a_short_throttle_is_retried_with_a_fresh_session(client, crm, monkeypatch):
    monkeypatch.setattr(retry, "pause", lambda seconds: None)
    crm.faults.update({"burst_429": 1, "retry_after": 1})
    assert client.me()["is_admin"] is True


def test_a_write_whose_answer_is_lost_is_not_sent_again(client, crm):
    crm.faults.update({"lose_write_answers": 1})
    before = len(crm.todos())
    with pytest.raises(Retriable):
        client.add_todo({"title": "Once"})
    assert len(crm.todos()) == before + 1          # applied once, not re-sent inside the call
