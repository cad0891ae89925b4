"""Marshmallow schemas of the rules API: they check request bodies and are the source of the
OpenAPI document (`/api/v1/openapi.json`)."""
from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from .actions import ACTIONS
from .presets import PRESETS
from .triggers import FIRES, OPERATORS, TRIGGERS

GID = validate.Length(max=100)
MAX_ID = 2**63 - 1   # the hub's ids are 64-bit in both databases; JSON and URLs may carry any integer


class Id(fields.Field):
    """An id the providers spell as a number or a string; kept as a string (or null)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str | None:
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValidationError("Not a valid id (a string or an integer).")
        text = str(value).strip()
        if not text or len(text) > 100:
            raise ValidationError("Not a valid id (1 to 100 characters).")
        return text

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value in (None, "") else str(value)


class Condition(Schema):
    field = fields.String(required=True, validate=validate.Length(min=1, max=100),
                          metadata={"description": "a deal (or lead) field key; custom fields by their hash key"})
    op = fields.String(required=True, validate=validate.OneOf(list(OPERATORS)))
    value = fields.String(load_default="", validate=validate.Length(max=500))
    label = fields.String(dump_only=True, metadata={"description": "the field's label in the CRM"})


class Carry(Schema):
    title = fields.Boolean(load_default=True, validate=validate.Equal(True, error="the title is always carried"),
                           metadata={"description": "always true: the deal title is always carried"})
    value = fields.Boolean(load_default=True)
    contacts = fields.Boolean(load_default=True)
    notes = fields.Boolean(load_default=False, metadata={"description": "pinned notes"})
    attachments = fields.Boolean(load_default=False,
                                 metadata={"description": "switched off automatically for project actions and leads"})


class Target(Schema):
    connection_id = fields.Integer(load_default=None, allow_none=True, strict=True,
                                   validate=validate.Range(min=1, max=MAX_ID, error="no such connection"),
                                   metadata={"description": "the Asana connection (see /connections)"})
    workspace_gid = Id(load_default=None, allow_none=True, metadata={"type": "string", "nullable": True})
    project_gid = Id(load_default=None, allow_none=True, metadata={"type": "string", "nullable": True})
    team_gid = Id(load_default=None, allow_none=True, metadata={"type": "string", "nullable": True})
    assignee_gid = Id(load_default=None, allow_none=True, metadata={"type": "string", "nullable": True})


class FieldMapping(Schema):
    source = fields.String(load_default="deal", validate=validate.OneOf(["deal", "person"]))
    key = fields.String(required=True, validate=validate.Length(min=1, max=100),
                        metadata={"description": "the field key; custom fields by their 40-character hash"})
    label = fields.String(dump_only=True)
    type = fields.String(dump_only=True)


class RuleIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    trigger = fields.String(required=True, validate=validate.OneOf(list(TRIGGERS)))
    pipeline_id = Id(load_default=None, allow_none=True, metadata={"type": "string", "nullable": True})
    stage_id = Id(load_default=None, allow_none=True, metadata={"type": "string", "nullable": True})
    fires = fields.String(validate=validate.OneOf(list(FIRES)),
                          metadata={"description": "when the trigger happens again to the same deal: run 'every' "
                                                   "time, or 'once' per deal. Left out: the trigger's default "
                                                   "(moved to a stage: once; won, lost: every); lead added: once"})
    conditions = fields.List(fields.Nested(Condition), load_default=list, validate=validate.Length(max=20))
    carry = fields.Nested(Carry, load_default=lambda: Carry().load({}))
    action = fields.String(required=True, validate=validate.OneOf(list(ACTIONS)))
    target = fields.Nested(Target, load_default=lambda: Target().load({}))
    name_template = fields.String(required=True, validate=[
        validate.Length(min=1, max=200000),
        validate.Regexp(r"[\s\S]*\S", error="the name template is empty")])   # blank is refused too
    description_template = fields.String(load_default="", validate=validate.Length(max=200000))
    field_mappings = fields.List(fields.Nested(FieldMapping), load_default=list, validate=validate.Length(max=50))
    status = fields.String(load_default=None, validate=validate.OneOf(["draft", "active"]),
                           metadata={"description": "left out: keep the rule's status (new rules: draft)"})


def _all_optional(schema: type[Schema], name: str) -> type[Schema]:
    """The same fields, none required (PUT: fields left out keep their values)."""
    import copy

    declared = {}
    for key, f in schema._declared_fields.items():
        f = copy.copy(f)
        f.required = False
        declared[key] = f
    return Schema.from_dict(declared, name=name)


RuleChange = _all_optional(RuleIn, "RuleChange")


class _RuleCreate(RuleIn):
    preset = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(list(PRESETS)),
                           metadata={"description": "create from a ready automation (see /presets); the other "
                                                    "fields then are optional, otherwise name, trigger, action and "
                                                    "name_template are required"})


RuleCreate = _all_optional(_RuleCreate, "RuleCreate")


class LastRun(Schema):
    status = fields.String()
    at = fields.String(allow_none=True)


class RuleOut(Schema):
    id = fields.Integer()
    name = fields.String()
    status = fields.String()
    preset = fields.String()
    trigger = fields.String()
    pipeline_id = fields.String(allow_none=True)
    stage_id = fields.String(allow_none=True)
    fires = fields.String()
    conditions = fields.List(fields.Nested(Condition))
    carry = fields.Nested(Carry)
    action = fields.String()
    target = fields.Nested(Target)
    name_template = fields.String()
    description_template = fields.String()
    field_mappings = fields.List(fields.Nested(FieldMapping))
    version = fields.Integer()
    last_error = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()
    activated_at = fields.String(allow_none=True)
    notices = fields.List(fields.String(), metadata={"description": "what the hub adjusted while saving"})
    last_run = fields.Nested(LastRun, allow_none=True, metadata={"description": "in lists only"})


class RuleList(Schema):
    rules = fields.List(fields.Nested(RuleOut))


class Link(Schema):
    object_type = fields.String()
    object_id = fields.String()
    target_type = fields.String()
    target_gid = fields.String()
    target_name = fields.String()
    target_url = fields.String()


class Run(Schema):
    id = fields.Integer()
    rule_id = fields.Integer()
    hub_event_id = fields.Integer()
    object_type = fields.String()
    object_id = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    error = fields.String(allow_none=True)
    detail = fields.Dict()
    link = fields.Nested(Link, allow_none=True)
    created_at = fields.String()
    finished_at = fields.String(allow_none=True)


class TraceEntry(Schema):
    at = fields.String()
    step = fields.String()
    status = fields.String()
    message = fields.String()
    hub_event_id = fields.Integer(allow_none=True)


class RunList(Schema):
    runs = fields.List(fields.Nested(Run))
    trace = fields.List(fields.Nested(TraceEntry))


class PreviewIn(Schema):
    rule = fields.Nested(RuleIn, required=True)
    object_id = Id(required=True, metadata={"type": "string", "description": "a deal id (or a lead's uuid)"})


class PreviewFile(Schema):
    name = fields.String()
    size = fields.Integer(allow_none=True)
    too_large = fields.Boolean()


class PreviewOut(Schema):
    object_type = fields.String()
    object_id = fields.String()
    title = fields.String()
    name = fields.String()
    html_notes = fields.String()
    warnings = fields.List(fields.String())
    matches = fields.Boolean()
    mismatch = fields.String(allow_none=True)
    files = fields.List(fields.Nested(PreviewFile))


class Preset(Schema):
    key = fields.String()
    title = fields.String()
    summary = fields.String()
    trigger = fields.String()
    action = fields.String()


class PresetList(Schema):
    presets = fields.List(fields.Nested(Preset))


class Option(Schema):
    id = fields.String()
    name = fields.String()


class Pipeline(Schema):
    id = fields.String()
    name = fields.String()
    stages = fields.List(fields.Nested(Option))


class CrmField(Schema):
    key = fields.String()
    label = fields.String()
    type = fields.String()
    custom = fields.Boolean()
    options = fields.List(fields.Dict())


class AsanaWorkspace(Schema):
    gid = fields.String()
    name = fields.String()
    is_organization = fields.Boolean()
    teams = fields.List(fields.Nested(Option))
    projects = fields.List(fields.Nested(Option))
    users = fields.List(fields.Nested(Option))


class AsanaConnection(Schema):
    id = fields.Integer()
    name = fields.String()
    status = fields.String()
    workspaces = fields.List(fields.Nested(AsanaWorkspace))
    error = fields.String(allow_none=True)


class Catalog(Schema):
    triggers = fields.List(fields.Dict())
    actions = fields.List(fields.Dict())
    operators = fields.Dict()
    pipelines = fields.List(fields.Nested(Pipeline))
    deal_fields = fields.List(fields.Nested(CrmField))
    person_fields = fields.List(fields.Nested(CrmField))
    asana = fields.List(fields.Nested(AsanaConnection))
    errors = fields.Dict(metadata={"description": "catalogs that could not be loaded, and why"})


class Error(Schema):
    error = fields.String(required=True)
    message = fields.String(required=True)
    fields_ = fields.Dict(data_key="fields")


class Ok(Schema):
    ok = fields.Boolean()
