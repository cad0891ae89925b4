"""What the shared contract test (tests/test_contract.py) needs to run Pipedrive for real: the
emulator with its demo company on a loopback port and a client signed in with a token from the
emulator's OAuth (the same pieces as this folder's conftest)."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from hub.connectors.pipedrive import CONNECTOR
from hub.sandbox.common import Faults, SandboxState
from hub.sandbox.pipedrive import PipedriveSandbox, create_app

from .conftest import CLIENT_ID, SandboxTokens, live as live_server

__all__ = ["live", "Live"]

SCOPES = ["base", "deals:full", "contacts:full", "leads:read", "users:read", "activities:full", "admin"]


@dataclass
class Live:
    client: Any
    api_base: str
    emu: PipedriveSandbox
    record_kinds: tuple[str, ...] = ("deal", "lead", "person", "organization")

    def step_settings(self, what: str) -> dict[str, Any]:
        if what == "task":
            return {"type": "task", "user_id": str(self.emu.admin_id())}
        if what == "record":
            stage = next(iter(self.emu.data["pd_stages"].values()))
            return {"stage_id": str(stage["id"])}
        raise AssertionError(f"pipedrive has no step kind {what!r}")

    def count(self, makes: str) -> int:
        assert makes == "task", makes      # an activity
        return len(self.emu.activities())


@contextmanager
def live(tmp_path=None) -> Iterator[Live]:
    app = create_app(state=SandboxState(), faults=Faults(seed=7), options={"time_scale": 0.001})
    emu = app.extensions["sandbox"]
    with live_server(app) as server:
        grant = {"client_id": CLIENT_ID, "company_id": emu.company()["id"], "user_id": emu.admin_id(),
                 "scopes": SCOPES}
        issued = emu.tokens.issue(CLIENT_ID, grant)
        tokens = SandboxTokens(server.url, issued["access_token"], issued["refresh_token"])
        client = CONNECTOR.client(server.url, tokens, rate_limit=None)   # api_domain: the emulator's root
        try:
            yield Live(client=client, api_base=server.url, emu=emu)
        finally:
            client.http.close()
