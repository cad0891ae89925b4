"""A fake CRM (tests/rules/fake.py) and a fake task app with a team (users with e-mails), registered
as connectors: the rule engine, the template step, the calendar and suggestions reach them only
through the contract. Colleagues sign in with a test client holding a real server-side session."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from hub import connectors
from hub.connectors.contract import Connector
from hub.connectors.contract.records import Catalog
from hub.connectors.contract.targets import Made, StepKind
from hub.oauth.web_sessions import open_session
from hub.rules.catalogs import CACHE
from hub.store import Connection, Installation, InstallationUser
from tests.rules import fake
from tests.rules.fake import WORLD

TEAM = "faketeam"
PEOPLE = [{"id": "u1", "name": "Olga Owner", "email": "olga@example.com"},
          {"id": "u2", "name": "Ben Colleague", "email": "ben@example.com"},
          {"id": "u3", "name": "Cleo Admin", "email": "cleo@example.com"}]
FRIDAY_EVENING = datetime(2026, 12, 4, 20, 0)        # UTC; 21:00 in Warsaw


class TeamTarget:
    def __init__(self, ctx):
        self.ctx = ctx

    def ensure(self, spec, effect_key, *, first_try):
        WORLD.call("ensure", effect_key, first_try, spec.name)
        found = WORLD.tasks.get(effect_key)
        if found is not None:
            return Made(effect_key, url=found["url"], name=found["name"], created=False)
        WORLD.tasks[effect_key] = {"name": spec.name, "notes": spec.notes_html, "due": spec.due,
                                   "assignee": spec.assignee, "task_type": spec.task_type, "sharing": spec.sharing,
                                   "colleagues": spec.colleagues, "settings": dict(spec.settings), "status": "open",
                                   "record": spec.record.id if spec.record else None,
                                   "url": f"https://team/{len(WORLD.tasks)}"}
        return Made(effect_key, url=WORLD.tasks[effect_key]["url"], name=spec.name)

    def complete(self, external_id):
        WORLD.call("complete", external_id)
        WORLD.tasks[external_id]["status"] = "completed"
        return "completed"

    def status(self, external_id):
        return WORLD.tasks[external_id]["status"]

    def reschedule(self, external_id, due):
        WORLD.call("reschedule", external_id, due)
        WORLD.tasks[external_id]["due"] = due

    max_attachment_bytes = None

    def attach(self, *args, **kwargs):
        raise NotImplementedError


def _validate(settings, catalog, complete):
    if settings.get("assignee_id") and catalog is not None and \
            settings["assignee_id"] not in {u["id"] for u in catalog("users")}:
        return {"assignee_id": "not a user of the team"}
    return {}


TEAM_CONNECTOR = Connector(
    name=TEAM, title="Fake Team", roles=frozenset({"task_target"}), auth=None,
    client=lambda api_base, tokens: object(),
    catalogs={"users": Catalog("users", "Users", lambda client: [dict(p) for p in PEOPLE])},
    targets={"task": StepKind("task", "Create a team task", "task", ("assignee_id",), _validate, TeamTarget,
                              completes=True, catalogs=("users",))})


@dataclass
class World:
    app: object
    services: object
    iid: int
    team_id: int

    def client(self, crm_user_id: str):
        """A browser signed in as this CRM user (a real session row, a CSRF token)."""
        client = self.app.test_client()
        with self.services.db.begin() as s:
            sid = open_session(s, self.iid, crm_user_id, self.services.queue.clock.now(), timedelta(days=1))
        with client.session_transaction() as session:
            session["user"] = {"installation_id": self.iid, "crm_user_id": crm_user_id, "name": crm_user_id}
            session["sid"] = sid
            session["csrf"] = "t0ken"
        client.environ_base["HTTP_X_CSRF_TOKEN"] = "t0ken"
        return client

    def drain(self) -> int:
        with self.app.app_context():
            return fake.drain(self.app)


def make_world(make_hub, **settings) -> World:
    fake.register()
    connectors.register(TEAM_CONNECTOR)
    CACHE.clear()
    WORLD.__init__()
    app = make_hub(**settings)
    services = app.extensions["hub"]
    iid, _ = fake.install(services)
    with services.db.begin() as s:
        inst = s.get(Installation, iid)
        inst.visibility, inst.installer_email, inst.installer_name = "all", "olga@example.com", "Olga Owner"
        s.add(Connection(installation_id=iid, provider=TEAM, role="target", account_id="team1",
                         account_name="Team account", api_base="https://team"))
        for p in PEOPLE:
            if p["id"] != "u1":
                s.add(InstallationUser(installation_id=iid, crm_user_id=p["id"], name=p["name"], email=p["email"],
                                       role="admin" if p["id"] == "u3" else "user", allowed=True))
        s.flush()
        team_id = s.scalar(select(Connection.id).where(Connection.installation_id == iid, Connection.provider == TEAM))
    return World(app, services, iid, team_id)


@pytest.fixture
def world(make_hub):
    yield make_world(make_hub)
    connectors.unregister(TEAM)
    fake.unregister()
    CACHE.clear()


def template(team_id: int, title: str = "Call {{ deal.title }}", **extra) -> dict:
    return {"title": title, "description": "For {{ deal.title }}", "type_id": None, "responsible": "owner",
            "delay_days": 1, "day_kind": "working", "time_of_day": "09:00", "kind": f"{TEAM}.task",
            "connection_id": team_id, "settings": {}, **extra}
