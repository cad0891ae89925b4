"""An installation's task vocabulary and settings: task types (Email, Offer, Project, Meeting,
Online meeting by default; renamed, added, removed while no template or rule uses them), task
statuses (switched on and edited), the account's time zone, sharing (a default and per type), and
the next-task rules ("a completed task of type X suggests the task of template T").

Admins change these (the routes say so); everything is checked before anything is stored, and a
refusal names the field (`InputError`)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select

from ..connectors.contract.targets import SHARING_MODES
from ..inputs import InputError, check_text
from ..oauth.installs import on_install
from ..store import utcnow
from ..store.models import NextTaskRule, TaskSettings, TaskStatusOption, TaskTemplate, TaskType
from .deadlines import zone

DEFAULT_TYPES = ("Email", "Offer", "Project", "Meeting", "Online meeting")
DEFAULT_STATUSES = (("To do", False), ("In progress", False), ("Waiting", False), ("Done", True))
SHARING_LABELS = {"none": "None (only the owner)", "free_busy": "Free/busy (only the time)",
                  "read_only": "Read-only", "full": "Full access (see and edit)"}
NEXT_MODES = ("suggest", "create")
NAME_MAX = 80


def settings_row(session, installation_id: int) -> TaskSettings:
    """The installation's settings, made with the default types and statuses the first time."""
    row = session.get(TaskSettings, installation_id)
    if row is None:
        row = TaskSettings(installation_id=installation_id, timezone="UTC", sharing="free_busy",
                           statuses_enabled=False, updated_at=utcnow())
        session.add(row)
        if not session.scalar(select(func.count()).select_from(TaskType).where(
                TaskType.installation_id == installation_id)):
            for n, name in enumerate(DEFAULT_TYPES):
                session.add(TaskType(installation_id=installation_id, name=name, position=n))
        if not session.scalar(select(func.count()).select_from(TaskStatusOption).where(
                TaskStatusOption.installation_id == installation_id)):
            for n, (name, closes) in enumerate(DEFAULT_STATUSES):
                session.add(TaskStatusOption(installation_id=installation_id, name=name, position=n, closes=closes))
        session.flush()
    return row


@on_install
def _defaults_at_install(services: Any, session, installation) -> None:
    """The default types and statuses come with the install, so reading the settings never writes."""
    if installation.id is None:
        session.flush()
    settings_row(session, installation.id)


def _name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError.of(field, "a name (1 to 80 characters)")
    name = " ".join(check_text(value, field).split())
    if len(name) > NAME_MAX:
        raise InputError.of(field, f"at most {NAME_MAX} characters")
    return name


def _sharing(value: Any, field: str, *, allow_default: bool = False) -> str | None:
    if allow_default and value in (None, "", "default"):
        return None
    if value not in SHARING_MODES:
        raise InputError.of(field, "one of " + ", ".join(SHARING_MODES) + (" (or default)" if allow_default else ""))
    return value


def view(services: Any, installation_id: int) -> dict[str, Any]:
    with services.db.begin() as session:
        row = settings_row(session, installation_id)
        types = session.scalars(select(TaskType).where(TaskType.installation_id == installation_id)
                                .order_by(TaskType.position, TaskType.id)).all()
        used = _types_in_use(session, installation_id)
        statuses = session.scalars(select(TaskStatusOption).where(TaskStatusOption.installation_id == installation_id)
                                   .order_by(TaskStatusOption.position, TaskStatusOption.id)).all()
        rules = session.scalars(select(NextTaskRule).where(NextTaskRule.installation_id == installation_id)
                                .order_by(NextTaskRule.id)).all()
        return {"timezone": row.timezone, "sharing": row.sharing, "statuses_enabled": row.statuses_enabled,
                "types": [{"id": t.id, "name": t.name, "sharing": t.sharing, "in_use": t.id in used} for t in types],
                "statuses": [{"id": s.id, "name": s.name, "closes": s.closes} for s in statuses],
                "next_tasks": [{"id": r.id, "from_type_id": r.from_type_id, "template_id": r.template_id,
                                "mode": r.mode} for r in rules]}


def _types_in_use(session, installation_id: int) -> set[int]:
    used = set(session.scalars(select(TaskTemplate.type_id).where(TaskTemplate.installation_id == installation_id,
                                                                   TaskTemplate.type_id.is_not(None))))
    used |= set(session.scalars(select(NextTaskRule.from_type_id).where(
        NextTaskRule.installation_id == installation_id)))
    return used


def update(services: Any, installation_id: int, data: Any) -> dict[str, Any]:
    """Change the settings: `timezone`, `sharing`, `statuses_enabled` (fields left out keep theirs)."""
    if not isinstance(data, dict):
        raise InputError.of("body", "a JSON object")
    unknown = set(data) - {"timezone", "sharing", "statuses_enabled"}
    if unknown:
        raise InputError.of(sorted(unknown)[0], "not a setting (timezone, sharing, statuses_enabled)")
    if "timezone" in data:
        try:
            zone(data["timezone"])
        except ValueError as exc:
            raise InputError.of("timezone", str(exc)) from None
    if "sharing" in data:
        _sharing(data["sharing"], "sharing")
    if "statuses_enabled" in data and not isinstance(data["statuses_enabled"], bool):
        raise InputError.of("statuses_enabled", "true or false")
    with services.db.begin() as session:
        row = settings_row(session, installation_id)
        for key in ("timezone", "sharing", "statuses_enabled"):
            if key in data:
                setattr(row, key, data[key])
        row.updated_at = utcnow()
    return view(services, installation_id)


# -- types ----------------------------------------------------------------------------------------
def _type(session, installation_id: int, type_id: Any) -> TaskType:
    row = session.get(TaskType, type_id) if isinstance(type_id, int) else None
    if row is None or row.installation_id != installation_id:
        raise LookupError("no such task type")
    return row


def _unique(session, model, installation_id: int, name: str, field: str, own_id: int | None = None) -> None:
    clash = session.scalar(select(model.id).where(model.installation_id == installation_id,
                                                  func.lower(model.name) == name.lower()))
    if clash is not None and clash != own_id:
        raise InputError.of(field, f"“{name}” exists already")


def add_type(services: Any, installation_id: int, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InputError.of("body", "a JSON object")
    name = _name(data.get("name"), "name")
    sharing = _sharing(data.get("sharing"), "sharing", allow_default=True)
    with services.db.begin() as session:
        settings_row(session, installation_id)
        _unique(session, TaskType, installation_id, name, "name")
        last = session.scalar(select(func.max(TaskType.position)).where(TaskType.installation_id == installation_id))
        row = TaskType(installation_id=installation_id, name=name, sharing=sharing, position=(last or 0) + 1)
        session.add(row)
        session.flush()
        return {"id": row.id, "name": row.name, "sharing": row.sharing, "in_use": False}


def change_type(services: Any, installation_id: int, type_id: int, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InputError.of("body", "a JSON object")
    name = _name(data["name"], "name") if "name" in data else None
    sharing = _sharing(data.get("sharing"), "sharing", allow_default=True) if "sharing" in data else ...
    with services.db.begin() as session:
        row = _type(session, installation_id, type_id)
        if name is not None:
            _unique(session, TaskType, installation_id, name, "name", row.id)
            row.name = name
        if sharing is not ...:
            row.sharing = sharing
        return {"id": row.id, "name": row.name, "sharing": row.sharing,
                "in_use": row.id in _types_in_use(session, installation_id)}


def remove_type(services: Any, installation_id: int, type_id: int) -> None:
    with services.db.begin() as session:
        row = _type(session, installation_id, type_id)
        if row.id in _types_in_use(session, installation_id):
            raise InputError.of("type", f"“{row.name}” is used by a template or a next-task rule: change those first")
        session.delete(row)


# -- statuses -------------------------------------------------------------------------------------
def set_statuses(services: Any, installation_id: int, data: Any) -> dict[str, Any]:
    """Replace the list of statuses: [{"name", "closes"}] (at least one; names unique)."""
    items = data.get("statuses") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items or len(items) > 30:
        raise InputError.of("statuses", "a list of 1 to 30 statuses")
    seen: set[str] = set()
    clean = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise InputError.of(f"statuses.{n}", "an object with name and closes")
        name = _name(item.get("name"), f"statuses.{n}.name")
        if name.lower() in seen:
            raise InputError.of(f"statuses.{n}.name", f"“{name}” is listed twice")
        seen.add(name.lower())
        closes = item.get("closes", False)
        if not isinstance(closes, bool):
            raise InputError.of(f"statuses.{n}.closes", "true or false")
        clean.append((name, closes))
    with services.db.begin() as session:
        settings_row(session, installation_id)
        session.execute(delete(TaskStatusOption).where(TaskStatusOption.installation_id == installation_id))
        for n, (name, closes) in enumerate(clean):
            session.add(TaskStatusOption(installation_id=installation_id, name=name, position=n, closes=closes))
    return view(services, installation_id)


# -- next-task rules ------------------------------------------------------------------------------
def set_next_task(services: Any, installation_id: int, data: Any) -> dict[str, Any]:
    """When a task of `from_type_id` is completed: suggest (`mode` suggest) or create at once
    (`create`) the task of `template_id`; `template_id` null removes the rule."""
    if not isinstance(data, dict):
        raise InputError.of("body", "a JSON object")
    from_type, template_id, mode = data.get("from_type_id"), data.get("template_id"), data.get("mode", "suggest")
    if mode not in NEXT_MODES:
        raise InputError.of("mode", "suggest (the person who completed it is asked) or create (made at once)")
    with services.db.begin() as session:
        try:
            source = _type(session, installation_id, from_type)
        except LookupError:
            raise InputError.of("from_type_id", "a task type of this installation") from None
        existing = session.scalar(select(NextTaskRule).where(NextTaskRule.installation_id == installation_id,
                                                             NextTaskRule.from_type_id == source.id))
        if template_id in (None, ""):
            if existing is not None:
                session.delete(existing)
            return {"from_type_id": source.id, "template_id": None, "mode": mode}
        template = session.get(TaskTemplate, template_id) if isinstance(template_id, int) else None
        if template is None or template.installation_id != installation_id:
            raise InputError.of("template_id", "a task template of this installation")
        if existing is None:
            existing = NextTaskRule(installation_id=installation_id, from_type_id=source.id)
            session.add(existing)
        existing.template_id, existing.mode = template.id, mode
        return {"from_type_id": source.id, "template_id": template.id, "mode": mode}


def sharing_of(session, installation_id: int, type_name: str) -> str:
    """The sharing mode of a task of this type (its type's, else the installation's default)."""
    row = settings_row(session, installation_id)
    if type_name:
        own = session.scalar(select(TaskType.sharing).where(TaskType.installation_id == installation_id,
                                                             TaskType.name == type_name))
        if own:
            return own
    return row.sharing
