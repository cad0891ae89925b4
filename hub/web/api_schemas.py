"""Schemas of the core JSON API (hub/web/api.py): who am I, the installation, its connections,
visibility, audit trail, uninstall. Read by hub.web.openapi."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..oauth.installs import VISIBILITIES
from ..oauth.members import ROLES
from ..rules.schemas import Ok


class Me(Schema):
    installation_id = fields.Integer(required=True)
    crm_user_id = fields.String(required=True)
    name = fields.String(required=True)


class Installer(Schema):
    user_id = fields.String(allow_none=True)
    name = fields.String(allow_none=True)


class InstallationOut(Schema):
    id = fields.Integer(required=True)
    provider = fields.String(required=True)
    company_id = fields.String(required=True)
    company_name = fields.String(allow_none=True)
    visibility = fields.String(required=True)
    installer = fields.Nested(Installer, required=True)
    status = fields.String(required=True)
    created_at = fields.String(required=True)


class ConnectionOut(Schema):
    id = fields.Integer(required=True)
    provider = fields.String(required=True)
    role = fields.String(required=True)
    account_id = fields.String(allow_none=True)
    account_name = fields.String(allow_none=True)
    account_email = fields.String(allow_none=True)
    status = fields.String(required=True)
    status_reason = fields.String(allow_none=True)
    scopes = fields.String(allow_none=True)
    owner_user_id = fields.String(allow_none=True, metadata={"description": "the CRM user who connected it"})
    token_expires_at = fields.String(allow_none=True)


class ConnectionList(Schema):
    connections = fields.List(fields.Nested(ConnectionOut), required=True)


class Uninstalled(Schema):
    ok = fields.Boolean(required=True)
    status = fields.String(required=True)


class VisibilityOut(Schema):
    visibility = fields.String(required=True)
    users = fields.List(fields.String(), required=True)


class VisibilityIn(Schema):
    visibility = fields.String(required=True, validate=validate.OneOf(VISIBILITIES))
    users = fields.List(fields.String(),
                        metadata={"description": "CRM user ids, for `specific`"})
    notify = fields.Boolean(metadata={"description": "e-mail the users newly given access"})


class VisibilityChanged(VisibilityOut):
    notified = fields.List(fields.String(), required=True, metadata={"description": "e-mailed addresses"})


class AuditEntry(Schema):
    at = fields.String(required=True)
    actor = fields.String(allow_none=True)
    action = fields.String(required=True)
    detail = fields.Dict(allow_none=True)


class AuditList(Schema):
    events = fields.List(fields.Nested(AuditEntry), required=True)


class Member(Schema):
    crm_user_id = fields.String(required=True)
    name = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    role = fields.String(allow_none=True, metadata={"description": "admin, user, or null: may not use the hub"})
    admin = fields.Boolean(required=True)
    installer = fields.Boolean(required=True)


class MemberList(Schema):
    members = fields.List(fields.Nested(Member), required=True)
    directory_error = fields.String(allow_none=True)


class RoleIn(Schema):
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class FlagIn(Schema):
    value = fields.Boolean(required=True, metadata={"description": "true: steps that move the object forward "
                                                                   "run for it again; false: they are skipped"})


class FlagOut(Schema):
    key = fields.String(required=True, metadata={"description": "auto_advance ..."})
    label = fields.String(required=True)
    value = fields.Raw(allow_none=True)
    reason = fields.String(required=True)
    set_by = fields.String(required=True)
    set_at = fields.String(allow_none=True)


class ObjectFlags(Schema):
    object_type = fields.String(required=True)
    object_id = fields.String(required=True)
    flags = fields.List(fields.Nested(FlagOut), required=True)
    changed = fields.Boolean(metadata={"description": "the switch changed it (false: it already was so)"})


BASE, TAG = "/api/v1", "installation"
_I = "/installations/{installation_id}"
OPERATIONS: list = [
    ("get", "/me", "Who is signed in", None, (200, Me), []),
    ("get", _I, "The installation", None, (200, InstallationOut), []),
    ("get", _I + "/connections", "The accounts connected to the installation", None, (200, ConnectionList), []),
    ("post", _I + "/connections/{connection_id}/disconnect", "Disconnect an account (not the installer's CRM)",
     None, (200, Ok), []),
    ("get", _I + "/visibility", "Who may use the hub", None, (200, VisibilityOut), []),
    ("put", _I + "/visibility", "Change who may use the hub (admins only)", VisibilityIn,
     (200, VisibilityChanged), []),
    ("get", _I + "/members", "The company's users and the role each has in the hub", None, (200, MemberList), []),
    ("put", _I + "/members/{crm_user_id}/role", "Make a user an admin or a user (admins only)", RoleIn,
     (200, Member), []),
    ("get", _I + "/audit", "The last 200 changes and who made them", None, (200, AuditList), []),
    ("get", _I + "/objects/{object_type}/{object_id}/flags", "What automations keep about one CRM object "
     "(auto-advance off since a person moved it back ...)", None, (200, ObjectFlags), []),
    ("put", _I + "/objects/{object_type}/{object_id}/flags/auto_advance", "Switch auto-advance on or off for "
     "one object (admins only; audited)", FlagIn, (200, ObjectFlags), []),
    ("post", _I + "/uninstall", "Uninstall (admins only): connections and webhooks are removed", None,
     (200, Uninstalled), []),
]
