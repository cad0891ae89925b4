"""What the shared contract test (tests/test_contract.py) needs to run the Example CRM for real:
its CONNECTOR (it lives here, not under hub/connectors/, so the test registers it) and a live
emulator with a signed-in client."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from hub.sandbox.common import Faults, SandboxState
from tests.support.live import live_server

from .connector import CONNECTOR, ExampleClient, sign
from .emulator import DEMO_ACCOUNT, ExampleCrm, create_app

__all__ = ["CONNECTOR", "live", "Live", "client_for"]


def client_for(url: str, key: str = DEMO_ACCOUNT["api_key"], secret: str = DEMO_ACCOUNT["api_secret"],
               **options: Any) -> ExampleClient:
    """The client the core would make for an API-key connection (an authenticator that signs)."""
    return CONNECTOR.client(url, None, authenticator=lambda prepared: sign(prepared, key, secret), **options)


@dataclass
class Live:
    client: ExampleClient
    api_base: str
    crm: ExampleCrm
    record_kinds: tuple[str, ...] = ("deal",)
    settings: dict[str, Any] = field(default_factory=dict)

    def step_settings(self, what: str) -> dict[str, Any]:
        return {"assignee_id": str(self.crm.users(DEMO_ACCOUNT["id"])[0]["id"]), "link_deal": False}

    def count(self, makes: str) -> int:
        assert makes == "task", makes
        return len(self.crm.tasks())


@contextmanager
def live(tmp_path=None) -> Iterator[Live]:
    app = create_app(state=SandboxState(), faults=Faults(seed=1))
    with live_server(app) as server:
        yield Live(client=client_for(server.url), api_base=server.url, crm=app.extensions["sandbox"])
