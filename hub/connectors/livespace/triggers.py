"""The event kinds Livespace's webhooks give (webhooks.py) as triggers, and two ready-made rules."""
from __future__ import annotations

from hub.connectors.contract.triggers import Preset, Trigger

PROCESS = ("pipeline_id", "pipelines")

TRIGGERS: tuple[Trigger, ...] = (
    Trigger("deal.created", "Deal added", "deal", params=("pipeline_id",), choices=(PROCESS,), repeats=False,
            default_fires="once"),
    Trigger("deal.won", "Deal won", "deal", params=("pipeline_id",), choices=(PROCESS,)),
    Trigger("deal.lost", "Deal lost", "deal", params=("pipeline_id",), choices=(PROCESS,)),
    Trigger("deal.stage_changed", "Deal moved to a stage", "deal", params=("pipeline_id", "to_stage_id"),
            choices=(PROCESS, ("to_stage_id", "stages")), default_fires="once"),
    Trigger("deal.updated", "Deal updated", "deal", params=("pipeline_id",), choices=(PROCESS,)),
    Trigger("deal.deleted", "Deal deleted", "deal", repeats=False),
    Trigger("task.created", "Task added", "task", params=("task_type_id",), choices=(("task_type_id", "task_types"),),
            repeats=False),
    Trigger("task.completed", "Task completed", "task", params=("task_type_id",),
            choices=(("task_type_id", "task_types"),)),
)

DAY = 86400
PRESETS = (
    Preset(key="won-onboarding", title="Onboard a won deal",
           description="When a deal is won: an onboarding call in Livespace now, linked to the deal, and a "
                       "check-in a week later.",
           rule={"name": "Onboard won deals", "trigger": {"kind": "deal.won", "params": {}}, "fires": "every",
                 "conditions": [],
                 "steps": [{"kind": "livespace.task", "settings": {"link_record": True},
                            "templates": {"name": "Onboarding call: {{ deal.title }}"}},
                           {"kind": "wait", "delay_seconds": 7 * DAY},
                           {"kind": "livespace.task", "settings": {"link_record": True},
                            "templates": {"name": "Check in: {{ deal.title }}"}}]}),
    Preset(key="lost-winback", title="Try again after a lost deal",
           description="When a deal is lost: a task three months later to get back in touch.",
           rule={"name": "Win back lost deals", "trigger": {"kind": "deal.lost", "params": {}}, "fires": "every",
                 "conditions": [],
                 "steps": [{"kind": "wait", "delay_seconds": 90 * DAY},
                           {"kind": "livespace.task", "settings": {"link_record": True},
                            "templates": {"name": "Get back in touch: {{ deal.title }}"}}]}),
)
