"""One run of a rule: the `rule.execute` job. It reads what the run needs once (the rule's current
steps and what each already did in this run), runs the steps in order outside any transaction, and
writes the outcome in the job's own transaction (see engine.py for the guarantees).

A step's progress (`RuleStepRun`) is written before the next step makes its calls, so a retry
never repeats a completed step; the last step's progress goes with the outcome. A step with a
delay ends the job: the run waits, and a job scheduled for later continues it."""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from types import SimpleNamespace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from ..errors import Fatal, NeedsReauth, Retriable
from ..events import flags, trace
from ..jobs import JobContext, handler
from ..jobs.registry import starter
from ..mail import queue_mail
from ..mappings import Carry, Limits, Mapping, TargetRenderer, TemplateProblem
from ..store import Connection, HubEvent, Installation, InstallationUser, fast, utcnow
from ..store.db import defer_write
from ..store.models import ObjectFlag, Rule, RuleRun, RuleStep, RuleStepRun
from ..store.sql import insert_ignore
from . import connections, kinds
from .conditions import condition_holds, describe
from .engine import JOB_KIND, enqueue_wake, step_effect_key

log = logging.getLogger("hub.rules")


class RunFailed(Fatal):
    """A permanent problem found by the hub itself (the message is for the admin)."""


@dataclass
class Step:
    """A rule's step as saved, detached from the session."""

    uid: str
    position: int
    number: int                      # 1-based, as the editor shows it
    kind: str
    connection_id: int | None
    settings: dict[str, Any]
    templates: dict[str, str]
    carry: Carry
    mappings: list[Mapping]
    condition: dict[str, Any] | None
    delay_seconds: int
    due_in_days: int | None

    @classmethod
    def of(cls, row: RuleStep, number: int) -> "Step":
        return cls(row.uid, row.position, number, row.kind, row.connection_id, dict(row.settings or {}),
                   dict(row.templates or {}), Carry.from_dict(row.carry),
                   [Mapping(m.get("source", "deal"), m.get("key", ""), m.get("label", ""), m.get("type", ""),
                            dict(m.get("options") or {})) for m in row.mappings or [] if isinstance(m, dict)],
                   dict(row.condition) if row.condition else None, int(row.delay_seconds or 0), row.due_in_days)

    @property
    def label(self) -> str:
        kind = kinds.get(self.kind)
        return f"step {self.number} ({kind.label if kind else self.kind})"


@dataclass
class State:
    """A step's progress in this run (a `RuleStepRun`, saved or still to be saved)."""

    uid: str
    position: int
    kind: str
    effect_key: str
    status: str = "pending"          # pending waiting (for its delay) done skipped
    external_id: str | None = None
    wake_at: datetime | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    row_id: int | None = None
    finished: bool = False

    @classmethod
    def of(cls, row: RuleStepRun) -> "State":
        return cls(row.step_uid, row.position, row.kind, row.effect_key, row.status, row.external_id, row.wake_at,
                   dict(row.detail or {}), row.id, row.finished_at is not None)


@dataclass
class Plan:
    """Everything a run needs, read once at its start (the session is closed before any call)."""

    run_id: int
    installation_id: int
    rule_id: int
    rule_name: str
    rule_version: int
    hub_event_id: int
    kind: str
    object_type: str
    object_id: str
    current: dict | None             # the object as the event saw it; None after a wait (read it then)
    occurred_at: datetime | None
    run_key: str
    key_prefix: str                  # makes a step's effect key unique across installations
    steps: list[Step]
    states: dict[str, State]
    start: int
    detail: dict[str, Any]
    wake: str | None = None          # the step whose delay is over (this job is its wake-up)
    held_back: str | None = None     # why auto-advance is off for the object (None: on); flags.py
    # an earlier try began and never wrote an outcome (its worker died or lost the lease): its
    # write-ahead marks may be missing; see `Execution.may_have_sent`
    crashed: bool = False
    installation: Any = None         # provider, company_id, status, installer_user_id (None: gone)
    accounts: dict[int, Any] = field(default_factory=dict)   # the installation's connections, by id
    rule_error: bool = False         # the rule showed a last error when the run began


# -- reading the plan -----------------------------------------------------------------------------
def _start(steps: list[Step], states: dict[str, State], resume: str | None) -> int:
    """Where this part of the run begins: at the start, or where it waited. A rule edited while it
    waited continues with its current steps: at the step it waited for, or (that step removed)
    with the first step that came after it."""
    if not resume:
        return 0
    index = next((n for n, s in enumerate(steps) if s.uid == resume), None)
    if index is not None:
        return index
    waited = states.get(resume)
    position = waited.position if waited else -1
    return next((n for n, s in enumerate(steps) if s.position > position), len(steps))


def _stop(session, run: RuleRun, job_id: int, reason: str) -> None:
    run.status, run.error, run.finished_at, run.updated_at = "stopped", reason[:4000], utcnow(), utcnow()
    trace(session, run.installation_id, "rule.stopped", f"run {run.id}: {reason}", status="info",
          hub_event_id=run.hub_event_id, rule_id=run.rule_id, job_id=job_id, run_id=run.id)


_RUNS, _RULES, _EVENTS = RuleRun.__table__, Rule.__table__, HubEvent.__table__
_STEPS, _STEP_RUNS, _INSTALLATIONS = RuleStep.__table__, RuleStepRun.__table__, Installation.__table__
_FLAGS = ObjectFlag.__table__
_READ_ACCOUNTS = select(Connection.__table__).where(Connection.__table__.c.installation_id == bindparam("installation_id"))


def _read_run(run_id: str):
    """The run (by the parameter `run_id` names) with its rule, event and installation (each None
    when gone): one round trip."""
    return select(
        _RUNS, _RULES.c.name.label("rule_name"), _RULES.c.status.label("rule_status"),
        _RULES.c.version.label("rule_version"), _RULES.c.last_error.label("rule_error"), _RULES.c.id.label("rule_found"),
        _RULES.c.created_at.label("rule_created"),
        _EVENTS.c.kind.label("event_kind"), _EVENTS.c.data.label("event_data"),
        _EVENTS.c.occurred_at.label("event_occurred_at"), _EVENTS.c.id.label("event_found"),
        _INSTALLATIONS.c.provider, _INSTALLATIONS.c.company_id, _INSTALLATIONS.c.status.label("installation_status"),
        _INSTALLATIONS.c.installer_user_id, _INSTALLATIONS.c.id.label("installation_found"),
        # the object's auto-advance flag (hub/events/flags.py), at most one row by its unique key
        _FLAGS.c.value.label("flag_value"), _FLAGS.c.reason.label("flag_reason"), _FLAGS.c.set_at.label("flag_set_at"),
    ).select_from(_RUNS.outerjoin(_RULES, _RULES.c.id == _RUNS.c.rule_id)
                  .outerjoin(_EVENTS, _EVENTS.c.id == _RUNS.c.hub_event_id)
                  .outerjoin(_INSTALLATIONS, _INSTALLATIONS.c.id == _RUNS.c.installation_id)
                  .outerjoin(_FLAGS, (_FLAGS.c.installation_id == _RUNS.c.installation_id)
                             & (_FLAGS.c.connector == _INSTALLATIONS.c.provider) & (_FLAGS.c.object_type == _RUNS.c.object_type)
                             & (_FLAGS.c.object_id == _RUNS.c.object_id) & (_FLAGS.c.key == flags.AUTO_ADVANCE))).where(
        _RUNS.c.id == bindparam(run_id))


_READ_RUN = _read_run("id")
_READ_STEPS = select(_STEPS).where(_STEPS.c.rule_id == bindparam("rule_id")).order_by(_STEPS.c.position, _STEPS.c.id)
_READ_STATES = select(_STEP_RUNS).where(_STEP_RUNS.c.run_id == bindparam("run_id"))
_RUN_STARTS = _RUNS.update().where(_RUNS.c.id == bindparam("b_id")).values(
    status="running", attempts=bindparam("b_attempts"), detail=bindparam("b_detail"), updated_at=bindparam("b_at"))
# PostgreSQL: the run marked running (attempts + 1) as it is read, in one statement (a CTE), when
# its status lets it start; `read_plan` undoes it in the rare cases it then finds it must not
_STARTED = _RUNS.update().where(
    _RUNS.c.id == bindparam("b_run"), *(_RUNS.c.status != ended for ended in ("done", "stopped", "skipped")),
    or_(_RUNS.c.status != "waiting", _RUNS.c.step_uid.isnot_distinct_from(bindparam("wake", type_=String))),
).values(status="running", attempts=_RUNS.c.attempts + 1, updated_at=bindparam("b_at")).returning(_RUNS.c.id).cte("started")
_READ_AND_START = _read_run("b_run").add_columns(select(func.count()).select_from(_STARTED).scalar_subquery().label("started"))
_RUN_UNSTART = _RUNS.update().where(_RUNS.c.id == bindparam("b_id")).values(
    status=bindparam("b_status"), attempts=bindparam("b_attempts"), updated_at=bindparam("b_at"))
_RUN_DONE = _RUNS.update().where(_RUNS.c.id == bindparam("b_id")).values(
    status="done", error=None, detail=bindparam("b_detail"), wake_at=None, finished_at=bindparam("b_at"),
    updated_at=bindparam("b_at"))


_STATE_COLUMNS = ("installation_id", "run_id", "step_uid", "position", "kind", "effect_key", "created_at", "status",
                  "external_id", "wake_at", "detail", "updated_at", "finished_at")
_STATE_UPSERT = pg_insert(_STEP_RUNS).values({key: bindparam(key, type_=_STEP_RUNS.c[key].type) for key in _STATE_COLUMNS})
_STATE_UPSERT = _STATE_UPSERT.on_conflict_do_update(
    index_elements=["run_id", "step_uid"],
    set_={key: _STATE_UPSERT.excluded[key] for key in ("status", "external_id", "wake_at", "detail", "updated_at",
                                                       "finished_at")})

_SAVED_STEPS: dict[tuple, list] = {}


def _saved_steps(conn, rule_id: int, version: int, created: Any) -> list:
    """The rule's step rows as saved in this version. Every save of a rule's steps raises its version
    (hub/rules/service.py), so a version's steps never change and are read once per process; the
    rule's creation time tells a new rule from a deleted one whose id SQLite gave again. Rows are
    tuples; `Step.of` copies what it keeps."""
    key = (rule_id, version, created)
    rows = _SAVED_STEPS.get(key)
    if rows is None:
        rows = fast.execute(conn, _READ_STEPS, {"rule_id": rule_id}).all()
        if len(_SAVED_STEPS) >= 512:
            _SAVED_STEPS.clear()
        _SAVED_STEPS[key] = rows
    return rows


def plan_run(services: Any, run_id: int, job_id: int, wake: str | None) -> tuple[Plan | None, str | None]:
    """(plan, None) to run; (None, reason) when there is nothing to do. One transaction of Core
    reads (this runs once per rule run); the connections the steps use come with it."""
    with services.db.begin() as session:
        return read_plan(services, session, run_id, job_id, wake)


@starter(JOB_KIND)
def start_run(app: Any, session, job: Any) -> tuple[Plan | None, str | None]:
    """A run whose job the event's own job took over (engine.py matched it in that transaction):
    its plan is read, and the run marked running, before that transaction commits."""
    return read_plan(app.extensions["hub"], session, int(job.payload["run_id"]), job.id, job.payload.get("wake"))


def read_plan(services: Any, session, run_id: int, job_id: int, wake: str | None) -> tuple[Plan | None, str | None]:
    """`plan_run` inside `session` (it marks the run running there)."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        run = fast.execute(conn, _READ_AND_START, {"b_run": run_id, "wake": wake, "b_at": utcnow()}).first()
    else:
        run = fast.execute(conn, _READ_RUN, {"id": run_id}).first()
    if run is None:
        return None, "the run no longer exists"
    started = bool(getattr(run, "started", 0))   # the row as read is the run before that start
    if started and not _may_start(run):
        fast.execute(conn, _RUN_UNSTART, {"b_id": run.id, "b_status": run.status, "b_attempts": run.attempts,
                                          "b_at": run.updated_at})
    if run.status in ("done", "stopped", "skipped"):
        return None, f"already {run.status}: nothing is repeated"
    if run.status == "waiting" and wake != run.step_uid:
        return None, f"it waits until {run.wake_at:%Y-%m-%d %H:%M} UTC; this job does not wake it"
    if run.rule_found is None:
        return None, "the rule was deleted"
    if run.event_found is None:
        return None, "the event no longer exists"
    rule = SimpleNamespace(id=run.rule_id, name=run.rule_name, status=run.rule_status, version=run.rule_version,
                           last_error=run.rule_error)
    event = SimpleNamespace(id=run.hub_event_id, kind=run.event_kind, data=run.event_data,
                            occurred_at=run.event_occurred_at)
    if rule.status != "active":
        if run.step_uid:
            _stop(session, session.get(RuleRun, run.id), job_id,
                  "the rule was deactivated while the run waited: its remaining steps do not run")
            return None, None
        if run.attempts == 0 and run.status == "queued":
            return None, "the rule was deactivated before this run started"
    steps = [Step.of(r, n + 1) for n, r in enumerate(_saved_steps(conn, rule.id, rule.version, run.rule_created))]
    # a run no attempt has started has no step progress yet (only an attempt writes it, after its start)
    states = {s.step_uid: State.of(s) for s in fast.execute(conn, _READ_STATES, {"run_id": run.id})} \
        if run.attempts else {}
    installation = SimpleNamespace(provider=run.provider, company_id=run.company_id,
                                   status=run.installation_status, installer_user_id=run.installer_user_id) \
        if run.installation_found is not None else None
    provider = installation.provider if installation else "crm"
    company = installation.company_id if installation else str(run.installation_id)
    detail = dict(run.detail or {})
    off = (run.flag_reason, run.flag_set_at) if run.flag_value is False else None    # auto-advance turned off
    # rows with the Connection's attributes: the steps read them after the session ends, never write
    accounts = fast.execute(conn, _READ_ACCOUNTS, {"installation_id": run.installation_id}).all()
    plan = Plan(run_id=run.id, installation_id=run.installation_id, rule_id=rule.id, rule_name=rule.name,
                rule_version=rule.version, hub_event_id=event.id, kind=event.kind, object_type=run.object_type,
                object_id=run.object_id, current=None if run.step_uid else (event.data or {}).get("current"),
                occurred_at=event.occurred_at, run_key=run.effect_key,
                key_prefix=f"relayhub:{provider}:{company}:", steps=steps, states=states,
                start=_start(steps, states, run.step_uid), detail=detail, wake=wake,
                held_back=f"{off[0]} (set {off[1]:%Y-%m-%d %H:%M} UTC)" if off is not None else None,
                crashed=run.status == "running",
                installation=installation, accounts={c.id: c for c in accounts}, rule_error=bool(rule.last_error))
    if not started:
        fast.execute(conn, _RUN_STARTS, {"b_id": run.id, "b_attempts": run.attempts + 1, "b_detail": detail,
                                         "b_at": utcnow()})
    return plan, None


def _may_start(run: Any) -> bool:
    """What `read_plan` checks past the run's own status before it starts it: its rule and event
    still exist, and the rule is active (or the run started before it was deactivated and does
    not wait)."""
    if run.rule_found is None or run.event_found is None:
        return False
    return run.rule_status == "active" or (not run.step_uid and not (run.attempts == 0 and run.status == "queued"))


# -- one attempt ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def renderer(limits: Limits) -> TargetRenderer:
    """One per process and limits (cheap: the sandboxes and compiled templates live in the render
    processes of hub.mappings.pool, which keep them between renders)."""
    return TargetRenderer(limits)


class Execution:
    """A run in progress: what steps read (the record, connections, the renderer) and the
    progress they record as they go (`pending` is written with the next save or the outcome)."""

    def __init__(self, services: Any, plan: Plan, job_id: int):
        self.services = services
        self.plan = plan
        self.job_id = job_id
        self.renderer = renderer(Limits.from_settings(services.settings))
        self.warnings: list[str] = []
        self.pending: list[dict[str, Any]] = []
        self.made: list[str] = []                # "Title task 1203" for the run's summary
        self.step: Step | None = None            # the step running now (for messages)
        self.wait: tuple[Step, datetime] | None = None
        self._record: Any = None
        self._source: Any = None
        self.calls = 0                           # steps of this try that ran (and may have called)

    # -- what steps read ----------------------------------------------------------------------
    def state(self, step: Step) -> State:
        found = self.plan.states.get(step.uid)
        if found is None:
            found = State(step.uid, step.position, step.kind, step_effect_key(self.plan.run_key, step.uid))
            self.plan.states[step.uid] = found
        return found

    def external_key(self, state: State) -> str:
        """The key a target finds a step's object by: unique per installation, run and step."""
        return f"{self.plan.key_prefix}{state.effect_key}"

    def event(self) -> dict[str, Any]:
        p = self.plan
        return {"kind": p.kind, "occurred_at": p.occurred_at.isoformat() + "Z" if p.occurred_at else None}

    def crm(self) -> Any:
        return connections.pick_crm(self.plan.installation, list(self.plan.accounts.values()))

    def connection(self, connection_id: int | None, connector: str) -> Any:
        return connections.pick_step(self.plan.installation_id, self.plan.accounts.get(connection_id), connector)

    def may_have_sent(self) -> bool:
        """Whether an earlier try may have sent the step about to call without leaving its
        write-ahead mark. Marks go with a try's progress, which a try that fails writes on its way
        out; only a try that died (`Plan.crashed`) leaves none, and it had saved every step before
        the one it was in as done: so only the first step this try calls can be that one."""
        return self.plan.crashed and self.calls == 0

    def source(self) -> Any:
        """The CRM's `CrmSource` for the installer's connection (made once per attempt)."""
        if self._source is None:
            from .records import crm_source
            self._source = crm_source(self.services, self.crm())
        return self._source

    def record(self) -> Any:
        """The CRM record, read once per attempt with what the remaining steps carry."""
        if self._record is None:
            carry = Carry(False, False, False, False)
            for step in self.plan.steps[self.plan.start:]:
                if kinds.get(step.kind) is not None and kinds.get(step.kind).carries:
                    carry = carry | step.carry
            warnings: list[str] = []
            self._record = self.source().load(self.plan.object_type, self.plan.object_id, self.plan.current, carry,
                                              warnings)
            self.warnings.extend(warnings)
        return self._record

    def holds(self, condition: dict[str, Any]) -> bool:
        """A step's condition on the record as this part of the run sees it."""
        record = self.record()
        read = getattr(self.source(), "value", None)
        value = (lambda data, key: read(record.kind, data, key)) if read is not None else None
        return condition_holds(condition, record.data, value)

    # -- what steps record ----------------------------------------------------------------------
    def note(self, message: str) -> None:
        self.warnings.append(message)

    def save(self, state: State | None = None, *, now: bool = False, link: dict | None = None,
             trace_step: str | None = None, message: str = "", status: str = "ok",
             mails: list[tuple[str, str, str]] | None = None) -> None:
        """Record progress: with `now` in a transaction of its own, else with the next one."""
        self.pending.append({"state": state, "link": link, "trace": (trace_step, message, status) if trace_step
                             else None, "mails": mails or []})
        if now:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            with self.services.db.begin() as session:
                self.write(session)

    def write(self, session, *, defer: bool = True) -> None:
        """Write what is pending inside `session` (a short transaction, or the job's own). `defer`:
        the step and link rows go with the transaction's last statement (`defer_write`); not when
        the caller writes one of those rows again in this transaction."""
        p = self.plan
        items, self.pending = self.pending, []
        for n, item in enumerate(items):
            state = item["state"]
            # a state saved again later in this batch is written once, as it ends up
            if state is not None and not any(later["state"] is state for later in items[n + 1:]):
                _store_state(session, p, state, defer=defer)
            if item["link"] is not None:
                link = dict(item["link"])
                deadline = link.pop("deadline", None)
                values = {"installation_id": p.installation_id, "rule_id": p.rule_id, "run_id": p.run_id,
                          "step_uid": state.uid if state else "", "object_type": p.object_type,
                          "object_id": p.object_id, "status": "open", "created_at": utcnow(), **link}
                from ..tasks import mirror     # a task: the board shows it open from now
                mirror.insert_link(session, values, self.services.queue.clock.now(), deadline, defer=defer)
            for to, subject, body in item["mails"]:
                queue_mail(self.services, session, to, subject, body, installation_id=p.installation_id,
                           dedupe_key=f"rule-mail:{p.installation_id}:{state.effect_key if state else ''}:{to}"[:200])
            if item["trace"] is not None:
                step, message, status = item["trace"]
                trace(session, p.installation_id, step, message, status=status, hub_event_id=p.hub_event_id,
                      rule_id=p.rule_id, job_id=self.job_id, run_id=p.run_id)


def _store_state(session, plan: Plan, state: State, *, defer: bool = False) -> None:
    now = utcnow()
    values = {"status": state.status, "external_id": state.external_id, "wake_at": state.wake_at,
              "detail": dict(state.detail), "updated_at": now,
              "finished_at": now if state.status in ("done", "skipped") else None}
    if defer and session.get_bind().dialect.name == "postgresql":
        # new or not, one upsert that goes with the transaction's last statement (its id stays
        # unknown: a later save upserts again)
        defer_write(session, _STATE_UPSERT, {
            "installation_id": plan.installation_id, "run_id": plan.run_id, "step_uid": state.uid,
            "position": state.position, "kind": state.kind, "effect_key": state.effect_key, "created_at": now,
            **values})
        return
    if state.row_id is None:
        state.row_id = insert_ignore(session, RuleStepRun, {
            "installation_id": plan.installation_id, "run_id": plan.run_id, "step_uid": state.uid,
            "position": state.position, "kind": state.kind, "effect_key": state.effect_key, "created_at": now,
            **values}, ["run_id", "step_uid"])
        if state.row_id is not None:
            return
        state.row_id = session.scalar(select(RuleStepRun.id).where(RuleStepRun.run_id == plan.run_id,
                                                                    RuleStepRun.step_uid == state.uid))
    session.execute(update(RuleStepRun).where(RuleStepRun.id == state.row_id).values(**values))


def run_steps(ex: Execution) -> None:
    """The steps from where this part of the run begins, each once; stops at a wait."""
    from .steps import run_step

    plan = ex.plan
    steps = plan.steps
    index = plan.start
    while index < len(steps):
        step = steps[index]
        ex.step = step
        state = ex.state(step)
        if state.status in ("done", "skipped"):
            index = _next(ex, index, state.detail.get("goto"))
            continue
        if state.status == "waiting" and plan.wake == step.uid:       # its delay is over
            state.status, state.wake_at, state.detail["waited"] = "pending", None, True
            ex.save(state)
        if step.delay_seconds > 0 and not state.detail.get("waited"):
            ex.wait = (step, utcnow() + timedelta(seconds=step.delay_seconds))
            return
        kind = kinds.get(step.kind)
        if plan.held_back and kind is not None and getattr(kind.step, "advances", False):
            state.status = "skipped"
            state.detail["reason"] = (f"auto-advance is off for {plan.object_type} {plan.object_id}: {plan.held_back}. "
                                      "An admin can switch it back on from the object's trace in the run log")
            ex.save(state, trace_step="rule.step_skipped", message=f"{step.label} skipped: {state.detail['reason']}",
                    status="info")
            index += 1
            continue
        if step.condition and step.kind != "branch" and not ex.holds(step.condition):
            state.status = "skipped"
            state.detail["reason"] = f"its condition ({describe(step.condition)}) does not hold"
            ex.save(state, trace_step="rule.step_skipped", message=f"{step.label} skipped: {state.detail['reason']}",
                    status="info")
            index += 1
            continue
        ex.flush()       # what earlier steps did is saved before this one calls anyone
        goto = run_step(ex, step, state)
        ex.calls += 1
        state.status, state.wake_at = "done", None
        if goto:
            state.detail["goto"] = goto
        ex.save(state)
        index = _next(ex, index, goto)
    ex.step = None


def _next(ex: Execution, index: int, goto: str | None) -> int:
    """The index after step `index`, following a branch's decision (`stop` or a later step's uid)."""
    steps = ex.plan.steps
    if not goto or goto == "next":
        return index + 1
    if goto == "stop":
        return len(steps)
    target = next((n for n, s in enumerate(steps) if s.uid == goto), None)
    if target is None or target <= index:
        ex.note(f"{steps[index].label}: the step it skips to no longer follows it; the next step runs instead")
        return index + 1
    return target


# -- outcomes -------------------------------------------------------------------------------------
def readable(exc: BaseException, step: Step | None) -> str:
    """The provider's message plus what the admin can do about it."""
    text = str(exc)
    status = getattr(exc, "status", None)
    kind = kinds.get(step.kind) if step else None
    who = connections.title(kind.connector) if kind and kind.connector else "the target"
    if isinstance(exc, TemplateProblem):
        text = f"the template failed on this record: {text}"
    elif status == 403:
        text = f"{text} (the connected {who} account lacks permission: share the item with it, or connect another " \
               "account)"
    elif status == 404 or (status == 400 and ("not a recognized id" in text.lower() or "not found" in text.lower())):
        text = f"{text} (what the step points to in {who} (a project, team, user ...) was deleted or is not " \
               "visible: edit the rule and pick another)"
    return text


def fail(services: Any, ctx: JobContext, ex: Execution | None, run_id: int, reason: str) -> None:
    """Inside the job's transaction: the run failed; tell the installer once per rule version."""
    session = ctx.session
    if ex is not None:
        ex.write(session)
        if ex.step is not None and len(ex.plan.steps) > 1:
            reason = f"{ex.step.label}: {reason}"
    run = session.get(RuleRun, run_id)
    if run is None:
        return
    run.status, run.error, run.finished_at, run.updated_at = "failed", reason[:4000], utcnow(), utcnow()
    rule = session.get(Rule, run.rule_id)
    trace(session, run.installation_id, "rule.failed", f"run {run.id} failed: {reason}", status="error",
          hub_event_id=run.hub_event_id, rule_id=run.rule_id, job_id=ctx.job_id, run_id=run.id)
    if rule is None:
        return
    rule.last_error = reason[:4000]
    if rule.notified_version == rule.version:
        return   # this version of the rule already told its people: nobody is e-mailed twice
    rule.notified_version = rule.version
    installation = session.get(Installation, run.installation_id)
    recipients = {installation.installer_email} if installation and installation.installer_email else set()
    if rule.created_by:
        creator = session.scalar(select(InstallationUser).where(
            InstallationUser.installation_id == run.installation_id, InstallationUser.crm_user_id == rule.created_by))
        if creator is not None and creator.email:
            recipients.add(creator.email)
    link = f"{services.base_url}/i/{run.installation_id}/rules/{rule.id}/runs"
    for to in sorted(recipients):
        queue_mail(services, session, to, f"Relay Hub: the rule “{rule.name}” failed",
                   f"The rule “{rule.name}” could not handle {run.object_type} {run.object_id}:\n\n{reason}\n\n"
                   f"Fix the rule, then retry the run from its run log: {link}\n\n"
                   "You get this message once per version of the rule; later failures are only in the run log.",
                   installation_id=run.installation_id, dedupe_key=f"rule-failed:{rule.id}:v{rule.version}:{to}"[:200])


OVERWRITABLE = ("queued", "running", "retrying", "reconnect")   # what an attempt's progress may overwrite


def progress(services: Any, run_id: int, job_id: int, status: str, message: str, trace_status: str,
             **detail: Any) -> None:
    with services.db.begin() as session:
        run = session.get(RuleRun, run_id)
        if run is None or run.status not in OVERWRITABLE:
            # an attempt that lost its lease may fail after another attempt finished (or parked) the
            # run: it is written in its own transaction, so it must never undo that outcome
            return
        run.status, run.error, run.updated_at = status, message[:4000], utcnow()
        trace(session, run.installation_id, f"rule.{status}", message, status=trace_status,
              hub_event_id=run.hub_event_id, rule_id=run.rule_id, job_id=job_id, run_id=run.id, **detail)


def skip(ctx: JobContext, run_id: int, reason: str) -> None:
    run = ctx.session.get(RuleRun, run_id)
    if run is None:
        return
    if run.status in ("queued", "running", "retrying"):
        run.status, run.error, run.finished_at, run.updated_at = "skipped", reason, utcnow(), utcnow()
    trace(ctx.session, run.installation_id, "rule.skipped", f"run {run.id}: {reason}", status="info",
          hub_event_id=run.hub_event_id, rule_id=run.rule_id, job_id=ctx.job_id, run_id=run.id)


def finish(services: Any, ctx: JobContext, ex: Execution) -> None:
    """Inside the job's transaction: the run is done, or waits for its next part."""
    plan, session = ex.plan, ctx.session
    ex.write(session, defer=ex.wait is None)     # a wait writes its step's row again below
    detail = dict(plan.detail)
    warnings = list(detail.get("earlier_warnings") or []) + ex.warnings     # earlier parts' too, after a wait
    if ex.wait is not None:
        run = session.get(RuleRun, plan.run_id)
        step, wake_at = ex.wait
        state = ex.state(step)
        state.status, state.wake_at = "waiting", wake_at
        _store_state(session, plan, state)
        detail["earlier_warnings"] = warnings
        run.status, run.error, run.detail, run.step_uid, run.wake_at = "waiting", None, detail, step.uid, wake_at
        run.updated_at = utcnow()
        enqueue_wake(services, session, run, step.uid, wake_at)
        trace(session, plan.installation_id, "rule.waiting",
              f"run {run.id} waits until {wake_at:%Y-%m-%d %H:%M} UTC before {step.label}", status="info",
              hub_event_id=plan.hub_event_id, rule_id=plan.rule_id, job_id=ctx.job_id, run_id=plan.run_id)
        return
    detail.pop("earlier_warnings", None)
    detail["warnings"] = warnings
    now = utcnow()
    defer_write(session, _RUN_DONE, {"b_id": plan.run_id, "b_detail": detail, "b_at": now})
    if plan.rule_error:   # this version of the rule works again: its last error is cleared
        session.connection().execute(_RULES.update().where(_RULES.c.id == plan.rule_id,
                                                           _RULES.c.version == plan.rule_version).values(last_error=None))
    summary = ", ".join(ex.made) or "no object made"
    trace(session, plan.installation_id, "rule.done",
          f"{plan.kind} {plan.object_type} {plan.object_id} -> {summary}"
          + (f" ({'; '.join(warnings)})" if warnings else ""),
          status="ok", hub_event_id=plan.hub_event_id, rule_id=plan.rule_id, job_id=ctx.job_id, run_id=plan.run_id)


@handler(JOB_KIND)
def execute_run(ctx: JobContext) -> None:
    services = ctx.app.extensions["hub"]
    run_id = int(ctx.payload["run_id"])
    final = ctx.attempt >= ctx.max_attempts
    ex: Execution | None = None
    try:
        plan, reason = ctx.prepared if ctx.prepared is not None else plan_run(
            services, run_id, ctx.job_id, ctx.payload.get("wake"))
        if plan is None:
            if reason:
                skip(ctx, run_id, reason)
            return
        ex = Execution(services, plan, ctx.job_id)
        run_steps(ex)
    except NeedsReauth as exc:
        if ex is not None:
            ex.flush()
        progress(services, run_id, ctx.job_id, "reconnect", f"waiting for a reconnection: {exc}", "info")
        raise
    except Retriable as exc:
        wait = f" in {exc.retry_after:g} s" if exc.retry_after is not None else ""
        if final:
            fail(services, ctx, ex, run_id, f"gave up after {ctx.attempt} attempts: {exc}")
            return
        if ex is not None:
            ex.flush()
        progress(services, run_id, ctx.job_id, "retrying", f"{exc}; trying again{wait}", "info",
                 retry_after=exc.retry_after)
        raise
    except (Fatal, TemplateProblem) as exc:
        fail(services, ctx, ex, run_id, readable(exc, ex.step if ex else None))
        return
    except Exception as exc:  # a bug or an unforeseen answer: retried; the last attempt fails the run
        log.exception("rule run %s failed unexpectedly", run_id)
        if final:
            fail(services, ctx, ex, run_id, f"unexpected error: {type(exc).__name__}: {exc}")
            return
        if ex is not None:
            ex.flush()
        progress(services, run_id, ctx.job_id, "retrying", f"unexpected error: {type(exc).__name__}", "error")
        raise
    finish(services, ctx, ex)
