"""A small CRM and a small task app, as connectors registered from the tests (the way the contract
test adds its example): the rule engine reaches them only through `hub.connectors`. The task app
records every call, so tests can count what a rule did; `fail` makes its next calls fail."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from hub import connectors
from hub.connectors.contract.webhooks import CrmEvent
from hub.connectors.contract import Connector
from hub.connectors.contract.records import Catalog, FieldInfo, SourceRecord
from hub.connectors.contract.targets import Made, StepKind
from hub.connectors.contract.triggers import Preset, Trigger
from hub.errors import Fatal
from hub.events import record
from hub.jobs import Worker
from hub.store import Connection, Installation, utcnow

CRM, TASKS = "fakecrm", "faketasks"


@dataclass
class World:
    """The fake apps' state: CRM objects, tasks made, calls seen, faults to inject."""

    deals: dict[str, dict] = field(default_factory=dict)
    tasks: dict[str, dict] = field(default_factory=dict)          # external id -> task
    calls: list[tuple] = field(default_factory=list)
    fail: list[Exception] = field(default_factory=list)            # raised by the next target calls, in order
    files: dict[str, bytes] = field(default_factory=dict)

    def call(self, *what: Any) -> None:
        self.calls.append(what)
        if self.fail:
            raise self.fail.pop(0)

    def count(self, name: str) -> int:
        return sum(1 for c in self.calls if c[0] == name)


WORLD = World()


class Source:
    def __init__(self, ctx):
        self.ctx = ctx

    def load(self, kind, object_id, current, carry, warnings):
        data = dict(current) if current is not None else dict(WORLD.deals[object_id])
        WORLD.calls.append(("load", kind, object_id, current is None))
        files = [{"id": n, "name": name, "size": len(body)} for n, (name, body) in enumerate(WORLD.files.items())] \
            if carry.attachments else []
        return SourceRecord(kind=kind, id=str(object_id), data=data, url=f"https://crm.example/{kind}/{object_id}",
                            title=data.get("title", ""), status=data.get("status"),
                            amount=f"{data['value']} EUR" if "value" in data else None, stage=data.get("stage"),
                            owner="Olga Owner", person={"name": "Pia Person", "email": "pia@example.com"}
                            if carry.contacts else None, files=files)

    def recent(self, kind, limit=20):
        return []

    def file_chunks(self, file):
        yield WORLD.files[file["name"]]

    def fields(self, kind):
        return [FieldInfo("value", "Value", "money"), FieldInfo("status", "Status"), FieldInfo("title", "Title")]


class Target:
    def __init__(self, ctx):
        self.ctx = ctx

    def ensure(self, spec, effect_key, *, first_try):
        WORLD.call("ensure", effect_key, first_try, spec.name)
        found = WORLD.tasks.get(effect_key)
        if found is not None:
            return Made(effect_key, url=found["url"], name=found["name"], created=False)
        WORLD.tasks[effect_key] = {"name": spec.name, "notes": spec.notes_html, "due": spec.due,
                                   "settings": dict(spec.settings), "status": "open",
                                   "url": f"https://t/{len(WORLD.tasks)}", "files": []}
        return Made(effect_key, url=WORLD.tasks[effect_key]["url"], name=spec.name)

    def complete(self, external_id):
        WORLD.call("complete", external_id)
        WORLD.tasks[external_id]["status"] = "completed"
        return "completed"

    def status(self, external_id):
        return WORLD.tasks[external_id]["status"]

    max_attachment_bytes = 1000

    def attach(self, external_id, file, chunks, *, maybe_sent=False):
        WORLD.call("attach", external_id, file["name"], maybe_sent)
        files = WORLD.tasks[external_id]["files"]
        if maybe_sent and file["name"] in [name for name, _ in files]:
            return "found"
        if file["size"] > self.max_attachment_bytes:
            raise TooLarge(f"{file['name']} is {file['size']} bytes; the limit is {self.max_attachment_bytes} bytes")
        files.append((file["name"], b"".join(chunks)))
        return f"a{len(files)}"


class TooLarge(Fatal):
    """What the contract's AttachmentRefused says: this one file, and why."""

    reason = "too_large"

    def __init__(self, message):
        super().__init__(message, 413)


def validate_task(settings, catalogs, complete):
    errors = {}
    if complete and not settings.get("list"):
        errors["list"] = "pick the list the tasks go to"
    if catalogs is not None and settings.get("list") and settings["list"] not in {l["id"] for l in catalogs("lists")}:
        errors["list"] = "no such list"
    return errors


PIPELINES = [{"id": "1", "name": "Sales", "stages": [{"id": "11", "name": "New"}, {"id": "12", "name": "Won"}]}]
CRM_CONNECTOR = Connector(
    name=CRM, title="Fake CRM", roles=frozenset({"crm"}), auth=None, client=lambda api_base, tokens: object(),
    source=Source, catalogs={"pipelines": Catalog("pipelines", "Pipelines", lambda client: PIPELINES)},
    triggers=(Trigger("deal.won", "Deal won", "deal", ("pipeline_id",)),
              Trigger("deal.lost", "Deal lost", "deal", ("pipeline_id",))),
    presets=(Preset("fake_handoff", "Hand off won deals", "a task when a deal is won",
                    {"trigger": {"kind": "deal.won", "params": {}},
                     "steps": [{"kind": "*.task", "templates": {"name": "Onboard {{ deal.title }}", "notes": "Won"},
                                "settings": {"list": "L1"}}]}),))
TASKS_CONNECTOR = Connector(
    name=TASKS, title="Fake Tasks", roles=frozenset({"task_target"}), auth=None,
    client=lambda api_base, tokens: object(),
    catalogs={"lists": Catalog("lists", "Lists", lambda client: [{"id": "L1", "name": "Inbox"},
                                                                  {"id": "L2", "name": "Later"}])},
    targets={"task": StepKind("task", "Create a fake task", "task", ("list",), validate_task, Target,
                              attachments=True, completes=True)})


def register() -> None:
    connectors.register(CRM_CONNECTOR)
    connectors.register(TASKS_CONNECTOR)


def unregister() -> None:
    connectors.unregister(CRM)
    connectors.unregister(TASKS)


def install(services) -> tuple[int, int]:
    """An installation of the fake CRM with a connected task app: (installation id, task connection id)."""
    now = utcnow()
    with services.db.begin() as s:
        inst = Installation(provider=CRM, company_id="c1", installer_user_id="u1", installer_email="ada@example.com",
                            endpoint_token="tok-fake", created_at=now, updated_at=now)
        s.add(inst)
        s.flush()
        s.add(Connection(installation_id=inst.id, provider=CRM, role="crm", account_id="u1", api_base="https://crm"))
        tasks = Connection(installation_id=inst.id, provider=TASKS, role="target", account_id="t1",
                           account_name="Tasks account", api_base="https://tasks")
        s.add(tasks)
        s.flush()
        return inst.id, tasks.id


def won(services, iid: int, deal_id: str, *, at: str = "2026-12-01T10:00:00Z", **data) -> None:
    deal = {"id": deal_id, "title": f"Deal {deal_id}", "status": "won", "pipeline_id": "1", "value": 100,
            "won_time": at, **data}
    WORLD.deals[deal_id] = deal
    with services.db.begin() as s:
        record(services, s, iid, CrmEvent("deal.won", "deal", deal_id, f"e-{deal_id}-{at}", datetime(2026, 12, 1),
                                          deal, None, pipeline_id="1", version=at), source="webhook")


def drain(app) -> int:
    return Worker(app.extensions["hub"].queue, app=app, worker_id="test").drain()


def installation_connections(services, iid):
    with services.db.begin() as s:
        return list(s.scalars(select(Connection).where(Connection.installation_id == iid)))
