"""The status mirror of linked tasks: one `TaskStatus` row per task a rule step linked to a CRM
record, kept from three sources: the CRM's task events (`task.created|status_changed|completed`,
extra `status` in neutral words), the hub's own steps (made, completed, sent for review) and the
scheduled check (`TaskTarget.state`, overdue once the deadline passed).

The link's own `status` follows the mirror, so "complete linked tasks" and closing a deal skip
what is done, under review or gone: a task the hub can no longer see is shown as gone and never
tried again."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import bindparam, false, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from ..connectors.contract.targets import CLOSED_STATUSES, TASK_STATUSES, TaskState
from ..store import fast
from ..store.db import defer_write
from ..store.models import RuleLink, TaskStatus
from ..store.sql import insert_ignore

_STATUSES = TaskStatus.__table__
_STATUSES_INSERT = _STATUSES.insert()

# what the link's status becomes (the complete step and closing pick links that are "open")
LINK_STATUS = {"completed": "completed", "gone": "gone", "awaiting_review": "review"}
NOT_OVERDUE = CLOSED_STATUSES + ("awaiting_review", "deferred")   # a passed deadline changes nothing for these


def deadline_of(value: Any) -> tuple[str, datetime | None]:
    """(ISO text to show, naive UTC moment it passes): a date passes at the end of its day."""
    if value in (None, ""):
        return "", None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00")) if "T" in value else date.fromisoformat(value)
        except ValueError:
            return "", None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value.isoformat(timespec="minutes"), value
    if isinstance(value, date):
        return value.isoformat(), datetime(value.year, value.month, value.day) + timedelta(days=1)
    return "", None


def moment(value: Any) -> datetime | None:
    """A change time as naive UTC, from a datetime or ISO text (targets may give either)."""
    if isinstance(value, str) and value.strip():
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "T", 1))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo is not None else value


def words(value: Any) -> str | None:
    """A target's note for people: text, or a mapping shown as "key: value, ..."."""
    if value is None:
        return None
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items() if v not in (None, ""))
    return str(value)


def effective(status: str, due_at: datetime | None, now: datetime) -> str:
    """Overdue once the deadline passed, unless the task is done, gone, deferred or under review."""
    if due_at is not None and now >= due_at and status not in NOT_OVERDUE:
        return "overdue"
    return status


def row_for(session: Session, link: RuleLink) -> TaskStatus:
    row = session.scalar(select(TaskStatus).where(TaskStatus.link_id == link.id))
    if row is None:
        row = TaskStatus(link_id=link.id, installation_id=link.installation_id, connector=link.connector,
                         external_id=link.external_id, object_type=link.object_type, object_id=link.object_id,
                         status="open", deadline="", status_changed_at=link.created_at, updated_at=link.created_at)
        session.add(row)
    return row


def apply(session: Session, link: RuleLink, now: datetime, *, status: str, deadline: Any = ...,
          changed_at: datetime | None = None, responsible: str | None = None, detail: str | None = None,
          checked: bool = False) -> TaskStatus:
    """Record what one source says about a linked task. `deadline=...` keeps the known one. An
    event older than the change already recorded (delivered late) changes nothing; a check
    (`checked`) reads the task as it is now, so it always counts."""
    if status not in TASK_STATUSES:
        raise ValueError(f"unknown task status {status!r}")
    changed_at = moment(changed_at)
    row = row_for(session, link)
    if checked:
        row.checked_at = now
    elif changed_at is not None and row.id is not None and row.status_changed_at is not None \
            and changed_at < row.status_changed_at and row.status != "open":
        return row      # ("open" is what the hub knows before any news: every event refines it)
    if deadline is not ...:
        row.deadline, row.due_at = deadline_of(deadline)
    new = effective(status, row.due_at, now)
    if new != row.status:
        # overdue is the hub's own finding: it happened when the deadline passed
        row.status_changed_at = row.due_at if new == "overdue" and status != "overdue" else (changed_at or now)
        row.status = new
    row.gone = new == "gone"
    if responsible is not None:
        row.responsible = str(responsible)[:200]
    if words(detail) is not None:
        row.detail = words(detail)[:500]
    row.updated_at = now
    link_status = LINK_STATUS.get(new, "open")
    if link.status != link_status:
        link.status = link_status
        link.completed_at = now if link_status == "completed" else link.completed_at
        if link_status == "completed":
            for hook in COMPLETED_HOOKS:      # e.g. the next-task suggestions (hub/tasks/suggestions.py)
                hook(session, link)
    return row


# called inside the transaction that sees a linked task become completed: (session, link)
COMPLETED_HOOKS: list = []


def apply_state(session: Session, link: RuleLink, state: TaskState, now: datetime, *, checked: bool = True) -> TaskStatus:
    return apply(session, link, now, status=state.status, deadline=state.deadline, changed_at=state.changed_at,
                 responsible=state.responsible, detail=state.detail, checked=checked)


def opened(session: Session, link_id: int, link: dict[str, Any], now: datetime, deadline: Any = None) -> None:
    """A step made the task and its link was just inserted (`link`: its values): the task's row,
    written as `made` would write it, in one statement instead of reading both rows first."""
    text, due_at = deadline_of(deadline)
    status = effective("open", due_at, now)
    if LINK_STATUS.get(status, "open") != "open":
        made(session, link_id, now, deadline)
        return
    fast.execute(session.connection(), _STATUSES_INSERT, dict(
        link_id=link_id, installation_id=link["installation_id"], connector=link["connector"],
        external_id=link["external_id"], object_type=link["object_type"], object_id=link["object_id"],
        status=status, deadline=text, due_at=due_at, gone=False, updated_at=now,
        status_changed_at=due_at if status == "overdue" else now))


def insert_link(session: Session, link: dict[str, Any], now: datetime, deadline: Any = None, *,
                defer: bool = False) -> int | None:
    """A step's link (`link`: the row's values), new unless the step has one already (its id, else
    None), and for a task its status row (`opened`). On PostgreSQL an open task's two rows go in as
    one statement (the link's INSERT a CTE the status row is selected from): one round trip less
    for every task a rule makes. `defer`: that statement goes with the transaction's last one
    (`defer_write`; the id is not known then: None), for a caller that reads neither row back."""
    text, due_at = deadline_of(deadline)
    status = effective("open", due_at, now)
    conn = session.connection()
    if link.get("made") != "task" or conn.dialect.name != "postgresql" or LINK_STATUS.get(status, "open") != "open":
        link_id = insert_ignore(session, RuleLink, link, ["run_id", "step_uid"])
        if link_id is not None and link.get("made") == "task":
            opened(session, link_id, link, now, deadline)
        return link_id
    params = {**{f"l_{key}": link.get(key, _LINK_DEFAULTS.get(key)) for key in _LINK_COLUMNS},
              "t_status": status, "t_deadline": text, "t_due_at": due_at, "t_now": now,
              "t_changed_at": due_at if status == "overdue" else now}
    if defer:
        defer_write(session, _LINK_AND_STATUS, params)
        return None
    session.flush()   # as insert_ignore: pending ORM rows go first
    return fast.execute(conn, _LINK_AND_STATUS, params).scalar_one_or_none()


_LINKS = RuleLink.__table__
_LINK_COLUMNS = [c.key for c in _LINKS.columns if c.key not in ("id", "completed_at")]
_LINK_DEFAULTS = {"step_uid": "", "name": "", "url": "", "status": "open", "connection_id": None}
_NEW_LINK = pg_insert(_LINKS).values({key: bindparam(f"l_{key}", type_=_LINKS.c[key].type) for key in _LINK_COLUMNS}) \
    .on_conflict_do_nothing(index_elements=["run_id", "step_uid"]).returning(_LINKS.c.id).cte("new_link")
_LINK_AND_STATUS = _STATUSES.insert().from_select(
    ["link_id", "installation_id", "connector", "external_id", "object_type", "object_id", "status", "deadline",
     "due_at", "gone", "responsible", "detail", "updated_at", "status_changed_at"],
    select(_NEW_LINK.c.id, *(bindparam(f"l_{key}", type_=_LINKS.c[key].type)
                             for key in ("installation_id", "connector", "external_id", "object_type", "object_id")),
           bindparam("t_status", type_=_STATUSES.c.status.type), bindparam("t_deadline", type_=_STATUSES.c.deadline.type),
           bindparam("t_due_at", type_=_STATUSES.c.due_at.type), false(),
           bindparam("t_responsible", value="", type_=_STATUSES.c.responsible.type),
           bindparam("t_detail", value="", type_=_STATUSES.c.detail.type),
           bindparam("t_now", type_=_STATUSES.c.updated_at.type),
           bindparam("t_changed_at", type_=_STATUSES.c.status_changed_at.type)),
    include_defaults=False).returning(_STATUSES.c.link_id)


def made(session: Session, link_id: int, now: datetime, deadline: Any = None) -> None:
    """A step made (or found) the task: it is open, due as the step said."""
    link = session.get(RuleLink, link_id)
    if link is not None and link.made == "task":
        apply(session, link, now, status="open", deadline=deadline, changed_at=now)


def completed(session: Session, link_id: int, status: str, now: datetime) -> None:
    """The hub completed the task (or sent it for review): `status` is what the target answered."""
    link = session.get(RuleLink, link_id)
    if link is not None:
        apply(session, link, now, status=status if status in TASK_STATUSES else "completed", changed_at=now)


def links_of_task(session: Session, installation_id: int, connector: str, external_id: str) -> list[RuleLink]:
    return list(session.scalars(select(RuleLink).where(
        RuleLink.installation_id == installation_id, RuleLink.connector == connector, RuleLink.made == "task",
        RuleLink.external_id == str(external_id))))
