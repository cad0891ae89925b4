"""JSON API: everything the pages do, for scripts and the browser. Same session and CSRF rules."""
from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select

from ..oauth import installs
from ..oauth.members import Refused, members, set_roles
from ..store import AuditEvent, Connection, Installation, InstallationUser
from .access import admin, current_user, forbidden, member
from .api_schemas import FlagIn, RoleIn
from .bodies import json_body

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def services():
    return current_app.extensions["hub"]


class VisibilityIn(Schema):
    visibility = fields.String(required=True, validate=validate.OneOf(installs.VISIBILITIES))
    users = fields.List(fields.String(), load_default=list)
    notify = fields.Boolean(load_default=False)


def bad_request(errors: dict) -> tuple:
    return jsonify({"error": "invalid", "message": "; ".join(f"{k}: {v[0] if isinstance(v, list) else v}"
                                                             for k, v in errors.items()), "fields": errors}), 400


def installation_json(installation: Installation) -> dict:
    return {"id": installation.id, "provider": installation.provider, "company_id": installation.company_id,
            "company_name": installation.company_name, "visibility": installation.visibility,
            "installer": {"user_id": installation.installer_user_id, "name": installation.installer_name},
            "status": installation.status, "created_at": installation.created_at.isoformat() + "Z"}


def connection_json(c: Connection) -> dict:
    return {"id": c.id, "provider": c.provider, "role": c.role, "account_id": c.account_id,
            "account_name": c.account_name, "account_email": c.account_email, "status": c.status,
            "status_reason": c.status_reason, "scopes": c.scopes, "owner_user_id": c.owner_user_id,
            "token_expires_at": c.token_expires_at.isoformat() + "Z" if c.token_expires_at else None}


@bp.get("/me")
def me():
    user = current_user()
    if user is None:
        return jsonify({"error": "unauthorized", "message": "Sign in first."}), 401
    return jsonify({"installation_id": user.installation_id, "crm_user_id": user.crm_user_id, "name": user.name})


@bp.get("/installations/<int:installation_id>")
def installation(installation_id: int):
    return jsonify(installation_json(g.installation))


@bp.get("/installations/<int:installation_id>/connections")
def connections(installation_id: int):
    with services().db.begin() as session:
        rows = session.scalars(select(Connection).where(Connection.installation_id == installation_id)
                               .order_by(Connection.id)).all()
    return jsonify({"connections": [connection_json(c) for c in rows]})


@bp.post("/installations/<int:installation_id>/connections/<int:connection_id>/disconnect")
@member  # users disconnect their own; installs.disconnect_as checks whose it is
def disconnect(installation_id: int, connection_id: int):
    user = current_user()
    try:
        installs.disconnect_as(services(), installation_id, connection_id, user.crm_user_id, g.role, user.actor)
    except LookupError as exc:
        return jsonify({"error": "not_found", "message": str(exc)}), 404
    except ValueError as exc:
        return jsonify({"error": "invalid", "message": str(exc)}), 400
    except Refused as exc:
        return forbidden(str(exc), exc.contact)
    return jsonify({"ok": True})


@bp.get("/installations/<int:installation_id>/visibility")
def get_visibility(installation_id: int):
    with services().db.begin() as session:
        users = session.scalars(select(InstallationUser).where(InstallationUser.installation_id == installation_id,
                                                               InstallationUser.allowed.is_(True))).all()
    return jsonify({"visibility": g.installation.visibility, "users": sorted(u.crm_user_id for u in users)})


@bp.put("/installations/<int:installation_id>/visibility")
@admin
def put_visibility(installation_id: int):
    try:
        body = VisibilityIn().load(json_body() or {})
    except ValidationError as exc:
        return bad_request(exc.messages)
    from .pages import company_directory
    directory, error = company_directory(installation_id)
    if error and body["visibility"] == "specific":
        return jsonify({"error": "unavailable", "message": error}), 503
    try:
        mailed = installs.set_visibility(services(), installation_id, current_user().actor, body["visibility"],
                                         body["users"], body["notify"], directory)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        return bad_request({field: [message]})
    return jsonify({"visibility": body["visibility"], "users": sorted(body["users"]) if body["visibility"] == "specific" else [],
                    "notified": mailed})


@bp.get("/installations/<int:installation_id>/audit")
def audit(installation_id: int):
    with services().db.begin() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.installation_id == installation_id)
                               .order_by(AuditEvent.id.desc()).limit(200)).all()
    return jsonify({"events": [{"at": e.created_at.isoformat() + "Z", "actor": e.actor, "action": e.action,
                                "detail": e.detail} for e in rows]})


@bp.get("/installations/<int:installation_id>/members")
def list_members(installation_id: int):
    """The company's users the hub knows, each with the role the hub gives them (null: no access)."""
    from .pages import company_directory
    directory, error = company_directory(installation_id)
    with services().db.begin() as session:
        people = members(session, g.installation, directory)
    return jsonify({"members": people, "directory_error": error})


@bp.put("/installations/<int:installation_id>/members/<crm_user_id>/role")
@admin
def put_role(installation_id: int, crm_user_id: str):
    try:
        body = RoleIn().load(json_body() or {})
    except ValidationError as exc:
        return bad_request(exc.messages)
    from .pages import company_directory
    directory, _ = company_directory(installation_id)
    try:
        set_roles(services(), installation_id, current_user().actor, {crm_user_id: body["role"]}, directory)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        return bad_request({field: [message]})
    with services().db.begin() as session:
        [row] = [m for m in members(session, g.installation, directory) if m["crm_user_id"] == crm_user_id] or [None]
    return jsonify(row)


@bp.post("/installations/<int:installation_id>/uninstall")
@admin
def uninstall(installation_id: int):
    installs.uninstall(services(), installation_id, current_user().actor)
    return jsonify({"ok": True, "status": "uninstalled"})


@bp.get("/installations/<int:installation_id>/objects/<object_type>/<object_id>/flags")
def get_flags(installation_id: int, object_type: str, object_id: str):
    """What automations keep about one CRM object (auto-advance off since a person moved it back ...)."""
    from ..webhooks.processing import object_flags
    return jsonify({"object_type": object_type, "object_id": object_id,
                    "flags": object_flags(services(), installation_id, object_type, object_id)})


@bp.put("/installations/<int:installation_id>/objects/<object_type>/<object_id>/flags/auto_advance")
@admin
def put_auto_advance(installation_id: int, object_type: str, object_id: str):
    from ..webhooks.processing import object_flags, switch_auto_advance
    try:
        body = FlagIn().load(json_body() or {})
    except ValidationError as exc:
        return bad_request(exc.messages)
    changed = switch_auto_advance(services(), installation_id, object_type, object_id, body["value"],
                                  current_user().actor)
    return jsonify({"object_type": object_type, "object_id": object_id, "changed": changed,
                    "flags": object_flags(services(), installation_id, object_type, object_id)})
