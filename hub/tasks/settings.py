"""The per-installation switches: does closing a deal, or a lead, complete its open linked tasks
(both on unless an admin turns them off)."""
from __future__ import annotations

from typing import Any

from ..store import utcnow
from ..store.models import AuditEvent, TaskSettings

FIELDS = {"close_deal_tasks": "when a deal is won or lost, complete its open linked tasks",
          "close_lead_tasks": "when a lead is converted or closed, complete its open linked tasks"}


class SettingsInputError(ValueError):
    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


def read(session, installation_id: int) -> dict[str, Any]:
    row = session.get(TaskSettings, installation_id)
    return {"close_deal_tasks": True if row is None else bool(row.close_deal_tasks),
            "close_lead_tasks": True if row is None else bool(row.close_lead_tasks)}


def closes(session, installation_id: int, object_type: str) -> bool:
    values = read(session, installation_id)
    return values["close_lead_tasks"] if object_type == "lead" else values["close_deal_tasks"]


def validate(body: Any) -> dict[str, bool]:
    """A partial change: known keys with true/false only (a form gives "on"/"off" strings)."""
    if not isinstance(body, dict):
        raise SettingsInputError({"body": "expected an object with close_deal_tasks and/or close_lead_tasks"})
    errors, values = {}, {}
    for key, value in body.items():
        if key not in FIELDS:
            errors[key] = "unknown setting (close_deal_tasks, close_lead_tasks)"
        elif not isinstance(value, bool):
            errors[key] = "true or false"
        else:
            values[key] = value
    if errors:
        raise SettingsInputError(errors)
    return values


def change(session, installation_id: int, actor: str, values: dict[str, bool]) -> dict[str, Any]:
    row = session.get(TaskSettings, installation_id)
    if row is None:
        row = TaskSettings(installation_id=installation_id, close_deal_tasks=True, close_lead_tasks=True)
        session.add(row)
    changed = []
    for key, value in values.items():
        if getattr(row, key) != value:
            setattr(row, key, value)
            changed.append(f"{key}={'on' if value else 'off'}")
    if changed:
        row.updated_by, row.updated_at = actor[:300], utcnow()
        session.add(AuditEvent(installation_id=installation_id, actor=actor[:300], action="tasks.settings",
                               detail={"changed": changed}))
    session.flush()
    return read(session, installation_id)
