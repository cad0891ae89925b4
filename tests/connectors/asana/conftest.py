"""Fixtures: a live Asana emulator on a loopback port and AsanaClients holding real sandbox tokens.

Tokens are minted by the emulator's token authority for the manifest's granular scopes, so every
test also proves those scopes are enough for the call it makes. Refresh goes through the real
`/-/oauth_token` endpoint (SandboxTokens below), as the hub's token store will."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
import requests

from hub.connectors.asana.client import AsanaClient
from hub.connectors.asana.manifest import MANIFEST
from hub.errors import NeedsReauth
from hub.sandbox.asana import create_app
from hub.sandbox.common import Faults, SandboxState

CLIENT_ID = "relay-hub-sandbox"
CLIENT_SECRET = "sandbox-secret"
OTHER_CLIENT_ID = "another-asana-app"
OTHER_SECRET = "another-secret"
MAX_ATTACHMENT = 8 * 1024 * 1024  # small enough to test the limit, big enough for "a few MB"


class SandboxTokens:
    """A TokenSource refreshing against the sandbox token endpoint, single-flight, as FACTS §3
    describes Asana: form-encoded, client_secret_post, the refresh token is kept."""

    def __init__(self, token_url: str, client_id: str, client_secret: str, access: str, refresh: str):
        self.token_url, self.client_id, self.client_secret = token_url, client_id, client_secret
        self.access, self.refresh = access, refresh
        self.refreshes = 0
        self._lock = threading.Lock()

    def access_token(self) -> str:
        return self.access

    def refresh_after_rejection(self, rejected: str) -> str:
        with self._lock:
            if rejected != self.access:  # another call already refreshed
                return self.access
            resp = requests.post(self.token_url, timeout=5, data={
                "grant_type": "refresh_token", "client_id": self.client_id,
                "client_secret": self.client_secret, "refresh_token": self.refresh})
            if resp.status_code in (400, 401):
                raise NeedsReauth(f"asana refused the refresh: {resp.json().get('error')}")
            resp.raise_for_status()
            body = resp.json()
            self.access = body["access_token"]
            self.refresh = body.get("refresh_token") or self.refresh
            self.refreshes += 1
            return self.access






@pytest.fixture
def app():
    return create_app(state=SandboxState(), faults=Faults(seed=11), options={
        "clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": []},
                    {"client_id": OTHER_CLIENT_ID, "client_secret": OTHER_SECRET, "redirect_uris": []}],
        "attachment_max_bytes": MAX_ATTACHMENT,
    })


@pytest.fixture
def emu(app):
    return app.extensions["sandbox"]


@pytest.fixture
def server(app, plug):
    return plug(app)


@pytest.fixture
def manifest(server):
    return MANIFEST.with_origin(server.url)


@pytest.fixture
def ids(emu) -> dict[str, str]:
    ws = {w["name"]: w["gid"] for w in emu.workspaces()}
    teams = {t["name"]: t["gid"] for t in emu.teams()}
    projects = {p["name"]: p["gid"] for p in emu.projects()}
    users = {u["name"].split()[0].lower(): u["gid"] for u in emu.users()}
    return {"org": ws["Acme Sandbox Org"], "personal": ws["Personal Projects"], "sales": teams["Sales Ops"],
            "success": teams["Customer Success"], "onboarding": projects["Won deals – onboarding"],
            "renewals": projects["Renewals"], "archived": projects["Q1 pipeline review"],
            "home": projects["Home office"], **users}


@dataclass
class Connected:
    client: AsanaClient
    tokens: SandboxTokens
    sleeps: list[float] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture
def connect(emu, manifest):
    """connect(user_gid, client_id=..., scopes=..., **client_kwargs) -> Connected."""
    made: list[Connected] = []

    def make(user_gid: str, *, client_id: str = CLIENT_ID, scopes=MANIFEST.scopes, **kwargs) -> Connected:
        secret = {CLIENT_ID: CLIENT_SECRET, OTHER_CLIENT_ID: OTHER_SECRET}[client_id]
        issued = emu.tokens.issue(client_id, {"user": user_gid, "scopes": list(scopes), "client_id": client_id})
        tokens = SandboxTokens(manifest.token_url, client_id, secret, issued["access_token"], issued["refresh_token"])
        session = requests.Session()
        conn = Connected(None, tokens)  # type: ignore[arg-type]
        session.hooks["response"].append(lambda r, *a, **k: conn.calls.append((r.request.method, r.request.url)))
        conn.client = AsanaClient(manifest.api_url, tokens, session=session, sleep=conn.sleeps.append,
                                  **{"max_attachment_bytes": MAX_ATTACHMENT, **kwargs})
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.client.http.close()


@pytest.fixture
def dana(connect, ids) -> Connected:
    """Dana: member of the organization and of the personal workspace."""
    return connect(ids["dana"])


@pytest.fixture
def faults(server):
    """faults(**knobs): set the sandbox fault knobs over its control API."""

    def set_knobs(**knobs):
        resp = requests.post(f"{server.url}/_sandbox/faults", json=knobs, timeout=5)
        assert resp.status_code == 200, resp.text
        return resp.json()

    return set_knobs
