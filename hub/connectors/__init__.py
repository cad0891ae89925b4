"""One folder per provider, each exporting one `CONNECTOR` (hub/connectors/contract). The registry
finds them by folder; nothing else lists them. `register()` adds a connector that lives elsewhere
(the example connector of the contract test lives in its test folder)."""
from __future__ import annotations

import functools
import importlib
import pkgutil
import threading
from pathlib import Path

from .contract import Connector

_extra: dict[str, Connector] = {}
_lock = threading.Lock()
_generation = 0          # bumped when the set of connectors changes (caches built from it start over)


@functools.lru_cache(maxsize=1)
def _folders() -> tuple[str, ...]:
    here = Path(__file__).parent
    return tuple(sorted(m.name for m in pkgutil.iter_modules([str(here)])
                        if m.ispkg and not m.name.startswith("_") and m.name != "contract"))


def available() -> list[str]:
    """Every connector's name: the folders under hub/connectors/ and any registered ones."""
    return sorted(set(_folders()) | set(_extra))


def connector(name: str) -> Connector:
    """The named connector's CONNECTOR; KeyError when there is none."""
    if name in _extra:
        return _extra[name]
    if name not in _folders():
        raise KeyError(f"no connector {name!r}")
    return importlib.import_module(f"{__name__}.{name}").CONNECTOR


def connectors(role: str | None = None) -> list[Connector]:
    """All connectors (with `role`: those that declare it), by name."""
    found = [connector(n) for n in available()]
    return [c for c in found if role is None or role in c.roles]


def register(c: Connector) -> None:
    """Add a connector defined outside hub/connectors/ (tests, plug-ins)."""
    global _generation
    with _lock:
        _extra[c.name] = c
        _generation += 1


def unregister(name: str) -> None:
    global _generation
    with _lock:
        _extra.pop(name, None)
        _generation += 1


def generation() -> int:
    """Changes whenever a connector is registered or unregistered."""
    return _generation
