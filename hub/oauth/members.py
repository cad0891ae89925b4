"""Who is who in an installation: the role of each member, who may change roles, and who owns a
connection. None of this knows about Flask; `hub/web/access.py` asks `role_of()` for every
installation-scoped request, so one rule decides everywhere.

Roles: the installer is always an admin; admins name further admins. Everybody else whom the
visibility admits is a user. An admin is admitted whatever the visibility says (naming someone an
admin lets them in)."""
from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import select

from .. import connectors
from ..store import AuditEvent, Connection, Installation, InstallationUser, WebSession, utcnow
from .clients import crm_client
from .web_sessions import end_sessions

ROLES = ("admin", "user")


class Refused(PermissionError):
    """The member may not do this; `contact` names who can (admins), for members only."""

    def __init__(self, message: str, contact: str | None = None):
        super().__init__(message)
        self.contact = contact


def role_of(session, installation: Installation | None, crm_user_id: str | None) -> str | None:
    """"admin", "user", or None when the installation does not admit this CRM user."""
    if installation is None or installation.status != "active" or not crm_user_id:
        return None
    if crm_user_id == installation.installer_user_id:
        return "admin"
    row = session.scalar(select(InstallationUser).where(
        InstallationUser.installation_id == installation.id, InstallationUser.crm_user_id == crm_user_id))
    if row is not None and row.role == "admin":
        return "admin"
    if installation.visibility == "all":
        return "user"
    if installation.visibility == "specific" and row is not None and row.allowed:
        return "user"
    return None


def directory(services: Any, installation_id: int) -> list[dict[str, Any]]:
    """The account's active people as the CRM lists them (the connector's `members` hook, read with
    the installer's connection): whom the installer may share the hub with. Empty when the connector
    has no such hook; provider failures (Retriable, Fatal, NeedsReauth) pass through."""
    with services.db.begin() as session:
        installation = session.get(Installation, installation_id)
        provider = installation.provider if installation is not None else ""
    try:
        hook = connectors.connector(provider).auth.members
    except KeyError:
        return []
    if hook is None:
        return []
    return [{"id": who.user_id, "name": who.name, "email": who.email, "is_admin": who.is_admin, "active_flag": True}
            for who in hook(crm_client(services, installation_id))]


def admin_ids(session, installation: Installation) -> list[str]:
    """The installer first, then the admins they named."""
    named = session.scalars(select(InstallationUser.crm_user_id).where(
        InstallationUser.installation_id == installation.id, InstallationUser.role == "admin",
        InstallationUser.crm_user_id != installation.installer_user_id).order_by(InstallationUser.name))
    return [installation.installer_user_id, *named]


def admins_contact(session, installation: Installation) -> str:
    """How a member is told whom to ask: "Ada Admin <ada@...>, Ben <ben@...>"."""
    rows = {u.crm_user_id: u for u in session.scalars(select(InstallationUser).where(
        InstallationUser.installation_id == installation.id))}
    out = []
    for uid in admin_ids(session, installation):
        row = rows.get(uid)
        name = (row.name if row and row.name else installation.installer_name if uid == installation.installer_user_id
                else "") or f"user {uid}"
        email = (row.email if row and row.email else installation.installer_email
                 if uid == installation.installer_user_id else "")
        out.append(f"{name} <{email}>" if email else name)
    return ", ".join(out)


def members(session, installation: Installation, directory: Iterable[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """Everyone the hub knows in the company (its users table plus the CRM's directory), with the
    role the hub gives them now (None: may not use the hub)."""
    rows = {u.crm_user_id: u for u in session.scalars(select(InstallationUser).where(
        InstallationUser.installation_id == installation.id))}
    people: dict[str, dict[str, Any]] = {}
    for u in directory:
        people[str(u["id"])] = {"name": u.get("name") or "", "email": u.get("email") or ""}
    for uid, row in rows.items():
        people.setdefault(uid, {"name": row.name, "email": row.email})
    people.setdefault(installation.installer_user_id, {"name": installation.installer_name,
                                                       "email": installation.installer_email})
    out = []
    for uid, who in people.items():
        out.append({"crm_user_id": uid, "name": who["name"], "email": who["email"],
                    "role": role_of(session, installation, uid),
                    "admin": uid == installation.installer_user_id or (uid in rows and rows[uid].role == "admin"),
                    "installer": uid == installation.installer_user_id})
    out.sort(key=lambda m: (not m["installer"], not m["admin"], m["name"].lower(), m["crm_user_id"]))
    return out


def set_roles(services: Any, installation_id: int, actor: str, roles: dict[str, str],
              directory: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Make members admins or users. Validated completely before anything is written; the installer
    stays an admin, and no change leaves the installation without one. Returns what changed."""
    known = {str(u["id"]): u for u in directory}
    errors = []
    for uid, role in roles.items():
        if role not in ROLES:
            errors.append(f"role: {role!r} for user {uid} is not admin or user")
    if errors:
        raise ValueError("; ".join(errors))
    changed: dict[str, str] = {}
    with services.db.begin() as session:
        installation = session.get(Installation, installation_id)
        rows = {u.crm_user_id: u for u in session.scalars(select(InstallationUser).where(
            InstallationUser.installation_id == installation_id))}
        for uid, role in roles.items():
            if uid == installation.installer_user_id:
                if role != "admin":
                    raise ValueError("role: the admin who installed Relay Hub stays an admin")
                continue
            if uid not in rows and uid not in known:
                raise ValueError(f"users: {uid} is not a user of {installation.company_name or 'the company'}")
        for uid, role in roles.items():
            if uid == installation.installer_user_id:
                continue
            row = rows.get(uid)
            if row is None:
                if role == "user":
                    continue  # nothing to record: not an admin is the default
                info = known[uid]
                row = rows[uid] = InstallationUser(installation_id=installation_id, crm_user_id=uid,
                                                   name=info.get("name") or "", email=info.get("email") or "",
                                                   is_admin=bool(info.get("is_admin")), allowed=False)
                session.add(row)
            if row.role != role:
                row.role = role
                changed[uid] = role
        if not installation.installer_user_id and not any(r.role == "admin" for r in rows.values()):
            raise ValueError("role: the installation needs at least one admin")
        if changed:
            installation.updated_at = utcnow()
            session.add(AuditEvent(installation_id=installation_id, actor=actor, action="roles.changed",
                                   detail={"roles": changed}))
            session.flush()
            sign_out_outsiders(session, installation)
    return changed


def sign_out_outsiders(session, installation: Installation) -> None:
    """Whoever `role_of()` no longer admits (a visibility change, an admin made a user under "only
    me") is signed out in every web process now, so access granted again later does not revive an
    old cookie."""
    signed_in = session.scalars(select(WebSession.crm_user_id).where(
        WebSession.installation_id == installation.id).distinct()).all()
    gone = [user_id for user_id in signed_in if role_of(session, installation, user_id) is None]
    if gone:
        end_sessions(session, installation.id, users=gone)


# -- connections: whose they are --------------------------------------------------------------------
def check_may_manage_connection(session, installation: Installation, connection: Connection, crm_user_id: str,
                                role: str | None) -> None:
    """Admins manage every connection; a user only the ones they connected themselves."""
    if role == "admin":
        return
    if role is None or connection.owner_user_id != crm_user_id:
        raise Refused("connection_id: only an admin can change a connection someone else made; "
                      "you can disconnect your own", admins_contact(session, installation))
