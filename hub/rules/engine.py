"""From a recorded event to the runs of the rules it matches.

Delivery is at least once, the effect exactly once:
- matching runs inside the transaction that records the event (hub.events.subscribe); the run row
  (unique effect key: rule, object, occurrence; or rule, object for a rule that fires once per
  object) and its job (dedupe key: rule, event) are written there, so a duplicate event or a second
  matching pass adds nothing;
- the job (runner.py) runs the rule's steps in order, each with its own effect key (the run's and
  the step's uid) and status (`RuleStepRun`): a retry or a replay skips every step that completed,
  and a target's `ensure()` is idempotent for the step's effect key anyway. Provider calls happen
  outside any transaction; progress is kept in short transactions, the outcome in the job's own;
- a wait (a `wait` step, or a step's delay) ends the job with the run waiting and a job scheduled
  for later in the same queue (`run_at`), written in that same transaction: it survives restarts.
  When it wakes, a rule deactivated since stops the run (with a log entry); a rule edited since
  continues with its current steps;
- the outcome (done, or failed with a readable reason and one e-mail per rule version) is written
  in the job's own transaction, which marks the job done exactly once.
429/5xx are retried by the job queue honouring Retry-After; permanent errors fail the run, and so
does a run whose failed provider requests used up its budget (hub/connectors/retry.py)."""
from __future__ import annotations

import hashlib
import weakref
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, cast, func, literal, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert as pg_insert

from ..events import subscribe, trace
from ..store import HubEvent, Installation, Job, fast, utcnow
from ..store.models import Rule, RuleRun
from ..store.db import transaction_memo
from ..store.sql import insert_ignore
from .triggers import reader, trigger as find_trigger

JOB_KIND = "rule.execute"


def effect_key(rule_id: int, event: HubEvent, fires: str = "every") -> str:
    """The run's unique key: per occurrence (a deal won, reopened and won again runs twice), or
    per object for a rule that fires once, so that choice holds across processes as well."""
    if fires == "once":
        return f"r{rule_id}:{event.object_type}:{event.object_id}:once"[:200]
    digest = hashlib.sha256(event.occurrence.encode()).hexdigest()[:32]
    return f"r{rule_id}:{event.object_type}:{event.object_id}:{digest}"[:200]


def step_effect_key(run_key: str, step_uid: str) -> str:
    """A step's own key within its run."""
    return f"{run_key}:{step_uid}"


def enqueue_run(services: Any, session, run: Any, *, retry_of: int | None = None) -> int | None:
    dedupe = f"{JOB_KIND}:{run.rule_id}:{run.hub_event_id}"
    if retry_of is not None:
        dedupe += f":retry:{run.id}:{retry_of}"
    return services.queue.enqueue(session, JOB_KIND, {"run_id": run.id}, installation_id=run.installation_id,
                                  ordering_key=f"rules:{run.installation_id}:{run.object_type}:{run.object_id}",
                                  dedupe_key=dedupe[:200])


def enqueue_wake(services: Any, session, run: Any, step_uid: str, wake_at) -> int | None:
    """The job that continues a waiting run at `wake_at`. Its ordering key is the run's own: a
    job due days from now must not hold back the object's other rules meanwhile."""
    return services.queue.enqueue(session, JOB_KIND, {"run_id": run.id, "wake": step_uid},
                                  installation_id=run.installation_id, ordering_key=f"rules:run:{run.id}",
                                  dedupe_key=f"{JOB_KIND}:{run.id}:wake:{step_uid}"[:200], run_at=wake_at)


@subscribe
def match_rules(services: Any, session, event: HubEvent) -> None:
    """Inside the transaction recording a new event: a run and a job per matching active rule, and
    for each active rule of its kind that it does not fit, a log entry saying why."""
    rules = [r for r in _active_rules(session, event.installation_id) if r.trigger == event.kind]
    if not rules:
        return
    provider = rules[0].installation_provider
    trigger = find_trigger(event.kind, provider)
    if trigger is None:
        return
    value = reader(provider, trigger.object_type)
    for rule in rules:
        reason = trigger.mismatch(rule, event.data or {}, value)
        if reason is not None:   # the run log says why (the editor's preview says it the same way)
            trace(session, event.installation_id, "rule.not_matched", f"rule “{rule.name}” skipped it: {reason}",
                  status="info", hub_event_id=event.id, rule_id=rule.id, reason=reason)
            continue
        if rule.fires == "once" and _ran_for(session, rule.id, event):
            trace(session, event.installation_id, "rule.once",
                  f"rule “{rule.name}” already ran for {event.object_type} {event.object_id}; it fires once per "
                  f"{event.object_type}", status="info", hub_event_id=event.id, rule_id=rule.id)
            continue
        key = effect_key(rule.id, event, rule.fires)
        now = utcnow()
        values = {"installation_id": event.installation_id, "rule_id": rule.id, "hub_event_id": event.id,
                  "effect_key": key, "object_type": event.object_type, "object_id": event.object_id,
                  "status": "queued", "attempts": 0, "detail": {}, "created_at": now, "updated_at": now}
        if session.get_bind().dialect.name == "postgresql":
            run_id, job_id = _insert_run_and_job(services, session, values)
            if run_id is None:
                continue  # this rule already handles this occurrence
        else:
            run_id = insert_ignore(session, RuleRun, values, ["installation_id", "effect_key"])
            if run_id is None:
                continue
            run = SimpleNamespace(id=run_id, installation_id=event.installation_id, rule_id=rule.id,
                                  hub_event_id=event.id, object_type=event.object_type,
                                  object_id=event.object_id)   # what enqueue_run reads (no second SELECT)
            job_id = enqueue_run(services, session, run)
        trace(session, event.installation_id, "rule.matched",
              f"rule “{rule.name}” matched {event.kind} {event.object_type} {event.object_id}",
              hub_event_id=event.id, rule_id=rule.id, job_id=job_id, run_id=run_id)


def _insert_run_and_job(services: Any, session, values: dict) -> tuple[int | None, int | None]:
    """PostgreSQL: `insert_ignore` of the run and then `enqueue_run` of its job, as one statement
    (the job's INSERT selects the run id from the run's, a CTE). (None, None) when the run existed;
    a job id of None when its dedupe key did (as `enqueue` returns)."""
    queue = services.queue
    session.flush()   # as insert_ignore: pending ORM rows go first
    row = fast.execute(session.connection(), _RUN_AND_JOB, {
        **{f"r_{key}": value for key, value in values.items()}, "j_max_attempts": queue.max_attempts,
        "j_at": queue.clock.now(), "j_ordering_key": f"rules:{values['installation_id']}:{values['object_type']}:"
                                                     f"{values['object_id']}",
        "j_dedupe_key": f"{JOB_KIND}:{values['rule_id']}:{values['hub_event_id']}"[:200]}).first()
    if row is None:
        return None, None
    if row.job_id is not None:
        queue.inserted(session, row.job_id, JOB_KIND)
    return row.run_id, row.job_id


def _run_and_job():
    runs, jobs = RuleRun.__table__, Job.__table__
    columns = ("installation_id", "rule_id", "hub_event_id", "effect_key", "object_type", "object_id", "status",
               "attempts", "detail", "created_at", "updated_at")
    run = pg_insert(runs).values({key: bindparam(f"r_{key}", type_=runs.c[key].type) for key in columns}) \
        .on_conflict_do_nothing(index_elements=["installation_id", "effect_key"]).returning(runs.c.id).cte("new_run")
    job = pg_insert(jobs).from_select(
        ["kind", "payload", "installation_id", "status", "attempts", "max_attempts", "failed_calls", "run_at",
         "ordering_key", "dedupe_key", "created_at", "updated_at"],
        select(literal(JOB_KIND), cast(func.json_build_object("run_id", run.c.id), jobs.c.payload.type),
               bindparam("r_installation_id", type_=jobs.c.installation_id.type), literal("queued"), literal(0),
               bindparam("j_max_attempts", type_=jobs.c.max_attempts.type), literal(0),
               bindparam("j_at", type_=jobs.c.run_at.type), bindparam("j_ordering_key", type_=jobs.c.ordering_key.type),
               bindparam("j_dedupe_key", type_=jobs.c.dedupe_key.type), bindparam("j_at", type_=jobs.c.created_at.type),
               bindparam("j_at", type_=jobs.c.updated_at.type)).select_from(run),
        include_defaults=False).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(jobs.c.id).cte("new_job")
    return select(run.c.id.label("run_id"), select(job.c.id).scalar_subquery().label("job_id")).select_from(run)


_RUN_AND_JOB = _run_and_job()
_RULES = Rule.__table__
_INSTALLATIONS = Installation.__table__
_ACTIVE_RULES = select(_RULES, _INSTALLATIONS.c.provider.label("installation_provider")).join(
    _INSTALLATIONS, _INSTALLATIONS.c.id == _RULES.c.installation_id).where(
    _RULES.c.installation_id == bindparam("installation_id"), _RULES.c.status == "active").order_by(_RULES.c.id)
_RULES_READ = "hub.rules.active"
RULE_VERSIONS = "hub.rules.versions"   # installation id -> ((rule id, row version), ...) of its active rules
_ROW_VERSION = "rules.xmin::text::bigint"   # PostgreSQL: changes with every write of the row
_ACTIVE_RULES_PG = _ACTIVE_RULES.add_columns(literal_column(_ROW_VERSION).label("row_version"))
_KEPT: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()   # engine -> (iid, versions) -> rows


def active_rule_versions(installation_id):
    """PostgreSQL: a scalar subquery giving the installation's active rules as [[id, row version],
    ...] (NULL for none), for a statement the transaction runs anyway (the webhook job's first one)
    to return. The row version is the row's xmin, which every write of the row changes (an edit,
    a status change, its last error) and which a deleted rule's id given again never repeats."""
    pair = literal_column(f"ARRAY[rules.id, {_ROW_VERSION}]")
    return select(func.array_agg(aggregate_order_by(pair, _RULES.c.id))).where(
        _RULES.c.installation_id == installation_id, _RULES.c.status == "active").scalar_subquery()


def _active_rules(session, installation_id: int) -> list:
    """The installation's active rules (rows, with the installation's CRM as `installation_provider`),
    read once per transaction: a webhook that gives several events matches them all against one
    reading. When the transaction learned their ids and row versions (`RULE_VERSIONS`, on
    PostgreSQL), the rows this process read for that very list are used instead: no statement."""
    read = transaction_memo(session, _RULES_READ)
    if installation_id not in read:
        versions = transaction_memo(session, RULE_VERSIONS).get(installation_id)
        if versions is None:
            rows = fast.execute(session.connection(), _ACTIVE_RULES, {"installation_id": installation_id}).all()
        else:
            kept = _KEPT.setdefault(session.get_bind(), {})
            rows = kept.get((installation_id, versions))
            if rows is None:
                rows = fast.execute(session.connection(), _ACTIVE_RULES_PG,
                                    {"installation_id": installation_id}).all()
                if tuple((r.id, r.row_version) for r in rows) == versions:   # as of the versions read
                    if len(kept) > 1000:
                        kept.clear()
                    kept[(installation_id, versions)] = rows
        read[installation_id] = rows
    return read[installation_id]


def _ran_for(session, rule_id: int, event: HubEvent) -> bool:
    """A run of this rule for this object exists (also one made while the rule fired every time)."""
    return session.scalar(select(RuleRun.id).where(
        RuleRun.installation_id == event.installation_id, RuleRun.rule_id == rule_id,
        RuleRun.object_type == event.object_type, RuleRun.object_id == event.object_id).limit(1)) is not None
