"""Which connectors receive webhooks: those whose folder has a `webhooks` module with
`verify(headers, user, password)`, `event_key(payload)` and `normalize(payload)`."""
from __future__ import annotations

import importlib
from types import ModuleType

from .. import connectors


def provider_webhooks(provider: str) -> ModuleType | None:
    if provider not in connectors.available():
        return None
    try:
        module = importlib.import_module(f"hub.connectors.{provider}.webhooks")
    except ModuleNotFoundError:
        return None
    needed = ("verify", "event_key", "normalize")
    return module if all(hasattr(module, name) for name in needed) else None
