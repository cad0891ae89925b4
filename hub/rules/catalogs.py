"""The one cache of dropdown data (a connector's catalogs: pipelines, stages, users, projects ...).

Dropdown data changes rarely but costs API calls on every page view, so each catalog's value is
kept per connection for `rules.catalog_seconds`; the editor's "Refresh lists" button and the API's
`refresh=1` reload it. Workers read names (stages, owners) through the same cache. (A connector's
own caches live in its client object; the hub makes a client per request, so the cache that lasts
is this one, keyed by connection and catalog name.)"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from .. import connectors
from ..store import Connection
from . import connections


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


def ttl(services: Any) -> float:
    return float(services.settings["rules.catalog_seconds"])


def cache_key(services: Any, connection: Connection, name: str) -> tuple:
    """What one cached value belongs to. The database and the connection's creation name the
    account: ids alone repeat across hubs served by one process, and after a database is rebuilt."""
    return (services.db.engine.url.render_as_string(hide_password=True), connection.id, connection.created_at, name)


class Loader:
    """`loader(name)` -> the named catalog of one connection, through the cache. With `refresh`,
    each catalog is reloaded the first time it is asked for, then served from the cache."""

    def __init__(self, services: Any, connection: Connection, refresh: bool = False):
        self.services = services
        self.connection = connection
        self.connector = connectors.connector(connection.provider)
        self.refresh = refresh
        self._reloaded: set[str] = set()
        self._client: Any = None

    def names(self) -> list[str]:
        return list(self.connector.catalogs)

    def client(self) -> Any:
        if self._client is None:
            self._client = connections.client(self.services, self.connection)
        return self._client

    def __call__(self, name: str) -> Any:
        catalog = self.connector.catalogs.get(name)
        if catalog is None:
            raise KeyError(f"{self.connector.name} has no catalog {name!r}")
        refresh = self.refresh and name not in self._reloaded
        self._reloaded.add(name)
        return CACHE.get(cache_key(self.services, self.connection, name), ttl(self.services),
                         lambda: catalog.load(self.client()), refresh)

    # a mapping view, for validators written as `catalogs["projects"]`
    def __getitem__(self, name: str) -> Any:
        return self(name)

    def get(self, name: str, default: Any = None) -> Any:
        return self(name) if name in self.connector.catalogs else default
