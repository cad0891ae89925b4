"""Marshmallow schemas of the rules API: they check request bodies and are the source of the
OpenAPI document (`/api/v1/openapi.json`)."""
from __future__ import annotations

import math
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from .. import connectors
from .conditions import OPERATORS
from .kinds import all_kinds
from .triggers import FIRES, triggers


def _offered() -> tuple[list[str], list[str], list[str]]:
    """What the installed connectors offer (triggers, step kinds, presets), for the document's
    enums; the rule's checks decide what one installation may use."""
    presets = sorted({p.key for c in connectors.connectors() for p in c.presets})
    return sorted(triggers()), sorted(all_kinds()), presets


TRIGGERS, KINDS, PRESETS = _offered()

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
                          metadata={"description": "a field key of the trigger's object (see /catalog); custom "
                                                   "fields by their key"})
    op = fields.String(required=True, validate=validate.OneOf(list(OPERATORS)))
    value = fields.String(load_default="", validate=validate.Length(max=500))
    label = fields.String(dump_only=True, metadata={"description": "the field's label in the CRM"})


class Carry(Schema):
    title = fields.Boolean(load_default=True, validate=validate.Equal(True, error="the title is always carried"),
                           metadata={"description": "always true: the record's title is always carried"})
    value = fields.Boolean(load_default=True)
    contacts = fields.Boolean(load_default=True)
    notes = fields.Boolean(load_default=False, metadata={"description": "pinned notes"})
    attachments = fields.Boolean(load_default=False,
                                 metadata={"description": "switched off automatically where files cannot go"})


def _scalar(value: Any) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return value is None or (isinstance(value, (str, int, float, bool)) and len(str(value)) <= 500)


def _setting_value(value: Any) -> bool:
    """A step setting: a scalar, or a small list or flat mapping of scalars (`fields` to set ...)."""
    if isinstance(value, list):
        return len(value) <= 50 and all(_scalar(v) for v in value)
    if isinstance(value, dict):
        return len(value) <= 50 and all(isinstance(k, str) and len(k) <= 100 and _scalar(v) for k, v in value.items())
    return _scalar(value)


def _check_setting(value: Any) -> None:
    if not _setting_value(value):
        raise ValidationError("a setting is a value, or a short list or mapping of values")


SETTING = fields.Raw(allow_none=True, validate=_check_setting)


class Target(Schema):
    """The settings of a rule's single step, in the shorthand of rules made before steps."""

    class Meta:
        unknown = "include"

    connection_id = fields.Integer(load_default=None, allow_none=True, strict=True,
                                   validate=validate.Range(min=1, max=MAX_ID, error="no such connection"),
                                   metadata={"description": "the step's account (see /catalog)"})


class FieldMapping(Schema):
    source = fields.String(load_default="deal", validate=validate.OneOf(["deal", "record", "person"]),
                           metadata={"description": "the trigger's object (deal: the name rules used first) "
                                                    "or its linked person"})
    key = fields.String(required=True, validate=validate.Length(min=1, max=100),
                        metadata={"description": "the field key; custom fields by their key"})
    label = fields.String(dump_only=True)
    type = fields.String(dump_only=True)


UID = validate.Regexp(r"^[a-z0-9]{1,16}$", error="a step id is 1 to 16 lower-case letters and digits")


class StepCondition(Schema):
    field = fields.String(required=True, validate=validate.Length(min=1, max=100))
    op = fields.String(required=True, validate=validate.OneOf(list(OPERATORS)))
    value = fields.String(load_default="", validate=validate.Length(max=500))
    label = fields.String(dump_only=True)


class Step(Schema):
    id = fields.String(load_default=None, allow_none=True, validate=UID,
                       metadata={"description": "kept across edits (send it back); new steps get one"})
    kind = fields.String(required=True, validate=validate.Length(min=1, max=80),
                         metadata={"description": "`<connector>.<what>` or complete_linked, email, wait, branch "
                                                  "(see /catalog)", "enum": KINDS})
    connection_id = fields.Integer(load_default=None, allow_none=True, strict=True,
                                   validate=validate.Range(min=1, max=MAX_ID, error="no such connection"),
                                   metadata={"description": "the account a connector's step uses"})
    settings = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=60)), values=SETTING,
                           load_default=dict, validate=validate.Length(max=30))
    templates = fields.Dict(keys=fields.String(validate=validate.OneOf(["name", "description", "to", "subject",
                                                                        "body"])),
                            values=fields.String(validate=validate.Length(max=200000)), load_default=dict,
                            metadata={"description": "name and description (a connector's step); to, subject "
                                                     "and body (email)"})
    carry = fields.Nested(Carry, load_default=lambda: Carry().load({}))
    field_mappings = fields.List(fields.Nested(FieldMapping), load_default=list, validate=validate.Length(max=50))
    condition = fields.Nested(StepCondition, load_default=None, allow_none=True,
                              metadata={"description": "run the step only when it holds (a branch: its decision)"})
    delay_seconds = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0, max=366 * 86400),
                                   metadata={"description": "wait this long before the step (a wait step: > 0)"})
    due_in_days = fields.Integer(load_default=None, allow_none=True, strict=True,
                                 validate=validate.Range(min=0, max=3650),
                                 metadata={"description": "a task's deadline, days after the step runs"})


class ParamValue(fields.Field):
    """A trigger param's value: an id or a word, or a list of them (the event fits any of them)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        one = Id()
        if isinstance(value, list):
            if len(value) > 50:
                raise ValidationError("at most 50 values")
            out: list[str] = []
            for item in value:
                if item is None or item == "":
                    continue
                text = one.deserialize(item)
                if text not in out:
                    out.append(text)
            return out
        return one.deserialize(value)


class RuleIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    trigger = fields.String(required=True, validate=validate.Length(min=1, max=40),
                            metadata={"description": "an event kind the CRM emits (see /catalog)", "enum": TRIGGERS})
    pipeline_id = Id(load_default=None, allow_none=True, metadata={"type": "string", "nullable": True})
    stage_id = Id(load_default=None, allow_none=True, metadata={"type": "string", "nullable": True})
    params = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=60)), values=ParamValue(),
                         load_default=dict, validate=validate.Length(max=20),
                         metadata={"description": "the trigger's other params (see /catalog: a trigger's `params` "
                                                  "besides pipeline_id, to_stage_id and stage_id): a value, or a "
                                                  "list of values meaning any of them",
                                   "additionalProperties": {"oneOf": [{"type": "string"},
                                                                      {"type": "array", "items": {"type": "string"}}]}})
    fires = fields.String(validate=validate.OneOf(list(FIRES)),
                          metadata={"description": "when the trigger happens again to the same object: run 'every' "
                                                   "time, or 'once' per object. Left out: the trigger's default"})
    conditions = fields.List(fields.Nested(Condition), load_default=list, validate=validate.Length(max=20))
    steps = fields.List(fields.Nested(Step), validate=validate.Length(min=1, max=20),
                        metadata={"description": "what the rule does, in order"})
    # the shorthand of rules made before steps: one connector step
    action = fields.String(validate=validate.Length(min=1, max=80),
                           metadata={"description": "shorthand for one step: its kind (instead of `steps`)",
                                     "enum": [k for k in KINDS if "." in k]})
    target = fields.Nested(Target, metadata={"description": "shorthand: the step's account and settings"})
    carry = fields.Nested(Carry, metadata={"description": "shorthand: the step's data toggles"})
    name_template = fields.String(validate=[
        validate.Length(min=1, max=200000),
        validate.Regexp(r"[\s\S]*\S", error="the name template is empty")],   # blank is refused too
        metadata={"description": "shorthand: the step's name template"})
    description_template = fields.String(validate=validate.Length(max=200000),
                                         metadata={"description": "shorthand: the step's description template"})
    field_mappings = fields.List(fields.Nested(FieldMapping), validate=validate.Length(max=50),
                                 metadata={"description": "shorthand: the step's field mappings"})
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
    preset = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=80),
                           metadata={"enum": PRESETS + [None],
                                     "description": "create from a ready automation (see /presets); the other "
                                                    "fields then are optional, otherwise name, trigger and steps "
                                                    "(or the shorthand action and name_template) are required"})


RuleCreate = _all_optional(_RuleCreate, "RuleCreate")


class LastRun(Schema):
    status = fields.String()
    at = fields.String(allow_none=True)


class StepOut(Schema):
    id = fields.String()
    kind = fields.String()
    label = fields.String(metadata={"description": "what the kind does, in words"})
    connection_id = fields.Integer(allow_none=True)
    settings = fields.Dict()
    templates = fields.Dict(keys=fields.String(), values=fields.String())
    carry = fields.Nested(Carry)
    field_mappings = fields.List(fields.Nested(FieldMapping))
    condition = fields.Nested(StepCondition, allow_none=True)
    delay_seconds = fields.Integer()
    due_in_days = fields.Integer(allow_none=True)


class RuleOut(Schema):
    id = fields.Integer()
    name = fields.String()
    status = fields.String()
    preset = fields.String()
    trigger = fields.String()
    pipeline_id = fields.String(allow_none=True)
    stage_id = fields.String(allow_none=True)
    params = fields.Dict(metadata={"description": "the trigger's other params: a value or a list (any of them)"})
    origin = fields.String(metadata={"description": "the page that wrote the rule (automation:<catalog>:<entry>:"
                                                    "<preset>), empty for rules made in the editor"})
    fires = fields.String()
    conditions = fields.List(fields.Nested(Condition))
    steps = fields.List(fields.Nested(StepOut))
    version = fields.Integer()
    last_error = fields.String(allow_none=True)
    created_at = fields.String()
    updated_at = fields.String()
    activated_at = fields.String(allow_none=True)
    notices = fields.List(fields.String(), metadata={"description": "what the hub adjusted while saving"})
    warnings = fields.List(fields.String(), metadata={
        "description": "what may be wrong but did not stop the save: template names the trigger's object "
                       "does not have, checks skipped while the CRM could not be reached"})
    last_run = fields.Nested(LastRun, allow_none=True, metadata={"description": "in lists only"})


class RuleList(Schema):
    rules = fields.List(fields.Nested(RuleOut))


class Link(Schema):
    step_id = fields.String()
    object_type = fields.String()
    object_id = fields.String()
    connector = fields.String()
    made = fields.String(metadata={"description": "task | project | record"})
    external_id = fields.String()
    name = fields.String()
    url = fields.String()
    status = fields.String(metadata={"description": "open | completed"})


class StepRun(Schema):
    step_id = fields.String()
    position = fields.Integer()
    kind = fields.String()
    status = fields.String(metadata={"description": "pending | waiting | done | skipped"})
    external_id = fields.String(allow_none=True)
    wake_at = fields.String(allow_none=True)
    detail = fields.Dict()


class Run(Schema):
    id = fields.Integer()
    rule_id = fields.Integer()
    hub_event_id = fields.Integer()
    object_type = fields.String()
    object_id = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    error = fields.String(allow_none=True)
    wake_at = fields.String(allow_none=True, metadata={"description": "a waiting run continues then"})
    detail = fields.Dict()
    steps = fields.List(fields.Nested(StepRun))
    links = fields.List(fields.Nested(Link))
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
    object_id = Id(required=True, metadata={"type": "string", "description": "the id of an object the trigger "
                                                                               "is about (a deal id ...)"})
    step = fields.Integer(load_default=None, allow_none=True, strict=True, validate=validate.Range(min=0, max=19),
                          metadata={"description": "which step to render (0-based); left out: the first that "
                                                   "has templates"})


class PreviewFile(Schema):
    name = fields.String()
    size = fields.Integer(allow_none=True)
    too_large = fields.Boolean()


class PreviewOut(Schema):
    object_type = fields.String()
    object_id = fields.String()
    title = fields.String()
    step = fields.Integer(allow_none=True)
    name = fields.String(metadata={"description": "the name (an e-mail: its subject)"})
    html_notes = fields.String(metadata={"description": "the description as neutral rich text (an e-mail: its body)"})
    to = fields.List(fields.String(), metadata={"description": "an e-mail's recipients"})
    warnings = fields.List(fields.String())
    matches = fields.Boolean()
    mismatch = fields.String(allow_none=True)
    files = fields.List(fields.Nested(PreviewFile))


class Preset(Schema):
    key = fields.String()
    title = fields.String()
    summary = fields.String()
    trigger = fields.String()
    steps = fields.List(fields.String(), metadata={"description": "the kinds of its steps"})


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


class SettingOut(Schema):
    key = fields.String()
    label = fields.String()
    catalog = fields.String(allow_none=True, metadata={"description": "the connection's catalog of its options"})
    path = fields.String(allow_none=True, metadata={"description": "the list inside each catalog entry"})
    parent = fields.String(allow_none=True, metadata={"description": "the setting whose value narrows them"})
    required = fields.Boolean()
    many = fields.Boolean(metadata={"description": "several values (a list or a mapping)"})
    choices = fields.List(fields.List(fields.String()))


class KindOut(Schema):
    kind = fields.String()
    label = fields.String()
    connector = fields.String(allow_none=True)
    templates = fields.List(fields.String())
    settings = fields.List(fields.Nested(SettingOut))
    makes = fields.String(allow_none=True)
    attachments = fields.Boolean()
    completes = fields.Boolean()
    carries = fields.Boolean()


class ConnectionCatalogs(Schema):
    id = fields.Integer()
    connector = fields.String()
    name = fields.String()
    status = fields.String()
    catalogs = fields.Dict(metadata={"description": "catalog name -> its options"})
    error = fields.String(allow_none=True)


class Catalog(Schema):
    triggers = fields.List(fields.Dict())
    kinds = fields.List(fields.Nested(KindOut))
    operators = fields.Dict()
    pipelines = fields.List(fields.Nested(Pipeline))
    fields_ = fields.Dict(data_key="fields", keys=fields.String(), values=fields.List(fields.Nested(CrmField)),
                          metadata={"description": "object type -> its fields"})
    connections = fields.List(fields.Nested(ConnectionCatalogs))
    param_choices = fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(Option)),
                                metadata={"description": "catalog name -> the options of the trigger params "
                                                         "that name it (a trigger's `choices`)"})
    errors = fields.Dict(metadata={"description": "catalogs that could not be loaded, and why"})


class Error(Schema):
    error = fields.String(required=True)
    message = fields.String(required=True)
    fields_ = fields.Dict(data_key="fields")


class Ok(Schema):
    ok = fields.Boolean()
