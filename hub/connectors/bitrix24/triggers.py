"""The event kinds Bitrix24's events and its reconciliation poll emit (webhooks.py), as triggers,
and the ready-made automations the connector ships."""
from __future__ import annotations

from ..contract.triggers import Preset, Trigger

PIPELINE = ("pipeline_id", "pipelines")

TRIGGERS: tuple[Trigger, ...] = (
    Trigger("deal.created", "Deal added", "deal", params=("pipeline_id",), choices=(PIPELINE,), repeats=False,
            default_fires="once"),
    Trigger("deal.won", "Deal won", "deal", params=("pipeline_id",), choices=(PIPELINE,)),
    Trigger("deal.lost", "Deal lost", "deal", params=("pipeline_id",), choices=(PIPELINE,)),
    Trigger("deal.stage_changed", "Deal moved to a stage", "deal", params=("pipeline_id", "to_stage_id"),
            choices=(PIPELINE, ("to_stage_id", "stages")), default_fires="once"),
    Trigger("lead.added", "Lead added", "lead", repeats=False, default_fires="once"),
    Trigger("lead.converted", "Lead converted", "lead", repeats=False, default_fires="once"),
    Trigger("lead.closed", "Lead closed (junk)", "lead"),
    Trigger("task.status_changed", "Task status changed", "task", params=("status",)),
    Trigger("task.completed", "Task completed", "task"),
)

PRESETS: tuple[Preset, ...] = (
    Preset("bitrix24-won-handover", "Won deal: hand-over task",
           "When a deal is won, create a task linked to the deal for its responsible, due in 2 days.",
           rule={"name": "Won deal: hand-over task", "trigger": {"kind": "deal.won", "params": {}}, "fires": "every",
                 "conditions": [],
                 "steps": [{"kind": "bitrix24.task", "settings": {"deadline_hours": 48, "priority": "1"},
                            "templates": {"name": "Hand over: {{ deal.title }}",
                                          "notes": "The deal {{ deal.title }} was won{% if deal.value %} ({{ deal.value }}){% endif %}."},
                            "carry": {"value": True, "contacts": True, "notes": False, "attachments": False}}]}),
    Preset("bitrix24-stage-contract", "Deal moved: contract task under control",
           "When a deal reaches a stage, create a task with control on completion, so its creator reviews it.",
           rule={"name": "Contract task", "trigger": {"kind": "deal.stage_changed", "params": {}}, "fires": "once",
                 "conditions": [],
                 "steps": [{"kind": "bitrix24.task", "settings": {"deadline_hours": 72, "control": True,
                                                                  "priority": "2"},
                            "templates": {"name": "Prepare the contract: {{ deal.title }}", "notes": ""},
                            "carry": {"value": True, "contacts": True, "notes": False, "attachments": False}}]}),
    Preset("bitrix24-lead-call", "New lead: first call",
           "When a lead is added, create a task to call it within 4 hours.",
           rule={"name": "Call the new lead", "trigger": {"kind": "lead.added", "params": {}}, "fires": "once",
                 "conditions": [],
                 "steps": [{"kind": "bitrix24.task", "settings": {"deadline_hours": 4, "priority": "2"},
                            "templates": {"name": "Call {{ lead.title }}", "notes": ""},
                            "carry": {"value": False, "contacts": True, "notes": False, "attachments": False}}]}),
)
