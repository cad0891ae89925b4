"""Connections: what an account granted (OAuth tokens or an API key), whose it is, and its end.

One path for both kinds of auth: the credentials are in hand, the connector's identity hook says
whose account it is, and the connection row (one per installation, provider, role and account)
keeps who connected it and who owns it. Installing the hub (the CRM side) is hub/oauth/installs.py."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from .. import connectors
from ..connectors.contract.auth import ApiKey, Identity
from ..errors import Fatal
from ..store import AuditEvent, Connection, Installation, utcnow
from .clients import StaticToken
from .flow import ProviderApp, kept_fields, missing_scopes, provider_app, revoke
from .keys import KeyForm, check_key, fresh_keys, store_key
from .members import Refused, check_may_manage_connection
from .tokens import access_ref, fresh_tokens, refresh_ref, store_tokens


class AccessDenied(Exception):
    """Refused at sign-in or connect; `contact` names the admins (only ever shown to people the CRM
    vouched for as members of that company)."""

    def __init__(self, message: str, contact: str | None = None):
        super().__init__(message)
        self.contact = contact


def audit(session, installation_id: int | None, actor: str, action: str, **detail: Any) -> None:
    session.add(AuditEvent(installation_id=installation_id, actor=actor, action=action, detail=detail))


@dataclass
class Credentials:
    """What a new connection keeps: an OAuth token response (with the fields its connector keeps)
    or an API key and secret."""

    token: dict[str, Any] | None = None
    fields: dict[str, str] = field(default_factory=dict)
    key: str = ""
    secret: str = ""
    token_url: str = ""
    revoke_url: str = ""

    @classmethod
    def oauth(cls, app: ProviderApp, token: dict[str, Any]) -> "Credentials":
        return cls(token=token, fields=kept_fields(app, token), token_url=app.auth.token_url,
                   revoke_url=app.auth.revoke_url or "")

    @classmethod
    def api_key(cls, form: KeyForm) -> "Credentials":
        return cls(key=form.key, secret=form.secret)

    @property
    def scopes(self) -> str:
        return str((self.token or {}).get("scope") or "")

    def store(self, services: Any, session, connection: Connection) -> None:
        if self.token is not None:
            store_tokens(services, session, connection, self.token, self.fields)
        else:
            store_key(services, session, connection, self.key, self.secret)
        connection.updated_at = utcnow()


def identify(app: ProviderApp, token: dict[str, Any]) -> tuple[Identity, str]:
    """Whose token this is (the connector's identity hook, through its client) and the account's API root."""
    auth, connector = app.auth, app.connector
    if auth.api_base_field:
        api_base = str(token.get(auth.api_base_field) or "")
        if not api_base:
            raise Fatal(f"{app.title}'s token response has no {auth.api_base_field}")
    else:
        api_base = auth.api_url or ""
    hook = connector.identity or auth.identity
    if hook is None:
        raise Fatal(f"{app.title}: its connector has no identity hook, so the hub cannot tell whose account it is")
    client = connector.client(api_base, StaticToken(token["access_token"])) if connector.client else None
    who: Identity = hook(client, token)
    return who, (who.api_base or api_base).rstrip("/")


def account_id_of(provider: str, who: Identity) -> str:
    """The connection's account: the person (a target account is theirs), else the account itself."""
    return who.user_id or who.account_key or who.email or f"{provider}-account"


def find_connection(session, installation_id: int, provider: str, role: str, account_id: str) -> Connection | None:
    return session.scalar(select(Connection).where(
        Connection.installation_id == installation_id, Connection.provider == provider,
        Connection.role == role, Connection.account_id == account_id))


def upsert_connection(session, installation_id: int, provider: str, *, role: str, account_id: str, who: Identity,
                      credentials: Credentials, by: str, owner: str, api_base: str) -> Connection:
    """New credentials for an account; a live connection keeps its owner (an admin's reconnect of a
    colleague's account does not make it the admin's)."""
    connection = find_connection(session, installation_id, provider, role, account_id)
    if connection is None:
        connection = Connection(installation_id=installation_id, provider=provider, role=role, account_id=account_id)
        session.add(connection)
    if connection.status == "disconnected" or not connection.owner_user_id:
        connection.owner_user_id, connection.connected_by = owner, by
    connection.account_name, connection.account_email = who.name or who.email, who.email
    connection.status, connection.status_reason, connection.reauth_notified_at = "connected", None, None
    connection.scopes = credentials.scopes
    connection.api_base = api_base
    connection.token_url = credentials.token_url
    connection.revoke_url = credentials.revoke_url
    session.flush()
    return connection


# -- target accounts -------------------------------------------------------------------------------
def connect_target(services: Any, provider: str, who: Identity, credentials: Credentials, api_base: str,
                   installation_id: int, actor: str, owner: str, role: str | None) -> int:
    """Keep a target account's credentials for the member `owner`. A user may connect accounts of
    their own, and reconnect those; only an admin reconnects an account a colleague connected."""
    title = connectors.connector(provider).title
    account_id = account_id_of(provider, who)
    with services.db.begin() as session:
        existing = find_connection(session, installation_id, provider, "target", account_id)
        if existing is not None and existing.status != "disconnected":
            try:
                check_may_manage_connection(session, session.get(Installation, installation_id), existing, owner, role)
            except Refused as exc:
                raise AccessDenied(f"This {title} account was connected by a colleague: only an admin "
                                   "can reconnect it. Nothing was changed.", exc.contact) from None
        connection = upsert_connection(session, installation_id, provider, role="target", account_id=account_id,
                                       who=who, credentials=credentials, by=actor, owner=owner, api_base=api_base)
        credentials.store(services, session, connection)
        audit(session, installation_id, actor, "connection.connected", provider=provider,
              account=who.email or account_id)
        return connection.id


def complete_target_connection(services: Any, app: ProviderApp, token: dict[str, Any], installation_id: int,
                               actor: str, owner: str, role: str | None) -> int:
    """After a target's OAuth consent."""
    missing = missing_scopes(app, token)
    if missing:
        raise Fatal(f"{app.title} granted too little: allow {', '.join(missing)} to connect it")
    who, api_base = identify(app, token)
    return connect_target(services, app.provider, who, Credentials.oauth(app, token), api_base, installation_id,
                          actor, owner, role)


def connect_target_with_key(services: Any, provider: str, form: Any, installation_id: int, actor: str, owner: str,
                            role: str | None) -> int:
    """From the key form: FormError for a value that cannot be used, the provider's refusal as it came."""
    values, who, api_base = check_key(services, provider, form)
    return connect_target(services, provider, who, Credentials.api_key(values), api_base, installation_id,
                          actor, owner, role)


# -- the end of a connection ------------------------------------------------------------------------
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


def _revocable(provider: str) -> bool:
    """OAuth grants are revoked at the provider; a pasted key is the person's to withdraw there."""
    try:
        return not isinstance(connectors.connector(provider).auth, ApiKey)
    except KeyError:
        return False


def disconnect(services: Any, connection_id: int, actor: str, *, revoke_at_provider: bool = True) -> None:
    """Revoke at the provider (best effort), forget the credentials, keep the row for the record."""
    fresh_tokens(services).pop(connection_id, None)
    fresh_keys(services).pop(connection_id, None)
    with services.db.begin() as session:
        connection = session.get(Connection, connection_id)
        if connection is None or connection.status == "disconnected":
            return
        refresh_token = services.secrets.get(session, refresh_ref(connection_id))
        access_token = services.secrets.get(session, access_ref(connection_id))
        provider, installation_id = connection.provider, connection.installation_id
        revoke_url = connection.revoke_url
    revoked = False
    if revoke_at_provider and _revocable(provider):
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
