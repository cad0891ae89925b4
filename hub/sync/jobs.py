"""How sync runs get started: the schedule (one `Periodic` per enabled sync), "Sync now", the CLI,
and CRM person events (an early run). Every path goes through `trigger.request_run`."""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from hub.connectors.retry import renew_budget
from hub.errors import Fatal
from hub.events import canonical_time, subscribe
from hub.jobs import handler
from hub.scheduler import Periodic, dynamic_schedules
from hub.store import HubEvent, Installation
from hub.store.models import ContactSync, SyncLink

from .engine import SyncEngine
from .mapping import DEFAULT_FIELD_MAP, FieldMap
from .sides import source_connector
from .trigger import RUN_KIND, TICK_KIND, ordering_key, request_run  # noqa: F401  (re-exported)

log = logging.getLogger("hub.sync")


@handler(RUN_KIND)
def run_sync(ctx) -> None:
    services = ctx.app.extensions["hub"]
    sync_id = int(ctx.payload["sync_id"])
    with ctx.db.begin() as s:
        sync = s.get(ContactSync, sync_id)
        if sync is None:
            raise Fatal(f"sync {sync_id} was deleted")
    # each committed batch is an effect done: the next batch has a fresh retry budget
    SyncEngine(services, sync_id, trigger=str(ctx.payload.get("trigger", "schedule")), job_id=ctx.job_id,
               after_batch=lambda engine, what: renew_budget()).run()


@handler(TICK_KIND)
def tick(ctx) -> None:
    """A schedule fired: ask for a run (the schedule's own job carries no ordering key)."""
    sync_id = int(ctx.payload["sync_id"])
    sync = ctx.session.get(ContactSync, sync_id)
    if sync is not None and sync.enabled:
        request_run(ctx.app.extensions["hub"], ctx.session, sync_id, "schedule")


@dynamic_schedules
def sync_schedules(app) -> list[Periodic]:
    services = app.extensions["hub"]
    with services.db.begin() as s:
        rows = s.execute(select(ContactSync.id, ContactSync.installation_id, ContactSync.schedule_seconds).where(
            ContactSync.enabled.is_(True), ContactSync.schedule_seconds > 0)).all()
    return [Periodic(f"sync:{r.id}", TICK_KIND, float(r.schedule_seconds), {"sync_id": r.id},
                     installation_id=r.installation_id) for r in rows]


@subscribe
def on_person_event(services: Any, session, event: HubEvent) -> None:
    """A person changed in the CRM: run the syncs of the installation early, except when the event
    is the echo of the hub's own write (its update time is the one the link recorded)."""
    if event.object_type != "person":
        return
    syncs = session.scalars(select(ContactSync).where(ContactSync.installation_id == event.installation_id,
                                                      ContactSync.enabled.is_(True))).all()
    if not syncs:
        return
    installation = session.get(Installation, event.installation_id)
    source = source_connector(installation.provider) if installation is not None else None
    current = (event.data or {}).get("current") or {}
    person = source.contacts.contact_of(current) if source is not None and current else None
    version = canonical_time((person.updated if person is not None else "") or (event.data or {}).get("version"))
    for sync in syncs:
        if event.kind == "person.updated" and version and person is not None:
            link = session.scalar(select(SyncLink).where(SyncLink.sync_id == sync.id,
                                                         SyncLink.crm_id == str(event.object_id)))
            if link is not None and _is_echo(sync, link, person, version):
                continue
        request_run(services, session, sync.id, "event")


def _is_echo(sync: ContactSync, link: SyncLink, person, version: str) -> bool:
    """Our own write coming back: the update time the write answered with, and the values we wrote
    (those that need no call to compare: names, e-mails, phones). Both, because timestamps have
    second resolution and a user may edit in the same second."""
    if link.crm_version != version:
        return False
    record = FieldMap(list(sync.field_map or DEFAULT_FIELD_MAP)).from_source(person)
    comparable = [t for t in ("name", "emails", "phones") if t in record]
    return bool(comparable) and all(record[t] == (link.base or {}).get(t) for t in comparable)
