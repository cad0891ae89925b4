"""Schemas of the board's and the task settings' JSON API, for the OpenAPI document (hub.web.openapi)."""
from __future__ import annotations

from marshmallow import Schema, fields

from .board import PER_STAGE


class LatestTask(Schema):
    status = fields.String(required=True, metadata={"description": "a neutral task status (not_viewed, viewed, "
                                                                   "in_progress, overdue, completed, gone ...)"})
    label = fields.String(required=True)
    name = fields.String(required=True)
    url = fields.String(required=True)
    target = fields.String(required=True, metadata={"description": "where the task lives (its app's title)"})
    changed_at = fields.String(allow_none=True, metadata={"description": "when its status last changed (UTC)"})
    deadline = fields.String(allow_none=True)


class CardTasks(Schema):
    count = fields.Integer(required=True)
    open = fields.Integer(required=True)
    overdue = fields.Integer(required=True)
    gone = fields.Integer(required=True)
    latest = fields.Nested(LatestTask, required=True, metadata={"description": "the most recently changed task"})


class BoardCard(Schema):
    id = fields.String(required=True)
    title = fields.String(required=True)
    url = fields.String(required=True)
    amount = fields.String(allow_none=True)
    status = fields.String(allow_none=True, metadata={"description": "the deal's own status (open, won, lost)"})
    owner = fields.String(allow_none=True)
    pipeline = fields.String(allow_none=True)
    stage = fields.String(allow_none=True)
    tasks = fields.Nested(CardTasks, allow_none=True)


class BoardColumn(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    total = fields.Integer(required=True, metadata={"description": "deals in this stage (cards: the first ones)"})
    cards = fields.List(fields.Nested(BoardCard), required=True)


class BoardPipeline(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)


class Board(Schema):
    pipelines = fields.List(fields.Nested(BoardPipeline), required=True)
    pipeline_id = fields.String(allow_none=True)
    columns = fields.List(fields.Nested(BoardColumn), required=True)
    warnings = fields.List(fields.String(), required=True)
    statuses = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                           metadata={"description": "every neutral task status with its words"})


class TaskSettingsOut(Schema):
    close_deal_tasks = fields.Boolean(required=True, metadata={"description": "a deal won or lost completes its "
                                                                             "open linked tasks"})
    close_lead_tasks = fields.Boolean(required=True, metadata={"description": "a lead converted or closed "
                                                                             "completes its open linked tasks"})


class TaskSettingsIn(Schema):
    close_deal_tasks = fields.Boolean()
    close_lead_tasks = fields.Boolean()


BASE, TAG = "/api/v1/installations/{installation_id}", "tasks"
_BOARD = [{"name": "pipeline_id", "in": "query", "schema": {"type": "string", "maxLength": 100},
           "description": "the pipeline to show (default: the first)"},
          {"name": "per_stage", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200,
                                                          "default": PER_STAGE},
           "description": "cards per stage at most"}]
OPERATIONS: list = [
    ("get", "/board", "Deals by pipeline stage with their linked tasks' latest status", None, (200, Board), _BOARD),
    ("get", "/tasks/settings", "Whether closing a deal or a lead completes its open linked tasks", None,
     (200, TaskSettingsOut), []),
    ("patch", "/tasks/settings", "Change those settings (admins; keys left out keep their values)", TaskSettingsIn,
     (200, TaskSettingsOut), []),
]
