"""The shared client's one retry policy, per kind of failure, and the per-effect budget, with the
transport failures `requests` really raises (replayed by `responses`); waits are recorded, never slept."""
from __future__ import annotations

import http.client

import pytest
import requests
import responses
import urllib3

from hub.connectors import retry
from hub.connectors.base import ApiClient
from hub.errors import Fatal, Retriable

URL = "https://api.example.test/v1/things"


def client(waits: list) -> ApiClient:
    return ApiClient("https://api.example.test/v1", None, sleep=waits.append)


def refused() -> requests.ConnectionError:
    reason = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111]")
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, URL, reason))


def reset() -> requests.ConnectionError:
    return requests.ConnectionError(urllib3.exceptions.ProtocolError(
        "Connection aborted.", http.client.RemoteDisconnected("Remote end closed connection without response")))


@responses.activate
def test_a_refused_connection_is_retried_once_inside_the_call_for_any_method():
    responses.post(URL, body=refused())
    responses.post(URL, json={"ok": True})
    waits: list = []
    assert client(waits).json("POST", "things", json={}) == {"ok": True}
    assert waits == [retry.policy().connect_pause] and len(responses.calls) == 2


@responses.activate
def test_a_reset_before_the_answer_is_resent_only_when_the_request_is_idempotent():
    for _ in range(3):
        responses.get(URL, body=reset())
    responses.post(URL, body=reset())
    waits: list = []
    with pytest.raises(retry.ConnectionLost):
        client(waits).request("GET", "things")
    assert len(responses.calls) == 2                         # once more, then the queue
    with pytest.raises(retry.ConnectionLost):
        client(waits).request("POST", "things", json={})
    assert len(responses.calls) == 3                         # a create may have arrived: not resent here


@responses.activate
def test_a_read_timeout_goes_to_the_queue_without_resending():
    responses.post(URL, body=requests.ReadTimeout("read timed out"))
    waits: list = []
    with pytest.raises(retry.TimedOut) as err:
        client(waits).request("POST", "things", json={})
    assert len(responses.calls) == 1 and waits == [] and err.value.retry_after is None


@responses.activate
@pytest.mark.parametrize("status, retry_after, inline", [
    (429, "2", True), (503, "1", True), (429, "3", False), (429, None, False), (503, None, False),
    (500, "1", False), (502, None, False)])
def test_only_throttles_with_a_short_retry_after_are_waited_for_inside_the_call(status, retry_after, inline):
    headers = {"Retry-After": retry_after} if retry_after else {}
    responses.get(URL, status=status, json={"message": "busy"}, headers=headers)
    responses.get(URL, json={"ok": True})
    waits: list = []
    if inline:
        assert client(waits).json("GET", "things") == {"ok": True}
        assert waits == [float(retry_after)]
    else:
        with pytest.raises(Retriable) as err:
            client(waits).json("GET", "things")
        assert waits == [] and len(responses.calls) == 1
        assert err.value.retry_after == (float(retry_after) if retry_after else None)   # the queue waits this


@responses.activate
def test_a_4xx_is_fatal_with_the_providers_message():
    responses.post(URL, status=422, json={"message": "name: must not be empty"})
    with pytest.raises(Fatal) as err:
        client([]).request("POST", "things", json={})
    assert err.value.status == 422 and "name: must not be empty" in str(err.value) and len(responses.calls) == 1


@responses.activate
def test_the_effect_budget_spans_calls_and_ends_with_the_providers_last_message():
    responses.get(URL, status=500, json={"message": "database on fire"})
    budget = retry.CallBudget(limit=6, spent=4)              # two failures left from earlier attempts
    with retry.effect_budget(budget):
        with pytest.raises(Retriable):
            client([]).request("GET", "things")              # the 5th
        with pytest.raises(retry.BudgetExhausted) as err:
            client([]).request("GET", "things")              # the 6th uses it up
        with pytest.raises(retry.BudgetExhausted):
            client([]).request("GET", "things")              # nothing more is sent
    assert len(responses.calls) == 2 and budget.spent == 6
    assert isinstance(err.value, Fatal) and "after 6 failed requests" in str(err.value)
    assert "database on fire" in str(err.value)


@responses.activate
def test_an_inline_retry_is_charged_and_stops_at_the_budget():
    responses.get(URL, status=429, json={"message": "slow down"}, headers={"Retry-After": "1"})
    waits: list = []
    with retry.effect_budget(retry.CallBudget(limit=1)):
        with pytest.raises(retry.BudgetExhausted):
            client(waits).request("GET", "things")
    assert len(responses.calls) == 1 and waits == []


@responses.activate
def test_a_success_from_the_failing_provider_starts_the_count_over_and_others_do_not():
    """Scattered failures of a working provider never end an effect; a broken one still does,
    whatever other providers answer in between."""
    budget = retry.CallBudget(limit=3)
    with retry.effect_budget(budget):
        for _ in range(5):                                   # fail, succeed, fail, succeed ...
            retry.call(lambda: "ok", "GET", provider="p")
            with pytest.raises(Retriable):
                retry.call(_fails, "POST", provider="p")
        assert budget.spent == 1
        outcomes = []
        for _ in range(3):                                   # "q" keeps failing, "p" keeps answering
            retry.call(lambda: "ok", "GET", provider="p")
            with pytest.raises((Retriable, retry.BudgetExhausted)) as failed:
                retry.call(_fails, "POST", provider="q")
            outcomes.append(type(failed.value).__name__)
        assert outcomes == ["Retriable", "Retriable", "BudgetExhausted"]


def _fails():
    raise Retriable("q 500: down")


@responses.activate
def test_a_short_rate_limit_holds_back_the_other_threads_calls_to_that_api():
    import threading

    responses.get(URL, status=429, headers={"Retry-After": "2"}, json={"error": "rate limit"})
    responses.get(URL, json={"ok": True})
    first_waits: list[float] = []
    ApiClient("https://api.example.test/v1", None, sleep=first_waits.append).json("GET", "things")
    assert first_waits == [2.0] and len(responses.calls) == 2     # its own retry waited it out

    other_waits: list[float] = []                                   # another thread's call, same API
    elsewhere: list[float] = []                                     # and one to another API

    def others():
        ApiClient("https://api.example.test/v1", None, sleep=other_waits.append).json("GET", "things")
        ApiClient("https://other.example.test/v1", None, sleep=elsewhere.append).json("GET", "things")

    responses.get("https://other.example.test/v1/things", json={"ok": True})
    thread = threading.Thread(target=others)
    thread.start()
    thread.join()
    assert len(other_waits) == 1 and 0 < other_waits[0] <= 2.0     # it waited for the window, then sent once
    assert elsewhere == [] and len(responses.calls) == 4
