"""The Google connector against the Google emulator over real HTTP.

One live server for the session whose WSGI app each test swaps in (a fresh emulator per test);
a fake clock keeps the emulator's per-minute quota windows and token expiry deterministic."""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from hub.connectors.google.client import PeopleClient
from hub.connectors.google.manifest import MANIFEST
from hub.errors import NeedsReauth
from hub.sandbox.common import Faults, SandboxState
from hub.sandbox.google import create_app

CLIENT_ID, CLIENT_SECRET = "relay-hub-sandbox", "sandbox-secret"
ANNA = "anna@sandbox.example"
REPO = Path(__file__).resolve().parents[3]


class FakeClock:
    def __init__(self, now: float = 1_790_000_000.0):  # 20 s into a quota minute
        self.now = now

    def __call__(self) -> float:
        return self.now


class SandboxTokens:
    """A minimal TokenSource: refreshes against the emulator's token endpoint like the hub's store
    will (client_secret_post), single-flight, and turns invalid_grant into NeedsReauth."""

    def __init__(self, token_url: str, access: str, refresh: str):
        self.token_url = token_url
        self.access = access
        self.refresh = refresh
        self.refreshes = 0
        self._lock = threading.Lock()

    def access_token(self) -> str:
        return self.access

    def refresh_after_rejection(self, rejected: str) -> str:
        with self._lock:
            if self.access != rejected:  # another thread already refreshed
                return self.access
            resp = requests.post(self.token_url, timeout=5, data={
                "grant_type": "refresh_token", "refresh_token": self.refresh,
                "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
            if resp.status_code == 400 and resp.json().get("error") == "invalid_grant":
                raise NeedsReauth(f"google refused the refresh: {resp.json().get('error_description')}")
            resp.raise_for_status()
            body = resp.json()
            self.access = body["access_token"]
            self.refresh = body.get("refresh_token", self.refresh)
            self.refreshes += 1
            return self.access






@pytest.fixture
def options(request) -> dict[str, Any]:
    """Emulator options; override with `@pytest.mark.parametrize("options", [{...}], indirect=True)`."""
    return {"seed": False, "clock": FakeClock(), **getattr(request, "param", {})}


@pytest.fixture
def app(options):
    return create_app(state=SandboxState(), faults=Faults(seed=7), options=options)


@pytest.fixture
def sandbox(app):
    return app.extensions["sandbox"]


@pytest.fixture
def server(app, plug):
    return plug(app)


@pytest.fixture
def manifest(server):
    return MANIFEST.with_origin(server.url)


@pytest.fixture
def tokens(sandbox, manifest) -> SandboxTokens:
    account = next(a["id"] for a in sandbox.accounts() if a["email"] == ANNA)
    issued = sandbox.tokens.issue(CLIENT_ID, {"account": account, "scopes": list(MANIFEST.scopes),
                                              "client_id": CLIENT_ID, "issue_refresh": True})
    return SandboxTokens(manifest.token_url, issued["access_token"], issued["refresh_token"])


class Recorder:
    """What the client sent: (method, path) of every HTTP exchange, and every retry sleep."""

    def __init__(self):
        self.calls: list[tuple[str, str, int]] = []
        self.sleeps: list[float] = []
        self.on_sleep = None

    def hook(self, resp: requests.Response, *args, **kwargs) -> None:
        self.calls.append((resp.request.method, urlsplit(resp.request.url).path, resp.status_code))

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.on_sleep:
            self.on_sleep()

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _ in self.calls if m == method and p == path)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(manifest, tokens, recorder) -> PeopleClient:
    people = PeopleClient(manifest.api_url, tokens, sleep=recorder.sleep)
    people.http.hooks["response"].append(recorder.hook)
    return people


@pytest.fixture
def faults(server):
    """Set the emulator's fault knobs over its control API."""
    def set_faults(**knobs: Any) -> dict:
        resp = requests.post(f"{server.url}/_sandbox/faults", json=knobs, timeout=5)
        assert resp.status_code == 200, resp.text
        return resp.json()
    return set_faults


@pytest.fixture(scope="session")
def google_examples():
    folder = Path(os.environ.get("HUB_PROVIDER_SPECS", REPO.parent / "shared" / "providers")) / "google" / "examples"
    if not folder.is_dir():
        pytest.fail(f"provider examples not found at {folder} (set HUB_PROVIDER_SPECS)")
    import json
    return lambda name: json.loads((folder / name).read_text(encoding="utf-8"))


def person(given: str, family: str = "Test", email: str | None = None, crm_id: str | None = None) -> dict:
    body: dict[str, Any] = {"names": [{"givenName": given, "familyName": family}]}
    if email:
        body["emailAddresses"] = [{"value": email, "type": "work"}]
    if crm_id:
        body["clientData"] = [{"key": "relayhub.crm_id", "value": crm_id}]
    return body
