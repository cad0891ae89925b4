"""A recorded event replayed, on the rules' side: each of its runs goes again (matching itself runs
again through the event's subscribers, hub/webhooks/processing.py `replay_event`).

Exactly once still holds: a run keeps its effect key, so the job that runs it again skips what
it already did (each step's own effect key and status; a target found by its external id), and
matching again adds no run where one exists (the run's unique effect key). A run still in flight
(queued, running, retrying, waiting) is left alone: its own job finishes it; a run of a rule that
is no longer active stays as it is, as matching leaves such a rule out."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..events import trace
from ..store import HubEvent, utcnow
from ..store.models import Rule, RuleRun
from .engine import JOB_KIND

IN_FLIGHT = frozenset({"queued", "running", "retrying", "reconnect", "waiting"})


def ordering_key(run: Any) -> str:
    """The queue's ordering key of a run's job: the same as `engine.enqueue_run` gives it, so a
    replayed run never overtakes (or is overtaken by) another rule's run on the same object."""
    return f"rules:{run.installation_id}:{run.object_type}:{run.object_id}"


def requeue_runs(services: Any, session, event: HubEvent, replay: str) -> list[int]:
    """Inside the replay's transaction: queue every finished run of `event` again (the run ids).
    `replay` tells this replay's jobs from an earlier replay's (their dedupe keys)."""
    runs = session.scalars(select(RuleRun).where(RuleRun.installation_id == event.installation_id,
                                                 RuleRun.hub_event_id == event.id)
                           .order_by(RuleRun.id).with_for_update()).all()
    active = {r.id for r in session.scalars(select(Rule).where(Rule.installation_id == event.installation_id,
                                                               Rule.status == "active"))}
    again = []
    for run in runs:
        if run.status in IN_FLIGHT:
            continue
        if run.rule_id not in active:    # matching leaves out inactive rules: so does their runs' replay
            trace(session, run.installation_id, "rule.not_requeued",
                  f"run {run.id} ({run.status}) does not run again: its rule is not active", status="info",
                  hub_event_id=event.id, rule_id=run.rule_id, run_id=run.id)
            continue
        was = run.status
        # from its first step again; the steps it completed are skipped (their own status and key)
        run.status, run.error, run.finished_at, run.updated_at = "queued", None, None, utcnow()
        run.step_uid, run.wake_at = None, None
        job_id = services.queue.enqueue(session, JOB_KIND, {"run_id": run.id}, installation_id=run.installation_id,
                                        ordering_key=ordering_key(run),
                                        dedupe_key=f"{JOB_KIND}:{run.rule_id}:{run.hub_event_id}:replay:{run.id}:"
                                                   f"{replay}"[:200])
        trace(session, run.installation_id, "rule.requeued",
              f"run {run.id} ({was}) runs again; what it already did is not repeated",
              hub_event_id=event.id, rule_id=run.rule_id, job_id=job_id, run_id=run.id)
        again.append(run.id)
    return again
