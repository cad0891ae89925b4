"""Schemas of the contact sync JSON API (web.py), for the OpenAPI document (hub.web.openapi). The
service validates input itself (service.validate names each bad field, with hub.inputs' numbers);
these say the same, with the same number fields."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from hub import inputs
from hub.inputs import MAX_INT

from .planner import DIRECTIONS, POLICIES
from .policy import DELETE_POLICIES
from .service import SHARE_MODES


class Label(Schema):
    resource_name = fields.String(required=True)
    name = fields.String(required=True)


class FieldRow(Schema):
    crm = fields.String(required=True, metadata={"description": "a CRM person field key"})
    store = fields.String(required=True, metadata={"description": "a contact field: name, emails, phones, "
                                                                  "organization, title, notes or custom:<key>"})


class PersonFilter(Schema):
    owner_id = inputs.Integer(validate=validate.Range(min=1, max=MAX_INT))
    org_id = inputs.Integer(validate=validate.Range(min=1, max=MAX_INT))


class SyncChange(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    direction = fields.String(validate=validate.OneOf(list(DIRECTIONS)))
    conflict_policy = fields.String(validate=validate.OneOf(list(POLICIES)))
    delete_policy = fields.String(validate=validate.OneOf(list(DELETE_POLICIES)),
                                  metadata={"description": "when one side deleted what the other edited"})
    person_filter = fields.Nested(PersonFilter)
    field_map = fields.List(fields.Nested(FieldRow), validate=validate.Length(min=1))
    schedule_seconds = inputs.Integer(validate=validate.Range(min=0, max=7 * 86400),
                                      metadata={"description": "0: only on demand; else at least 60"})
    delete_share = inputs.Float(validate=validate.Range(min=0, max=1),
                                metadata={"description": "ask before deleting more than this share of contacts"})
    contact_cap = inputs.Integer(validate=validate.Range(min=1, max=MAX_INT))
    enabled = fields.Boolean()


class SyncIn(SyncChange):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    store_connection_id = inputs.Integer(required=True, validate=validate.Range(min=1, max=MAX_INT))
    group = fields.String(metadata={"description": "an existing label's resource name, or __new__"})
    new_group_name = fields.String(validate=validate.Length(min=1, max=200))


class RunOut(Schema):
    id = fields.Integer(required=True)
    trigger = fields.String(required=True)
    status = fields.String(required=True)
    phase = fields.String(allow_none=True)
    progress = fields.Dict(allow_none=True)
    stats = fields.Dict(allow_none=True)
    message = fields.String(allow_none=True)
    attempts = fields.Integer(required=True)
    started_at = fields.String(required=True)
    finished_at = fields.String(allow_none=True)


class ShareOut(Schema):
    id = fields.Integer(required=True)
    mode = fields.String(allow_none=True)
    connection_id = fields.Integer(required=True)
    owner_user_id = fields.String(allow_none=True, metadata={"description": "the CRM user whose account it is"})
    account = fields.String(allow_none=True)
    colleague = fields.String(allow_none=True)
    label = fields.Nested(Label, required=True)
    status = fields.String(required=True)
    status_message = fields.String(allow_none=True)
    linked = fields.Integer(required=True)
    last_run = fields.Nested(RunOut, allow_none=True)


class PendingDeletes(Schema):
    crm = fields.Integer(required=True)
    store = fields.Integer(required=True)
    confirmed = fields.Boolean(required=True)


class SyncOut(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    store_connection_id = fields.Integer(required=True)
    label = fields.Nested(Label, required=True)
    direction = fields.String(required=True)
    person_filter = fields.Dict(allow_none=True)
    field_map = fields.List(fields.Nested(FieldRow), allow_none=True)
    conflict_policy = fields.String(required=True)
    delete_policy = fields.String(required=True)
    schedule_seconds = fields.Integer(required=True)
    delete_share = fields.Float(required=True)
    contact_cap = fields.Integer(required=True)
    enabled = fields.Boolean(required=True)
    status = fields.String(required=True)
    status_message = fields.String(allow_none=True)
    pending_deletes = fields.Nested(PendingDeletes, allow_none=True)
    linked = fields.Integer(required=True)
    left_out = fields.Integer(required=True)
    last_run = fields.Nested(RunOut, allow_none=True)
    parent_id = fields.Integer(allow_none=True, metadata={"description": "set on a share: the shared sync"})
    share_mode = fields.String(allow_none=True)
    shares = fields.List(fields.Nested(ShareOut), required=True)


class SyncList(Schema):
    syncs = fields.List(fields.Nested(SyncOut), required=True)


class LabelOption(Schema):
    resource_name = fields.String(required=True)
    name = fields.String(allow_none=True)
    members = fields.Integer(allow_none=True)


class Labels(Schema):
    labels = fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(LabelOption)), required=True,
                         metadata={"description": "connection id -> its labels"})
    error = fields.String(allow_none=True, required=True)


class Queued(Schema):
    queued = fields.Boolean(required=True)
    job_id = fields.Integer(allow_none=True, required=True)


class DeletionsIn(Schema):
    confirm = fields.Boolean(required=True, metadata={"description": "true: apply the held deletions; "
                                                                     "false: discard them"})


class DeletionsOut(Schema):
    count = fields.Integer(required=True)
    confirmed = fields.Boolean(required=True)


class Candidate(Schema):
    connection_id = fields.Integer(required=True)
    owner_user_id = fields.String(allow_none=True, metadata={"description": "the CRM user whose account it is"})
    account = fields.String(allow_none=True)
    colleague = fields.String(allow_none=True)


class ShareList(Schema):
    shares = fields.List(fields.Nested(ShareOut), required=True)
    candidates = fields.List(fields.Nested(Candidate), required=True)


class ShareIn(Schema):
    connection_id = inputs.Integer(required=True, validate=validate.Range(min=1, max=MAX_INT),
                                   metadata={"description": "an account a colleague connected"})
    mode = fields.String(required=True, validate=validate.OneOf(list(SHARE_MODES)))


class ShareChange(Schema):
    mode = fields.String(required=True, validate=validate.OneOf(list(SHARE_MODES)))


class Conflict(Schema):
    id = fields.Integer(required=True)
    run_id = fields.Integer(allow_none=True)
    crm_id = fields.String(required=True)
    resource_name = fields.String(allow_none=True)
    field = fields.String(required=True)
    crm_value = fields.Raw(allow_none=True)
    store_value = fields.Raw(allow_none=True)
    winner = fields.String(required=True)
    policy = fields.String(required=True)
    message = fields.String(allow_none=True, metadata={"description": "what happened, in words"})
    at = fields.String(required=True)


class Conflicts(Schema):
    conflicts = fields.List(fields.Nested(Conflict), required=True)


class LeftOutEntry(Schema):
    crm_id = fields.String(required=True)
    name = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)


class LeftOut(Schema):
    left_out = fields.List(fields.Nested(LeftOutEntry), required=True)


class Runs(Schema):
    runs = fields.List(fields.Nested(RunOut), required=True)


class SyncLogEntry(Schema):
    id = fields.Integer(required=True)
    step = fields.String(required=True)
    status = fields.String(required=True)
    message = fields.String(allow_none=True)
    job_id = fields.Integer(allow_none=True)
    at = fields.String(required=True)


class SyncLog(Schema):
    log = fields.List(fields.Nested(SyncLogEntry), required=True)


BASE, TAG = "/api/v1/installations/{installation_id}/sync", "sync"
_CONNECTION = [{"name": "connection_id", "in": "query", "schema": {"type": "integer", "format": "int64", "minimum": 1},
                "description": "only this contact-store connection"}]
OPERATIONS: list = [
    ("get", "", "The installation's syncs (each lists its shares)", None, (200, SyncList), []),
    ("post", "", "Create a sync (and its label)", SyncIn, (201, SyncOut), []),
    ("get", "/labels", "The labels of the connected contact accounts", None, (200, Labels), _CONNECTION),
    ("get", "/{sync_id}", "One sync (a share too)", None, (200, SyncOut), []),
    ("patch", "/{sync_id}", "Change a sync (fields left out keep their values)", SyncChange, (200, SyncOut), []),
    ("post", "/{sync_id}/run", "Run now (queued; one waiting run at most)", None, (202, Queued), []),
    ("post", "/{sync_id}/deletions", "Confirm or discard the deletions held for confirmation", DeletionsIn,
     (200, DeletionsOut), []),
    ("get", "/{sync_id}/shares", "Who the label is shared with, and who it could be", None, (200, ShareList), []),
    ("post", "/{sync_id}/shares", "Share the label with a colleague's own account", ShareIn, (201, ShareOut), []),
    ("patch", "/{sync_id}/shares/{share_id}", "Change a share's mode", ShareChange, (200, ShareOut), []),
    ("delete", "/{sync_id}/shares/{share_id}", "Stop sharing (the colleague keeps the contacts)", None, (204, None),
     []),
    ("get", "/{sync_id}/conflicts", "Conflicts the runs resolved", None, (200, Conflicts), []),
    ("get", "/{sync_id}/left-out", "Persons left out, and why", None, (200, LeftOut), []),
    ("get", "/{sync_id}/runs", "The last runs", None, (200, Runs), []),
    ("get", "/{sync_id}/log", "The sync's run log", None, (200, SyncLog), []),
]
