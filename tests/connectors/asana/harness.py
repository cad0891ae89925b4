"""What the shared contract test (tests/test_contract.py) needs to run Asana for real: the emulator
with its demo organization on a loopback port and a client signed in as Dana (a member of the
organization) with a token the emulator issued for the manifest's scopes."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from hub.connectors.asana import CONNECTOR
from hub.connectors.asana.manifest import MANIFEST
from hub.sandbox.asana import AsanaEmulator, create_app
from hub.sandbox.common import Faults, SandboxState
from tests.support.live import live_server

from .conftest import CLIENT_ID, CLIENT_SECRET, SandboxTokens

__all__ = ["live", "Live"]

ORG, TEAM, PROJECT, USER = "Acme Sandbox Org", "Sales Ops", "Won deals – onboarding", "Dana"


@dataclass
class Live:
    client: Any
    api_base: str
    emu: AsanaEmulator
    record_kinds: tuple[str, ...] = ()

    def _gid(self, rows: list[dict], name: str) -> str:
        return next(r["gid"] for r in rows if r["name"] == name)

    def step_settings(self, what: str) -> dict[str, Any]:
        org = self._gid(self.emu.workspaces(), ORG)
        if what == "task":
            return {"workspace_gid": org, "project_gid": self._gid(self.emu.projects(org), PROJECT)}
        if what == "project":
            return {"workspace_gid": org, "team_gid": self._gid(self.emu.teams(), TEAM)}
        raise AssertionError(f"asana has no step kind {what!r}")

    def count(self, makes: str) -> int:
        if makes == "task":
            return len(self.emu.tasks())
        assert makes == "project", makes
        return len(self.emu.projects())


@contextmanager
def live(tmp_path=None) -> Iterator[Live]:
    app = create_app(state=SandboxState(), faults=Faults(seed=11))
    emu = app.extensions["sandbox"]
    with live_server(app) as server:
        manifest = MANIFEST.with_origin(server.url)
        user = next(u["gid"] for u in emu.users() if u["name"].split()[0] == USER)
        issued = emu.tokens.issue(CLIENT_ID, {"user": user, "scopes": list(MANIFEST.scopes), "client_id": CLIENT_ID})
        tokens = SandboxTokens(manifest.token_url, CLIENT_ID, CLIENT_SECRET, issued["access_token"],
                               issued["refresh_token"])
        client = CONNECTOR.client(manifest.api_url, tokens)
        try:
            yield Live(client=client, api_base=manifest.api_url, emu=emu)
        finally:
            client.http.close()
