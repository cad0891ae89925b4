"""How sync runs get started: the schedule (one `Periodic` per enabled sync), "Sync now", the CLI,
and CRM person events (an early run). Every path goes through `request_run`, which enqueues a
`sync.run` job with the sync's ordering key (runs of one sync never overlap in the queue) and
coalesces: while a run of the sync is already waiting, another request adds nothing."""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from hub.connectors.retry import renew_budget
from hub.errors import Fatal
from hub.events import canonical_time, subscribe
from hub.jobs import handler
from hub.scheduler import Periodic, dynamic_schedules
from hub.store import HubEvent, Job
from hub.store.models import ContactSync, SyncLink

from .mapping import DEFAULT_FIELD_MAP, FieldMap

log = logging.getLogger("hub.sync")
RUN_KIND = "sync.run"
TICK_KIND = "sync.tick"


def ordering_key(sync_id: int) -> str:
    return f"sync:{sync_id}"


def request_run(services: Any, session, sync_id: int, trigger: str) -> int | None:
    """Enqueue a run of the sync inside `session` unless one is already waiting; the job id or None."""
    sync = session.get(ContactSync, sync_id)
    if sync is None:
        return None   # deleted meanwhile: nothing to run
    waiting = session.scalar(select(Job.id).where(Job.kind == RUN_KIND, Job.ordering_key == ordering_key(sync_id),
                                                  Job.status == "queued").limit(1))
    if waiting is not None:
        return None
    return services.queue.enqueue(session, RUN_KIND, {"sync_id": sync_id, "trigger": trigger},
                                  installation_id=sync.installation_id, ordering_key=ordering_key(sync_id))


@handler(RUN_KIND)
def run_sync(ctx) -> None:
    from .engine import SyncEngine

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
    is the echo of the hub's own write (its update_time is the one the link recorded)."""
    if event.object_type != "person":
        return
    syncs = session.scalars(select(ContactSync).where(ContactSync.installation_id == event.installation_id,
                                                      ContactSync.enabled.is_(True))).all()
    current = (event.data or {}).get("current") or {}
    version = canonical_time(current.get("update_time") or (event.data or {}).get("version"))
    for sync in syncs:
        if event.kind == "person.updated" and version and current:
            link = session.scalar(select(SyncLink).where(SyncLink.sync_id == sync.id,
                                                         SyncLink.crm_id == str(event.object_id)))
            if link is not None and _is_echo(sync, link, current, version):
                continue
        request_run(services, session, sync.id, "event")


def _is_echo(sync: ContactSync, link: SyncLink, current: dict, version: str) -> bool:
    """Our own write coming back: the update_time the write answered with, and the values we wrote
    (those that need no API call to compare: names, e-mails, phones). Both, because timestamps have
    second resolution and a user may edit in the same second."""
    if link.crm_version != version:
        return False
    fields = FieldMap(list(sync.field_map or DEFAULT_FIELD_MAP))
    record = fields.from_crm(current, {})
    comparable = [t for t in ("names", "emailAddresses", "phoneNumbers") if t in record]
    return bool(comparable) and all(record[t] == (link.base or {}).get(t) for t in comparable)


def run_waiting(session, sync_id: int) -> bool:
    """A run of the sync is queued and not started yet (the sync page then watches for it)."""
    return session.scalar(select(Job.id).where(Job.kind == RUN_KIND, Job.ordering_key == ordering_key(sync_id),
                                               Job.status == "queued").limit(1)) is not None
