"""Installations: the install from a CRM (OAuth consent or an API key), sign-in, who may use it, and
uninstall. Target connections are hub/oauth/connections.py (re-exported here for the pages).

Pages and the API call these functions; none of them knows about Flask. Visibility is decided by
`may_use()` alone, and the web layer asks it for every installation-scoped route."""
from __future__ import annotations

import logging
import secrets as pysecrets
from typing import Any, Callable

from sqlalchemy import select

from .. import connectors
from ..connectors.contract import Connector
from ..connectors.contract.auth import Identity, OAuth2
from ..errors import Fatal
from ..mail import queue_mail
from ..store import AuditEvent, Connection, Installation, InstallationUser, utcnow
from . import early_signals, signin_links
from .connections import (AccessDenied, Credentials, audit, complete_target_connection, connect_target_with_key,
                          disconnect, disconnect_as, identify, upsert_connection)
from .flow import ProviderApp, missing_scopes
from .keys import check_key
from .members import admins_contact, role_of, sign_out_outsiders
from .reconnect import notify_needs_reconnection, title_of
from .web_sessions import end_sessions

__all__ = ["AccessDenied", "VISIBILITIES", "audit", "complete_crm", "complete_crm_authorization",
           "complete_crm_with_key", "complete_target_connection", "connect_target_with_key", "disconnect",
           "disconnect_as", "may_use", "notify_needs_reconnection", "on_install", "on_uninstall",
           "provider_uninstalled_user", "record_sharing_signal", "role_of", "set_visibility", "uninstall"]
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


# -- who may use an installation ----------------------------------------------------------------
def may_use(session, installation: Installation, crm_user_id: str | None) -> bool:
    """The one visibility rule: the installer and admins always; others by the installation's visibility."""
    return role_of(session, installation, crm_user_id) is not None


def grantor(installation: Installation) -> str:
    who = installation.installer_name or f"user {installation.installer_user_id}"
    return f"{who} <{installation.installer_email}>" if installation.installer_email else who


# -- CRM side: install and sign-in ----------------------------------------------------------------
def complete_crm_authorization(services: Any, app: ProviderApp, token: dict[str, Any], purpose: str) -> tuple[int, str]:
    """After the CRM's consent: see `complete_crm`."""
    missing = missing_scopes(app, token)
    if missing:
        raise Fatal(f"{app.title} granted too little: the hub needs the scopes {', '.join(missing)}")
    who, api_base = identify(app, token)
    return complete_crm(services, app.connector, who, Credentials.oauth(app, token), api_base, purpose)


def complete_crm_with_key(services: Any, provider: str, form: Any, purpose: str) -> tuple[int, str]:
    """From the key form (FormError for a value that cannot be used): see `complete_crm`."""
    values, who, api_base = check_key(services, provider, form)
    return complete_crm(services, connectors.connector(provider), who, Credentials.api_key(values), api_base, purpose)


def complete_crm(services: Any, connector: Connector, who: Identity, credentials: Credentials, api_base: str,
                 purpose: str) -> tuple[int, str]:
    """Create or reuse the installation of `who`'s account (install) or find it (sign-in), keep this
    user's credentials, and return (installation id, CRM user id). Whoever installs is its admin.
    Raises AccessDenied."""
    if not who.account_key or not who.user_id:
        raise Fatal(f"{connector.title} did not say which account and user this is")
    provider = connector.name
    with services.db.begin() as session:
        installation = session.scalar(select(Installation).where(
            Installation.provider == provider, Installation.company_id == who.account_key))
        if purpose == "install":
            if installation is None:
                installation = Installation(provider=provider, company_id=who.account_key,
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
            installation.company_name, installation.company_domain = who.account_name, who.account_domain
            installation.api_domain = api_base
            installation.updated_at = utcnow()
            session.flush()
            audit(session, installation.id, f"{who.name} ({who.user_id})" if who.name else who.user_id, action)
            early = early_signals.take(provider, who.account_key)
            if early is not None and installation.shared_signal is not early:
                installation.shared_signal = early
                _audit_sharing_signal(session, installation.id, provider, early)
            for hook in _install_hooks:
                hook(services, session, installation)
        else:
            if installation is None or installation.status != "active":
                raise AccessDenied(f"Relay Hub is not installed for {who.account_name or 'your company'}: "
                                   f"an admin of your {connector.title} account installs it first")
        user = _upsert_user(session, installation.id, who)
        user.last_login_at = utcnow()
        if not may_use(session, installation, who.user_id):
            raise AccessDenied(f"Relay Hub for {installation.company_name} is not shared with you; "
                               f"ask {grantor(installation)} to add you", admins_contact(session, installation))
        connection = upsert_connection(session, installation.id, provider, role="crm", account_id=who.user_id,
                                       who=who, credentials=credentials, by=who.user_id, owner=who.user_id,
                                       api_base=api_base)
        credentials.store(services, session, connection)
        return installation.id, who.user_id


def _upsert_user(session, installation_id: int, who: Identity) -> InstallationUser:
    user = session.scalar(select(InstallationUser).where(InstallationUser.installation_id == installation_id,
                                                         InstallationUser.crm_user_id == who.user_id))
    if user is None:
        user = InstallationUser(installation_id=installation_id, crm_user_id=who.user_id, allowed=False)
        session.add(user)
    user.name, user.email, user.is_admin = who.name, who.email, who.is_admin
    return user


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
        # under "all" everyone in the directory is a member: keep their names and addresses, so a
        # CRM without OAuth can mail them sign-in links (hub/oauth/signin_links.py)
        listed = {str(u["id"]) for u in directory if u.get("active_flag", True)} if visibility == "all" else set()
        for uid in set(rows) | chosen | listed:
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
                               f"for {installation.company_name}.\n"
                               f"{_how_to_sign_in(services, session, installation, uid, email)}\n",
                               installation_id=installation.id)
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


def _how_to_sign_in(services: Any, session, installation: Installation, crm_user_id: str, email: str) -> str:
    """The invitation's last line: the CRM's own sign-in, or (a CRM without OAuth, whose people have
    no way to prove who they are to the hub) a one-time link that signs this person in."""
    title = title_of(installation.provider)
    if isinstance(connectors.connector(installation.provider).auth, OAuth2):
        return f"Sign in with {title} here: {services.base_url}/login/{installation.provider}"
    link = signin_links.invitation(services, session, installation, crm_user_id, email)
    days = signin_links.INVITE_TTL.days
    return (f"Sign in with this link (it works once, for {days} days): {link}\n"
            f"Later, ask for a new link at {services.base_url}/login/{installation.provider}")


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
    """A CRM's uninstall callback for one user (Pipedrive sends one): the installer's uninstall ends
    the installation; another user's only ends that user's own CRM connection. Their tokens are already revoked."""
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
