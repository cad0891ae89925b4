"""Template sets and their templates, and the post-sale sets (per sales process: the set fired when
a deal is won, and the one fired when it is lost).

A set is saved whole (its name and its templates in order); a template keeps its id across saves
(next-task rules and the calendar point at it). Everything is checked before anything is stored:
the title and description templates (the core's sandboxed Jinja, trial-rendered), the task type,
the delay (0 to 3650 days, working or calendar days, a time of day HH:MM), the responsible, the
target (a connector's task step kind, an account of the installation) and its settings (the
connector's own validation, against live lists when they load). A refusal names the field."""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from ..errors import Fatal, NeedsReauth, Retriable
from ..inputs import InputError, check_text
from ..mappings import Limits, TargetRenderer
from ..rules import catalogs, connections, kinds
from ..store import utcnow
from ..store.models import (NextTaskRule, PostSaleSet, TaskTemplate, TaskTemplateSet, TaskType)
from .config import settings_row
from .deadlines import DAY_KINDS, MAX_DELAY_DAYS, parse_time

MAX_TEMPLATES = 30
OUTCOMES = ("won", "lost")


def task_kinds() -> dict[str, Any]:
    """The connector step kinds that make tasks (a CRM's own tasks, a task app's ...)."""
    return {k: v for k, v in kinds.connector_kinds().items() if v.makes == "task"}


def template_dict(t: TaskTemplate) -> dict[str, Any]:
    return {"id": t.id, "position": t.position, "title": t.title, "description": t.description,
            "type_id": t.type_id, "responsible": t.responsible, "delay_days": t.delay_days,
            "day_kind": t.day_kind, "time_of_day": t.time_of_day, "kind": t.kind,
            "connection_id": t.connection_id, "settings": dict(t.settings or {})}


def set_dict(session, row: TaskTemplateSet) -> dict[str, Any]:
    templates = session.scalars(select(TaskTemplate).where(TaskTemplate.set_id == row.id)
                                .order_by(TaskTemplate.position, TaskTemplate.id)).all()
    return {"id": row.id, "name": row.name, "templates": [template_dict(t) for t in templates]}


def listing(services: Any, installation_id: int) -> list[dict[str, Any]]:
    with services.db.begin() as session:
        rows = session.scalars(select(TaskTemplateSet).where(TaskTemplateSet.installation_id == installation_id)
                               .order_by(TaskTemplateSet.id)).all()
        return [set_dict(session, r) for r in rows]


def get(services: Any, installation_id: int, set_id: int) -> dict[str, Any]:
    with services.db.begin() as session:
        return set_dict(session, _set(session, installation_id, set_id))


def _set(session, installation_id: int, set_id: int) -> TaskTemplateSet:
    row = session.get(TaskTemplateSet, set_id)
    if row is None or row.installation_id != installation_id:
        raise LookupError("no such template set")
    return row


# -- checking -------------------------------------------------------------------------------------
def _int(value: Any, field: str, low: int, high: int, errors: dict[str, str]) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors[field] = f"a whole number from {low} to {high}"
        return None
    return value


def _text(value: Any, field: str, errors: dict[str, str], *, required: bool, limit: int = 20000) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors[field] = "text"
        return ""
    try:
        check_text(value, field)
    except InputError as exc:
        errors.update(exc.fields)
        return ""
    if required and not value.strip():
        errors[field] = "must not be empty"
    if len(value) > limit:
        errors[field] = f"at most {limit} characters"
    return value


def check_template(services: Any, session, installation_id: int, item: Any, prefix: str,
                   errors: dict[str, str]) -> dict[str, Any]:
    """One template as stored, or errors under `prefix` (the renders are checked by the caller)."""
    if not isinstance(item, dict):
        errors[prefix] = "an object (title, type_id, delay_days ...)"
        return {}
    out: dict[str, Any] = {"id": item.get("id")}
    out["title"] = _text(item.get("title"), f"{prefix}.title", errors, required=True, limit=2000)
    out["description"] = _text(item.get("description"), f"{prefix}.description", errors, required=False)
    type_id = item.get("type_id")
    if type_id is not None:
        row = session.get(TaskType, type_id) if isinstance(type_id, int) and not isinstance(type_id, bool) else None
        if row is None or row.installation_id != installation_id:
            errors[f"{prefix}.type_id"] = "a task type of this installation (see the task types)"
    out["type_id"] = type_id
    delay = item.get("delay_days", 0)
    out["delay_days"] = _int(delay, f"{prefix}.delay_days", 0, MAX_DELAY_DAYS, errors)
    day_kind = item.get("day_kind", "working")
    if day_kind not in DAY_KINDS:
        errors[f"{prefix}.day_kind"] = "working (Saturday and Sunday skipped) or calendar"
    out["day_kind"] = day_kind
    time_of_day = item.get("time_of_day", "09:00")
    try:
        parse_time(time_of_day if isinstance(time_of_day, str) else "")
    except ValueError as exc:
        errors[f"{prefix}.time_of_day"] = str(exc)
    out["time_of_day"] = time_of_day
    responsible = item.get("responsible") or "owner"
    if not isinstance(responsible, (str, int)) or isinstance(responsible, bool) or len(str(responsible)) > 100:
        errors[f"{prefix}.responsible"] = "owner (the record's owner) or a user id of the target"
        responsible = "owner"
    out["responsible"] = str(responsible)
    kind_name = item.get("kind")
    kind = task_kinds().get(kind_name) if isinstance(kind_name, str) else None
    settings = item.get("settings") or {}
    out["kind"], out["connection_id"], out["settings"] = kind_name, item.get("connection_id"), {}
    if kind is None:
        offered = ", ".join(sorted(task_kinds())) or "none: connect a task target"
        errors[f"{prefix}.kind"] = f"where the task is made: one of {offered}"
        return out
    if not isinstance(settings, dict):
        errors[f"{prefix}.settings"] = "an object of the target's settings"
        return out
    declared = {s.key for s in kind.settings}
    out["settings"] = {k: v for k, v in settings.items() if k in declared and v not in (None, "")}
    connection = None
    try:
        connection = connections.step_connection(session, installation_id, item.get("connection_id")
                                                 if isinstance(item.get("connection_id"), int) else None,
                                                 kind.connector)
    except Fatal as exc:
        errors[f"{prefix}.connection_id"] = str(exc)
    found: dict[str, str] = {}
    try:
        loader = catalogs.Loader(services, connection) if connection is not None else None
        found = kind.step.validate(dict(out["settings"]), loader, True) or {}
    except (Fatal, Retriable, NeedsReauth):
        found = kind.step.validate(dict(out["settings"]), None, True) or {}
    for key, message in found.items():
        name = key.split(".", 1)[1] if key.startswith(("settings.", "target.")) else key
        errors.setdefault(f"{prefix}.settings.{name}", message)
    return out


def _check(services: Any, session, installation_id: int, data: Any) -> tuple[str, list[dict[str, Any]]]:
    if not isinstance(data, dict):
        raise InputError.of("body", "a JSON object with name and templates")
    errors: dict[str, str] = {}
    name = _text(data.get("name"), "name", errors, required=True, limit=200).strip()
    items = data.get("templates")
    if not isinstance(items, list) or not items or len(items) > MAX_TEMPLATES:
        errors["templates"] = f"a list of 1 to {MAX_TEMPLATES} task templates"
        items = []
    templates = [check_template(services, session, installation_id, item, f"templates.{n}", errors)
                 for n, item in enumerate(items)]
    renders = {}
    for n, t in enumerate(templates):
        if t.get("title") and f"templates.{n}.title" not in errors:
            renders[f"{n}.title"] = (False, t["title"])
        if t.get("description") and f"templates.{n}.description" not in errors:
            renders[f"{n}.description"] = (True, t["description"])
    for key, problem in TargetRenderer(Limits.from_settings(services.settings)).check_templates(renders).items():
        n, slot = key.split(".", 1)
        errors[f"templates.{n}.{slot}"] = problem
    if errors:
        raise InputError(errors)
    return name, templates


# -- writing --------------------------------------------------------------------------------------
def create(services: Any, installation_id: int, data: Any) -> dict[str, Any]:
    with services.db.begin() as session:
        settings_row(session, installation_id)
        name, templates = _check(services, session, installation_id, data)
        row = TaskTemplateSet(installation_id=installation_id, name=name, created_at=utcnow(), updated_at=utcnow())
        session.add(row)
        session.flush()
        _store_templates(session, installation_id, row, templates)
        return set_dict(session, row)


def replace(services: Any, installation_id: int, set_id: int, data: Any) -> dict[str, Any]:
    with services.db.begin() as session:
        row = _set(session, installation_id, set_id)
        name, templates = _check(services, session, installation_id, data)
        row.name, row.updated_at = name, utcnow()
        _store_templates(session, installation_id, row, templates)
        return set_dict(session, row)


def _store_templates(session, installation_id: int, row: TaskTemplateSet, templates: list[dict]) -> None:
    existing = {t.id: t for t in session.scalars(select(TaskTemplate).where(TaskTemplate.set_id == row.id))}
    keep = set()
    for n, t in enumerate(templates):
        found = existing.get(t.get("id")) if isinstance(t.get("id"), int) else None
        if found is None:
            found = TaskTemplate(installation_id=installation_id, set_id=row.id)
            session.add(found)
        keep.add(found.id)
        found.position = n
        for key in ("title", "description", "type_id", "responsible", "delay_days", "day_kind", "time_of_day",
                    "kind", "connection_id", "settings"):
            setattr(found, key, t[key])
    gone = [i for i in existing if i not in keep]
    if gone:
        used = session.scalar(select(NextTaskRule.id).where(NextTaskRule.template_id.in_(gone)).limit(1))
        if used is not None:
            raise InputError.of("templates", "a removed template is used by a next-task rule: change that first")
        session.execute(delete(TaskTemplate).where(TaskTemplate.id.in_(gone)))
    session.flush()


def remove(services: Any, installation_id: int, set_id: int) -> None:
    with services.db.begin() as session:
        row = _set(session, installation_id, set_id)
        if session.scalar(select(PostSaleSet.id).where(PostSaleSet.set_id == row.id).limit(1)) is not None:
            raise InputError.of("set", f"“{row.name}” is a post-sale set: pick another set there first")
        ids = list(session.scalars(select(TaskTemplate.id).where(TaskTemplate.set_id == row.id)))
        if ids and session.scalar(select(NextTaskRule.id).where(NextTaskRule.template_id.in_(ids)).limit(1)):
            raise InputError.of("set", f"a template of “{row.name}” is used by a next-task rule: change that first")
        session.execute(delete(TaskTemplate).where(TaskTemplate.set_id == row.id))
        session.delete(row)


def templates_of(session, installation_id: int, set_id: int) -> list[TaskTemplate]:
    return list(session.scalars(select(TaskTemplate).where(TaskTemplate.installation_id == installation_id,
                                                          TaskTemplate.set_id == set_id)
                                .order_by(TaskTemplate.position, TaskTemplate.id)))


# -- post-sale sets -------------------------------------------------------------------------------
def post_sale_view(services: Any, installation_id: int) -> list[dict[str, Any]]:
    with services.db.begin() as session:
        return [{"pipeline_id": r.pipeline_id, "outcome": r.outcome, "set_id": r.set_id}
                for r in session.scalars(select(PostSaleSet).where(PostSaleSet.installation_id == installation_id)
                                         .order_by(PostSaleSet.pipeline_id, PostSaleSet.outcome))]


def set_post_sale(services: Any, installation_id: int, data: Any) -> list[dict[str, Any]]:
    """{"pipeline_id", "outcome": won|lost, "set_id" (null: none)}; keeps the engine's post-sale
    rules in step (hub.tasks.postsale)."""
    from .postsale import ensure_rules

    if not isinstance(data, dict):
        raise InputError.of("body", "a JSON object with pipeline_id, outcome and set_id")
    pipeline = data.get("pipeline_id")
    if isinstance(pipeline, int) and not isinstance(pipeline, bool):
        pipeline = str(pipeline)
    if not isinstance(pipeline, str) or not pipeline.strip() or len(pipeline) > 40:
        raise InputError.of("pipeline_id", "a sales process (pipeline) id")
    check_text(pipeline, "pipeline_id")
    outcome = data.get("outcome")
    if outcome not in OUTCOMES:
        raise InputError.of("outcome", "won or lost")
    set_id = data.get("set_id")
    with services.db.begin() as session:
        existing = session.scalar(select(PostSaleSet).where(PostSaleSet.installation_id == installation_id,
                                                            PostSaleSet.pipeline_id == pipeline,
                                                            PostSaleSet.outcome == outcome))
        if set_id in (None, ""):
            if existing is not None:
                session.delete(existing)
        else:
            try:
                _set(session, installation_id, set_id if isinstance(set_id, int) else -1)
            except LookupError:
                raise InputError.of("set_id", "a template set of this installation") from None
            if existing is None:
                existing = PostSaleSet(installation_id=installation_id, pipeline_id=pipeline, outcome=outcome)
                session.add(existing)
            existing.set_id = set_id
        session.flush()
        ensure_rules(session, installation_id)
    return post_sale_view(services, installation_id)
