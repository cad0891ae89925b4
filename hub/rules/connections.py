"""API clients for a rule (the installer's CRM connection, the chosen Asana connection) and the
cached metadata behind the editor's dropdowns.

Dropdown data changes rarely but costs API calls (and Pipedrive tokens) on every page view, so it
is kept per connection for `rules.catalog_seconds`; the editor's "Refresh lists" button and the
API's `refresh=1` reload it. The same cache gives workers stage, pipeline and owner names. (The
connectors' own caches are per client object; the hub makes a client per request, so the cache
that lasts is this one, keyed by connection.)"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from sqlalchemy import select

from ..connectors.asana.client import MAX_ATTACHMENT_BYTES, AsanaClient
from ..connectors.asana.resources import WorkspaceCatalog, workspace_catalog
from ..connectors.pipedrive.client import PipedriveClient
from ..connectors.pipedrive import resources as pipedrive_resources
from ..errors import Fatal
from ..oauth.tokens import ConnectionTokens
from ..store import Connection, Installation


class NoConnection(Fatal):
    """The connection a rule needs is missing or was disconnected: only the admin can fix it."""


def crm_connection(session, installation_id: int) -> Connection:
    installation = session.get(Installation, installation_id)
    if installation is None or installation.status != "active":
        raise NoConnection("the installation was uninstalled")
    connection = session.scalar(select(Connection).where(
        Connection.installation_id == installation_id, Connection.role == "crm",
        Connection.account_id == installation.installer_user_id, Connection.status != "disconnected"))
    if connection is None:
        raise NoConnection("the installer's Pipedrive connection is missing: sign in again or reinstall")
    return connection


def target_connection(session, installation_id: int, connection_id: int | None, provider: str = "asana") -> Connection:
    connection = session.get(Connection, connection_id) if connection_id else None
    if connection is None or connection.installation_id != installation_id or connection.role != "target" \
            or connection.provider != provider:
        raise NoConnection(f"the rule's {provider.title()} account is not connected: pick a connected account")
    if connection.status == "disconnected":
        raise NoConnection(f"the {provider.title()} account {connection.account_email or connection.account_name} "
                           "was disconnected: connect it again and pick it in the rule")
    return connection


def pipedrive_client(services: Any, connection: Connection) -> PipedriveClient:
    return PipedriveClient(connection.api_base, ConnectionTokens(services, connection.id))


def asana_client(services: Any, connection: Connection) -> AsanaClient:
    limit = min(int(services.settings["rules.attachment_max_bytes"]), MAX_ATTACHMENT_BYTES)
    return AsanaClient(connection.api_base, ConnectionTokens(services, connection.id), max_attachment_bytes=limit)


class TTLCache:
    """Values per key for a while; loads happen outside the lock so one slow provider blocks no one."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._entries: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, ttl: float, load: Callable[[], Any], refresh: bool = False) -> Any:
        now = self.clock()
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and not refresh and hit[0] > now:
            return hit[1]
        value = load()
        with self._lock:
            self._entries[key] = (now + ttl, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


CACHE = TTLCache()


def _ttl(services: Any) -> float:
    return float(services.settings["rules.catalog_seconds"])


def pipelines(services: Any, connection: Connection, refresh: bool = False) -> list[dict]:
    """Pipelines in board order, each with its stages (ids as strings, as rules store them)."""
    client = pipedrive_client(services, connection)

    def load() -> list[dict]:
        return [{"id": str(p["id"]), "name": p["name"],
                 "stages": [{"id": str(s["id"]), "name": s["name"]} for s in p["stages"]]}
                for p in pipedrive_resources.pipelines_with_stages(client, refresh=True)]
    return CACHE.get(("pipelines", connection.id), _ttl(services), load, refresh)


def deal_fields(services: Any, connection: Connection, refresh: bool = False) -> list[dict]:
    client = pipedrive_client(services, connection)
    return CACHE.get(("deal_fields", connection.id), _ttl(services),
                     lambda: pipedrive_resources.deal_field_catalog(client, refresh=True), refresh)


def person_fields(services: Any, connection: Connection, refresh: bool = False) -> list[dict]:
    client = pipedrive_client(services, connection)
    return CACHE.get(("person_fields", connection.id), _ttl(services),
                     lambda: pipedrive_resources.person_field_catalog(client, refresh=True), refresh)


def crm_users(services: Any, connection: Connection, refresh: bool = False) -> dict[str, str]:
    client = pipedrive_client(services, connection)
    return CACHE.get(("users", connection.id), _ttl(services),
                     lambda: {str(u["id"]): u.get("name", "") for u in client.users()}, refresh)


def asana_workspaces(services: Any, connection: Connection, refresh: bool = False) -> list[WorkspaceCatalog]:
    client = asana_client(services, connection)
    return CACHE.get(("asana", connection.id), _ttl(services), lambda: workspace_catalog(client), refresh)


def stage_names(services: Any, connection: Connection, pipeline_id: Any, stage_id: Any) -> tuple[str | None, str | None]:
    for p in pipelines(services, connection):
        if p["id"] == str(pipeline_id):
            stage = next((s["name"] for s in p["stages"] if s["id"] == str(stage_id)), None)
            return p["name"], stage
    return None, None
