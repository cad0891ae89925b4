"""Which connectors take webhooks (those whose CONNECTOR has a `webhooks` part), and the one place
webhook code gets an API client for an installation's CRM connection."""
from __future__ import annotations

import threading
from typing import Any, Callable

from .. import connectors
from ..connectors.contract.webhooks import Webhooks


def connector_webhooks(name: str) -> Webhooks | None:
    """The named connector's Webhooks part; None for an unknown name or a connector without one."""
    if name not in connectors.available():
        return None
    try:
        part = connectors.connector(name).webhooks
    except (KeyError, ImportError):
        return None
    return part if isinstance(part, Webhooks) else None


def crm_api(services: Any, installation_id: int) -> Any:
    """The installer's CRM connection as an API client (it holds the admin rights webhooks need)."""
    from ..oauth.clients import crm_client
    return crm_client(services, installation_id)


class LazyClient:
    """An API client made on first use: `normalize` gets one, and most deliveries carry the whole
    object and never touch it (no connection read, no token refresh)."""

    def __init__(self, make: Callable[[], Any]):
        self._make = make
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        with self._lock:
            if self._client is None:
                self._client = self._make()
        return getattr(self._client, name)

    @property
    def made(self) -> bool:
        return self._client is not None
