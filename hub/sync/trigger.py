"""Asking for a run of a sync. Every path (the schedule, "Sync now", the CLI, CRM person events, a
run's fan-out to shares) goes through `request_run`, which enqueues a `sync.run` job with the sync's
ordering key (runs of one sync never overlap in the queue) and coalesces: while a run of the sync is
already waiting, another request adds nothing. The runner and the job handlers both use it, so it
lives apart from either."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub.store import Job
from hub.store.models import ContactSync

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


def run_waiting(session, sync_id: int) -> bool:
    """A run of the sync is queued and not started yet (the sync page then watches for it)."""
    return session.scalar(select(Job.id).where(Job.kind == RUN_KIND, Job.ordering_key == ordering_key(sync_id),
                                               Job.status == "queued").limit(1)) is not None
