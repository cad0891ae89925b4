"""Normalized CRM events: recorded once per occurrence, the object's newest state kept, handed to
subscribers (rules, contact sync) inside the same transaction, and traced in the run log.

An occurrence names what happened in the CRM ("deal 42 won at T"), not the message that told us,
so a webhook, its retries, a duplicate delivery and the reconciliation poll all land on one row
and every effect downstream happens once."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any, Callable

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ..connectors.contract.webhooks import CrmEvent, canonical_time, default_occurrence
from ..store import Bookmark, HubEvent, ObjectState, RunLog, fast, utcnow
from ..store.db import defer_insert, transaction_memo
from ..store.sql import insert_ignore, insert_ignore_many, upsert
from .stale import is_older, still_shows

log = logging.getLogger("hub.events")
Subscriber = Callable[[Any, Session, HubEvent], None]
_RUN_LOG = RunLog.__table__
_STATES = ObjectState.__table__
_STATE_KEY = (_STATES.c.installation_id == bindparam("installation_id")) & (
    _STATES.c.object_type == bindparam("object_type")) & (_STATES.c.object_id == bindparam("object_id"))
_LOCK_STATE = {   # postgres?: the known state, locked
    pg: select(_STATES.c.id, _STATES.c.version, _STATES.c.deleted, _STATES.c.data).where(_STATE_KEY)
    .with_for_update(of=_STATES) if pg else
    select(_STATES.c.id, _STATES.c.version, _STATES.c.deleted, _STATES.c.data).where(_STATE_KEY)
    for pg in (True, False)}
_SET_STATE = _STATES.update().where(_STATES.c.id == bindparam("b_id")).values(
    version=bindparam("b_version"), deleted=bindparam("b_deleted"), data=bindparam("b_data"),
    updated_at=bindparam("b_at"))
_HELD = "hub.events.held"   # session.info: (installation, type, id) -> the state row as this transaction left it
_subscribers: list[Subscriber] = []


def subscribe(fn: Subscriber) -> Subscriber:
    """Called for every new event, inside the transaction that records it: enqueue work there."""
    if fn not in _subscribers:
        _subscribers.append(fn)
    return fn


def occurrence_key(event: CrmEvent) -> str:
    """The event's row: object, kind and the connector's occurrence marker (`CrmEvent.occurrence`)."""
    marker = event.occurrence or default_occurrence(event)
    return f"{event.object_type}:{event.object_id}:{event.kind}:{marker}"[:300]


def event_data(event: CrmEvent) -> dict[str, Any]:
    return {"current": event.current, "previous": event.previous, "pipeline_id": event.pipeline_id,
            "from_stage_id": event.from_stage_id, "to_stage_id": event.to_stage_id, "version": event.version,
            "provider_event_id": event.event_id, "extra": event.extra}


def record(services: Any, session: Session, installation_id: int, event: CrmEvent, *, source: str,
           inbox_event_id: int | None = None) -> HubEvent | None:
    """Record one event unless its occurrence is known; keep the object's newest state; notify
    subscribers (`record_all` of one event)."""
    return record_all(services, session, installation_id, [event], source=source, inbox_event_id=inbox_event_id)[0]


def record_all(services: Any, session: Session, installation_id: int, events: list[CrmEvent], *, source: str,
               inbox_event_id: int | None = None) -> list[HubEvent | None]:
    """Record each event unless its occurrence is known (None for it); keep each object's newest
    state; notify subscribers, event by event in order. An event older than the state held is
    recorded and traced as stale; it changes no state, and its transition counts only while the
    newer state still shows it (`stale.py`).

    Core statements, not the ORM: this runs for every event. The states are compared and kept first
    (a new object's row inserted with its first event's state, a known one locked, compared and
    updated), each event against the state the one before it left; then the events' rows go in as
    one INSERT (a webhook's change and its transition: one round trip, not two); then the traces
    and subscribers of each event in turn. Subscribers read neither rows, so they see what they saw
    when each event was written on its own."""
    prepared = []
    for event in events:
        occurrence = occurrence_key(event)
        version = canonical_time(event.version) if event.version else ""
        held, new_object = _lock_or_create(session, installation_id, event, version)
        data = event_data(event)
        stale = not new_object and is_older(version, held.version)
        acted = stale and still_shows(event, held.data, held.deleted)
        known = held.version if held is not None else ""
        if stale:
            data["stale"] = {"version": version, "known_version": known, "acted": acted}
        values = {"installation_id": installation_id, "occurrence": occurrence, "kind": event.kind,
                  "object_type": event.object_type, "object_id": str(event.object_id), "source": source,
                  "inbox_event_id": inbox_event_id, "occurred_at": _naive(event.occurred_at), "data": data,
                  "created_at": utcnow()}
        if not stale and not new_object:
            _update_state(session, held, event, version)
        prepared.append((event, values, stale, acted, known, version))
    ids = insert_ignore_many(session, HubEvent, [p[1] for p in prepared], ["installation_id", "occurrence"])
    recorded: list[HubEvent | None] = []
    for (event, values, stale, acted, known, version), new_id in zip(prepared, ids):
        recorded.append(_announce(services, session, installation_id, event, values, new_id, stale, acted, known,
                                  version, source, inbox_event_id))
    return recorded


def _announce(services: Any, session: Session, installation_id: int, event: CrmEvent, values: dict, new_id: int | None,
              stale: bool, acted: bool, known: str, version: str, source: str,
              inbox_event_id: int | None) -> HubEvent | None:
    """An event's traces and, unless it is a duplicate or a stale one that no longer shows, its subscribers."""
    if new_id is None:
        trace(session, installation_id, "duplicate", f"{event.kind} {event.object_type} {event.object_id}: "
              "already recorded, nothing to do", status="info", inbox_event_id=inbox_event_id,
              occurrence=values["occurrence"])
        return None
    hub_event = HubEvent(id=new_id, **values)   # as stored; subscribers read it, nothing flushes it
    trace(session, installation_id, "normalized", f"{event.kind} {event.object_type} {event.object_id}",
          hub_event_id=new_id, inbox_event_id=inbox_event_id, source=source)
    if stale:
        what = f"{event.kind} {event.object_type} {event.object_id} (version {version}, known {known})"
        trace(session, installation_id, "stale",
              f"{what} is older than what we know, which still shows it: acted on" if acted else
              f"{what} is older than what we know: no transition",
              status="info", hub_event_id=new_id, inbox_event_id=inbox_event_id, version=version,
              known_version=known, acted=acted)
        if not acted:
            return hub_event
    for fn in subscribers():
        fn(services, session, hub_event)
    return hub_event


def _lock_or_create(session: Session, installation_id: int, event: CrmEvent, version: str):
    """(the object's state row as it was, new object?). A new object's row is inserted already
    holding this event's state; a known one is locked until the transaction ends (FOR UPDATE on
    PostgreSQL; SQLite has one writer at a time), so two processes recording events of one object
    compare versions one after the other."""
    keys = {"installation_id": installation_id, "object_type": event.object_type, "object_id": str(event.object_id)}
    known = _held(session)
    key = (installation_id, event.object_type, str(event.object_id))
    if key in known:        # an earlier event of this transaction (one webhook, several events) locked it
        return known[key], False
    values = {**keys, "version": version or "", "deleted": event.kind.endswith(".deleted"),
              "data": (event.current if event.current is not None else (event.previous or {})) or {},
              "updated_at": utcnow()}
    created = insert_ignore(session, ObjectState, values, list(keys))
    if created is not None:
        known[key] = SimpleNamespace(id=created, version=values["version"], deleted=values["deleted"],
                                     data=values["data"])
        return None, True
    conn = session.connection()
    row = fast.execute(conn, _LOCK_STATE[conn.dialect.name == "postgresql"], keys).one()
    known[key] = SimpleNamespace(id=row.id, version=row.version, deleted=row.deleted, data=row.data)
    return known[key], False


def _held(session: Session) -> dict:
    """The state rows this transaction inserted or locked, as it left them (forgotten when it ends)."""
    return transaction_memo(session, _HELD)


def _update_state(session: Session, held: Any, event: CrmEvent, version: str) -> None:
    """Keep the newest state; an event without ordering information never overwrites a known one."""
    deleted = event.kind.endswith(".deleted")
    if not version and not deleted:
        return
    version = version or held.version or ""
    data = (event.current if event.current is not None else (event.previous or {})) or {}
    if (version, deleted, data) == (held.version, held.deleted, held.data):
        return          # as held already (a webhook's second event of one object)
    fast.execute(session.connection(), _SET_STATE, {"b_id": held.id, "b_version": version, "b_deleted": deleted,
                                                    "b_data": data, "b_at": utcnow()})
    held.version, held.deleted, held.data = version, deleted, data


def subscribers() -> list[Subscriber]:
    return list(_subscribers)


def _naive(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is not None:
        return moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def lock_state(session: Session, installation_id: int, object_type: str, object_id: str) -> tuple[ObjectState, bool]:
    """The object's state row, locked until this transaction ends (FOR UPDATE on PostgreSQL; SQLite
    has one writer at a time), so two processes recording events of one object compare versions
    one after the other. A new object gets an empty row first, which the caller fills in."""
    keys = {"installation_id": installation_id, "object_type": object_type, "object_id": str(object_id)}
    _held(session).pop((installation_id, object_type, str(object_id)), None)   # the caller may change it
    created = insert_ignore(session, ObjectState, {**keys, "version": "", "deleted": False, "data": {},
                                                   "updated_at": utcnow()}, list(keys))
    row = session.scalar(select(ObjectState).filter_by(**keys).with_for_update().execution_options(
        populate_existing=True))
    return row, created is not None


def known_state(session: Session, installation_id: int, object_type: str, object_id: str) -> ObjectState | None:
    return session.scalar(select(ObjectState).where(
        ObjectState.installation_id == installation_id, ObjectState.object_type == object_type,
        ObjectState.object_id == str(object_id)))


def trace(session: Session, installation_id: int, step: str, message: str, *, status: str = "ok",
          hub_event_id: int | None = None, inbox_event_id: int | None = None, rule_id: int | None = None,
          sync_id: int | None = None, job_id: int | None = None, **detail: Any) -> None:
    """A run log line, written with the transaction's other lines when it commits (one statement)."""
    defer_insert(session, _RUN_LOG, {
        "installation_id": installation_id, "step": step, "status": status, "message": message[:4000],
        "hub_event_id": hub_event_id, "inbox_event_id": inbox_event_id, "rule_id": rule_id, "sync_id": sync_id,
        "job_id": job_id, "detail": detail, "created_at": utcnow()})


def get_bookmark(session: Session, installation_id: int, name: str) -> dict[str, Any] | None:
    row = session.scalar(select(Bookmark).where(Bookmark.installation_id == installation_id, Bookmark.name == name))
    return dict(row.value) if row else None


def set_bookmark(session: Session, installation_id: int, name: str, value: dict[str, Any]) -> None:
    upsert(session, Bookmark, {"installation_id": installation_id, "name": name, "value": value,
                               "updated_at": utcnow()}, ["installation_id", "name"],
           {"value": value, "updated_at": utcnow()})
from . import flags as _flags  # noqa: E402,F401  (its subscriber: a stage moved back by hand)
