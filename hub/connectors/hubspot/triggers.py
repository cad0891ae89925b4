"""The event kinds HubSpot's webhooks and its reconciliation poll emit (webhooks.py), as triggers a
rule can start from, with what each can be narrowed by (HUBSPOT.md's agreed params)."""
from __future__ import annotations

from ..contract.triggers import Trigger

DEAL_PIPELINE = ("pipeline_id", "deal_pipelines")
LEAD_PIPELINE = ("pipeline_id", "lead_pipelines")

TRIGGERS: tuple[Trigger, ...] = (
    Trigger("deal.created", "Deal created", "deal", params=("pipeline_id",), choices=(DEAL_PIPELINE,),
            repeats=False, default_fires="once"),
    Trigger("deal.won", "Deal won", "deal", params=("pipeline_id",), choices=(DEAL_PIPELINE,)),
    Trigger("deal.lost", "Deal lost", "deal", params=("pipeline_id",), choices=(DEAL_PIPELINE,)),
    Trigger("deal.stage_changed", "Deal moved to a stage", "deal", params=("pipeline_id", "to_stage_id"),
            choices=(DEAL_PIPELINE, ("to_stage_id", "deal_stages")), default_fires="once"),
    Trigger("deal.updated", "Deal updated", "deal", params=("pipeline_id",), choices=(DEAL_PIPELINE,)),
    Trigger("person.created", "Contact created", "person", repeats=False, default_fires="once"),
    Trigger("person.updated", "Contact updated", "person"),
    Trigger("person.lifecycle_changed", "Contact's lifecycle stage changed", "person",
            params=("to_lifecycle", "cause"), choices=(("to_lifecycle", "lifecycle_stages"),)),
    Trigger("lead.added", "Lead created", "lead", params=("pipeline_id",), choices=(LEAD_PIPELINE,),
            repeats=False, default_fires="once"),
    Trigger("lead.stage_changed", "Lead moved to a stage", "lead",
            params=("pipeline_id", "from_stage_id", "to_stage_id", "moved_by", "direction"),
            choices=(LEAD_PIPELINE, ("from_stage_id", "lead_stages"), ("to_stage_id", "lead_stages"))),
    Trigger("lead.disqualified", "Lead disqualified", "lead", params=("pipeline_id", "reason"),
            choices=(LEAD_PIPELINE, ("reason", "disqualification_reasons"))),
    Trigger("activity.logged", "Outreach or response logged on a lead", "lead",
            params=("direction", "activity", "pipeline_id", "stage_id"),
            choices=(LEAD_PIPELINE, ("stage_id", "lead_stages"))),
    Trigger("task.completed", "Task completed", "task"),
)
