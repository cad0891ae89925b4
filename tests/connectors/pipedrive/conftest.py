"""A live Pipedrive emulator, a token source that refreshes against it, a client, a webhook receiver."""
from __future__ import annotations

import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from flask import Flask, request

from hub.connectors.pipedrive.client import PipedriveClient
from hub.errors import NeedsReauth
from hub.sandbox.common import Faults, SandboxState
from hub.sandbox.pipedrive import create_app
from tests.support.live import LiveServer

REPO = Path(__file__).resolve().parents[3]
FIXTURES = Path(__file__).parent / "fixtures"
CLIENT_ID, CLIENT_SECRET = "relay-hub-sandbox", "sandbox-secret"
HOOK_USER, HOOK_PASSWORD = "relay-hub", "hook-s3cret"


@pytest.fixture(scope="session")
def provider_specs() -> Path:
    """The official provider material: HUB_PROVIDER_SPECS, by default ../shared/providers."""
    path = Path(os.environ.get("HUB_PROVIDER_SPECS", REPO.parent / "shared" / "providers"))
    if not path.is_dir():
        pytest.fail(f"provider specs not found at {path} (set HUB_PROVIDER_SPECS)")
    return path


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@contextmanager
def live(app):
    """tests.support.live's server with a short shutdown poll (the default 0.5 s adds up)."""
    srv = LiveServer(app)
    srv._thread = threading.Thread(target=srv._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


class Clock:
    """The emulator's clock, moved by tests (update_time, token expiry, webhook timestamps)."""

    def __init__(self):
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SandboxTokens:
    """The TokenSource a connection store provides, reduced to what a test needs: keep the current
    pair, refresh against the sandbox's /oauth/token on a 401, keep whatever refresh token comes back."""

    def __init__(self, server_url: str, access: str, refresh: str):
        self.token_url = f"{server_url}/oauth/token"
        self.access, self.refresh = access, refresh
        self.refreshes = 0

    def access_token(self) -> str:
        return self.access

    def refresh_after_rejection(self, rejected: str) -> str:
        if rejected != self.access:     # someone else already refreshed
            return self.access
        resp = requests.post(self.token_url, data={"grant_type": "refresh_token", "refresh_token": self.refresh},
                             auth=(CLIENT_ID, CLIENT_SECRET), timeout=5)
        if resp.status_code == 400:
            raise NeedsReauth(f"pipedrive refused the refresh: {resp.json().get('error')}")
        resp.raise_for_status()
        body = resp.json()
        self.refreshes += 1
        self.access, self.refresh = body["access_token"], body["refresh_token"]
        return self.access


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def faults() -> Faults:
    return Faults(seed=7)


@pytest.fixture
def app(faults, clock):
    return create_app(state=SandboxState(), faults=faults,
                      options={"time_scale": 0.001, "delivery_timeout": 2.0, "clock": clock})


@pytest.fixture
def emu(app):
    return app.extensions["sandbox"]


@pytest.fixture
def server(app):
    with live(app) as srv:
        yield srv


@pytest.fixture
def tokens(server, emu) -> SandboxTokens:
    grant = {"client_id": CLIENT_ID, "company_id": emu.company()["id"], "user_id": emu.admin_id(),
             "scopes": ["base", "deals:full", "contacts:full", "leads:read", "users:read", "activities:full", "admin"]}
    issued = emu.tokens.issue(CLIENT_ID, grant)
    return SandboxTokens(server.url, issued["access_token"], issued["refresh_token"])


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(server, tokens, sleeps) -> PipedriveClient:
    """api_domain is what the token response says: the emulator's root URL."""
    c = PipedriveClient(server.url, tokens, sleep=sleeps.append, rate_limit=None)
    yield c
    c.http.close()


class Receiver:
    """The hub's ingest endpoint reduced to a recorder: every POST body with its headers."""

    def __init__(self):
        self.requests: list[dict] = []
        self.fail_next = 0      # answer 500 to this many deliveries (to make the emulator retry)
        self.cond = threading.Condition()
        app = Flask("pd-hook-receiver")

        @app.post("/<path:path>")
        def record(path):
            with self.cond:
                self.requests.append({"path": "/" + path, "json": request.get_json(silent=True),
                                      "headers": dict(request.headers)})
                self.cond.notify_all()
                status = 500 if self.fail_next > 0 else 200
                self.fail_next = max(0, self.fail_next - 1)
            return "", status
        self.app = app

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.requests) >= count, timeout), \
                f"expected {count} deliveries, got {len(self.requests)}"
            return list(self.requests)


@pytest.fixture
def receiver():
    rec = Receiver()
    with live(rec.app) as srv:
        rec.url = srv.url
        yield rec
