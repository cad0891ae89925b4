"""From a recorded event to the target object: match active rules, then one `rule.execute` job per
(rule, event occurrence) that reads the CRM, renders the templates and performs the action.

Delivery is at least once, the effect exactly once:
- matching runs inside the transaction that records the event (hub.events.subscribe); the run row
  (unique effect key: rule, object, occurrence; or rule, object for a rule that fires once per
  object) and its job (dedupe key: rule, event) are written there, so a duplicate event or a second
  matching pass adds nothing;
- the job makes provider calls outside any transaction and keeps its progress (target created,
  files copied) in short transactions, so a retry continues instead of repeating; the target
  itself is found-or-created by the Asana external id (tasks) or a guarded look-up (projects);
- the outcome (done, or failed with a readable reason and one e-mail per rule version) is written
  in the job's own transaction (`ctx.session`), which marks the job done exactly once.
429/5xx are retried by the job queue honouring Retry-After; permanent errors fail the run, and so
does a run whose failed provider requests used up its budget (hub/connectors/retry.py)."""
from __future__ import annotations

import functools
import hashlib
import logging
import mimetypes
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select, update

from ..connectors.asana.client import AttachmentTooLarge
from ..connectors.retry import BudgetExhausted
from ..errors import Fatal, NeedsReauth, Retriable
from ..events import subscribe, trace
from ..jobs import JobContext, handler
from ..mail import queue_mail
from ..mappings import Carry, Limits, Mapping, Rendered, TargetRenderer, TemplateProblem
from ..store import HubEvent, Installation, InstallationUser, utcnow
from ..store.models import Rule, RuleFieldMapping, RuleLink, RuleRun
from ..store.sql import insert_ignore
from . import connections
from .actions import ACTIONS
from .sources import PipedriveSource
from .triggers import TRIGGERS

log = logging.getLogger("hub.rules")
JOB_KIND = "rule.execute"


def effect_key(rule_id: int, event: HubEvent, fires: str = "every") -> str:
    """The run's unique key: per occurrence (a deal won, reopened and won again runs twice), or
    per object for a rule that fires once, so that choice holds across processes as well."""
    if fires == "once":
        return f"r{rule_id}:{event.object_type}:{event.object_id}:once"[:200]
    digest = hashlib.sha256(event.occurrence.encode()).hexdigest()[:32]
    return f"r{rule_id}:{event.object_type}:{event.object_id}:{digest}"[:200]


def enqueue_run(services: Any, session, run: Any, *, retry_of: int | None = None) -> int | None:
    dedupe = f"{JOB_KIND}:{run.rule_id}:{run.hub_event_id}"
    if retry_of is not None:
        dedupe += f":retry:{run.id}:{retry_of}"
    return services.queue.enqueue(session, JOB_KIND, {"run_id": run.id}, installation_id=run.installation_id,
                                  ordering_key=f"rules:{run.installation_id}:{run.object_type}:{run.object_id}",
                                  dedupe_key=dedupe[:200])


@subscribe
def match_rules(services: Any, session, event: HubEvent) -> None:
    """Inside the transaction recording a new event: a run and a job per matching active rule."""
    trigger = TRIGGERS.get(event.kind)
    if trigger is None:
        return
    rules = session.scalars(select(Rule).where(Rule.installation_id == event.installation_id,
                                               Rule.status == "active", Rule.trigger == event.kind)
                            .order_by(Rule.id)).all()
    for rule in rules:
        reason = trigger.mismatch(rule, event.data or {})
        if reason is not None:
            continue
        if rule.fires == "once" and _ran_for(session, rule.id, event):
            trace(session, event.installation_id, "rule.once",
                  f"rule “{rule.name}” already ran for {event.object_type} {event.object_id}; it fires once per "
                  f"{event.object_type}", status="info", hub_event_id=event.id, rule_id=rule.id)
            continue
        key = effect_key(rule.id, event, rule.fires)
        now = utcnow()
        run_id = insert_ignore(session, RuleRun, {
            "installation_id": event.installation_id, "rule_id": rule.id, "hub_event_id": event.id,
            "effect_key": key, "object_type": event.object_type, "object_id": event.object_id, "status": "queued",
            "attempts": 0, "detail": {}, "created_at": now, "updated_at": now}, ["installation_id", "effect_key"])
        if run_id is None:
            continue  # this rule already handles this occurrence
        run = SimpleNamespace(id=run_id, installation_id=event.installation_id, rule_id=rule.id,
                              hub_event_id=event.id, object_type=event.object_type,
                              object_id=event.object_id)   # what enqueue_run reads (no second SELECT)
        job_id = enqueue_run(services, session, run)
        trace(session, event.installation_id, "rule.matched",
              f"rule “{rule.name}” matched {event.kind} {event.object_type} {event.object_id}",
              hub_event_id=event.id, rule_id=rule.id, job_id=job_id, run_id=run_id)


def _ran_for(session, rule_id: int, event: HubEvent) -> bool:
    """A run of this rule for this object exists (also one made while the rule fired every time)."""
    return session.scalar(select(RuleRun.id).where(
        RuleRun.installation_id == event.installation_id, RuleRun.rule_id == rule_id,
        RuleRun.object_type == event.object_type, RuleRun.object_id == event.object_id).limit(1)) is not None


# -- one run --------------------------------------------------------------------------------------
class RunFailed(Exception):
    """A permanent problem found before calling the target (the message is for the admin)."""


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
    current: dict | None
    occurred_at: datetime | None
    action: str
    target: dict[str, Any]
    carry: Carry
    name_template: str
    description_template: str
    mappings: list[Mapping]
    external_gid: str
    target_gid: str | None
    creating_since: datetime | None
    detail: dict[str, Any]
    first_try: bool = False                # no earlier attempt can have sent anything to the target
    crm: Any = None
    asana_connection: Any = None


@dataclass
class Execution:
    """A run in progress: what actions read, and the progress they record as they go."""

    services: Any
    plan: Plan
    job_id: int
    asana: Any
    source: PipedriveSource
    rendered: Rendered
    files: list[dict]
    created: bool = False
    messages: list[str] = field(default_factory=list)
    deferred: list[dict] = field(default_factory=list)   # progress written with the outcome

    # the attributes actions use
    @property
    def target(self) -> dict[str, Any]:
        return self.plan.target

    @property
    def carry(self) -> Carry:
        return self.plan.carry

    @property
    def external_gid(self) -> str:
        return self.plan.external_gid

    @property
    def target_gid(self) -> str | None:
        return self.plan.target_gid

    @property
    def creating_since(self) -> datetime | None:
        return self.plan.creating_since

    @property
    def first_try(self) -> bool:
        return self.plan.first_try

    def note(self, message: str) -> None:
        self.messages.append(message)

    def _save(self, *, link: dict | None = None, trace_step: str | None = None, message: str = "",
              status: str = "ok", **values: Any) -> None:
        with self.services.db.begin() as session:
            self._write(session, link=link, trace_step=trace_step, message=message, status=status, **values)

    def _write(self, session, *, link: dict | None = None, trace_step: str | None = None, message: str = "",
               status: str = "ok", **values: Any) -> None:
        p = self.plan
        if values:
            values["updated_at"] = utcnow()
            session.execute(update(RuleRun).where(RuleRun.id == p.run_id).values(**values))
        if link is not None:
            insert_ignore(session, RuleLink, {
                "installation_id": p.installation_id, "rule_id": p.rule_id, "run_id": p.run_id,
                "object_type": p.object_type, "object_id": p.object_id, "created_at": utcnow(), **link},
                ["run_id"])
        if trace_step:
            trace(session, p.installation_id, trace_step, message, status=status, hub_event_id=p.hub_event_id,
                  rule_id=p.rule_id, job_id=self.job_id, run_id=p.run_id)

    def mark_creating(self) -> None:
        self.plan.creating_since = utcnow()
        self._save(creating_since=self.plan.creating_since)

    def record_target(self, target_type: str, gid: str, name: str, url: str, created: bool) -> None:
        self.plan.target_gid, self.created = gid, created
        self.plan.detail["target_type"] = target_type
        verb = "created" if created else "found (made by an earlier attempt)"
        progress = dict(target_gid=gid, detail=dict(self.plan.detail),
                        link={"target_provider": "asana", "target_type": target_type, "target_gid": gid,
                              "target_name": name[:1024], "target_url": url[:500]},
                        trace_step=f"asana.{target_type}", message=f"Asana {target_type} {gid} {verb}: {name}"[:4000])
        if target_type == "task" and not (self.carry.attachments and self.files):
            # its external id finds it again after a crash: written with the outcome, in the job's
            # own transaction, instead of a transaction of its own (files to copy: now, so the
            # run log shows the task before its attachments)
            self.deferred.append(progress)
        else:
            self._save(**progress)

    def copy_attachments(self, parent_gid: str) -> None:
        """Stream each file from Pipedrive to Asana once. Too large or refused files are reported on
        the run and skipped; a retry skips files already copied (and, after an upload whose answer
        was lost, files Asana already has)."""
        detail = self.plan.detail
        report: dict[str, dict] = dict(detail.get("attachments") or {})
        limit = self.asana.max_attachment_bytes
        existing: set[str] | None = None
        for f in self.files:
            file_id = str(f["id"])
            if file_id in report:
                continue
            name = f.get("name") or f.get("file_name") or f"file-{file_id}"
            size = f.get("file_size")
            entry = {"name": name, "size": size}
            if size is not None and size > limit:
                entry.update(status="too_large", message=f"{name} is {size} bytes; the limit is {limit} bytes")
            else:
                if detail.get("uploading") == file_id and existing is None:   # lost answer: look first
                    existing = {a.get("name") for a in self.asana.attachments(parent_gid)}
                if existing is not None and name in existing:
                    entry.update(status="copied", message="found on the task (copied by an earlier attempt)")
                else:
                    detail["uploading"] = file_id
                    self._save(detail=dict(detail))
                    entry.update(self._upload(parent_gid, f, name, size))
            report[file_id] = entry
            detail["attachments"] = report
            detail.pop("uploading", None)
            status = "ok" if entry["status"] == "copied" else "error"
            self._save(detail=dict(detail), trace_step="asana.attachment", status=status,
                       message=f"{name}: {entry['status'].replace('_', ' ')}"
                               + (f" ({entry['message']})" if entry.get("message") else ""))

    def _upload(self, parent_gid: str, f: dict, name: str, size: int | None) -> dict[str, Any]:
        content_type = f.get("content_type") or mimetypes.guess_type(name)[0] or "application/octet-stream"
        try:
            stream = self.source.open_file(f["id"])
            self.asana.upload_attachment(parent_gid, name, stream, content_type, size=size)
            return {"status": "copied"}
        except AttachmentTooLarge as exc:
            return {"status": "too_large", "message": str(exc)}
        except BudgetExhausted:
            raise          # not this file's problem: the whole run gives up
        except Fatal as exc:
            too_large = "too large" in str(exc).lower()
            return {"status": "too_large" if too_large else "failed", "message": str(exc)}


def _plan(services: Any, run_id: int) -> tuple[Plan | None, str | None]:
    """(plan, None) to run; (None, reason) when there is nothing to do."""
    with services.db.begin() as session:
        run = session.get(RuleRun, run_id)
        if run is None:
            return None, "the run no longer exists"
        if run.status == "done":
            return None, "already done: nothing is repeated"
        rule = session.get(Rule, run.rule_id)
        if rule is None:
            return None, "the rule was deleted"
        event = session.get(HubEvent, run.hub_event_id)
        if event is None:
            return None, "the event no longer exists"
        mappings = [Mapping(m.source, m.field_key, m.label, m.field_type, dict(m.options or {}))
                    for m in session.scalars(select(RuleFieldMapping).where(RuleFieldMapping.rule_id == rule.id)
                                             .order_by(RuleFieldMapping.position))]
        installation = session.get(Installation, run.installation_id)
        provider = installation.provider if installation else "crm"
        company = installation.company_id if installation else str(run.installation_id)
        plan = Plan(run_id=run.id, installation_id=run.installation_id, rule_id=rule.id, rule_name=rule.name,
                    rule_version=rule.version, hub_event_id=event.id, kind=event.kind,
                    object_type=run.object_type, object_id=run.object_id,
                    current=(event.data or {}).get("current"), occurred_at=event.occurred_at, action=rule.action,
                    target=dict(rule.target or {}), carry=Carry.from_dict(rule.carry),
                    name_template=rule.name_template, description_template=rule.description_template,
                    mappings=mappings, external_gid=f"relayhub:{provider}:{company}:{run.effect_key}",
                    target_gid=run.target_gid, creating_since=run.creating_since, detail=dict(run.detail or {}))
        if rule.status != "active" and run.attempts == 0 and run.status == "queued":
            return None, "the rule was deactivated before this run started"
        action = ACTIONS.get(rule.action)
        if action is None:
            raise RunFailed(f"unknown action {rule.action!r}")
        try:
            plan.crm = connections.crm_connection(session, run.installation_id)
            plan.asana_connection = connections.target_connection(session, run.installation_id,
                                                                  rule.target_connection_id, action.provider)
        except Fatal as exc:
            raise RunFailed(str(exc)) from None
        plan.first_try = run.attempts == 0 and run.target_gid is None and run.creating_since is None
        run.status, run.attempts, run.updated_at = "running", run.attempts + 1, utcnow()
        session.expunge(plan.crm)
        session.expunge(plan.asana_connection)
        return plan, None


@functools.lru_cache(maxsize=8)
def _renderer(limits: Limits) -> TargetRenderer:
    """One per process and limits (cheap: the sandboxes and compiled templates live in the render
    processes of hub.mappings.pool, which keep them between renders)."""
    return TargetRenderer(limits)


def _execute(services: Any, plan: Plan, job_id: int) -> Execution:
    action = ACTIONS[plan.action]
    source = PipedriveSource(services, plan.crm)
    warnings: list[str] = []
    record = source.load(plan.object_type, plan.object_id, plan.current, plan.carry, warnings)
    renderer = _renderer(Limits.from_settings(services.settings))
    event = {"kind": plan.kind, "occurred_at": plan.occurred_at.isoformat() + "Z" if plan.occurred_at else None}
    rendered = renderer.render(plan.name_template, plan.description_template, record, plan.carry, plan.mappings,
                               target=action.target_type, event=event, rule_name=plan.rule_name)
    rendered.warnings[:0] = warnings
    asana = connections.asana_client(services, plan.asana_connection)
    execution = Execution(services, plan, job_id, asana, source, rendered, record.files)
    action.execute(execution)
    return execution


def _readable(exc: BaseException) -> str:
    """The provider's message plus what the admin can do about it."""
    text = str(exc)
    status = getattr(exc, "status", None)
    if isinstance(exc, TemplateProblem):
        return f"the template failed on this record: {text}"
    if status == 403:
        return f"{text} (the connected Asana account lacks permission: share the project or workspace with it, " \
               "or connect another account)"
    if status == 404 or (status == 400 and ("Not a recognized ID" in text or "not found" in text.lower())):
        return f"{text} (the Asana project, team or user the rule points to was deleted or is not visible: " \
               "edit the rule and pick another)"
    return text


def _fail(services: Any, ctx: JobContext, plan: Plan | None, run_id: int, reason: str) -> None:
    """Inside the job's transaction: the run failed; tell the installer once per rule version."""
    session = ctx.session
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


def _progress(services: Any, run_id: int, job_id: int, status: str, message: str, trace_status: str,
              **detail: Any) -> None:
    with services.db.begin() as session:
        run = session.get(RuleRun, run_id)
        if run is None:
            return
        run.status, run.error, run.updated_at = status, message[:4000], utcnow()
        trace(session, run.installation_id, f"rule.{status}", message, status=trace_status,
              hub_event_id=run.hub_event_id, rule_id=run.rule_id, job_id=job_id, run_id=run.id, **detail)


@handler(JOB_KIND)
def execute_run(ctx: JobContext) -> None:
    services = ctx.app.extensions["hub"]
    run_id = int(ctx.payload["run_id"])
    final = ctx.attempt >= ctx.max_attempts
    plan: Plan | None = None
    try:
        plan, reason = _plan(services, run_id)
        if plan is None:
            _skip(ctx, run_id, reason or "nothing to do")
            return
        execution = _execute(services, plan, ctx.job_id)
    except NeedsReauth as exc:
        _progress(services, run_id, ctx.job_id, "waiting", f"waiting for a reconnection: {exc}", "info")
        raise
    except Retriable as exc:
        wait = f" in {exc.retry_after:g} s" if exc.retry_after is not None else ""
        if final:
            _fail(services, ctx, plan, run_id, f"gave up after {ctx.attempt} attempts: {exc}")
            return
        _progress(services, run_id, ctx.job_id, "retrying", f"{exc}; trying again{wait}", "info",
                  retry_after=exc.retry_after)
        raise
    except (RunFailed, Fatal, TemplateProblem) as exc:
        _fail(services, ctx, plan, run_id, _readable(exc))
        return
    except Exception as exc:  # a bug or an unforeseen answer: retried; the last attempt fails the run
        log.exception("rule run %s failed unexpectedly", run_id)
        if final:
            _fail(services, ctx, plan, run_id, f"unexpected error: {type(exc).__name__}: {exc}")
            return
        _progress(services, run_id, ctx.job_id, "retrying", f"unexpected error: {type(exc).__name__}", "error")
        raise
    _succeed(ctx, execution)


def _skip(ctx: JobContext, run_id: int, reason: str) -> None:
    run = ctx.session.get(RuleRun, run_id)
    if run is None:
        return
    if run.status != "done":
        run.status, run.error, run.finished_at, run.updated_at = "skipped", reason, utcnow(), utcnow()
    trace(ctx.session, run.installation_id, "rule.skipped", f"run {run.id}: {reason}", status="info",
          hub_event_id=run.hub_event_id, rule_id=run.rule_id, job_id=ctx.job_id, run_id=run.id)


def _succeed(ctx: JobContext, execution: Execution) -> None:
    plan = execution.plan
    session = ctx.session
    for progress in execution.deferred:
        execution._write(session, **progress)
    run = session.get(RuleRun, plan.run_id)
    detail = dict(plan.detail)
    detail.pop("uploading", None)
    warnings = list(execution.rendered.warnings) + execution.messages
    problems = [a for a in (detail.get("attachments") or {}).values() if a.get("status") != "copied"]
    warnings += [f"{a['name']}: {a['status'].replace('_', ' ')}" for a in problems]
    detail["warnings"] = warnings
    run.status, run.error, run.detail = "done", None, detail
    run.finished_at = run.updated_at = utcnow()
    rule = session.get(Rule, plan.rule_id)
    if rule is not None and rule.version == plan.rule_version:
        rule.last_error = None
    what = detail.get("target_type", "object")
    trace(session, plan.installation_id, "rule.done",
          f"{plan.kind} {plan.object_type} {plan.object_id} -> Asana {what} {plan.target_gid}"
          + (f" ({'; '.join(warnings)})" if warnings else ""),
          status="ok", hub_event_id=plan.hub_event_id, rule_id=plan.rule_id, job_id=ctx.job_id, run_id=plan.run_id)
