"""API clients bound to the hub's stored connections, built by the connector's own `client`.

`client_for()` is the one way the core gets a client: an OAuth connection's client carries its
tokens (refreshed single-flight, hub/oauth/tokens.py), an API-key connection's client an
authenticator that signs each request with the stored key (hub/oauth/keys.py)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from .. import connectors
from ..connectors.contract.auth import ApiKey
from ..errors import Fatal, NeedsReauth
from ..store import Connection, Installation
from .flow import provider_app
from .keys import StoredKey, api_key_auth
from .reconnect import title_of
from .tokens import ConnectionTokens


def _build(services: Any, provider: str, connection_id: int, api_base: str, **options: Any):
    connector = connectors.connector(provider)
    if connector.client is None:
        raise Fatal(f"{connector.title} offers no API client")
    if isinstance(connector.auth, ApiKey):
        auth = api_key_auth(services, connector)
        return connector.client(api_base or auth.api_url or "", None,
                                authenticator=StoredKey(services, auth, connection_id), **options)
    if not api_base:
        api_base = provider_app(services, provider).auth.api_url or ""
    return connector.client(api_base, ConnectionTokens(services, connection_id), **options)


def client_for(services: Any, connection: Connection, **options: Any):
    """The connection's API client (`options` go to the connector's client class)."""
    return _build(services, connection.provider, connection.id, connection.api_base, **options)


def crm_client(services: Any, installation_id: int, **options: Any):
    """The installer's CRM connection as an API client (it holds the admin rights webhooks need)."""
    with services.db.begin() as session:
        installation = session.get(Installation, installation_id)
        connection = session.scalar(select(Connection).where(
            Connection.installation_id == installation_id, Connection.role == "crm",
            Connection.account_id == installation.installer_user_id, Connection.status != "disconnected"))
        if connection is None:
            raise NeedsReauth(f"the installer's {title_of(installation.provider)} connection is missing: "
                              "reinstall or sign in again")
        provider, connection_id, api_base = connection.provider, connection.id, connection.api_base
    return _build(services, provider, connection_id, api_base, **options)


class StaticToken:
    """A TokenSource for the token just received, before a connection exists to hold it."""

    def __init__(self, token: str):
        self.token = token

    def access_token(self) -> str:
        return self.token

    def refresh_after_rejection(self, rejected: str) -> str:
        raise Fatal("the provider refused a token it has just issued")
