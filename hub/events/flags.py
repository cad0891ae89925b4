"""State an automation keeps per CRM object, in one generic table (`ObjectFlag`): a key, a JSON
value, why, who and when. The first key is `auto_advance`: once a person moves an object back in
its pipeline by hand (an event `<type>.stage_changed` whose connector says `moved_by=person` and
`direction=back`), steps that move it forward (`StepKind.advances`) are skipped for it until an
admin switches auto-advance back on from its trace (hub/rules/runner.py, hub/webhooks/web.py)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store import HubEvent, Installation, utcnow
from ..store.models import ObjectFlag
from ..store.sql import upsert
from . import subscribe, trace

AUTO_ADVANCE = "auto_advance"
KEYS = {AUTO_ADVANCE: "Auto-advance"}     # the keys the hub knows, in words


def of(session: Session, installation_id: int, connector: str, object_type: str,
       object_id: str) -> dict[str, ObjectFlag]:
    """Every flag of one object, by key."""
    rows = session.scalars(select(ObjectFlag).where(
        ObjectFlag.installation_id == installation_id, ObjectFlag.connector == connector,
        ObjectFlag.object_type == object_type, ObjectFlag.object_id == str(object_id))
        .execution_options(populate_existing=True))
    return {row.key: row for row in rows}


def set_flag(session: Session, installation_id: int, connector: str, object_type: str, object_id: str, key: str,
             value: Any, *, reason: str, set_by: str) -> bool:
    """Set `key` of one object (inside the caller's transaction); False when it already held
    `value` (then who set it and why stay as they were)."""
    held = of(session, installation_id, connector, object_type, object_id).get(key)
    if held is not None and held.value == value:
        return False
    now = utcnow()
    values = {"value": value, "reason": reason[:2000], "set_by": set_by[:200], "set_at": now}
    upsert(session, ObjectFlag, {"installation_id": installation_id, "connector": connector,
                                 "object_type": object_type, "object_id": str(object_id), "key": key, **values},
           ["installation_id", "connector", "object_type", "object_id", "key"], values)
    return True


def flag_json(row: ObjectFlag) -> dict[str, Any]:
    return {"key": row.key, "label": KEYS.get(row.key, row.key), "value": row.value, "reason": row.reason,
            "set_by": row.set_by, "set_at": row.set_at.isoformat() + "Z" if row.set_at else None}


@subscribe
def moved_back_by_hand(services: Any, session: Session, event: HubEvent) -> None:
    """A person moved the object back to an earlier stage: auto-advance goes off for it."""
    if not event.kind.endswith(".stage_changed"):
        return
    data = event.data or {}
    extra = data.get("extra") or {}
    if extra.get("moved_by") != "person" or extra.get("direction") != "back":
        return
    installation = session.get(Installation, event.installation_id)
    if installation is None:
        return
    moved = f"from stage {data.get('from_stage_id') or '?'} to stage {data.get('to_stage_id') or '?'}"
    when = f" on {event.occurred_at:%Y-%m-%d %H:%M} UTC" if event.occurred_at else ""
    who = str(extra.get("user_id") or extra.get("user") or "")
    reason = f"a person{f' (user {who})' if who else ''} moved it back {moved}{when} (event {event.id})"
    if set_flag(session, event.installation_id, installation.provider, event.object_type, event.object_id,
                AUTO_ADVANCE, False, reason=reason, set_by=f"{installation.provider} user {who}".strip()):
        trace(session, event.installation_id, "flag.set",
              f"auto-advance is now off for {event.object_type} {event.object_id}: {reason}; steps that move it "
              "forward are skipped until an admin switches it back on", status="info", hub_event_id=event.id,
              key=AUTO_ADVANCE, value=False)
