"""Tokens of a connection: stored encrypted, refreshed ahead of expiry, one refresh at a time.

Single flight across threads and processes: the refresh runs while holding the connection's row
lock (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite transactions begin IMMEDIATE, which holds the
database's write lock). Whoever gets the lock second finds the token already fresh and uses it,
so a provider that rotates refresh tokens (strict mode, Bitrix24) never sees an old one twice.
Whatever refresh token a response carries is stored; a response without one keeps the old. The
token-response fields a connector keeps (`OAuth2.token_fields`) are stored beside the tokens, and
a refresh that names the account's API root anew moves the connection there."""
from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from ..errors import NeedsReauth
from ..store import Connection
from .flow import InvalidGrant, ProviderApp, kept_fields, provider_app, refresh
from .reconnect import mark_needs_reconnection

log = logging.getLogger("hub.oauth")
REFRESH_MARGIN = 60.0  # refresh this long before expiry (at most a quarter of a short token's life)

_local_locks: dict[int, threading.Lock] = {}
_local_guard = threading.Lock()


def fresh_tokens(services: Any) -> dict[int, tuple[str, Any]]:
    """Per hub process: connection id -> (access token, refresh due). Spares every API call a read
    and a decryption; a token revoked meanwhile gets a 401, and the 401 path asks the database."""
    return services.extras.setdefault("fresh_tokens", {})


def access_ref(connection_id: int) -> str:
    return f"connection:{connection_id}:access_token"


def refresh_ref(connection_id: int) -> str:
    return f"connection:{connection_id}:refresh_token"


def fields_ref(connection_id: int) -> str:
    return f"connection:{connection_id}:token_fields"


def token_fields(services: Any, session, connection_id: int) -> dict[str, str]:
    """The token-response fields kept for a connection (`OAuth2.token_fields`)."""
    raw = services.secrets.get(session, fields_ref(connection_id))
    return json.loads(raw) if raw else {}


def _local_lock(connection_id: int) -> threading.Lock:
    with _local_guard:
        return _local_locks.setdefault(connection_id, threading.Lock())


def store_tokens(services: Any, session, connection: Connection, token: dict[str, Any],
                 fields: dict[str, str] | None = None) -> None:
    """Keep a token response on the connection (inside the caller's transaction); `fields` are the
    token-response fields its connector keeps."""
    fresh_tokens(services).pop(connection.id, None)
    services.secrets.put(session, access_ref(connection.id), token["access_token"])
    if token.get("refresh_token"):
        services.secrets.put(session, refresh_ref(connection.id), token["refresh_token"])
    if fields:
        kept = {**token_fields(services, session, connection.id), **fields}
        services.secrets.put(session, fields_ref(connection.id), json.dumps(kept, sort_keys=True))
    expires_in = float(token["expires_in"]) if token.get("expires_in") else None
    now = services.queue.clock.now()
    connection.token_expires_at = now + timedelta(seconds=expires_in) if expires_in else None
    connection.refresh_due_at = (now + timedelta(seconds=max(expires_in - REFRESH_MARGIN, expires_in * 0.75))
                                 if expires_in else None)
    connection.updated_at = now


class ConnectionTokens:
    """The TokenSource of one connection (see hub.connectors.base.TokenSource)."""

    def __init__(self, services: Any, connection_id: int):
        self.services = services
        self.connection_id = connection_id

    def _fresh(self, connection: Connection) -> bool:
        due = connection.refresh_due_at
        return due is None or due > self.services.queue.clock.now()

    def access_token(self) -> str:
        cached = fresh_tokens(self.services).get(self.connection_id)
        if cached is not None and cached[1] is not None and cached[1] > self.services.queue.clock.now():
            return cached[0]
        with self.services.db.begin() as session:
            connection = session.get(Connection, self.connection_id)
            self._check_usable(connection)
            if self._fresh(connection):
                token = self.services.secrets.get(session, access_ref(self.connection_id))
                if token:
                    fresh_tokens(self.services)[self.connection_id] = (token, connection.refresh_due_at)
                    return token
        return self._refresh(rejected=None)

    def refresh_after_rejection(self, rejected: str | None) -> str:
        fresh_tokens(self.services).pop(self.connection_id, None)
        return self._refresh(rejected=rejected)

    def _check_usable(self, connection: Connection | None) -> None:
        if connection is None or connection.status == "disconnected":
            raise NeedsReauth(f"connection {self.connection_id} is disconnected", self.connection_id)
        if connection.status == "needs_reconnection":
            raise NeedsReauth(f"{connection.provider} connection needs reconnection: {connection.status_reason}",
                              self.connection_id)

    def _refresh(self, rejected: str | None) -> str:
        services = self.services
        refused: str | None = None
        with _local_lock(self.connection_id):  # threads of this process queue here, not on the database
            with services.db.begin() as session:
                query = select(Connection).where(Connection.id == self.connection_id)
                if services.db.is_postgres:
                    query = query.with_for_update()
                connection = session.scalars(query).one_or_none()
                self._check_usable(connection)
                current = services.secrets.get(session, access_ref(self.connection_id))
                if current and (current != rejected if rejected is not None else self._fresh(connection)):
                    return current  # somebody refreshed while we waited for the lock
                refresh_token = services.secrets.get(session, refresh_ref(self.connection_id))
                app: ProviderApp = provider_app(services, connection.provider)
                try:
                    if not refresh_token:
                        raise InvalidGrant("no refresh token was granted")
                    token = refresh(app, connection.token_url or app.auth.token_url, refresh_token)
                except InvalidGrant as exc:
                    refused = str(exc)
                    mark_needs_reconnection(
                        services, session, connection,
                        f"the provider refused the refresh token ({refused}); reconnect the account")
                else:
                    fields = kept_fields(app, token)
                    store_tokens(services, session, connection, token, fields)
                    if app.auth.api_base_field and fields.get(app.auth.api_base_field):
                        connection.api_base = fields[app.auth.api_base_field].rstrip("/")
                    connection.refresh_count += 1
                    connection.last_refreshed_at = services.queue.clock.now()
                    fresh_tokens(services)[self.connection_id] = (token["access_token"], connection.refresh_due_at)
                    return token["access_token"]
        raise NeedsReauth(f"{connection.provider} connection needs reconnection: the provider refused the refresh "
                          f"({refused})", self.connection_id)
