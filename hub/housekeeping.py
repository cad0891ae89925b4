"""Periodic clean-up: finished jobs and stale process heartbeats do not pile up forever."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from .jobs import JobContext, handler
from .scheduler import periodic
from .store import Job, ProcessHeartbeat, utcnow


@handler("hub.housekeeping")
def housekeeping(ctx: JobContext) -> None:
    keep_days = ctx.app.extensions["hub"].settings["jobs.keep_done_days"] if ctx.app else 7
    now = utcnow()
    ctx.session.execute(delete(Job).where(Job.status == "done", Job.finished_at < now - timedelta(days=keep_days)))
    ctx.session.execute(delete(ProcessHeartbeat).where(ProcessHeartbeat.beat_at < now - timedelta(days=1)))


periodic("hub.housekeeping", "hub.housekeeping", seconds=3600)
