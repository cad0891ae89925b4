"""Fault knobs through the control API, with the Asana-shaped responses validated against the spec."""
from __future__ import annotations

import time

import requests

from .test_api_errors import assert_error


def set_faults(server, **values) -> dict:
    resp = requests.post(f"{server.url}/_sandbox/faults", json=values, timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_burst_429_with_retry_after(api, base, server):
    set_faults(server, burst_429=2, retry_after=30)
    for _ in range(2):
        resp = api.get(f"{base}/workspaces")
        err = assert_error(resp, 429, "You've made too many requests and hit a rate limit. "
                                      "Please retry after the given amount of time.")
        assert resp.headers["Retry-After"] == "30" and err
    assert api.get(f"{base}/workspaces").status_code == 200
    # A 429 on a create too (clients must handle it themselves: urllib3 won't retry POST).
    set_faults(server, burst_429=1)
    assert_error(api.post(f"{base}/tasks", json={"data": {"name": "x"}}), 429)


def test_5xx_with_phrase(api, base, server):
    set_faults(server, error_rate=1.0, error_status=500)
    resp = api.get(f"{base}/users/me")
    assert resp.status_code == 500
    err = resp.json()["errors"][0]
    assert err["message"] and len(err["phrase"].split()) == 5
    set_faults(server, error_status=503)
    assert api.get(f"{base}/workspaces").status_code == 503
    set_faults(server, error_rate=0.0)
    assert api.get(f"{base}/workspaces").status_code == 200


def test_latency_knob(api, base, server):
    set_faults(server, latency_ms=150)
    started = time.monotonic()
    assert api.get(f"{base}/users/me").status_code == 200
    assert time.monotonic() - started >= 0.15
    set_faults(server, latency_ms=0)


def test_unknown_knob_rejected(server):
    resp = requests.post(f"{server.url}/_sandbox/faults", json={"nope": 1}, timeout=5)
    assert resp.status_code == 400


def test_faults_reject_before_auth(base, server):
    """A rate-limited request is refused before the token is looked at, as Asana's limiter does."""
    set_faults(server, burst_429=1)
    assert requests.get(f"{base}/workspaces", timeout=5).status_code == 429
    assert requests.get(f"{base}/workspaces", timeout=5).status_code == 401
