"""A live Bitrix24 emulator on a loopback port, a token source that refreshes against its OAuth
server (GET, rotating refresh tokens), and a client signed in as the portal's admin."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import pytest
import requests

from hub.connectors.bitrix24 import CONNECTOR
from hub.errors import NeedsReauth
from hub.sandbox.bitrix24 import Bitrix24Sandbox, create_app
from hub.sandbox.common import Faults, SandboxState
from tests.support.live import LiveServer

CLIENT_ID, CLIENT_SECRET = "relay-hub-sandbox", "sandbox-secret"
PORTAL = "demo"


class Clock:
    """The emulator's clock, moved by tests (DATE_MODIFY, token expiry, deadlines)."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SandboxTokens:
    """The TokenSource a connection store provides, reduced to what a test needs: keep the pair,
    refresh by GET at the OAuth server on a 401, keep the rotated refresh token."""

    def __init__(self, server_url: str, access: str, refresh: str):
        self.token_url = f"{server_url}/oauth/token/"
        self.access, self.refresh = access, refresh
        self.refreshes = 0

    def access_token(self) -> str:
        return self.access

    def refresh_after_rejection(self, rejected: str) -> str:
        if rejected != self.access:
            return self.access
        answer = requests.get(self.token_url, params={"grant_type": "refresh_token", "client_id": CLIENT_ID,
                                                      "client_secret": CLIENT_SECRET, "refresh_token": self.refresh},
                              timeout=5)
        if answer.status_code != 200:
            raise NeedsReauth(f"refresh refused: {answer.text[:200]}")
        body = answer.json()
        self.access, self.refresh = body["access_token"], body["refresh_token"]
        self.refreshes += 1
        return self.access


@contextmanager
def live_server(app):
    srv = LiveServer(app)
    srv._thread = threading.Thread(target=srv._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@dataclass
class Live:
    client: Any
    api_base: str
    emu: Bitrix24Sandbox
    url: str
    tokens: SandboxTokens
    clock: Clock
    record_kinds: tuple[str, ...] = ("deal", "lead", "contact", "company", "task")
    portal: str = PORTAL

    def step_settings(self, what: str) -> dict[str, Any]:
        assert what == "task", what
        return {"responsible_id": str(self.emu.admin_id(self.portal)), "deadline_hours": 24, "priority": "1"}

    def count(self, makes: str) -> int:
        assert makes == "task", makes
        return len(self.emu.tasks(self.portal))


@contextmanager
def emulator(clock: Clock | None = None, faults: Faults | None = None, **options) -> Iterator[Live]:
    clock = clock or Clock()
    app = create_app(state=SandboxState(), faults=faults or Faults(seed=7),
                     options={"clock": clock, "auto_deliver": False, "bucket_enabled": False,
                              "clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                           "redirect_uris": [], "name": "Relay Hub"}], **options})
    emu: Bitrix24Sandbox = app.extensions["sandbox"]
    emu.faults.update({"bucket_enabled": False})
    with live_server(app) as server:
        emu.learn_base_url(server.url)
        emu.install(PORTAL, CLIENT_ID)
        issued = emu.issue_tokens(PORTAL, CLIENT_ID, emu.admin_id(PORTAL))
        tokens = SandboxTokens(server.url, issued["access_token"], issued["refresh_token"])
        api_base = emu.endpoints(PORTAL)["client_endpoint"]
        client = CONNECTOR.client(api_base, tokens, rate_limit=None)
        try:
            yield Live(client=client, api_base=api_base.rstrip("/"), emu=emu, url=server.url, tokens=tokens,
                       clock=clock)
        finally:
            client.http.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def b24(clock) -> Iterator[Live]:
    with emulator(clock) as live:
        yield live
