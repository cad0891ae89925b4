"""Job kinds and their handlers. Features register at import: `@handler("webhook.process")`."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy.orm import Session

from ..store import Database


@dataclass
class JobContext:
    """What a handler gets. `session` is the transaction in which the worker marks the job done:
    database effects written through it happen exactly once. Make provider calls before opening
    it (or through short `db.begin()` blocks of your own) so no transaction waits on the network."""

    job_id: int
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    db: Database
    app: Any = None
    _session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = self.db.Session()
            self._session.begin()
        return self._session


Handler = Callable[[JobContext], Any]
_handlers: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        existing = _handlers.get(kind)
        if existing is not None and existing is not fn and existing.__qualname__ != fn.__qualname__:
            raise ValueError(f"job kind {kind!r} already has a handler: {existing.__module__}.{existing.__qualname__}")
        _handlers[kind] = fn
        return fn
    return register


def get_handler(kind: str) -> Handler | None:
    return _handlers.get(kind)


def kinds() -> list[str]:
    return sorted(_handlers)


def load_modules(spec: str) -> None:
    """Import extra handler modules named in settings (`jobs.handler_modules`)."""
    for name in [m.strip() for m in spec.split(",") if m.strip()]:
        importlib.import_module(name)
