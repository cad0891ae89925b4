"""The accounts a rule uses: the installer's CRM connection (its events, its records) and, for each
connector step, the connection the step names. API clients are made through the connector's
contract (`CONNECTOR.client`), so nothing here knows a provider."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from .. import connectors
from ..errors import Fatal
from ..oauth.clients import client_for
from ..store import Connection, Installation


class NoConnection(Fatal):
    """The connection a rule needs is missing or was disconnected: only the admin can fix it."""


def title(name: str) -> str:
    try:
        return connectors.connector(name).title
    except KeyError:
        return name


def crm_connection(session, installation_id: int) -> Connection:
    installation = session.get(Installation, installation_id)
    connection = None
    if installation is not None and installation.status == "active":
        connection = session.scalar(select(Connection).where(
            Connection.installation_id == installation_id, Connection.role == "crm",
            Connection.account_id == installation.installer_user_id, Connection.status != "disconnected"))
    return pick_crm(installation, [connection] if connection is not None else [])


def pick_crm(installation: Any, candidates: list[Connection]) -> Connection:
    """The installer's CRM connection among `candidates` (the installation's connections)."""
    if installation is None or installation.status != "active":
        raise NoConnection("the installation was uninstalled")
    connection = next((c for c in candidates if c.role == "crm" and c.account_id == installation.installer_user_id
                       and c.status != "disconnected"), None)
    if connection is None:
        raise NoConnection(f"the installer's {title(installation.provider)} connection is missing: sign in again "
                           "or reinstall")
    return connection


def step_connection(session, installation_id: int, connection_id: int | None, connector: str) -> Connection:
    """The connection a connector step names, if it belongs to the installation and that connector."""
    return pick_step(installation_id, session.get(Connection, connection_id) if connection_id else None, connector)


def pick_step(installation_id: int, connection: Connection | None, connector: str) -> Connection:
    """`connection` (the one a step names), if it belongs to the installation and that connector."""
    if connection is None or connection.installation_id != installation_id or connection.provider != connector:
        raise NoConnection(f"the step's {title(connector)} account is not connected: pick a connected account")
    if connection.status == "disconnected":
        raise NoConnection(f"the {title(connector)} account {connection.account_email or connection.account_name} "
                           "was disconnected: connect it again and pick it in the rule")
    return connection


def usable(session, installation_id: int, connector: str) -> list[Connection]:
    """The installation's connections to `connector` a step may pick (CRM and target ones alike:
    a CRM's own tasks are made with the CRM connection)."""
    return list(session.scalars(select(Connection).where(
        Connection.installation_id == installation_id, Connection.provider == connector,
        Connection.status != "disconnected").order_by(Connection.id)))


def client(services: Any, connection: Connection) -> Any:
    """The connector's API client for a stored connection (hub.oauth: tokens refreshed
    single-flight, or an API key signing each request)."""
    return client_for(services, connection)


def settings_for(services: Any, connector: str) -> dict[str, Any]:
    """A connector's config section, plus the rule settings its steps and sources honour."""
    prefix = f"{connector}."
    out = {k[len(prefix):]: v for k, v in services.settings.as_dict().items() if k.startswith(prefix)}
    out["attachment_max_bytes"] = int(services.settings["rules.attachment_max_bytes"])
    return out
