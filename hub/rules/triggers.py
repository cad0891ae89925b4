"""Triggers: the event kinds a CRM connector emits (`CONNECTOR.triggers`), as the rules see them.

A kind is neutral (`deal.won`, `lead.added` ...), so the same rule works on every CRM. A trigger's
params are keys of the event's data a rule may narrow it by (`pipeline_id`, `to_stage_id`); the
rule keeps them as its `pipeline_id` and `stage_id`. A rule is matched on the object as it was when
the event happened (the event's `current` state), so its decision never depends on when its job
runs; conditions compare values as the CRM's source reads them (`CrmSource.value`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import connectors
from .conditions import Value, condition_holds, describe

FIRES = {"every": "every time", "once": "once per object"}
# trigger param -> (the rule's attribute holding its value, the object's own field as a fallback)
PARAMS = {"pipeline_id": ("pipeline_id", "pipeline_id"), "to_stage_id": ("stage_id", "stage_id"),
          "stage_id": ("stage_id", "stage_id")}


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
        return "to_stage_id" in self.params or "stage_id" in self.params

    @property
    def rule_params(self) -> tuple[str, ...]:
        """The rule attributes this trigger uses (`pipeline_id`, `stage_id`)."""
        return tuple(PARAMS[p][0] for p in self.params if p in PARAMS)

    def mismatch(self, rule: Any, data: dict[str, Any], value: Value | None = None) -> str | None:
        """Why the event does not fit the rule (None: it fits). `data` is HubEvent.data; `value`
        reads a field of the object for the conditions (the CRM source's reader)."""
        current = data.get("current") or {}
        for param in self.params:
            attribute, own = PARAMS.get(param, (param, param))
            wanted = getattr(rule, attribute, None)
            if not wanted:
                continue
            got = data.get(param)
            if got is None:
                got = current.get(own)
            if str(got) != str(wanted):
                what = attribute.removesuffix("_id")
                return f"{what} {got} is not the rule's {what} {wanted}"
        for n, condition in enumerate(getattr(rule, "conditions", None) or []):
            if not condition_holds(condition, current, value):
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


def reader(connector: str | None, kind: str) -> Value | None:
    """The CRM source's `value(kind, data, key)` as (data, key) -> value, for conditions checked
    while an event is recorded (it makes no call: the source is made without a client)."""
    from ..connectors.contract.records import SourceContext

    try:
        c = connectors.connector(connector) if connector else None
    except KeyError:
        return None
    if c is None or c.source is None:
        return None

    def unavailable(name: str) -> Any:
        raise LookupError(f"no catalogs while matching ({name})")
    try:
        source = c.source(SourceContext(client=None, api_base="", catalog=unavailable))
    except Exception:      # a source that needs its client up front: the core's own reading
        return None
    read = getattr(source, "value", None)
    return (lambda data, key: read(kind, data, key)) if read is not None else None
