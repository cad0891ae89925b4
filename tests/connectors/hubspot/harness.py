"""What the shared contract test (tests/test_contract.py) and this folder's tests need to run
HubSpot for real: the emulator with its demo accounts on a loopback port, and the connector's
client signed in with a token from the emulator's OAuth (installed in the first demo account)."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import requests

from hub.errors import NeedsReauth

from hub.connectors.hubspot import CONNECTOR
from hub.connectors.hubspot.manifest import SCOPES
from hub.sandbox.common import Faults, SandboxState
from hub.sandbox.hubspot import HubSpotSandbox, create_app
from tests.support.live import LiveServer

__all__ = ["live", "Live", "CLIENT_ID", "CLIENT_SECRET"]

CLIENT_ID, CLIENT_SECRET = "relay-hub-sandbox", "sandbox-secret"


class SandboxTokens:
    """The TokenSource a connection store provides, reduced to what a test needs: the current pair,
    refreshed against the emulator's token endpoint (form body, client secret) on a 401."""

    def __init__(self, server_url: str, access: str, refresh: str):
        self.token_url = f"{server_url}/oauth/v1/token"
        self.access, self.refresh = access, refresh
        self.refreshes = 0

    def access_token(self) -> str:
        return self.access

    def refresh_after_rejection(self, rejected: str) -> str:
        if rejected != self.access:
            return self.access
        answer = requests.post(self.token_url, data={"grant_type": "refresh_token", "refresh_token": self.refresh,
                                                     "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
                               timeout=5).json()
        self.refreshes += 1
        if "access_token" not in answer:
            raise NeedsReauth(f"hubspot refused the refresh: {answer.get('message')}")
        self.access, self.refresh = answer["access_token"], answer.get("refresh_token") or self.refresh
        return self.access


@dataclass
class Live:
    client: Any
    api_base: str
    emu: HubSpotSandbox
    hub_id: int
    user_id: int
    tokens: SandboxTokens
    record_kinds: tuple[str, ...] = ("deal", "person", "organization", "lead", "task")

    def step_settings(self, what: str) -> dict[str, Any]:
        owner = str(self.emu.user(self.hub_id, self.user_id)["ownerId"])
        if what == "task":
            return {"type": "TODO", "priority": "HIGH", "owner_id": owner}
        if what == "lead":
            return {"pipeline_id": "lead-pipeline-id"}
        if what == "lead_stage":
            return {"to_stage_id": "connected-stage-id"}
        raise AssertionError(f"hubspot has no step kind {what!r}")

    def count(self, makes: str) -> int:
        kind = {"task": "tasks", "lead": "leads"}[makes]
        return len(self.emu.records(self.hub_id, kind))


@contextmanager
def live(tmp_path=None, **options: Any) -> Iterator[Live]:
    """`options` go to the emulator (its `clock`, `transport`, `sources` ...)."""
    opts = {"clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [],
                         "name": "Relay Hub", "scopes": list(SCOPES)}],
            "deliver_in_background": False, "transport": lambda url, headers, body: (200, {}), **options}
    app = create_app(state=SandboxState(), faults=Faults(seed=7), options=opts)
    emu: HubSpotSandbox = app.extensions["sandbox"]
    portal = emu.portals()[0]
    hub_id, user_id = portal["hub_id"], portal["admin_user_id"]
    emu.install(CLIENT_ID, hub_id, user_id, list(SCOPES))
    issued = emu.tokens.issue(CLIENT_ID, {"client_id": CLIENT_ID, "hub_id": hub_id, "user_id": user_id,
                                          "scopes": list(SCOPES)})
    server = LiveServer(app)
    server._thread = threading.Thread(target=server._server.serve_forever, kwargs={"poll_interval": 0.01},
                                      daemon=True)
    server.start()
    tokens = SandboxTokens(server.url, issued["access_token"], issued["refresh_token"])
    client = CONNECTOR.client(server.url, tokens, rate_limit=None)
    try:
        yield Live(client=client, api_base=server.url, emu=emu, hub_id=hub_id, user_id=user_id, tokens=tokens)
    finally:
        client.http.close()
        server.stop()
