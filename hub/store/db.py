"""Engines and sessions for the two supported databases.

SQLite (embedded): WAL so readers never block the writer, a generous busy timeout, and every
transaction opened with BEGIN IMMEDIATE so two writers queue up instead of failing when a read
transaction tries to upgrade. PostgreSQL (scale-out): a pre-pinged pool; rows are claimed with
SKIP LOCKED by the job queue, so nothing else needs special isolation."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        pool = {} if url in ("sqlite://", "sqlite:///:memory:") else {"pool_size": pool_size, "max_overflow": pool_size}
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False}, **pool)
        _sqlite_pragmas(engine, url)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)


def _sqlite_pragmas(engine: Engine, url: str) -> None:
    memory = url in ("sqlite://", "sqlite:///:memory:")

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):  # pragma: no cover - exercised by every sqlite test
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_connection.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """One engine and its session factory; `begin()` is the unit of work everywhere in the hub."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False):
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size, echo=echo)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """A session in a transaction: committed when the block ends, rolled back on an exception."""
        with self.Session() as session, session.begin():
            yield session

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
