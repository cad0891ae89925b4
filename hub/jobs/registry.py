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
    # what the kind's starter (`starter()`) read and marked in the transaction that took the job
    # over; None when the job was claimed on its own, and the handler reads it itself
    prepared: Any = None
    _session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = self.db.Session()
            self._session.begin()
        return self._session


Handler = Callable[[JobContext], Any]
Starter = Callable[[Any, Session, Any], Any]   # (app, session, the ClaimedJob) -> what the handler gets
_handlers: dict[str, Handler] = {}
_starters: dict[str, Starter] = {}


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


def starter(kind: str) -> Callable[[Starter], Starter]:
    """What a job of `kind` reads and marks before its first call, run inside the transaction of the
    job whose completion took it over (`JobQueue.complete_taking`): the rows it reads were written
    there, and its start commits with them instead of in a transaction of its own. The handler
    finds the result as `JobContext.prepared`. A starter only reads and writes through the session
    it is given (no provider calls: that transaction is still open)."""
    def register(fn: Starter) -> Starter:
        _starters[kind] = fn
        return fn
    return register


def get_starter(kind: str) -> Starter | None:
    return _starters.get(kind)


def kinds() -> list[str]:
    return sorted(_handlers)


def load_modules(spec: str) -> None:
    """Import extra handler modules named in settings (`jobs.handler_modules`)."""
    for name in [m.strip() for m in spec.split(",") if m.strip()]:
        importlib.import_module(name)
