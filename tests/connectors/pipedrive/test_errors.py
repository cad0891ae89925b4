"""Error mapping over real HTTP, driven by the sandbox fault knobs: 429, 5xx, 404, 400, 401/refresh."""
from __future__ import annotations

import pytest
import requests
import responses

from hub.connectors.pipedrive.client import PipedriveClient
from hub.errors import Fatal, NeedsReauth, Retriable


def knobs(server, **values):
    resp = requests.post(f"{server.url}/_sandbox/faults", json=values, timeout=5)
    assert resp.status_code == 200, resp.text


def test_429_is_retried_after_retry_after_then_succeeds(client, server, sleeps):
    knobs(server, burst_429=1, retry_after=2)
    assert client.me()["id"]
    assert sleeps == [2.0]


def test_429_that_persists_is_retriable_with_retry_after(client, server, sleeps):
    knobs(server, burst_429=10, retry_after=1)
    with pytest.raises(Retriable) as exc:
        client.pipelines()
    assert exc.value.retry_after == 1.0 and "429" in str(exc.value) and "Rate limit exceeded" in str(exc.value)
    assert sleeps == [1.0]               # one retry inside the call after the announced Retry-After


def test_long_retry_after_goes_to_the_job_queue_without_sleeping(client, server, sleeps):
    knobs(server, burst_429=1, retry_after=60)
    with pytest.raises(Retriable) as exc:
        client.me()
    assert exc.value.retry_after == 60.0 and sleeps == []


@responses.activate
def test_429_without_retry_after_uses_the_rate_limit_window():
    """Retry-After on 429 is unconfirmed for Pipedrive (FACTS §14); x-ratelimit-reset is documented."""
    url = "https://acme.pipedrive.example/api/v1/users/me"
    responses.get(url, status=429, json={"success": False, "error": "Rate limit exceeded"},
                  headers={"x-ratelimit-limit": "80", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "2"})
    responses.get(url, json={"success": True, "data": {"id": 1}})
    waits = []
    client = PipedriveClient("https://acme.pipedrive.example", None, sleep=waits.append, rate_limit=None)
    assert client.me() == {"id": 1} and waits == [2.0]


def test_5xx_goes_to_the_job_queue_and_recovers(server, tokens, faults):
    knobs(server, error_rate=1.0, error_status=503)
    waits = []
    client = PipedriveClient(server.url, tokens, sleep=waits.append, rate_limit=None)
    with pytest.raises(Retriable):
        client.pipelines()
    assert waits == []                   # no Retry-After: the job queue's backoff decides
    faults.update({"error_rate": 0.0})
    assert [p["name"] for p in client.pipelines()] == ["Sales", "Renewals"]


def test_5xx_that_persists_is_retriable(client, server, sleeps):
    knobs(server, error_rate=1.0, error_status=500)
    with pytest.raises(Retriable) as exc:
        list(client.iter_deals())
    assert "500" in str(exc.value) and "Internal server error" in str(exc.value) and exc.value.retry_after is None
    assert sleeps == []


def test_404_and_400_are_fatal_with_pipedrive_messages(client, sleeps):
    with pytest.raises(Fatal) as missing:
        client.deal(999999)
    assert missing.value.status == 404 and "Deal not found" in str(missing.value)
    with pytest.raises(Fatal) as bad:
        client.update_deal(next(iter(client.iter_deals()))["id"], no_such_field=1)
    assert bad.value.status == 400 and "Unknown field(s): no_such_field" in str(bad.value)
    assert sleeps == []                  # 4xx is never retried in-call


def test_401_refreshes_once_then_succeeds(client, server, tokens):
    old = tokens.access
    assert requests.post(f"{server.url}/_sandbox/tokens/expire", timeout=5).json()["expired"] >= 1
    assert client.me()["id"]
    assert tokens.refreshes == 1 and tokens.access != old
    counters = requests.get(f"{server.url}/_sandbox/oauth/counters", timeout=5).json()
    assert counters["refreshes"] == 1
    assert client.users() and tokens.refreshes == 1        # the new token keeps working


def test_401_with_rotating_refresh_tokens_keeps_the_new_one(client, server, tokens):
    knobs(server, strict_refresh=True)
    first_refresh = tokens.refresh
    for _ in range(2):
        requests.post(f"{server.url}/_sandbox/tokens/expire", timeout=5)
        assert client.me()["id"]
    assert tokens.refreshes == 2 and tokens.refresh != first_refresh


def test_refused_refresh_is_needs_reauth(client, server, emu, tokens):
    emu.tokens.revoke(tokens.refresh)          # the user uninstalled the app / the grant expired
    requests.post(f"{server.url}/_sandbox/tokens/expire", timeout=5)
    with pytest.raises(NeedsReauth):
        client.me()


def test_webhook_forbidden_body_is_reported(client, emu, receiver):
    theirs = emu.create_webhook(client_id="another-app", user_id=emu.admin_id(), subscription_url=receiver.url,
                                event_action="*", event_object="*", name="not ours")
    with pytest.raises(Fatal) as exc:
        client.delete_webhook(theirs["id"])
    assert exc.value.status == 403 and str(exc.value).endswith("Forbidden")
