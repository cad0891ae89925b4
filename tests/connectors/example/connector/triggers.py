"""The event kinds the Example CRM emits (see webhooks.py) and the automation it ships ready-made."""
from __future__ import annotations

from hub.connectors.contract.triggers import Preset, Trigger

TRIGGERS = (
    Trigger("deal.created", "Deal created", "deal", repeats=False),
    Trigger("deal.won", "Deal won", "deal"),
    Trigger("deal.lost", "Deal lost", "deal"),
    Trigger("deal.stage_changed", "Deal moved to a stage", "deal", ("to_stage_id",), (("to_stage_id", "stages"),)),
    Trigger("deal.deleted", "Deal deleted", "deal", repeats=False),
    Trigger("task.completed", "Task completed", "task"),
)

DAY = 86400
PRESETS = (
    Preset(key="won-kickoff", title="Kick off a won deal",
           description="When a deal is won: a kick-off task now, and a check-in task two days later.",
           rule={"name": "Kick off won deals", "trigger": {"kind": "deal.won", "params": {}}, "fires": "every",
                 "conditions": [],
                 "steps": [{"kind": "example.task", "settings": {"link_deal": True},
                            "templates": {"name": "Kick-off call: {{ deal.title }}"}},
                           {"kind": "wait", "delay_seconds": 2 * DAY},
                           {"kind": "example.task", "settings": {"link_deal": True},
                            "templates": {"name": "Check in: {{ deal.title }}"}}]}),
)
