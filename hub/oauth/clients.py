"""API clients bound to the hub's stored connections."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..errors import NeedsReauth
from ..store import Connection, Installation
from .tokens import ConnectionTokens


def crm_client(services: Any, installation_id: int):
    """The installer's CRM connection as an API client (it holds the admin rights webhooks need)."""
    from ..connectors.pipedrive.client import PipedriveClient

    with services.db.begin() as session:
        installation = session.get(Installation, installation_id)
        connection = session.scalar(select(Connection).where(
            Connection.installation_id == installation_id, Connection.role == "crm",
            Connection.account_id == installation.installer_user_id, Connection.status != "disconnected"))
        if connection is None:
            raise NeedsReauth("the installer's Pipedrive connection is missing: reinstall or sign in again")
        return PipedriveClient(connection.api_base, ConnectionTokens(services, connection.id))
