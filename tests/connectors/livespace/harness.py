"""What the shared contract test (tests/test_contract.py) needs to run Livespace for real: the
emulator with its demo account on a loopback port and a client signing with the admin's key."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from hub.connectors.livespace import CONNECTOR
from hub.connectors.livespace.client import LivespaceClient, sign
from hub.sandbox.common import Faults, SandboxState
from hub.sandbox.livespace import LivespaceCrm, create_app
from tests.support.live import live_server

__all__ = ["live", "Live", "client_for"]
KEY, SECRET = "demo-key", "demo-secret"


def client_for(url: str, key: str = KEY, secret: str = SECRET, **options: Any) -> LivespaceClient:
    """The client the core makes for a key connection: an authenticator that signs with the key."""
    options.setdefault("rate_limit", None)
    return CONNECTOR.client(url, None, authenticator=lambda prepared: sign(prepared, key, secret), **options)


@dataclass
class Live:
    client: LivespaceClient
    api_base: str
    crm: LivespaceCrm
    record_kinds: tuple[str, ...] = ("deal", "person", "company", "task")

    def step_settings(self, what: str) -> dict[str, Any]:
        assert what == "task", what
        return {"type_id": self.crm.todo_types()[3]["id"], "owner_id": self.crm.admin()["id"],
                "link_record": False}

    def count(self, makes: str) -> int:
        assert makes == "task", makes
        return len(self.crm.todos())


@contextmanager
def live(tmp_path=None) -> Iterator[Live]:
    app = create_app(state=SandboxState(), faults=Faults(seed=1))
    crm = app.extensions["sandbox"]
    crm.add_todo({"title": "Call Jan back", "type_id": crm.todo_types()[0]["id"]}, crm.admin())
    with live_server(app) as server:
        client = client_for(server.url)
        try:
            yield Live(client=client, api_base=server.url, crm=crm)
        finally:
            client.http.close()
