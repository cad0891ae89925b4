"""A hub with its sandbox on a real port, installed (its webhooks registered at the sandbox CRM),
with Asana connected: events reach the rules through the real pipeline (sandbox delivery ->
/hooks -> inbox -> webhook.process -> hub.events.record -> rules)."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from hub.rules import service
from hub.rules.catalogs import CACHE
from hub.store import Connection
from hub.store.models import RuleLink, RuleRun, RuleStepRun
from tests.web.conftest import ADMIN, install

SCALE = {"sandbox.webhook_time_scale": 0.0005}


@dataclass
class Env:
    hub: object
    browser: object
    iid: int
    asana_id: int

    @property
    def services(self):
        return self.hub.services

    @property
    def pd(self):
        return self.hub.emulator("pipedrive")

    @property
    def asana(self):
        return self.hub.emulator("asana")

    def settle(self) -> int:
        """Deliver what the CRM sent, then run every due job (ingest, rules, mail)."""
        assert self.pd.flush(15), "the sandbox did not finish delivering"
        return self.hub.run_jobs()

    def rule(self, **body) -> dict:
        """An active rule (defaults: hand off won deals of Sales into the onboarding project)."""
        data = {"name": "Hand off won deals", "trigger": "deal.won", "pipeline_id": self.pipeline("Sales"),
                "action": "asana.task", "name_template": "Onboard {{ deal.title }}",
                "description_template": "Won by {{ deal.owner }}.",
                "carry": {"value": True, "contacts": True, "notes": True, "attachments": True},
                "target": {"connection_id": self.asana_id, "workspace_gid": self.workspace("Acme Sandbox Org"),
                           "project_gid": self.project("Won deals – onboarding")},
                "status": "active"}
        for key, value in body.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return service.create(self.services, self.iid, data, str(ADMIN))

    # names -> ids in the sandboxes
    def pipeline(self, name: str) -> str:
        return str(next(p["id"] for p in self.pd.data["pd_pipelines"].values() if p["name"] == name))

    def stage(self, name: str) -> str:
        return str(next(s["id"] for s in self.pd.data["pd_stages"].values() if s["name"] == name))

    def workspace(self, name: str) -> str:
        return next(w["gid"] for w in self.asana.workspaces() if w["name"] == name)

    def project(self, name: str) -> str:
        return next(p["gid"] for p in self.asana.projects() if p["name"] == name)

    def team(self, name: str) -> str:
        return next(t["gid"] for t in self.asana.teams() if t["name"] == name)

    def user(self, email_start: str) -> str:
        return next(u["gid"] for u in self.asana.users() if u["email"].startswith(email_start))

    def deal(self, title_start: str) -> dict:
        return next(d for d in self.pd.data["pd_deals"].values() if d["title"].startswith(title_start))

    def tasks(self, project: str | None = None) -> list[dict]:
        return self.asana.tasks(self.project(project) if project else None)

    def runs(self) -> list[RuleRun]:
        with self.services.db.begin() as s:
            return list(s.scalars(select(RuleRun).order_by(RuleRun.id)))

    def step_runs(self) -> list[RuleStepRun]:
        with self.services.db.begin() as s:
            return list(s.scalars(select(RuleStepRun).order_by(RuleStepRun.id)))

    def made(self, run) -> str | None:
        """What the run's first step made (its external id)."""
        return next((s.external_id for s in self.step_runs() if s.run_id == run.id and s.position == 0), None)

    def links(self) -> list[RuleLink]:
        with self.services.db.begin() as s:
            return list(s.scalars(select(RuleLink).order_by(RuleLink.id)))

    def count(self, model, *where) -> int:
        with self.services.db.begin() as s:
            return s.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def make_env(make_live_hub):
    """make_env(db_url=None, **settings): a fresh installed hub with Asana connected."""
    CACHE.clear()

    def build(db_url: str | None = None, install_kwargs: dict | None = None, **settings) -> Env:
        hub = make_live_hub(db_url, **{**SCALE, **settings})
        admin, iid = install(hub, **(install_kwargs or {}))
        hub.run_jobs()                      # registers the hub's webhooks at the sandbox CRM
        dana = next(u["gid"] for u in hub.emulator("asana").users() if u["email"].startswith("dana"))
        landed = admin.authorize_target(iid, "asana", {"decision": "allow", "user": dana})
        assert landed.status_code == 200, landed.text[:300]
        with hub.services.db.begin() as s:
            asana_id = s.scalar(select(Connection.id).where(Connection.installation_id == iid,
                                                            Connection.provider == "asana"))
        return Env(hub, admin, iid, asana_id)

    yield build
    CACHE.clear()


@pytest.fixture
def env(make_env) -> Env:
    return make_env()
