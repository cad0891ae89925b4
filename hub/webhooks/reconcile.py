"""Reconciliation: a provider may ban an endpoint that keeps failing and drop its events (Pipedrive
does), so each installation's recently changed objects are polled (the connector's `poll`, changed
since the last cursor) and compared with their last known state (its `changes`). Missed
transitions become events through the same `hub.events.record`, whose occurrence keys make an
event the hub already has a no-op: nothing is done twice.

The first poll of an installation only stores the baseline (every object's state), or every deal
ever won would fire rules on day one."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from ..connectors.contract.webhooks import Snapshot
from ..events import canonical_time, get_bookmark, lock_state, record, set_bookmark, trace
from ..events.stale import is_older
from ..jobs import JobContext, handler
from ..scheduler import dynamic_schedules, Periodic
from ..store import Installation, Job, utcnow
from .providers import connector_webhooks, crm_api

log = logging.getLogger("hub.webhooks")
BOOKMARK = "reconcile:deals"   # the name installations' cursors are stored under (kept: no re-baseline)
OVERLAP = timedelta(seconds=2)  # re-read a little before the cursor: same-second changes are not lost
BATCH = 100


@dynamic_schedules
def reconcile_schedules(app: Any) -> list[Periodic]:
    if app is None:
        return []
    seconds = app.extensions["hub"].settings["webhooks.reconcile_seconds"]
    return [Periodic("webhooks.reconcile_all", "webhooks.reconcile_all", seconds, installation_id=None)]  # fans out


@handler("webhooks.reconcile_all")
def reconcile_all(ctx: JobContext) -> None:
    services = ctx.app.extensions["hub"]
    ids = list(ctx.session.scalars(select(Installation.id).where(Installation.status == "active")))
    # an installation whose last poll is still queued or running gets no second one: polls would
    # pile up behind each other and each repeat the same work
    pending = set(ctx.session.scalars(select(Job.installation_id).where(
        Job.kind == "webhooks.reconcile", Job.status.in_(("queued", "running")))))
    for installation_id in ids:
        if installation_id in pending:
            continue
        services.queue.enqueue(ctx.session, "webhooks.reconcile", {"installation_id": installation_id},
                               installation_id=installation_id,
                               dedupe_key=f"reconcile:{installation_id}:{ctx.payload.get('slot', ctx.job_id)}",
                               ordering_key=f"{installation_id}:reconcile")


@handler("webhooks.reconcile")
def reconcile_job(ctx: JobContext) -> None:
    from .registration import ensure_webhooks

    services = ctx.app.extensions["hub"]
    installation_id = ctx.payload["installation_id"]
    # a banned or deleted webhook is put back first, so live delivery resumes after the poll
    summary = ensure_webhooks(services, installation_id)
    if summary["created"]:
        with ctx.db.begin() as session:
            trace(session, installation_id, "webhooks", f"{summary['created']} webhooks re-created "
                  f"({summary['deleted']} banned or stale removed)", job_id=ctx.job_id, **summary)
    reconcile_installation(services, installation_id, job_id=ctx.job_id)


def reconcile_installation(services: Any, installation_id: int, *, job_id: int | None = None) -> dict[str, int]:
    with services.db.begin() as session:
        installation = session.get(Installation, installation_id)
        if installation is None or installation.status != "active":
            return {"objects": 0, "events": 0}
        hooks = connector_webhooks(installation.provider)
        if hooks is None or hooks.poll is None:
            return {"objects": 0, "events": 0}
        bookmark = get_bookmark(session, installation_id, BOOKMARK)
    baseline = bookmark is None
    since = None if baseline else bookmark["since"]
    client = crm_api(services, installation_id)
    counts = {"objects": 0, "events": 0}
    newest = since
    batch: list[Snapshot] = []

    def flush() -> None:
        nonlocal batch
        with services.db.begin() as session:
            for snapshot in batch:
                counts["objects"] += 1
                if baseline:
                    _store_baseline(session, installation_id, snapshot)
                    continue
                counts["events"] += compare(services, session, installation_id, hooks, snapshot, "reconcile")
            if newest:
                set_bookmark(session, installation_id, BOOKMARK, {"since": newest})
        batch = []

    changed_since = datetime.fromisoformat(since) - OVERLAP if since else None
    for snapshot in hooks.poll(client, changed_since):
        batch.append(snapshot)
        stamp = canonical_time(snapshot.version)
        if stamp and (newest is None or stamp > newest):
            newest = stamp
        if len(batch) >= BATCH:
            flush()
    if batch or baseline:
        if newest is None:
            newest = canonical_time(services.queue.clock.now())
        flush()
    with services.db.begin() as session:
        message = (f"baseline of {counts['objects']} objects stored" if baseline else
                   f"{counts['objects']} changed objects checked, {counts['events']} missed events recovered")
        trace(session, installation_id, "reconcile", message, job_id=job_id, **counts)
    return counts


def compare(services: Any, session, installation_id: int, hooks: Any, snapshot: Snapshot, source: str,
            inbox_event_id: int | None = None) -> int:
    """The object as the API shows it now against the state the hub knows (`hooks.changes`): the
    transitions between them are recorded, and the snapshot becomes the known state. The state row
    is locked, so a webhook and a poll of one object compare one after the other; a snapshot older
    than the known state (read before a newer one was stored) finds nothing. Returns how many
    events it recorded that count (a stale one a newer state contradicts does not)."""
    state, new_object = lock_state(session, installation_id, snapshot.object_type, snapshot.object_id)
    if not new_object and is_older(canonical_time(snapshot.version), state.version):
        return 0
    before = dict(state.data) if state.data else None
    counted = 0
    for event in hooks.changes(before, snapshot):
        recorded = record(services, session, installation_id, event, source=source, inbox_event_id=inbox_event_id)
        stale = (recorded.data or {}).get("stale") if recorded is not None else None
        if recorded is not None and (stale is None or stale["acted"]):
            counted += 1
    _store_baseline(session, installation_id, snapshot)
    return counted


def _store_baseline(session, installation_id: int, snapshot: Snapshot) -> None:
    """The API's view of the object becomes its known state, unless a newer webhook state is there."""
    version = canonical_time(snapshot.version)
    row, new_object = lock_state(session, installation_id, snapshot.object_type, snapshot.object_id)
    if not new_object and is_older(version, row.version):
        return
    row.version, row.deleted, row.data = version or "", bool(snapshot.deleted), snapshot.data
    row.updated_at = utcnow()
