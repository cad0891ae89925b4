"""The event kinds a CRM connector emits and the ready-made automations (presets) it ships.
Kinds are neutral (`deal.won`, `lead.added`, `task.completed` ...) so rules work across CRMs."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Trigger:
    kind: str                              # deal.won | deal.lost | deal.stage_changed | lead.added | ...
    label: str                             # "Deal won"
    object_type: str                       # deal | lead | person | task
    params: tuple[str, ...] = ()           # what the trigger is narrowed by (pipeline_id, stage_id ...)


@dataclass(frozen=True)
class Preset:
    """A rule ready to be created: trigger, conditions and steps as the rule API takes them."""

    key: str
    title: str
    description: str
    rule: dict[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()            # roles the installation must have connected (task_target ...)
