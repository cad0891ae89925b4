"""Triggers: the event kinds a CRM connector emits (`CONNECTOR.triggers`), as the rules see them.

A kind is neutral (`deal.won`, `lead.added` ...), so the same rule works on every CRM. What a rule
narrows a trigger by (`pipeline_id`, `stage_id`) are the trigger's params; a rule is matched on
the object as it was when the event happened (the event's `current` state), so its decision never
depends on when its job runs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import connectors
from .conditions import condition_holds, describe

FIRES = {"every": "every time", "once": "once per object"}
# where an event's data holds each trigger param (a move says where the object went)
EVENT_KEYS = {"stage_id": "to_stage_id"}


@dataclass(frozen=True)
class Trigger:
    """A connector's trigger with what the core derives from it."""

    kind: str
    label: str
    object_type: str
    params: tuple[str, ...]
    connector: str
    repeats: bool = True          # can happen again to the same object (won, reopened, won again)
    default_fires: str = "every"  # for new rules: "every" time, or "once" per object
    files: bool = True            # the CRM keeps files on this object type

    @property
    def needs_pipeline(self) -> bool:
        return "pipeline_id" in self.params

    @property
    def needs_stage(self) -> bool:
        return "stage_id" in self.params

    def mismatch(self, rule: Any, data: dict[str, Any]) -> str | None:
        """Why the event does not fit the rule (None: it fits). `data` is HubEvent.data."""
        current = data.get("current") or {}
        for param in self.params:
            wanted = getattr(rule, param, None)
            if not wanted:
                continue
            got = data.get(EVENT_KEYS.get(param, param))
            if got is None:
                got = current.get(param)
            if str(got) != str(wanted):
                what = param.removesuffix("_id")
                return f"{what} {got} is not the rule's {what} {wanted}"
        for n, condition in enumerate(getattr(rule, "conditions", None) or []):
            if not condition_holds(condition, current):
                return f"condition {n + 1} ({describe(condition)}) does not hold"
        return None


def _view(connector: Any, t: Any) -> Trigger:
    return Trigger(kind=t.kind, label=t.label, object_type=t.object_type, params=tuple(t.params or ()),
                   connector=connector.name, repeats=bool(getattr(t, "repeats", True)),
                   default_fires=getattr(t, "default_fires", "every") or "every",
                   files=bool(getattr(t, "files", True)))


def triggers(connector: str | None = None) -> dict[str, Trigger]:
    """Every CRM connector's triggers by kind (with `connector`: only that one's). A kind two
    connectors emit means the same thing; the first by name describes it."""
    out: dict[str, Trigger] = {}
    for c in connectors.connectors():
        if connector is not None and c.name != connector:
            continue
        for t in c.triggers:
            out.setdefault(t.kind, _view(c, t))
    return out


def trigger(kind: str, connector: str | None = None) -> Trigger | None:
    found = triggers(connector).get(kind)
    if found is None and connector is not None:
        found = triggers().get(kind)
    return found
