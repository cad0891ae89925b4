"""Installations: the marketplace install, who may use it, target connections and uninstall.

Pages and the API call these functions; none of them knows about Flask. Visibility is decided by
`may_use()` alone, and the web layer asks it for every installation-scoped route."""
from __future__ import annotations

import logging
import secrets as pysecrets
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import select

from ..errors import Fatal
from ..mail import queue_mail
from ..store import AuditEvent, Connection, Installation, InstallationUser, utcnow
from . import early_signals
from .flow import ProviderApp, id_token_claims, provider_app, revoke
from .members import Refused, admins_contact, check_may_manage_connection, role_of, sign_out_outsiders
from .tokens import access_ref, refresh_ref, store_tokens
from .web_sessions import end_sessions

log = logging.getLogger("hub.oauth")
VISIBILITIES = ("all", "only_me", "specific")

_uninstall_hooks: list[Callable[[Any, Installation], None]] = []
_install_hooks: list[Callable[[Any, Any, Installation], None]] = []


def on_install(fn: Callable[[Any, Any, Installation], None]) -> Callable[[Any, Any, Installation], None]:
    """Called inside the install's transaction (enqueue follow-up work there, e.g. webhook registration)."""
    _install_hooks.append(fn)
    return fn


def on_uninstall(fn: Callable[[Any, Installation], None]) -> Callable[[Any, Installation], None]:
    """Features clean up their provider-side state at uninstall (e.g. the webhooks they registered)."""
    _uninstall_hooks.append(fn)
    return fn


class AccessDenied(Exception):
    """Refused at sign-in or connect; `contact` names the admins (only ever shown to people the CRM
    vouched for as members of that company)."""

    def __init__(self, message: str, contact: str | None = None):
        super().__init__(message)
        self.contact = contact


@dataclass
class CrmIdentity:
    user_id: str
    name: str
    email: str
    is_admin: bool
    company_id: str
    company_name: str
    company_domain: str
    api_domain: str


def audit(session, installation_id: int | None, actor: str, action: str, **detail: Any) -> None:
    session.add(AuditEvent(installation_id=installation_id, actor=actor, action=action, detail=detail))


# -- who may use an installation ----------------------------------------------------------------
def may_use(session, installation: Installation, crm_user_id: str | None) -> bool:
    """The one visibility rule: the installer and admins always; others by the installation's visibility."""
    return role_of(session, installation, crm_user_id) is not None


def grantor(installation: Installation) -> str:
    who = installation.installer_name or f"user {installation.installer_user_id}"
    return f"{who} <{installation.installer_email}>" if installation.installer_email else who


# -- CRM side: install and sign-in ----------------------------------------------------------------
def crm_identity(app: ProviderApp, token: dict[str, Any]) -> CrmIdentity:
    from ..connectors.pipedrive.client import PipedriveClient

    api_domain = token.get("api_domain")
    if not api_domain:
        raise Fatal("Pipedrive's token response has no api_domain")
    client = PipedriveClient(api_domain, _StaticToken(token["access_token"]))
    me = client.me()
    admin = bool(me.get("is_admin")) or any(a.get("admin") for a in me.get("access") or [] if isinstance(a, dict))
    return CrmIdentity(str(me["id"]), me.get("name") or "", me.get("email") or "", admin, str(me["company_id"]),
                       me.get("company_name") or "", me.get("company_domain") or "", api_domain.rstrip("/"))


class _StaticToken:
    """The token just received, before a connection exists to hold it."""

    def __init__(self, token: str):
        self.token = token

    def access_token(self) -> str:
        return self.token

    def refresh_after_rejection(self, rejected: str) -> str:
        raise Fatal("the provider refused a token it has just issued")


def _missing_scopes(app: ProviderApp, token: dict[str, Any]) -> list[str]:
    granted_raw = token.get("scope") or ""
    if not granted_raw or not app.manifest.required_scopes:
        return []
    granted = set(granted_raw.replace(",", " ").split())
    return [s for s in app.manifest.required_scopes if s not in granted]


def complete_crm_authorization(services: Any, app: ProviderApp, token: dict[str, Any], purpose: str) -> tuple[int, str]:
    """After the CRM's consent: create or reuse the installation (install) or find it (sign-in),
    keep this user's tokens, and return (installation id, CRM user id). Raises AccessDenied."""
    missing = _missing_scopes(app, token)
    if missing:
        raise Fatal(f"{app.manifest.title} granted too little: the hub needs the scopes {', '.join(missing)}")
    who = crm_identity(app, token)
    with services.db.begin() as session:
        installation = session.scalar(select(Installation).where(
            Installation.provider == app.provider, Installation.company_id == who.company_id))
        if purpose == "install":
            if installation is None:
                installation = Installation(provider=app.provider, company_id=who.company_id,
                                            installer_user_id=who.user_id, endpoint_token=pysecrets.token_urlsafe(24),
                                            visibility="only_me")
                session.add(installation)
                action = "installation.created"
            elif installation.status != "active" or installation.installer_user_id == who.user_id or who.is_admin:
                action = "installation.reinstalled"
                if installation.status != "active":
                    installation.installer_user_id = who.user_id
                    installation.visibility_confirmed = False
            else:
                raise AccessDenied(f"Relay Hub is already installed for {installation.company_name}; "
                                   f"ask {grantor(installation)} for access", admins_contact(session, installation))
            installation.status = "active"
            installation.uninstalled_at = None
            if installation.installer_user_id == who.user_id:
                installation.installer_name, installation.installer_email = who.name, who.email
            installation.company_name, installation.company_domain = who.company_name, who.company_domain
            installation.api_domain = who.api_domain
            installation.updated_at = utcnow()
            session.flush()
            audit(session, installation.id, f"{who.name} ({who.user_id})" if who.name else who.user_id, action)
            early = early_signals.take(app.provider, who.company_id)
            if early is not None and installation.shared_signal is not early:
                installation.shared_signal = early
                _audit_sharing_signal(session, installation.id, app.provider, early)
            for hook in _install_hooks:
                hook(services, session, installation)
        else:
            if installation is None or installation.status != "active":
                raise AccessDenied(f"Relay Hub is not installed for {who.company_name or 'your company'}: "
                                   "an admin installs it from the Pipedrive Marketplace first")
        user = _upsert_user(session, installation.id, who)
        user.last_login_at = utcnow()
        if not may_use(session, installation, who.user_id):
            raise AccessDenied(f"Relay Hub for {installation.company_name} is not shared with you; "
                               f"ask {grantor(installation)} to add you", admins_contact(session, installation))
        connection = _upsert_connection(session, installation.id, app, role="crm", account_id=who.user_id,
                                        name=who.name, email=who.email, token=token, by=who.user_id,
                                        owner=who.user_id, api_base=who.api_domain)
        store_tokens(services, session, connection, token)
        return installation.id, who.user_id


def _upsert_user(session, installation_id: int, who: CrmIdentity) -> InstallationUser:
    user = session.scalar(select(InstallationUser).where(InstallationUser.installation_id == installation_id,
                                                         InstallationUser.crm_user_id == who.user_id))
    if user is None:
        user = InstallationUser(installation_id=installation_id, crm_user_id=who.user_id, allowed=False)
        session.add(user)
    user.name, user.email, user.is_admin = who.name, who.email, who.is_admin
    return user


def _find_connection(session, installation_id: int, provider: str, role: str, account_id: str) -> Connection | None:
    return session.scalar(select(Connection).where(
        Connection.installation_id == installation_id, Connection.provider == provider,
        Connection.role == role, Connection.account_id == account_id))


def _upsert_connection(session, installation_id: int, app: ProviderApp, *, role: str, account_id: str, name: str,
                       email: str, token: dict[str, Any], by: str, owner: str, api_base: str) -> Connection:
    """New tokens for an account; a live connection keeps its owner (an admin's reconnect of a
    colleague's account does not make it the admin's)."""
    connection = _find_connection(session, installation_id, app.provider, role, account_id)
    if connection is None:
        connection = Connection(installation_id=installation_id, provider=app.provider, role=role, account_id=account_id)
        session.add(connection)
    if connection.status == "disconnected" or not connection.owner_user_id:
        connection.owner_user_id, connection.connected_by = owner, by
    connection.account_name, connection.account_email = name, email
    connection.status, connection.status_reason, connection.reauth_notified_at = "connected", None, None
    connection.scopes = token.get("scope") or ""
    connection.api_base = api_base
    connection.token_url = app.manifest.token_url
    connection.revoke_url = app.manifest.revoke_url or ""
    session.flush()
    return connection


def record_sharing_signal(services: Any, provider: str, company_id: str, is_shared: bool) -> bool:
    """The app-sharing callback: a hint for the visibility the installer confirms; never a grant."""
    with services.db.begin() as session:
        installation = session.scalar(select(Installation).where(
            Installation.provider == provider, Installation.company_id == str(company_id)).with_for_update())
        if installation is None:
            early_signals.remember(provider, company_id, is_shared)   # the install is on its way
            return False
        # the callback carries no credentials, so it never changes access by itself: it is recorded,
        # and the settings page asks the installer to review access when it disagrees with the hub
        if installation.shared_signal is not bool(is_shared):
            installation.shared_signal = bool(is_shared)
            _audit_sharing_signal(session, installation.id, provider, bool(is_shared))
        return True


def _audit_sharing_signal(session, installation_id: int, provider: str, is_shared: bool) -> None:
    """Anyone can send the callback, so its audit rows are coalesced: while the newest entry of the
    installation is already a sharing signal, that entry is updated instead of a new one added. However
    often it is called, it adds at most one row after each real entry and never pushes one out of view
    (the installation row is locked above, so concurrent callbacks coalesce too)."""
    last = session.scalar(select(AuditEvent).where(AuditEvent.installation_id == installation_id)
                          .order_by(AuditEvent.id.desc()).limit(1))
    if last is not None and last.action == "sharing.signal":
        detail = dict(last.detail or {})
        last.detail = {**detail, "is_shared": is_shared, "changes": int(detail.get("changes", 1)) + 1,
                       "last_at": utcnow().isoformat() + "Z"}
        return
    audit(session, installation_id, provider, "sharing.signal", is_shared=is_shared, changes=1)


# -- visibility -----------------------------------------------------------------------------------
def set_visibility(services: Any, installation_id: int, actor: str, visibility: str, user_ids: list[str],
                   notify: bool, directory: list[dict[str, Any]]) -> list[str]:
    """Change who may use the installation; e-mail newly added users when asked. Returns e-mailed addresses."""
    if visibility not in VISIBILITIES:
        raise ValueError("visibility: must be one of all, only_me, specific")
    known = {str(u["id"]): u for u in directory}
    unknown = [u for u in user_ids if u not in known]
    if visibility == "specific":
        if unknown:
            raise ValueError(f"users: not in the company: {', '.join(unknown)}")
        if not user_ids:
            raise ValueError("users: pick at least one user for 'specific users'")
    mailed: list[str] = []
    with services.db.begin() as session:
        installation = session.get(Installation, installation_id)
        rows = {u.crm_user_id: u for u in session.scalars(select(InstallationUser).where(
            InstallationUser.installation_id == installation_id))}
        before = {uid for uid, u in rows.items() if u.allowed} if installation.visibility == "specific" else set()
        chosen = set(user_ids) if visibility == "specific" else set()
        for uid in set(rows) | chosen:
            row = rows.get(uid)
            if row is None:
                info = known[uid]
                row = InstallationUser(installation_id=installation_id, crm_user_id=uid, name=info.get("name") or "",
                                       email=info.get("email") or "", is_admin=bool(info.get("is_admin")))
                session.add(row)
            row.allowed = uid in chosen
        if notify and visibility in ("specific", "all"):
            newcomers = (chosen - before) if visibility == "specific" else {
                str(u["id"]) for u in directory if u.get("active_flag", True)} - before
            for uid in sorted(newcomers - {installation.installer_user_id}):
                email = (known.get(uid) or {}).get("email")
                if email:
                    queue_mail(services, session, email, f"You can now use Relay Hub at {installation.company_name}",
                               f"Hello,\n\n{installation.installer_name or 'Your admin'} gave you access to Relay Hub "
                               f"for {installation.company_name}.\nSign in with Pipedrive here: "
                               f"{services.base_url}/login/pipedrive\n", installation_id=installation.id)
                    mailed.append(email)
                    rows_now = session.scalar(select(InstallationUser).where(
                        InstallationUser.installation_id == installation_id, InstallationUser.crm_user_id == uid))
                    if rows_now is not None:
                        rows_now.notified_at = utcnow()
        installation.visibility = visibility
        sign_out_outsiders(session, installation)
        installation.visibility_confirmed = True
        installation.updated_at = utcnow()
        audit(session, installation_id, actor, "visibility.changed", visibility=visibility,
              users=sorted(chosen), notified=mailed)
    return mailed


# -- target accounts (Asana, Google) --------------------------------------------------------------
def complete_target_connection(services: Any, app: ProviderApp, token: dict[str, Any], installation_id: int,
                               actor: str, owner: str, role: str | None) -> int:
    """Keep a target account's tokens for the member `owner`. A user may connect accounts of their
    own, and reconnect those; only an admin reconnects an account a colleague connected."""
    missing = _missing_scopes(app, token)
    if missing:
        raise Fatal(f"{app.manifest.title} granted too little: allow {', '.join(missing)} to connect it")
    account = token.get("data") if isinstance(token.get("data"), dict) else {}
    claims = id_token_claims(token)
    account_id = str(account.get("gid") or account.get("id") or claims.get("sub") or claims.get("email") or "")
    email = account.get("email") or claims.get("email") or ""
    name = account.get("name") or claims.get("name") or email
    if not account_id:
        account_id = email or f"{app.provider}-account"
    with services.db.begin() as session:
        existing = _find_connection(session, installation_id, app.provider, "target", account_id)
        if existing is not None and existing.status != "disconnected":
            try:
                check_may_manage_connection(session, session.get(Installation, installation_id), existing, owner, role)
            except Refused as exc:
                raise AccessDenied(f"This {app.manifest.title} account was connected by a colleague: only an admin "
                                   "can reconnect it. Nothing was changed.", exc.contact) from None
        connection = _upsert_connection(session, installation_id, app, role="target", account_id=account_id,
                                        name=name, email=email, token=token, by=actor, owner=owner,
                                        api_base=app.manifest.api_url or "")
        store_tokens(services, session, connection, token)
        audit(session, installation_id, actor, "connection.connected", provider=app.provider, account=email or account_id)
        return connection.id


def disconnect_as(services: Any, installation_id: int, connection_id: int, crm_user_id: str, role: str | None,
                  actor: str) -> None:
    """A member disconnects a connection: LookupError if it is not this installation's, ValueError
    for the installer's own CRM connection (that is the installation), Refused unless it is theirs
    or they are an admin."""
    with services.db.begin() as session:
        connection = session.get(Connection, connection_id)
        if connection is None or connection.installation_id != installation_id:
            raise LookupError("connection_id: no such connection")
        installation = session.get(Installation, installation_id)
        if connection.role == "crm" and connection.account_id == installation.installer_user_id:
            raise ValueError("connection_id: the installer's CRM connection ends only with uninstall")
        check_may_manage_connection(session, installation, connection, crm_user_id, role)
    disconnect(services, connection_id, actor)


def disconnect(services: Any, connection_id: int, actor: str, *, revoke_at_provider: bool = True) -> None:
    """Revoke at the provider (best effort), forget the tokens, keep the row for the record."""
    from .tokens import fresh_tokens
    fresh_tokens(services).pop(connection_id, None)
    with services.db.begin() as session:
        connection = session.get(Connection, connection_id)
        if connection is None or connection.status == "disconnected":
            return
        refresh_token = services.secrets.get(session, refresh_ref(connection_id))
        access_token = services.secrets.get(session, access_ref(connection_id))
        provider, installation_id = connection.provider, connection.installation_id
        revoke_url = connection.revoke_url
    revoked = False
    if revoke_at_provider:
        app = provider_app(services, provider)
        if refresh_token:
            revoked = revoke(app, revoke_url, refresh_token, "refresh_token")
        elif access_token:
            revoked = revoke(app, revoke_url, access_token, "access_token")
    with services.db.begin() as session:
        connection = session.get(Connection, connection_id)
        services.secrets.delete_prefix(session, f"connection:{connection_id}:")
        connection.status = "disconnected"
        connection.status_reason = None
        connection.token_expires_at = None
        connection.updated_at = utcnow()
        audit(session, installation_id, actor, "connection.disconnected", provider=provider,
              connection_id=connection_id, revoked=revoked)


def uninstall(services: Any, installation_id: int, actor: str, *, revoke_at_provider: bool = True) -> None:
    """Remove provider-side state (webhooks...), revoke and delete every token, keep the audit trail."""
    with services.db.begin() as session:
        installation = session.get(Installation, installation_id)
        if installation is None or installation.status != "active":
            return
        installation.status = "uninstalling"  # a provider's own uninstall callback arriving meanwhile is a no-op
        end_sessions(session, installation_id)
        connection_ids = list(session.scalars(select(Connection.id).where(
            Connection.installation_id == installation_id, Connection.status != "disconnected")))
    for hook in _uninstall_hooks:
        try:
            hook(services, installation)
        except Exception as exc:  # cleanup is best effort: the uninstall itself must complete
            log.warning("uninstall clean-up %s failed: %s", getattr(hook, "__name__", hook), exc)
    for connection_id in connection_ids:
        disconnect(services, connection_id, actor, revoke_at_provider=revoke_at_provider)
    with services.db.begin() as session:
        installation = session.get(Installation, installation_id)
        installation.status = "uninstalled"
        installation.uninstalled_at = utcnow()
        installation.endpoint_token = pysecrets.token_urlsafe(24)  # old webhook URLs die with the install
        installation.updated_at = utcnow()
        audit(session, installation_id, actor, "installation.uninstalled")


def provider_uninstalled_user(services: Any, provider: str, company_id: str, user_id: str) -> str:
    """Pipedrive's uninstall callback for one user: the installer's uninstall ends the installation;
    another user's only ends that user's own CRM connection. Their tokens are already revoked."""
    with services.db.begin() as session:
        installation = session.scalar(select(Installation).where(
            Installation.provider == provider, Installation.company_id == str(company_id)))
        if installation is None or installation.status != "active":
            return "unknown"
        installation_id, installer = installation.id, installation.installer_user_id
        connection_id = session.scalar(select(Connection.id).where(
            Connection.installation_id == installation_id, Connection.provider == provider, Connection.role == "crm",
            Connection.account_id == str(user_id)))
        if str(user_id) != installer:  # the user removed the app for themselves: their hub sessions end too
            end_sessions(session, installation_id, users=[str(user_id)])
    if str(user_id) == installer:
        uninstall(services, installation_id, f"{provider}:user {user_id}", revoke_at_provider=False)
        return "installation"
    if connection_id is not None:
        disconnect(services, connection_id, f"{provider}:user {user_id}", revoke_at_provider=False)
    return "user"


def notify_needs_reconnection(services: Any, session, installation: Installation | None, connection: Connection) -> None:
    if installation is None or not installation.installer_email:
        return
    queue_mail(services, session, installation.installer_email,
               f"Relay Hub: reconnect {connection.provider.title()} for {installation.company_name}",
               f"Hello,\n\n{connection.provider.title()} refused Relay Hub's access for the account "
               f"{connection.account_email or connection.account_name or connection.account_id}.\n"
               f"Work that needs it is waiting, not lost. Reconnect it on the settings page:\n"
               f"{services.base_url}/i/{installation.id}/settings\n",
               installation_id=installation.id, dedupe_key=f"reauth:{connection.id}:{utcnow():%Y%m%d%H%M%S%f}")

