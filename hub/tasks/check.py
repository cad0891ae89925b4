"""The scheduled check: every `tasks.check_seconds` each installation's open linked tasks (and
those under review) are re-read through their target's `TaskTarget.state`, oldest-checked first, in
batches of `tasks.check_batch` (each committed before the next, with a fresh retry budget), at most
`tasks.check_max` per check. A passed deadline makes a task overdue (the hub's clock decides); a
task deleted or no longer visible is marked gone and never read again.

Failures stay bounded: a 429/5xx ends the check with what it read so far kept (the job queue
retries it honouring Retry-After); a connection that needs reconnecting is skipped for the rest of
the check; a request budget used up ends the check until the next schedule."""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from ..connectors.contract.targets import TASK_STATUSES, TaskState
from ..connectors.retry import BudgetExhausted, renew_budget
from ..errors import Fatal, NeedsReauth, Retriable
from ..events import trace
from ..jobs import JobContext, handler
from ..rules import connections
from ..rules.steps.complete import completer
from ..rules.steps.make import make_target
from ..scheduler import Periodic, dynamic_schedules
from ..store import Installation, Job
from ..store.models import RuleLink, TaskStatus
from . import mirror

log = logging.getLogger("hub.tasks")
CHECKED = ("open", "review")     # link statuses whose tasks can still change


@dynamic_schedules
def check_schedules(app: Any) -> list[Periodic]:
    if app is None:
        return []
    seconds = float(app.extensions["hub"].settings["tasks.check_seconds"])
    return [Periodic("tasks.check_all", "tasks.check_all", seconds, installation_id=None)] if seconds > 0 else []


@handler("tasks.check_all")
def check_all(ctx: JobContext) -> None:
    """Fans out: one check per installation with open linked tasks (none while its last one waits)."""
    services = ctx.app.extensions["hub"]
    ids = ctx.session.scalars(select(RuleLink.installation_id).join(
        Installation, Installation.id == RuleLink.installation_id).where(
        Installation.status == "active", RuleLink.made == "task", RuleLink.status.in_(CHECKED)).distinct()).all()
    pending = set(ctx.session.scalars(select(Job.installation_id).where(
        Job.kind == "tasks.check", Job.status.in_(("queued", "running")))))
    for installation_id in sorted(set(ids) - pending):
        services.queue.enqueue(ctx.session, "tasks.check", {"installation_id": installation_id},
                               installation_id=installation_id, ordering_key=f"{installation_id}:tasks.check",
                               dedupe_key=f"tasks.check:{installation_id}:{ctx.payload.get('slot', ctx.job_id)}")


@handler("tasks.check")
def check_job(ctx: JobContext) -> None:
    check_installation(ctx.app.extensions["hub"], int(ctx.payload["installation_id"]), job_id=ctx.job_id)


def _due(session, installation_id: int, started, skip: set[int], limit: int) -> list[tuple]:
    """The next links to read: not read in this check yet, the longest unread first."""
    query = (select(RuleLink.id, RuleLink.connector, RuleLink.connection_id, RuleLink.made, RuleLink.external_id)
             .outerjoin(TaskStatus, TaskStatus.link_id == RuleLink.id)
             .where(RuleLink.installation_id == installation_id, RuleLink.made == "task",
                    RuleLink.status.in_(CHECKED),
                    (TaskStatus.checked_at.is_(None)) | (TaskStatus.checked_at < started))
             .order_by(TaskStatus.checked_at.is_not(None), TaskStatus.checked_at, RuleLink.id).limit(limit))
    if skip:
        query = query.where(RuleLink.id.not_in(skip))
    return list(session.execute(query).all())


def _read(target: Any, external_id: str) -> TaskState:
    """`state` where the target has it; else its coarse `status`."""
    if hasattr(target, "state"):
        state = target.state(external_id)
        if isinstance(state, TaskState):
            return state
        status = str(state)
    else:
        status = target.status(external_id)
    if status in TASK_STATUSES:
        return TaskState(status)
    return TaskState("gone" if status == "deleted" else status if status == "completed" else "open")


def check_installation(services: Any, installation_id: int, *, job_id: int | None = None) -> dict[str, int]:
    s = services.settings
    batch, cap = max(1, int(s["tasks.check_batch"])), max(1, int(s["tasks.check_max"]))
    clock = services.queue.clock
    started = clock.now()
    counts = {"read": 0, "changed": 0, "overdue": 0, "gone": 0, "skipped": 0}
    skip: set[int] = set()
    refused: set[int | None] = set()
    targets: dict[int | None, Any] = {}
    problems: list[str] = []

    def target_of(connector: str, connection_id: int | None, kind: Any) -> Any:
        if connection_id not in targets:
            with services.db.begin() as session:
                connection = connections.step_connection(session, installation_id, connection_id, connector)
                session.expunge(connection)
            targets[connection_id] = make_target(services, kind, connection)
        return targets[connection_id]

    def save(answers: list[tuple[int, TaskState]]) -> None:
        with services.db.begin() as session:
            for link_id, state in answers:
                link = session.get(RuleLink, link_id)
                if link is None:
                    continue
                before = session.scalar(select(TaskStatus.status).where(TaskStatus.link_id == link_id))
                row = mirror.apply_state(session, link, state, clock.now())
                if row.status != before:
                    counts["changed"] += 1
                    counts["overdue"] += row.status == "overdue"
                    counts["gone"] += row.status == "gone"
        renew_budget()

    stopped: BaseException | None = None
    while counts["read"] + counts["skipped"] < cap and stopped is None:
        with services.db.begin() as session:
            rows = _due(session, installation_id, started, skip, min(batch, cap - counts["read"] - counts["skipped"]))
        if not rows:
            break
        answers: list[tuple[int, TaskState]] = []
        for link_id, connector, connection_id, made, external_id in rows:
            kind = completer(connector, made)
            if kind is None or connection_id in refused:
                skip.add(link_id)
                counts["skipped"] += 1
                continue
            try:
                answers.append((link_id, _read(target_of(connector, connection_id, kind), external_id)))
                counts["read"] += 1
            except NeedsReauth as exc:
                refused.add(connection_id)
                skip.add(link_id)
                counts["skipped"] += 1
                problems.append(f"{connections.title(connector)}: {exc}")
            except (Retriable, BudgetExhausted) as exc:
                stopped = exc
                break
            except Fatal as exc:
                if exc.status in (403, 404, 410):
                    answers.append((link_id, TaskState("gone", detail=str(exc)[:200])))
                    counts["read"] += 1
                else:
                    skip.add(link_id)
                    counts["skipped"] += 1
                    problems.append(f"{connections.title(connector)} task {external_id}: {exc}")
        save(answers)
    if counts["changed"] or problems or stopped is not None:
        with services.db.begin() as session:
            message = (f"{counts['read']} linked task(s) read: {counts['changed']} changed, {counts['overdue']} "
                       f"overdue, {counts['gone']} gone")
            if problems:
                message += "; not read: " + "; ".join(problems[:5])
            if stopped is not None:
                message += f"; stopped: {stopped}"
            trace(session, installation_id, "tasks.checked", message,
                  status="error" if problems or stopped is not None else "ok", job_id=job_id, **counts)
    if isinstance(stopped, Retriable):
        raise stopped      # the queue tries again (Retry-After honoured); what was read is kept
    return counts
