"""A pooled PostgreSQL connection that died while idle is replaced before use, without a ping per
transaction (hub/store/db.py)."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from hub.store import db as db_module
from hub.store.db import Database

pytestmark = pytest.mark.postgres


def _kill_backends_of(url: str, pid: int) -> None:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def _backend(database: Database) -> int:
    with database.begin() as session:
        return session.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_an_idle_connection_the_server_dropped_is_replaced_before_use(pg_url, monkeypatch):
    database = Database(pg_url, pool_size=1)
    try:
        first = _backend(database)
        _kill_backends_of(pg_url, first)
        monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 0.0)     # it has been idle "long enough"
        assert _backend(database) != first                          # a fresh connection, no error
    finally:
        database.dispose()


@pytest.mark.parametrize("idle_ping, pinged", [(3600.0, False), (0.0, True)])
def test_only_an_idle_connection_is_pinged(pg_url, monkeypatch, idle_ping, pinged):
    import psycopg

    database = Database(pg_url, pool_size=1)
    statements: list[str] = []
    real_execute = psycopg.Cursor.execute

    def watched(self, query, *args, **kwargs):
        statements.append(str(query).strip())
        return real_execute(self, query, *args, **kwargs)

    try:
        _backend(database)
        monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", idle_ping)
        monkeypatch.setattr(psycopg.Cursor, "execute", watched)
        for _ in range(3):
            _backend(database)
        assert ("SELECT 1" in statements) is pinged     # a busy pool: no round trip before each transaction
    finally:
        database.dispose()
