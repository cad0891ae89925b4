"""The tasks API in the OpenAPI document (hub.web.openapi reads `OPERATIONS` through hub.tasks.templates_web).
The service checks every body itself (naming the field); these schemas describe it."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

MODES = ["none", "free_busy", "read_only", "full"]


class TaskTypeOut(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    sharing = fields.String(allow_none=True, metadata={"description": "none | free_busy | read_only | full; "
                                                                       "null: the installation's default"})
    in_use = fields.Boolean()


class TaskTypeIn(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 80))
    sharing = fields.String(allow_none=True, validate=validate.OneOf(MODES + ["default", ""]))


class TaskTypeChange(Schema):
    name = fields.String(validate=validate.Length(1, 80))
    sharing = fields.String(allow_none=True, validate=validate.OneOf(MODES + ["default", ""]))


class StatusItem(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 80))
    closes = fields.Boolean(metadata={"description": "a task in this status counts as completed"})


class StatusOut(StatusItem):
    id = fields.Integer()


class StatusesIn(Schema):
    statuses = fields.List(fields.Nested(StatusItem), required=True, validate=validate.Length(1, 30))


class NextTaskIn(Schema):
    from_type_id = fields.Integer(required=True)
    template_id = fields.Integer(allow_none=True, metadata={"description": "null removes the rule"})
    mode = fields.String(validate=validate.OneOf(["suggest", "create"]))


class NextTaskOut(Schema):
    id = fields.Integer()
    from_type_id = fields.Integer()
    template_id = fields.Integer(allow_none=True)
    mode = fields.String()


class TaskOptionsIn(Schema):
    timezone = fields.String(metadata={"description": "IANA name (Europe/Warsaw); deadlines are computed in it"})
    sharing = fields.String(validate=validate.OneOf(MODES), metadata={"description": "the default sharing mode"})
    statuses_enabled = fields.Boolean()


class TaskOptionsOut(Schema):
    timezone = fields.String()
    sharing = fields.String()
    statuses_enabled = fields.Boolean()
    types = fields.List(fields.Nested(TaskTypeOut))
    statuses = fields.List(fields.Nested(StatusOut))
    next_tasks = fields.List(fields.Nested(NextTaskOut))


class TemplateIn(Schema):
    id = fields.Integer(allow_none=True, metadata={"description": "keep a template (its id) when replacing a set"})
    title = fields.String(required=True, metadata={"description": "template (the core's sandboxed Jinja)"})
    description = fields.String()
    type_id = fields.Integer(allow_none=True)
    responsible = fields.String(metadata={"description": "owner (the record's owner) or a target user id"})
    delay_days = fields.Integer(validate=validate.Range(0, 3650))
    day_kind = fields.String(validate=validate.OneOf(["working", "calendar"]))
    time_of_day = fields.String(metadata={"description": "HH:MM in the account's time zone"})
    kind = fields.String(required=True, metadata={"description": "a connector's task step kind (`<connector>.task`)"})
    connection_id = fields.Integer(required=True)
    settings = fields.Dict(metadata={"description": "the target step kind's settings"})


class TemplateOut(TemplateIn):
    position = fields.Integer()


class SetIn(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    templates = fields.List(fields.Nested(TemplateIn), required=True, validate=validate.Length(1, 30))


class SetOut(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    templates = fields.List(fields.Nested(TemplateOut))


class SetList(Schema):
    sets = fields.List(fields.Nested(SetOut))


class PostSaleItem(Schema):
    pipeline_id = fields.String(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(["won", "lost"]))
    set_id = fields.Integer(allow_none=True, metadata={"description": "null: no set for this outcome"})


class PostSaleList(Schema):
    post_sale = fields.List(fields.Nested(PostSaleItem))


class RecordChoice(Schema):
    id = fields.String()
    title = fields.String()
    kind = fields.String()


class RecordList(Schema):
    records = fields.List(fields.Nested(RecordChoice))
    problem = fields.String(allow_none=True)


class ApplyIn(Schema):
    set_id = fields.Integer(required=True)
    object_type = fields.String(required=True, validate=validate.OneOf(["deal", "person", "organization", "lead",
                                                                        "space"]))
    object_id = fields.String(required=True)
    key = fields.String(metadata={"description": "idempotency key: the same key applies the set once"})


class ApplyOut(Schema):
    queued = fields.Boolean()
    key = fields.String()
    set_id = fields.Integer()
    object_type = fields.String()
    object_id = fields.String()


class CalendarTask(Schema):
    id = fields.String()
    title = fields.String(metadata={"description": "“Busy” for a free/busy task"})
    due = fields.String(allow_none=True)
    day = fields.String(allow_none=True)
    time = fields.String(allow_none=True)
    access = fields.String(metadata={"description": "owner | full | read_only | free_busy"})
    can_edit = fields.Boolean()
    busy = fields.Boolean()
    type = fields.String(metadata={"description": "not for free/busy"})
    status = fields.String()
    url = fields.String()
    connector = fields.String()
    object_type = fields.String()
    object_id = fields.String()
    sharing = fields.String(metadata={"description": "the task's sharing mode (its type's or the default)"})
    no_deadline = fields.Boolean(metadata={"description": "a rule-linked task without a known deadline: shown "
                                                          "the day it was made"})


class CalendarPerson(Schema):
    person = fields.String()
    email = fields.String()
    tasks = fields.List(fields.Nested(CalendarTask))


class CalendarWeek(Schema):
    week = fields.String()
    start = fields.String()
    days = fields.List(fields.String())
    previous = fields.String()
    next = fields.String()
    timezone = fields.String()
    viewer = fields.String()
    people = fields.List(fields.Nested(CalendarPerson))


class DueIn(Schema):
    due = fields.String(required=True, metadata={"description": "YYYY-MM-DDTHH:MM in the account's time zone"})


class TaskChanged(Schema):
    id = fields.String()
    status = fields.String()
    due = fields.String()


class Suggestion(Schema):
    id = fields.Integer()
    completed_task = fields.String()
    object_type = fields.String()
    object_id = fields.String()
    template = fields.String()
    expires_at = fields.String()
    expired = fields.Boolean()


class SuggestionList(Schema):
    suggestions = fields.List(fields.Nested(Suggestion))


class Decision(Schema):
    id = fields.Integer()
    outcome = fields.String(metadata={"description": "accepted | already | expired | dismissed"})


_WEEK = [{"name": "week", "in": "query", "schema": {"type": "string", "maxLength": 20},
          "description": "ISO week (2026-W49) or a date in it; default: this week"},
         {"name": "person", "in": "query", "schema": {"type": "string", "maxLength": 300},
          "description": "only this person's tasks (e-mail or name)"}]
_SEARCH = [{"name": "kind", "in": "query", "schema": {"type": "string", "enum": ["deal", "person", "organization",
                                                                               "lead", "space"]}},
           {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200}}]
OPERATIONS: list = [
    ("get", "/options", "Task settings: time zone, sharing, types, statuses, next-task rules", None,
     (200, TaskOptionsOut), []),
    ("patch", "/options", "Change the time zone, default sharing, statuses on/off", TaskOptionsIn,
     (200, TaskOptionsOut), []),
    ("post", "/types", "Add a task type", TaskTypeIn, (201, TaskTypeOut), []),
    ("patch", "/types/{type_id}", "Rename a task type or change its sharing", TaskTypeChange, (200, TaskTypeOut), []),
    ("delete", "/types/{type_id}", "Remove a task type no template or rule uses", None, (204, None), []),
    ("put", "/statuses", "Replace the task statuses", StatusesIn, (200, TaskOptionsOut), []),
    ("put", "/next-tasks", "Set (or remove) the next task suggested after a type", NextTaskIn, (200, NextTaskOut), []),
    ("get", "/sets", "The template sets", None, (200, SetList), []),
    ("post", "/sets", "Create a template set", SetIn, (201, SetOut), []),
    ("get", "/sets/{set_id}", "One template set", None, (200, SetOut), []),
    ("put", "/sets/{set_id}", "Replace a template set (templates keep their ids)", SetIn, (200, SetOut), []),
    ("delete", "/sets/{set_id}", "Delete a template set", None, (204, None), []),
    ("get", "/post-sale", "Post-sale sets per sales process", None, (200, PostSaleList), []),
    ("put", "/post-sale", "Set (or clear) the won or lost set of a sales process", PostSaleItem,
     (200, PostSaleList), []),
    ("get", "/records", "Records to apply a set to (search list)", None, (200, RecordList), _SEARCH),
    ("post", "/apply", "Apply a template set to a record (queued; once per key)", ApplyIn, (202, ApplyOut), []),
    ("get", "/calendar", "The team task calendar for a week, as the viewer may see it", None, (200, CalendarWeek),
     _WEEK),
    ("post", "/calendar/{task_id}/complete", "Complete a task through its target (owner or full access)", None,
     (200, TaskChanged), []),
    ("patch", "/calendar/{task_id}", "Move a task's deadline (owner or full access)", DueIn, (200, TaskChanged), []),
    ("get", "/suggestions", "The viewer's open next-task suggestions", None, (200, SuggestionList), []),
    ("post", "/suggestions/{suggestion_id}/accept", "Accept a suggestion (the task is made once)", None,
     (202, Decision), []),
    ("post", "/suggestions/{suggestion_id}/dismiss", "Dismiss a suggestion", None, (200, Decision), []),
]
