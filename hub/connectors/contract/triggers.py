"""The event kinds a CRM connector emits and the ready-made automations (presets) it ships.
Kinds are neutral (`deal.won`, `lead.added`, `task.completed` ...) so rules work across CRMs."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Trigger:
    """A kind of event and what a rule can narrow it by.

    `params` are keys of the event's data (the `CrmEvent` fields and extras: `pipeline_id`,
    `to_stage_id`, `cause` ...). A rule stores `{"kind": ..., "params": {key: value}}`; the event
    fits when, for every param the rule sets (empty = any), `str(event data[key]) == str(value)`,
    or, for a list of values (any of them), equals one of them. `choices`
    names the connector catalog whose entries the editor offers for a param (ids as strings)."""

    kind: str                              # deal.won | deal.lost | deal.stage_changed | lead.added | ...
    label: str                             # "Deal won"
    object_type: str                       # deal | lead | person | task: what `CrmSource.load` reads
    params: tuple[str, ...] = ()           # event data keys a rule may narrow it by
    choices: tuple[tuple[str, str], ...] = ()   # (param, catalog name) for the editor's dropdowns
    repeats: bool = True                   # can happen again to the same object (won, reopened, won again)
    default_fires: str = "every"           # a new rule fires "every" time, or "once" per object


@dataclass(frozen=True)
class Fill:
    """One value an admin gives for each entry of a preset's `per` catalog on the hub's automation
    settings page (the stages a lead is created in, the name template, a delay ...).

    `at` is where it goes, a dotted path in the rule API's shape: "params.to_lifecycle",
    "pipeline_id", "stage_id", "steps.0.settings.to_stage_id", "steps.0.templates.name",
    "steps.0.delay_seconds" (a tuple of paths: the same value in several places). `kind`: choice
    (from `catalog` or the fixed `choices`), text, template, seconds, or entry (the entry's own id:
    nothing is shown). `catalog` names a catalog of the connector; "<per>.<list>" is the list
    inside the entry itself (its stages: "lead_pipelines.stages"). `many`: several choices (a
    trigger param that matches any of them)."""

    at: str | tuple[str, ...]
    label: str
    kind: str = "choice"                   # choice | text | template | seconds | entry
    catalog: str | None = None
    choices: tuple[tuple[str, str], ...] = ()   # fixed (value, label) choices instead of a catalog
    many: bool = False
    required: bool = True
    default: Any = None
    help: str = ""


@dataclass(frozen=True)
class Preset:
    """A rule ready to be created (a draft the admin edits and activates). `rule` is the rule API's
    shape, exactly:

        {"name": str,
         "trigger": {"kind": "deal.won", "params": {}},          # params as in Trigger; {} = any
         "fires": "every" | "once",
         "conditions": [{"field": FieldInfo.key, "op": "eq", "value": ...}, ...],
         "steps": [{"kind": "<connector>.<what>",                 # a StepKind of a connected connector
                    "settings": {...},                           # its StepKind.settings keys; ids the
                                                                 # admin picks are left out
                    "templates": {"name": "...", "notes": "..."},   # Jinja, the core's template context
                    "carry": {"value": bool, "contacts": bool, "notes": bool, "attachments": bool}}]}

    A step may also carry "delay" and "condition" as the rule API defines them (the presets shipped
    today use neither). `needs` lists roles the installation must have connected besides the connector that
    ships the preset (an Asana preset needs a `crm`).

    `per` names a catalog of the connector ("lead_pipelines"): the preset is then also a behaviour
    the admin switches on and configures for each of its entries on the automation settings page,
    filling in `fills`; saving writes one ordinary rule per entry and preset."""

    key: str
    title: str
    description: str
    rule: dict[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()            # roles the installation must have connected (task_target ...)
    per: str | None = None                 # configured per entry of this catalog on the automation page
    fills: tuple[Fill, ...] = ()           # what the admin gives per entry (with `per`)
