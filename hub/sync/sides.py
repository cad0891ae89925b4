"""The sync's two sides, found by role: the installation's CRM (a connector with role
`contact_source`) and an address book account (a connection of a connector with role
`contact_store`). Names and titles shown to people come from the connectors, never from here."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub.connectors import connector, connectors
from hub.connectors.contract import Connector
from hub.connectors.contract.contacts import ContactsContext, ContactSource, ContactStore
from hub.oauth.tokens import ConnectionTokens
from hub.store import Connection, Installation

SOURCE_ROLE, STORE_ROLE = "contact_source", "contact_store"


def _with_role(name: str, role: str) -> Connector | None:
    try:
        found = connector(name)
    except KeyError:
        return None
    return found if found.has(role) and found.contacts is not None else None


def source_connector(provider: str) -> Connector | None:
    """The CRM's connector, if it can be a sync's source."""
    return _with_role(provider, SOURCE_ROLE)


def store_connector(provider: str) -> Connector | None:
    return _with_role(provider, STORE_ROLE)


def stores() -> list[Connector]:
    return [c for c in connectors(role=STORE_ROLE) if c.contacts is not None]


def store_connections(session, installation_id: int) -> list[Connection]:
    """The installation's connected address book accounts, oldest first."""
    names = [c.name for c in stores()]
    return list(session.scalars(select(Connection).where(
        Connection.installation_id == installation_id, Connection.provider.in_(names),
        Connection.role == "target", Connection.status != "disconnected").order_by(Connection.id)))


def crm_connection(session, installation: Installation) -> Connection | None:
    """The installer's CRM connection: the sync reads and writes persons as the installer."""
    return session.scalar(select(Connection).where(
        Connection.installation_id == installation.id, Connection.role == "crm",
        Connection.account_id == installation.installer_user_id, Connection.status != "disconnected"))


def open_store(services: Any, connection: Connection) -> ContactStore:
    found = store_connector(connection.provider)
    if found is None:
        raise LookupError(f"connection {connection.id} is no address book")
    return found.contacts(ContactsContext(connection.api_base, ConnectionTokens(services, connection.id)))


def open_source(services: Any, provider: str, connection: Connection) -> ContactSource:
    found = source_connector(provider)
    if found is None:
        raise LookupError(f"the CRM {provider!r} cannot be a contact sync's source")
    return found.contacts(ContactsContext(connection.api_base, ConnectionTokens(services, connection.id)))


def source_title(provider: str | None) -> str:
    found = source_connector(provider) if provider else None
    return found.title if found is not None else "the CRM"


def store_title(provider: str | None = None) -> str:
    """The store's title; without a provider, the one address book there is (or a generic word)."""
    found = store_connector(provider) if provider else None
    if found is None:
        known = stores()
        found = known[0] if len(known) == 1 else None
    return found.title if found is not None else "the address book"
