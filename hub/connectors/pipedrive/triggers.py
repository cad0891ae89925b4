"""The event kinds Pipedrive's webhooks and its reconciliation poll emit (webhooks.py), as
triggers a rule can start from, with what each can be narrowed by."""
from __future__ import annotations

from ..contract.triggers import Trigger

PIPELINE = ("pipeline_id", "pipelines")

TRIGGERS: tuple[Trigger, ...] = (
    Trigger("deal.created", "Deal added", "deal", params=("pipeline_id",), choices=(PIPELINE,), repeats=False,
            default_fires="once"),
    # a deal won again after a reopen is a new win (a renewal, a corrected loss): every time
    Trigger("deal.won", "Deal won", "deal", params=("pipeline_id",), choices=(PIPELINE,)),
    Trigger("deal.lost", "Deal lost", "deal", params=("pipeline_id",), choices=(PIPELINE,)),
    # a deal moved back and forth between stages would get the same task again: once per deal
    Trigger("deal.stage_changed", "Deal moved to a stage", "deal", params=("pipeline_id", "to_stage_id"),
            choices=(PIPELINE, ("to_stage_id", "stages")), default_fires="once"),
    Trigger("deal.updated", "Deal updated", "deal", params=("pipeline_id",), choices=(PIPELINE,)),
    Trigger("lead.added", "Lead added", "lead", repeats=False, default_fires="once"),
    Trigger("person.created", "Person added", "person", repeats=False, default_fires="once"),
    Trigger("person.updated", "Person updated", "person"),
    Trigger("task.completed", "Activity marked as done", "task", repeats=True),
)
