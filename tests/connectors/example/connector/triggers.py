"""The event kinds the Example CRM emits (see webhooks.py) and the automation it ships ready-made."""
from __future__ import annotations

from hub.connectors.contract.triggers import Preset, Trigger

TRIGGERS = (
    Trigger("deal.created", "Deal created", "deal"),
    Trigger("deal.won", "Deal won", "deal"),
    Trigger("deal.lost", "Deal lost", "deal"),
    Trigger("deal.stage_changed", "Deal moved to a stage", "deal", ("stage_id",)),
    Trigger("deal.deleted", "Deal deleted", "deal"),
    Trigger("task.completed", "Task completed", "task"),
)

PRESETS = (
    Preset(key="won-kickoff", title="Kick off a won deal",
           description="When a deal is won: a kick-off task now, and a check-in task two days later.",
           rule={"name": "Kick off won deals", "trigger": "deal.won", "conditions": [],
                 "steps": [{"kind": "example.task", "name_template": "Kick-off call: {{ deal.title }}",
                            "settings": {"link_deal": True}},
                           {"kind": "wait", "settings": {"days": 2}},
                           {"kind": "example.task", "name_template": "Check in: {{ deal.title }}",
                            "settings": {"link_deal": True}}]},
           needs=("task_target",)),
)
