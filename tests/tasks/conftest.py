"""Linked tasks through the whole hub with the Example CRM (tests/connectors/example): a CRM with
deals in stages, tasks a rule step makes, signed webhooks; the hub knows it only through the registry."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from hub import connectors, sandbox
from hub.store import Clock, utcnow
from hub.store.models import Connection
from tests.connectors.example.connector import CONNECTOR
from tests.connectors.example.emulator import DEMO_ACCOUNT, create_app

ACCOUNT, KEY, SECRET = DEMO_ACCOUNT["id"], DEMO_ACCOUNT["api_key"], DEMO_ACCOUNT["api_secret"]
JSON = {"Accept": "application/json"}


class MovableClock(Clock):
    """The hub's clock, moved forward by a test (never back, so jobs already queued stay due)."""

    def __init__(self):
        self.offset = timedelta(0)

    def now(self):
        return utcnow() + self.offset

    def advance(self, **delta) -> None:
        self.offset += timedelta(**delta)


@pytest.fixture
def registered():
    connectors.register(CONNECTOR)
    sandbox.register(CONNECTOR.name, create_app, CONNECTOR.title)
    yield CONNECTOR
    sandbox.unregister(CONNECTOR.name)
    connectors.unregister(CONNECTOR.name)


class Setup:
    def __init__(self, hub):
        self.hub, self.services, self.crm = hub, hub.services, hub.emulator("example")
        self.clock = MovableClock()
        self.services.queue.clock = self.clock
        self.admin = hub.browser()
        landed = self.admin.form_post("/install/example", {"key": KEY, "secret": SECRET}, csrf_from="/install/example")
        assert landed.status_code == 200, landed.text[:500]
        self.iid = int(re.search(r"/i/(\d+)/", landed.url).group(1))
        done = self.admin.form_post(f"/i/{self.iid}/visibility", {"visibility": "only_me", "setup": "1"},
                                    csrf_from=f"/i/{self.iid}/visibility?setup=1")
        assert done.status_code == 200, done.text[:500]
        hub.run_jobs()
        with self.services.db.begin() as s:
            self.connection_id = s.scalar(select(Connection.id).where(Connection.installation_id == self.iid,
                                                                      Connection.provider == "example"))
        self.stages = self.crm.stages(ACCOUNT)

    def deliver(self) -> None:
        """The CRM sends what happened; the hub's worker does what follows."""
        self.crm.flush()
        self.hub.run_jobs()

    def api(self, method: str, suffix: str, **kw):
        token = self.admin.csrf(f"/i/{self.iid}/settings")
        return self.admin.request(method, f"/api/v1/installations/{self.iid}/{suffix}",
                                  headers={"X-CSRF-Token": token, **JSON}, **kw)

    def step(self, name: str, **settings) -> dict:
        return {"kind": "example.task", "connection_id": self.connection_id,
                "settings": {"link_deal": True, **settings}, "templates": {"name": name}}


@pytest.fixture
def setup(registered, make_live_hub, db_url) -> Setup:
    """An installed Example CRM, on SQLite and on PostgreSQL."""
    return Setup(make_live_hub(db_url))
