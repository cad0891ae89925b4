"""Applying templates: each template becomes one task in its target, made once per effect key.

The same code serves the rule step "apply task templates" (run by the rule engine: each task's
effect key is the step's key plus the template, a write-ahead mark before its create, its id on the
step's progress, a rule link), the post-sale sets (the same step, its set chosen by the deal's
sales process), and the `tasks.apply` job (a set applied by hand to a record picked in the hub, or
an accepted next-task suggestion: the job's dedupe key makes a double submit one job, and a retry
of the job looks for what an earlier attempt made).

A deadline is computed when the task is made (hub.tasks.deadlines), in the account's time zone.
The responsible is a target user, or the record's owner (found among the target's users by name
or e-mail; unassigned with a warning when the target does not know them)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from ..connectors.contract.records import Carry as SourceCarry
from ..connectors.contract.targets import TaskSpec
from ..events import trace
from ..jobs import JobContext, handler
from ..mappings import Carry, Limits
from ..rules import catalogs, connections, kinds
from ..store import HubEvent, Installation, InstallationUser, utcnow
from ..store.models import HubTask, PostSaleSet, TaskTemplate, TaskType
from ..store.sql import insert_ignore
from .config import settings_row, sharing_of
from .deadlines import as_utc, deadline
from .sets import task_kinds, templates_of

log = logging.getLogger("hub.tasks")
JOB_KIND = "tasks.apply"
PEOPLE_STEMS = ("assignee", "user", "owner", "responsible")


@dataclass
class Planned:
    """A template as it is applied (read once, detached from the session)."""

    id: int
    title: str
    description: str
    type_name: str
    sharing: str
    responsible: str
    delay_days: int
    day_kind: str
    time_of_day: str
    kind: str
    connection_id: int | None
    settings: dict[str, Any] = field(default_factory=dict)


def plan(session, installation_id: int, templates: list[TaskTemplate]) -> tuple[list[Planned], str, list[str]]:
    """(templates to apply, the account's time zone, hub members' e-mails)."""
    settings = settings_row(session, installation_id)
    types = {t.id: t.name for t in session.scalars(select(TaskType).where(TaskType.installation_id == installation_id))}
    out = []
    for t in templates:
        type_name = types.get(t.type_id, "") if t.type_id else ""
        out.append(Planned(t.id, t.title, t.description, type_name, sharing_of(session, installation_id, type_name),
                           t.responsible, t.delay_days, t.day_kind, t.time_of_day, t.kind, t.connection_id,
                           dict(t.settings or {})))
    return out, settings.timezone, members(session, installation_id)


def members(session, installation_id: int) -> list[str]:
    """The e-mails of the people who use the hub in this installation (the calendar's colleagues)."""
    installation = session.get(Installation, installation_id)
    emails = {installation.installer_email.lower()} if installation and installation.installer_email else set()
    emails |= {u.email.lower() for u in session.scalars(select(InstallationUser).where(
        InstallationUser.installation_id == installation_id)) if u.email}
    return sorted(emails)


def people(kind: Any, loader: Any, settings: dict[str, Any]) -> list[dict[str, str]]:
    """The target's users as {id, name, email} (from the catalog its assignee setting uses)."""
    setting = next((s for s in kind.settings if kinds.setting_stem(s.key) in PEOPLE_STEMS and s.catalog), None)
    if setting is None:
        return []
    try:
        value = loader(setting.catalog)
    except Exception as exc:     # the list is a nicety here: the task is made without it
        log.info("users of %s unavailable: %s", kind.kind, type(exc).__name__)
        return []
    entries = value if isinstance(value, list) else []
    if setting.path:
        parent = str(settings.get(setting.parent) or "")
        entries = [item for entry in entries if isinstance(entry, dict) and kinds._ident(entry) == parent
                   for item in entry.get(setting.path) or []]
    out = []
    for entry in entries:
        ident = kinds._ident(entry)
        if ident is not None and isinstance(entry, dict):
            out.append({"id": ident, "name": str(entry.get("name") or ""), "email": str(entry.get("email") or "")})
    return out


def _owner_names(record: Any) -> set[str]:
    names = {str(record.owner).strip().lower()} if record.owner else set()
    for key in ("owner_email", "owner_name"):
        if record.data.get(key):
            names.add(str(record.data[key]).strip().lower())
    return names


def make_task(env: Any, template: Planned, effect_key: str, *, first_try: bool, tz: str, emails: list[str],
              event: dict[str, Any], rule_name: str, warnings: list[str]) -> tuple[Any, dict[str, Any]]:
    """Make one template's task (idempotent for `effect_key`); returns (Made, the HubTask's values)."""
    from ..rules.steps.make import target_for

    kind = task_kinds().get(template.kind)
    if kind is None:
        from ..rules.runner import RunFailed
        raise RunFailed(f"template “{template.title[:60]}”: no connector offers {template.kind!r} (is it installed?)")
    connection = env.connection(template.connection_id, kind.connector)
    record = env.record()
    contacts = any(word in template.title + template.description for word in ("person", "org"))
    if contacts and record.person is None and record.org is None:
        # the templates name the record's contacts: read it once more with them (cached on `env`)
        if getattr(env, "_with_contacts", None) is None:
            env._with_contacts = env.source().load(record.kind, record.id, None, SourceCarry(True, False, False),
                                                   warnings)
        record = env._with_contacts
    rendered = env.renderer.render(template.title, template.description, record,
                                   Carry(False, contacts, False, False), [], event=event, rule_name=rule_name)
    warnings.extend(rendered.warnings)
    due = deadline(utcnow(), template.delay_days, template.day_kind, template.time_of_day, tz)
    loader = catalogs.Loader(env.services, connection)
    users = people(kind, loader, template.settings)
    owner: dict[str, str] | None
    if template.responsible == "owner":
        wanted = _owner_names(record)
        owner = next((u for u in users if u["name"].lower() in wanted or (u["email"] and u["email"].lower() in wanted)),
                     None)
        if owner is None:
            if record.owner:
                warnings.append(f"“{rendered.name}”: the owner {record.owner} is not a user of "
                                f"{connections.title(kind.connector)}: the task is unassigned")
            owner = {"id": "", "name": str(record.owner or ""), "email": ""}
    else:
        owner = next((u for u in users if u["id"] == template.responsible),
                     {"id": template.responsible, "name": "", "email": ""})
    colleagues = tuple(u["id"] for u in users if u["email"].lower() in emails and u["id"] != owner["id"])
    spec = TaskSpec(name=rendered.name, notes_html=rendered.html_notes, due=as_utc(due).isoformat() + "Z",
                    assignee=owner["id"] or None, settings=dict(template.settings), record=record,
                    task_type=template.type_name or None, sharing=template.sharing, colleagues=colleagues)
    made = target_for(env, kind, connection).ensure(spec, effect_key, first_try=first_try)
    values = {"connector": kind.connector, "connection_id": connection.id, "kind": kind.kind,
              "external_id": str(made.external_id)[:200], "url": (made.url or "")[:500],
              "title": (made.name or rendered.name)[:1024], "task_type": template.type_name[:80],
              "owner_id": owner["id"][:100], "owner_name": owner["name"][:300], "owner_email": owner["email"][:300],
              "due_at": as_utc(due).isoformat(), "template_id": template.id}
    return made, values


def store_task(session, installation_id: int, effect_key: str, origin: str, object_type: str, object_id: str,
               values: dict[str, Any], run_id: int | None = None) -> int | None:
    """The calendar's row for a task made (once per effect key); its id (None when it existed)."""
    from datetime import datetime

    row = {**values, "due_at": datetime.fromisoformat(values["due_at"]) if values.get("due_at") else None}
    return insert_ignore(session, HubTask, {
        "installation_id": installation_id, "effect_key": effect_key[:300], "origin": origin, "run_id": run_id,
        "object_type": object_type, "object_id": str(object_id)[:100], "status": "open", "created_at": utcnow(),
        **row}, ["installation_id", "effect_key"])


# -- the rule step ----------------------------------------------------------------------------------
def _pipeline(ex: Any) -> str | None:
    with ex.services.db.begin() as session:
        event = session.get(HubEvent, ex.plan.hub_event_id)
        data = (event.data if event else None) or {}
    found = data.get("pipeline_id") or (data.get("current") or {}).get("pipeline_id")
    return str(found) if found not in (None, "") else None


def run_step(ex: Any, step: Any, state: Any) -> None:
    """The core step kind `templates`: settings `set_id` (a template set), or `post_sale` (won |
    lost: the set the deal's sales process names for that outcome)."""
    p = ex.plan
    outcome = step.settings.get("post_sale")
    with ex.services.db.begin() as session:
        set_id = step.settings.get("set_id")
        if outcome:
            pipeline = _pipeline(ex)
            row = session.scalar(select(PostSaleSet).where(PostSaleSet.installation_id == p.installation_id,
                                                           PostSaleSet.pipeline_id == (pipeline or ""),
                                                           PostSaleSet.outcome == outcome)) if pipeline else None
            if row is None:
                message = (f"{p.object_type} {p.object_id} was {outcome} in sales process {pipeline or '(none)'}, "
                           f"which has no post-sale set for {outcome} deals: no tasks made")
                state.detail["reason"] = message
                ex.note(message)
                ex.save(state, trace_step="tasks.no_set", message=message, status="info")
                return None
            set_id = row.set_id
        templates = templates_of(session, p.installation_id, int(set_id)) if str(set_id or "").isdigit() else []
        planned, tz, emails = plan(session, p.installation_id, templates)
    if not planned:
        ex.note(f"{step.label}: the template set has no templates (was it deleted?)")
        return None
    tasks: dict[str, Any] = state.detail.setdefault("tasks", {})
    for template in planned:
        key = f"t{template.id}"
        entry = tasks.get(key) or {}
        effect = f"{ex.external_key(state)}:{key}"
        if entry.get("external_id"):                # made by an earlier attempt: its row, once more
            with ex.services.db.begin() as session:
                store_task(session, p.installation_id, effect, "rule", p.object_type, p.object_id, entry["task"],
                           p.run_id)
            ex.made.append(f"{connections.title(entry['task']['connector'])} task {entry['external_id']}")
            continue
        first_try = not entry.get("sent")
        if first_try:
            tasks[key] = {"sent": True}
            ex.save(state, now=True)
        made, values = make_task(ex, template, effect, first_try=first_try, tz=tz, emails=emails, event=ex.event(),
                                 rule_name=p.rule_name, warnings=ex.warnings)
        tasks[key] = {"sent": True, "external_id": values["external_id"], "task": values}
        who = connections.title(values["connector"])
        ex.made.append(f"{who} task {values['external_id']}")
        verb = "created" if made.created else "found (made by an earlier attempt)"
        ex.save(state, now=True, link={"step_uid": f"{state.uid}.{template.id}"[:16], "connector": values["connector"],
                                       "connection_id": values["connection_id"], "made": "task",
                                       "external_id": values["external_id"], "name": values["title"],
                                       "url": values["url"], "deadline": values["due_at"] + "Z"},
                trace_step="tasks.template", message=f"{who} task {values['external_id']} {verb}: {values['title']} "
                                                     f"(due {values['due_at'][:16].replace('T', ' ')} UTC)"[:4000])
        with ex.services.db.begin() as session:
            store_task(session, p.installation_id, effect, "rule", p.object_type, p.object_id, values, p.run_id)
    return None


# -- by hand and accepted suggestions: the tasks.apply job --------------------------------------------
class Standalone:
    """What `make_task` reads, outside a rule run: the CRM record, connections, the renderer."""

    def __init__(self, services: Any, installation_id: int, object_type: str, object_id: str):
        from ..rules.runner import renderer

        self.services = services
        self.installation_id = installation_id
        self.object_type, self.object_id = object_type, object_id
        self.renderer = renderer(Limits.from_settings(services.settings))
        self.warnings: list[str] = []
        self._source = self._record = None
        self._connections: dict[Any, Any] = {}

    def connection(self, connection_id: int | None, connector: str) -> Any:
        if connection_id not in self._connections:
            with self.services.db.begin() as session:
                found = connections.step_connection(session, self.installation_id, connection_id, connector)
                session.expunge(found)
            self._connections[connection_id] = found
        return self._connections[connection_id]

    def source(self) -> Any:
        if self._source is None:
            from ..rules.records import crm_source
            with self.services.db.begin() as session:
                crm = connections.crm_connection(session, self.installation_id)
                session.expunge(crm)
            self._source = crm_source(self.services, crm)
        return self._source

    def record(self) -> Any:
        if self._record is None:
            self._record = self.source().load(self.object_type, self.object_id, None,
                                              SourceCarry(False, False, False), self.warnings)
        return self._record


def key_prefix(session, installation_id: int) -> str:
    installation = session.get(Installation, installation_id)
    provider = installation.provider if installation else "crm"
    company = installation.company_id if installation else str(installation_id)
    return f"relayhub:{provider}:{company}:"


def enqueue(services: Any, session, installation_id: int, *, key: str, template_ids: list[int], object_type: str,
            object_id: str, origin: str, suggestion_id: int | None = None) -> int | None:
    """Queue the making of these templates' tasks for a record (once per `key`)."""
    return services.queue.enqueue(session, JOB_KIND, {
        "installation_id": installation_id, "key": key, "template_ids": template_ids, "object_type": object_type,
        "object_id": object_id, "origin": origin, "suggestion_id": suggestion_id},
        installation_id=installation_id, dedupe_key=f"{JOB_KIND}:{installation_id}:{key}"[:200])


@handler(JOB_KIND)
def apply_job(ctx: JobContext) -> None:
    services = ctx.app.extensions["hub"]
    payload = ctx.payload
    iid, key = int(payload["installation_id"]), str(payload["key"])
    object_type, object_id = str(payload["object_type"]), str(payload["object_id"])
    with services.db.begin() as session:
        prefix = key_prefix(session, iid)
        rows = [t for t in (session.get(TaskTemplate, i) for i in payload["template_ids"])
                if t is not None and t.installation_id == iid]
        planned, tz, emails = plan(session, iid, rows)
        done = set(session.scalars(select(HubTask.effect_key).where(HubTask.installation_id == iid,
                                                                    HubTask.effect_key.like(f"{prefix}{key}:%"))))
    env = Standalone(services, iid, object_type, object_id)
    made_ids = []
    for template in planned:
        effect = f"{prefix}{key}:t{template.id}"
        if effect in done:
            continue
        made, values = make_task(env, template, effect, first_try=ctx.attempt == 1, tz=tz, emails=emails,
                                 event={"kind": payload.get("origin", "manual")}, rule_name="", warnings=env.warnings)
        with services.db.begin() as session:
            task_id = store_task(session, iid, effect, payload.get("origin", "manual"), object_type, object_id, values)
            made_ids.append(task_id)
            trace(session, iid, "tasks.template",
                  f"{connections.title(values['connector'])} task {values['external_id']} "
                  f"{'created' if made.created else 'found'} for {object_type} {object_id}: {values['title']}"[:4000],
                  job_id=ctx.job_id)
    if payload.get("suggestion_id") and made_ids:
        from ..store.models import TaskSuggestion
        with services.db.begin() as session:
            suggestion = session.get(TaskSuggestion, int(payload["suggestion_id"]))
            if suggestion is not None and made_ids[0]:
                suggestion.task_id = made_ids[0]
    for warning in env.warnings:
        with services.db.begin() as session:
            trace(session, iid, "tasks.warning", warning[:4000], status="info", job_id=ctx.job_id)
