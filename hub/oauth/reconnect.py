"""A connection the provider no longer accepts (a refused refresh token, a revoked API key): marked
for reconnection, and its installer told once. Work that needs it waits (NeedsReauth), not lost."""
from __future__ import annotations

import logging
from typing import Any

from .. import connectors
from ..mail import queue_mail
from ..store import AuditEvent, Connection, Installation, utcnow

log = logging.getLogger("hub.oauth")


def title_of(provider: str) -> str:
    try:
        return connectors.connector(provider).title
    except KeyError:  # a connector removed since: its rows still read sensibly
        return provider.title()


def mark_needs_reconnection(services: Any, session, connection: Connection, reason: str) -> None:
    """Inside the caller's transaction."""
    connection.status = "needs_reconnection"
    connection.status_reason = reason
    connection.updated_at = utcnow()
    session.add(AuditEvent(installation_id=connection.installation_id, actor="hub",
                           action="connection.needs_reconnection",
                           detail={"connection_id": connection.id, "provider": connection.provider}))
    log.warning("connection %s (%s) needs reconnection", connection.id, connection.provider)
    if connection.reauth_notified_at is None:
        installation = session.get(Installation, connection.installation_id)
        notify_needs_reconnection(services, session, installation, connection)
        connection.reauth_notified_at = utcnow()


def notify_needs_reconnection(services: Any, session, installation: Installation | None,
                              connection: Connection) -> None:
    if installation is None or not installation.installer_email:
        return
    title = title_of(connection.provider)
    queue_mail(services, session, installation.installer_email,
               f"Relay Hub: reconnect {title} for {installation.company_name}",
               f"Hello,\n\n{title} refused Relay Hub's access for the account "
               f"{connection.account_email or connection.account_name or connection.account_id}.\n"
               f"Work that needs it is waiting, not lost. Reconnect it on the settings page:\n"
               f"{services.base_url}/i/{installation.id}/settings\n",
               installation_id=installation.id, dedupe_key=f"reauth:{connection.id}:{utcnow():%Y%m%d%H%M%S%f}")
