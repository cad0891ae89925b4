"""The Bitrix24 client against recorded answers shaped as the docs show them: the token in the
body, the envelope, pages of 50, batch, and each documented error's outcome."""
from __future__ import annotations

import json

import pytest
import responses

from hub.connectors.bitrix24.client import Bitrix24Client, command
from hub.connectors.bitrix24.identity import identity, members
from hub.connectors.retry import RetryPolicy, Throttled
from hub.errors import Fatal, NeedsReauth

BASE = "https://some-domain.bitrix24.com/rest"
TIME = {"start": 1.0, "finish": 1.1, "duration": 0.1, "processing": 0.01, "date_start": "2024-07-18T12:19:01+02:00",
        "date_finish": "2024-07-18T12:19:01+02:00", "operating": 0}


class Tokens:
    """A TokenSource double: rotates on refresh, counts."""

    def __init__(self):
        self.access, self.refreshes = "access-1", 0

    def access_token(self) -> str:
        return self.access

    def refresh_after_rejection(self, rejected: str) -> str:
        if rejected == self.access:
            self.refreshes += 1
            self.access = f"access-{self.refreshes + 1}"
        return self.access


def client(tokens=None, sleeps=None) -> Bitrix24Client:
    return Bitrix24Client(BASE + "/", tokens or Tokens(), rate_limit=None,
                          sleep=(sleeps.append if sleeps is not None else None),
                          retry_policy=RetryPolicy(inline_retries=1, inline_max_wait=2.0))


def body(call) -> dict:
    return json.loads(call.request.body)


@responses.activate
def test_the_token_travels_in_the_body_and_the_result_is_unwrapped():
    responses.post(f"{BASE}/crm.deal.get", json={"result": {"ID": "410", "TITLE": "New Deal #1"}, "time": TIME})
    assert client().deal(410) == {"ID": "410", "TITLE": "New Deal #1"}
    sent = responses.calls[0].request
    assert body(responses.calls[0]) == {"id": "410", "auth": "access-1"}
    assert "Authorization" not in sent.headers


@responses.activate
def test_a_deleted_deal_is_none_not_an_error():
    responses.post(f"{BASE}/crm.deal.get", status=400, json={"error": "", "error_description": "Not found"})
    assert client().deal(9) is None


@responses.activate
def test_lists_page_by_50_with_start_and_next():
    items = [{"ID": str(i)} for i in range(1, 121)]
    for start in (0, 50, 100):
        page = {"result": items[start:start + 50], "total": 120, "time": TIME}
        if start + 50 < 120:
            page["next"] = start + 50
        responses.post(f"{BASE}/crm.deal.list", json=page,
                       match=[responses.matchers.json_params_matcher({"start": start, "auth": "access-1"},
                                                                     strict_match=False)])
    got = list(client().iter_list("crm.deal.list", {}))
    assert [g["ID"] for g in got] == [str(i) for i in range(1, 121)]
    assert [body(c)["start"] for c in responses.calls] == [0, 50, 100]


@responses.activate
def test_batch_sends_at_most_50_commands_and_reports_failures_per_key():
    def answer(request):
        cmd = json.loads(request.body)["cmd"]
        assert len(cmd) <= 50
        results = {k: {"ID": k[1:]} for k in cmd if k != "o7"}
        errors = {"o7": {"error": "", "error_description": "Not found"}} if "o7" in cmd else []
        return 200, {}, json.dumps({"result": {"result": results, "result_error": errors, "result_total": [],
                                               "result_next": [], "result_time": {}}, "time": TIME})
    responses.add_callback(responses.POST, f"{BASE}/batch", callback=answer)
    found = client().get_many("crm.deal.get", range(1, 61))
    assert len(responses.calls) == 2                    # 60 reads, two requests
    assert set(found) == {str(i) for i in range(1, 61)} - {"7"}
    sent = body(responses.calls[0])["cmd"]
    assert sent["o1"] == "crm.deal.get?id=1"


def test_batch_commands_carry_nested_parameters_as_php_reads_them():
    assert command("crm.deal.list", {"filter": {">=DATE_MODIFY": "2024-01-01T00:00:00+00:00"}, "select": ["ID", "UF_*"]}) == (
        "crm.deal.list?filter[%3E%3DDATE_MODIFY]=2024-01-01T00%3A00%3A00%2B00%3A00&select[0]=ID&select[1]=UF_%2A")


@responses.activate
def test_expired_token_is_refreshed_once_and_the_call_repeated():
    tokens = Tokens()
    responses.post(f"{BASE}/crm.deal.get", status=401,
                   json={"error": "expired_token", "error_description": "The access token provided has expired."},
                   match=[responses.matchers.json_params_matcher({"auth": "access-1"}, strict_match=False)])
    responses.post(f"{BASE}/crm.deal.get", json={"result": {"ID": "5"}, "time": TIME},
                   match=[responses.matchers.json_params_matcher({"auth": "access-2"}, strict_match=False)])
    assert client(tokens).deal(5) == {"ID": "5"}
    assert tokens.refreshes == 1 and len(responses.calls) == 2


@responses.activate
def test_a_token_refused_after_refreshes_needs_the_admin():
    responses.post(f"{BASE}/crm.deal.get", status=401, json={"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"})
    with pytest.raises(NeedsReauth, match="Wrong authorization data"):
        client().deal(5)


@responses.activate
def test_query_limit_is_retried_after_a_backoff_then_left_to_the_queue():
    limit = {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
    responses.post(f"{BASE}/crm.deal.get", status=503, json=limit)
    responses.post(f"{BASE}/crm.deal.get", json={"result": {"ID": "5"}, "time": TIME})
    sleeps: list[float] = []
    assert client(sleeps=sleeps).deal(5) == {"ID": "5"}
    assert sleeps == [1.0]
    responses.post(f"{BASE}/crm.lead.get", status=503, json=limit)
    with pytest.raises(Throttled) as caught:
        client(sleeps=sleeps).lead(5)
    assert caught.value.retry_after == 1.0 and "QUERY_LIMIT_EXCEEDED" in str(caught.value)


@responses.activate
@pytest.mark.parametrize("status, code, text", [
    (403, "insufficient_scope", "The request requires higher privileges than provided by the access token"),
    (403, "ACCESS_DENIED", "REST API is available only on commercial plans"),
    (500, "PORTAL_DELETED", "Portal was deleted"),
])
def test_refusals_are_fatal_with_bitrix24s_words(status, code, text):
    responses.post(f"{BASE}/crm.deal.list", status=status, json={"error": code, "error_description": text})
    with pytest.raises(Fatal) as caught:
        list(client().iter_list("crm.deal.list"))
    assert code in str(caught.value) and text in str(caught.value)
    assert not isinstance(caught.value, NeedsReauth)


@responses.activate
def test_identity_names_the_portal_by_member_id_and_the_user_from_one_batch():
    responses.post(f"{BASE}/batch", json={"result": {
        "result": {"user": {"ID": "1", "NAME": "Ada", "LAST_NAME": "Admin", "EMAIL": "ada@acme.example"},
                   "profile": {"ID": "1", "ADMIN": True, "NAME": "Ada", "LAST_NAME": "Admin"}},
        "result_error": [], "result_total": [], "result_next": [], "result_time": {}}, "time": TIME})
    token = {"access_token": "a", "member_id": "a223c6b3710f85df22e9377d6c4f7553", "domain": "oauth.bitrix.info",
             "client_endpoint": "https://some-domain.bitrix24.com/rest/"}
    who = identity(client(), token)
    assert (who.account_key, who.user_id, who.name, who.email, who.is_admin) == (
        "a223c6b3710f85df22e9377d6c4f7553", "1", "Ada Admin", "ada@acme.example", True)
    assert who.api_base == BASE and who.account_domain == "some-domain.bitrix24.com"
    assert len(responses.calls) == 1


@responses.activate
def test_members_are_the_active_users():
    responses.post(f"{BASE}/user.get", json={"result": [
        {"ID": "1", "ACTIVE": True, "NAME": "Ada", "LAST_NAME": "Admin", "EMAIL": "ada@acme.example"},
        {"ID": "2", "ACTIVE": True, "NAME": "Bo", "EMAIL": "bo@acme.example"}], "total": 2, "time": TIME})
    people = members(client())
    assert [(p.user_id, p.name) for p in people] == [("1", "Ada Admin"), ("2", "Bo")]
    assert body(responses.calls[0])["FILTER"] == {"ACTIVE": True}
