"""A whole hub with its sandbox on a real port, a real SMTP server, and scripted browsers."""
from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes

import pytest

from hub import create_app
from hub.jobs import Worker
from hub.store import migrate
from tests.conftest import hub_config, migrated_sqlite
from tests.support.browser import Browser
from tests.support.live import LiveServer

ADMIN, BEN, CLEO, DEV = 12400001, 12400002, 12400003, 12400004


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Mailbox:
    messages: list = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server, session, envelope):
        with self.arrived:
            self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 10) -> list:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.messages) >= count, timeout), self.messages
            return list(self.messages)


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


class Hub:
    def __init__(self, app, server: LiveServer):
        self.app = app
        self.server = server
        self.url = server.url
        self.services = app.extensions["hub"]
        self.worker = Worker(self.services.queue, app=app, worker_id="test-worker")

    def emulator(self, provider: str):
        return self.services.extras["sandbox"][provider].extensions["sandbox"]

    def browser(self) -> Browser:
        return Browser(self.url)

    def run_jobs(self) -> int:
        return self.worker.drain()


@pytest.fixture
def make_live_hub(tmp_path, smtp, sqlite_template):
    hubs = []

    def build(db_url: str | None = None, **extra) -> Hub:
        server = LiveServer(lambda environ, start_response: [])
        config = hub_config(db_url or migrated_sqlite(sqlite_template, tmp_path / "hub.db"), tmp_path / "instance",
                            base_url=server.url,
                            sandbox=True, **{"sandbox.persist": False, "mail.backend": "smtp",
                                             "mail.smtp_port": smtp.port, **extra})
        app = create_app(config)
        migrate.upgrade(app.extensions["hub"].db.engine)
        server.app = app
        server.start()
        hub = Hub(app, server)
        hubs.append(hub)
        return hub

    yield build
    for hub in hubs:
        hub.server.stop()
        hub.services.stop()
        hub.services.db.dispose()


@pytest.fixture
def live_hub(make_live_hub) -> Hub:
    return make_live_hub()


def install(hub: Hub, *, visibility_in_crm="me", crm_users=(), hub_visibility="only_me", hub_users=(),
            notify=False) -> tuple[Browser, int]:
    """The admin installs from the marketplace and confirms who may use the hub."""
    admin = hub.browser()
    landed = admin.authorize_pipedrive("/install/pipedrive", user_id=ADMIN, visibility=visibility_in_crm,
                                       user_ids=crm_users)
    assert landed.status_code == 200, landed.text
    assert "Who may use Relay Hub" in landed.text
    installation_id = int(landed.url.split("/i/")[1].split("/")[0])
    data = {"visibility": hub_visibility, "users": [str(u) for u in hub_users], "setup": "1"}
    if notify:
        data["notify"] = "1"
    done = admin.form_post(f"/i/{installation_id}/visibility", data, csrf_from=f"/i/{installation_id}/visibility?setup=1")
    assert done.status_code == 200, done.text
    return admin, installation_id
