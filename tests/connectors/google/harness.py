"""What the shared contract test (tests/test_contract.py) needs to run Google Contacts for real: the
emulator on a loopback port and a People client signed in as Anna with a token the emulator issued
for the manifest's scopes."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from hub.connectors.google import CONNECTOR
from hub.connectors.google.manifest import MANIFEST
from hub.sandbox.common import Faults, SandboxState
from hub.sandbox.google import create_app
from tests.support.live import live_server

from .conftest import ANNA, CLIENT_ID, SandboxTokens

__all__ = ["live", "Live"]


@dataclass
class Live:
    client: Any
    api_base: str
    emu: Any
    account: str
    record_kinds: tuple[str, ...] = ()

    def step_settings(self, what: str) -> dict[str, Any]:
        raise AssertionError(f"google has no step kinds (asked for {what!r})")

    def count(self, makes: str) -> int:
        raise AssertionError(f"google makes no {makes!r}")


@contextmanager
def live(tmp_path=None) -> Iterator[Live]:
    app = create_app(state=SandboxState(), faults=Faults(seed=7))
    emu = app.extensions["sandbox"]
    with live_server(app) as server:
        manifest = MANIFEST.with_origin(server.url)
        account = next(a["id"] for a in emu.accounts() if a["email"] == ANNA)
        issued = emu.tokens.issue(CLIENT_ID, {"account": account, "scopes": list(MANIFEST.scopes),
                                              "client_id": CLIENT_ID, "issue_refresh": True})
        tokens = SandboxTokens(manifest.token_url, issued["access_token"], issued["refresh_token"])
        client = CONNECTOR.client(manifest.api_url, tokens)
        try:
            yield Live(client=client, api_base=manifest.api_url, emu=emu, account=account)
        finally:
            client.http.close()
