"""Triggers: the event kinds a CRM connector emits (`CONNECTOR.triggers`), as the rules see them.

A kind is neutral (`deal.won`, `lead.added` ...), so the same rule works on every CRM. A trigger's
params are keys of the event's data a rule may narrow it by (`pipeline_id`, `to_stage_id`); the
rule keeps them as its `pipeline_id` and `stage_id`. A rule is matched on the object as it was when
the event happened (the event's `current` state), so its decision never depends on when its job
runs; conditions compare values as the CRM's source reads them (`CrmSource.value`).

Params other than pipeline and stage (`to_lifecycle`, `cause`, `direction` ...) live in the rule's
`params`; any param's value may be a list, meaning any of them ("cause in [person, integration]":
every cause but a company sync). An event's value is read from its data, then its extras, then
the object's state."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import connectors
from .conditions import Value, why_not

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
    choices: tuple[tuple[str, str], ...] = ()   # (param, catalog) whose entries the editor offers

    def catalog_of(self, param: str) -> str | None:
        return next((catalog for p, catalog in self.choices if p == param), None)

    @property
    def pipeline_catalog(self) -> str:
        """The catalog of pipelines (with their stages) its `pipeline_id` is one of."""
        return self.catalog_of("pipeline_id") or "pipelines"

    @property
    def other_params(self) -> tuple[str, ...]:
        """The params a rule keeps in `params` (pipeline and stage have columns of their own)."""
        return tuple(p for p in self.params if p not in PARAMS)

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
        extra = data.get("extra") or {}
        others = getattr(rule, "params", None) or {}
        for param in self.params:
            attribute, own = PARAMS.get(param, (param, param))
            wanted = getattr(rule, attribute, None) if param in PARAMS else others.get(param)
            if wanted in (None, "", []):
                continue
            got = data.get(param)
            if got is None:
                got = extra.get(param)
            if got is None:
                got = current.get(own)
            allowed = [str(w) for w in wanted] if isinstance(wanted, (list, tuple)) else [str(wanted)]
            if got is not None and str(got) in allowed:
                continue
            what = attribute.removesuffix("_id").removeprefix("to_").replace("_", " ")
            want = allowed[0] if len(allowed) == 1 else "one of " + ", ".join(allowed)
            if got in (None, ""):
                return f"no {what}, the rule wants {what} {want}"
            if param.startswith("to_"):
                return f"moved to {what} {got}, the rule wants {what} {want}"
            return f"{what} is {got}, the rule wants {what} {want}"
        for condition in getattr(rule, "conditions", None) or []:
            why = why_not(condition, current, value)
            if why is not None:
                return why
        return None


def _view(connector: Any, t: Any) -> Trigger:
    return Trigger(kind=t.kind, label=t.label, object_type=t.object_type, params=tuple(t.params or ()),
                   connector=connector.name, repeats=bool(getattr(t, "repeats", True)),
                   default_fires=getattr(t, "default_fires", "every") or "every",
                   files=bool(getattr(t, "files", True)),
                   choices=tuple((str(p), str(c)) for p, c in (getattr(t, "choices", ()) or ())))


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
