"""The team task calendar: every task the hub made from a template (any target) and every task a
rule step linked, per person and week, as each viewer may see it.

What a viewer sees of a task is decided here, once, for the page and the API alike:
- the task's owner (its responsible, matched by e-mail, or by CRM user id for a CRM's own tasks)
  sees and edits everything;
- a colleague sees it by the task's sharing mode (the task's own, else its type's, else the
  installation's default): `none` hides it, `free_busy` shows only its time ("Busy"), `read_only`
  shows it, `full` shows it and allows editing (complete it, move its deadline, through its target);
- admins are colleagues here: the admin role governs the settings, not colleagues' private tasks.
Tasks a rule step linked without a template have no deadline the hub knows: they are shown on the
day they were made, under "Unassigned", with the installation's default mode."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, or_, select

from ..inputs import InputError
from ..store import Installation, InstallationUser, utcnow
from ..store.models import HubTask, RuleLink, TaskStatus
from . import mirror
from .config import settings_row, sharing_of
from .deadlines import as_utc, zone

VISIBLE = ("free_busy", "read_only", "full")


@dataclass(frozen=True)
class Viewer:
    crm_user_id: str
    email: str
    name: str

    @property
    def key(self) -> tuple[str, str]:
        return self.email, self.crm_user_id


def viewer_of(session, installation_id: int, crm_user_id: str) -> Viewer:
    installation = session.get(Installation, installation_id)
    row = session.scalar(select(InstallationUser).where(InstallationUser.installation_id == installation_id,
                                                        InstallationUser.crm_user_id == crm_user_id))
    email = row.email if row is not None and row.email else ""
    name = row.name if row is not None else ""
    if installation is not None and installation.installer_user_id == crm_user_id:
        email = email or installation.installer_email
        name = name or installation.installer_name
    return Viewer(crm_user_id, email or "", name or "")


def access(task: HubTask | None, mode: str, viewer: Viewer, crm_provider: str) -> str:
    """owner | full | read_only | free_busy | none."""
    if task is not None:
        if viewer.email and task.owner_email and task.owner_email.lower() == viewer.email.lower():
            return "owner"
        if task.connector == crm_provider and task.owner_id and task.owner_id == viewer.crm_user_id:
            return "owner"
    return mode


def parse_week(value: str | None, tz_name: str) -> date:
    """The Monday of `value` (an ISO week `2026-W49` or any date `2026-12-02`); default: this week."""
    if value:
        try:
            if "W" in value:
                year, week = value.split("-W")
                return date.fromisocalendar(int(year), int(week), 1)
            day = date.fromisoformat(value)
            return day - timedelta(days=day.weekday())
        except (ValueError, TypeError):
            raise InputError.of("week", "an ISO week (2026-W49) or a date (2026-12-02)") from None
    today = datetime.now(zone(tz_name)).date() if tz_name else utcnow().date()
    return today - timedelta(days=today.weekday())


def _entry(task_id: str, title: str, due_local: datetime | None, seen: str, **rest: Any) -> dict[str, Any]:
    entry = {"id": task_id, "due": due_local.isoformat() if due_local else None,
             "day": due_local.date().isoformat() if due_local else None,
             "time": due_local.strftime("%H:%M") if due_local else None, "access": seen,
             "can_edit": seen in ("owner", "full")}
    if seen == "free_busy":
        entry.update({"title": "Busy", "busy": True})
        return entry
    entry.update({"title": title, "busy": False, **rest})
    return entry


def week_view(services: Any, installation_id: int, viewer: Viewer, week: str | None = None,
              person: str | None = None) -> dict[str, Any]:
    with services.db.begin() as session:
        settings = settings_row(session, installation_id)
        tz = zone(settings.timezone)
        monday = parse_week(week, settings.timezone)
        start = as_utc(datetime.combine(monday, time(0), tzinfo=tz))
        end = as_utc(datetime.combine(monday + timedelta(days=7), time(0), tzinfo=tz))
        installation = session.get(Installation, installation_id)
        provider = installation.provider if installation else ""
        tasks = session.scalars(select(HubTask).where(HubTask.installation_id == installation_id,
                                                      HubTask.due_at >= start, HubTask.due_at < end)
                                .order_by(HubTask.due_at, HubTask.id)).all()
        own = {(t.connector, t.external_id) for t in session.execute(
            select(HubTask.connector, HubTask.external_id).where(HubTask.installation_id == installation_id))}
        # tasks rule steps linked (not from a template): their mirror's deadline and responsible
        # (hub/tasks/mirror.py); without a deadline, the day they were made
        in_week = or_(and_(TaskStatus.due_at >= start, TaskStatus.due_at < end + timedelta(days=1)),
                      and_(or_(TaskStatus.id.is_(None), TaskStatus.due_at.is_(None)),
                           RuleLink.created_at >= start, RuleLink.created_at < end))
        links = session.execute(select(RuleLink, TaskStatus).outerjoin(TaskStatus, TaskStatus.link_id == RuleLink.id)
                                .where(RuleLink.installation_id == installation_id, RuleLink.made == "task", in_week)
                                .order_by(RuleLink.id).limit(2000)).all()
        modes: dict[str, str] = {}
        people: dict[str, dict[str, Any]] = {}

        def bucket(key: str, name: str, email: str) -> dict[str, Any]:
            return people.setdefault(key, {"person": name or email or "Unassigned", "email": email, "tasks": []})

        for t in tasks:
            mode = t.sharing or modes.setdefault(t.task_type, sharing_of(session, installation_id, t.task_type))
            seen = access(t, mode, viewer, provider)
            if seen == "none":
                continue
            due = t.due_at.replace(tzinfo=_utc()).astimezone(tz) if t.due_at else None
            key = (t.owner_email or t.owner_name or "").lower()
            if person and person.lower() not in (key, t.owner_name.lower()):
                continue
            bucket(key, t.owner_name, t.owner_email)["tasks"].append(_entry(
                f"h{t.id}", t.title, due, seen, type=t.task_type, status=t.status, url=t.url, connector=t.connector,
                object_type=t.object_type, object_id=t.object_id, sharing=mode))
        for link, mirrored in links:
            if (link.connector, link.external_id) in own or person or settings.sharing == "none":
                continue
            when, timed = _link_due(mirrored, link, tz)
            if not start <= as_utc(when) < end:
                continue
            entry = _entry(f"l{link.id}", link.name, when, settings.sharing, type="",
                           status=mirrored.status if mirrored else link.status, url=link.url, connector=link.connector,
                           object_type=link.object_type, object_id=link.object_id, sharing=settings.sharing,
                           no_deadline=mirrored is None or not mirrored.deadline)
            if not timed:
                entry["time"] = None
            entry["can_edit"] = False
            who = mirrored.responsible if mirrored else ""
            bucket(who.lower(), who, "")["tasks"].append(entry)
        days = [(monday + timedelta(days=n)).isoformat() for n in range(7)]
        year, number, _ = monday.isocalendar()
        return {"week": f"{year}-W{number:02d}", "start": monday.isoformat(), "days": days,
                "previous": f"{(monday - timedelta(days=7)).isocalendar()[0]}-W"
                            f"{(monday - timedelta(days=7)).isocalendar()[1]:02d}",
                "next": f"{(monday + timedelta(days=7)).isocalendar()[0]}-W"
                        f"{(monday + timedelta(days=7)).isocalendar()[1]:02d}",
                "timezone": settings.timezone, "viewer": viewer.email or viewer.crm_user_id,
                "people": sorted(people.values(), key=lambda p: (p["person"] == "Unassigned", p["person"].lower()))}


def _link_due(mirrored: Any, link: RuleLink, tz: Any) -> tuple[datetime, bool]:
    """(when a linked task shows, whether that has a time): its deadline, else the day it was made."""
    text = mirrored.deadline if mirrored is not None else ""
    if text and "T" in text:
        moment = datetime.fromisoformat(text)
        return (moment if moment.tzinfo else moment.replace(tzinfo=_utc())).astimezone(tz), True
    if text:
        return datetime.combine(date.fromisoformat(text), time(0), tzinfo=tz), False
    return link.created_at.replace(tzinfo=_utc()).astimezone(tz), True


def _utc():
    from datetime import timezone
    return timezone.utc


# -- editing (owner or full access) ---------------------------------------------------------------------
def _editable(session, installation_id: int, task_id: int, viewer: Viewer) -> HubTask:
    task = session.get(HubTask, task_id)
    if task is None or task.installation_id != installation_id:
        raise LookupError("no such task")
    installation = session.get(Installation, installation_id)
    mode = task.sharing or sharing_of(session, installation_id, task.task_type)
    seen = access(task, mode, viewer, installation.provider if installation else "")
    if seen == "none":
        raise LookupError("no such task")
    if seen not in ("owner", "full"):
        raise PermissionError("its owner shares this task with you read-only" if seen == "read_only"
                              else "its owner shares only the time of this task with you")
    session.expunge(task)
    return task


def _target(services: Any, task: HubTask) -> Any:
    from ..rules import connections
    from ..rules.steps.make import make_target
    from .sets import task_kinds

    kind = task_kinds().get(task.kind)
    if kind is None:
        raise InputError.of("task", "its target is no longer connected to the hub")
    with services.db.begin() as session:
        connection = connections.step_connection(session, task.installation_id, task.connection_id, kind.connector)
        session.expunge(connection)
    return make_target(services, kind, connection)


def complete(services: Any, installation_id: int, task_id: int, viewer: Viewer) -> dict[str, Any]:
    """Complete the task through its target; the next task is suggested to the viewer."""
    from .suggestions import hub_task_completed

    with services.db.begin() as session:
        task = _editable(session, installation_id, task_id, viewer)
    status = _target(services, task).complete(task.external_id)
    with services.db.begin() as session:
        row = session.get(HubTask, task.id)
        newly = row.status != "completed"
        row.status, row.completed_at = "completed", utcnow()
        for link in mirror.links_of_task(session, installation_id, row.connector, row.external_id):
            mirror.completed(session, link.id, status, services.queue.clock.now())
        if newly:
            hub_task_completed(services, session, row, by_email=viewer.email, by_user_id=viewer.crm_user_id)
    return {"id": f"h{task.id}", "status": "completed" if status in ("completed", "done") else str(status)}


def reschedule(services: Any, installation_id: int, task_id: int, viewer: Viewer, due: Any) -> dict[str, Any]:
    """Move the deadline (`due`: YYYY-MM-DDTHH:MM in the account's time zone) through the target."""
    with services.db.begin() as session:
        tz = zone(settings_row(session, installation_id).timezone)
        task = _editable(session, installation_id, task_id, viewer)
    try:
        local = datetime.fromisoformat(str(due)) if isinstance(due, str) and len(due) <= 32 else None
    except ValueError:
        local = None
    if local is None or local.tzinfo is not None:
        raise InputError.of("due", "a date and time in the account's time zone: YYYY-MM-DDTHH:MM")
    moment = as_utc(local.replace(tzinfo=tz))
    target = _target(services, task)
    move = getattr(target, "reschedule", None)
    if move is None:
        raise InputError.of("due", "this task's target cannot move a deadline from the hub")
    move(task.external_id, moment.isoformat() + "Z")
    with services.db.begin() as session:
        session.get(HubTask, task.id).due_at = moment
    return {"id": f"h{task.id}", "due": local.replace(tzinfo=tz).isoformat()}
