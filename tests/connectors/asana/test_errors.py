"""Error mapping through the emulator's fault knobs: Retriable, Fatal, NeedsReauth (DESIGN "Errors")."""
from __future__ import annotations

import pytest
import requests

from hub.connectors.asana.client import AsanaClient
from hub.errors import Fatal, NeedsReauth, Retriable

from .conftest import CLIENT_ID, CLIENT_SECRET


def test_short_429_is_retried_once_after_retry_after(dana, faults, ids):
    faults(burst_429=1, retry_after=1)
    assert dana.client.me()["gid"] == ids["dana"]
    assert dana.sleeps == [1.0] and len(dana.calls) == 2  # Retry-After is what the call waits


def test_429_that_outlasts_the_inline_retry_is_retriable_with_retry_after(dana, faults):
    faults(burst_429=5, retry_after=2)
    with pytest.raises(Retriable) as err:
        dana.client.me()
    assert err.value.retry_after == 2.0
    assert "too many requests" in str(err.value)
    assert dana.sleeps == [2.0] and len(dana.calls) == 2  # one retry inside the call, then the queue


def test_long_retry_after_goes_straight_to_the_job_queue(dana, faults):
    faults(burst_429=1, retry_after=3)                                  # above calls.inline_max_wait
    with pytest.raises(Retriable) as err:
        dana.client.create_task("1", "x")
    assert err.value.retry_after == 3.0 and dana.sleeps == [] and len(dana.calls) == 1


def test_5xx_is_retriable_and_keeps_asanas_support_phrase(dana, faults):
    faults(error_rate=1.0, error_status=500)
    with pytest.raises(Retriable) as err:
        dana.client.me()
    assert err.value.retry_after is None
    assert "asana 500: Server Error (support phrase: " in str(err.value)
    assert len(dana.calls) == 1 and dana.sleeps == []   # a 5xx goes back to the job queue


def test_5xx_then_success(dana, faults, ids):
    faults(error_rate=1.0, error_status=503)
    it = dana.client.workspaces()
    with pytest.raises(Retriable):
        next(it)
    faults(error_rate=0.0)
    assert ids["org"] in {w["gid"] for w in dana.client.workspaces()}


def test_401_refreshes_once_and_succeeds(dana, server, ids):
    old = dana.tokens.access
    requests.post(f"{server.url}/_sandbox/tokens/expire", timeout=5).raise_for_status()
    assert dana.client.me()["gid"] == ids["dana"]
    assert dana.tokens.refreshes == 1 and dana.tokens.access != old
    assert [c[0] for c in dana.calls] == ["GET", "GET"]
    dana.client.me()
    assert dana.tokens.refreshes == 1  # the new token keeps working


def test_refused_refresh_is_needs_reauth(dana, server, manifest):
    # The admin revoked the app: Asana's revoke takes the refresh token and ends the grant.
    resp = requests.post(manifest.revoke_url, timeout=5, data={
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "token": dana.tokens.refresh})
    assert resp.status_code == 200
    with pytest.raises(NeedsReauth):
        dana.client.me()
    assert dana.tokens.refreshes == 0


def test_401_without_a_token_source_is_fatal(manifest):
    client = AsanaClient(manifest.api_url, None, sleep=lambda s: None)
    with pytest.raises(Fatal) as err:
        client.me()
    assert err.value.status == 401 and "Not Authorized" in str(err.value)


def test_missing_scope_is_fatal_403_naming_it(connect, ids):
    narrow = connect(ids["dana"], scopes=["workspaces:read", "tasks:read"])
    with pytest.raises(Fatal) as err:
        list(narrow.client.users(ids["org"]))
    assert err.value.status == 403 and "users:read" in str(err.value)


def test_workspace_of_another_team_is_fatal_403(connect, ids):
    priya = connect(ids["priya"])  # not a member of Dana's personal workspace
    with pytest.raises(Fatal) as err:
        list(priya.client.projects(ids["personal"]))
    assert err.value.status == 403 and "access" in str(err.value)
    assert priya.sleeps == []  # 4xx is never retried in-call


def test_404_is_fatal(dana):
    with pytest.raises(Fatal) as err:
        list(dana.client.teams("1207999999999999"))
    assert err.value.status == 404 and "workspace: Unknown object" in str(err.value)


def test_error_message_reads_every_asana_error():
    resp = requests.Response()
    resp.status_code = 400
    resp._content = (b'{"errors": [{"message": "name: Missing input", "help": "docs"},'
                     b' {"message": "workspace: Missing input"}]}')
    client = AsanaClient("https://app.asana.com/api/1.0", None)
    assert client.error_message(resp) == "name: Missing input; workspace: Missing input"
    resp._content = b"<html>Bad gateway</html>"
    assert client.error_message(resp) == "<html>Bad gateway</html>"


def test_unreachable_is_retriable(manifest):
    client = AsanaClient("http://127.0.0.1:9/api/1.0", None, sleep=lambda s: None)
    with pytest.raises(Retriable):
        client.me()
