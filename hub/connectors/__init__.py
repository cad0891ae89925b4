"""One folder per provider. `registry()` finds them by folder; nothing else lists them."""
from __future__ import annotations

import functools
import importlib
import pkgutil
from pathlib import Path


@functools.lru_cache(maxsize=1)
def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.ispkg and not m.name.startswith("_"))


def load(name: str):
    return importlib.import_module(f"{__name__}.{name}")


def manifest(name: str):
    """The connector's OAuthManifest (hub.connectors.<name>.manifest.MANIFEST)."""
    return importlib.import_module(f"{__name__}.{name}.manifest").MANIFEST
