"""Engines and sessions for the two supported databases.

SQLite (embedded): WAL so readers never block the writer, synchronous=FULL so a commit is on disk
when it returns, a generous busy timeout, and every transaction opened with BEGIN IMMEDIATE so two
writers queue up instead of failing when a read transaction tries to upgrade. PostgreSQL
(scale-out): a pool whose idle connections are checked before use; rows are claimed with SKIP
LOCKED by the job queue, so nothing else needs special isolation."""
from __future__ import annotations

import functools
import os
import stat
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import Table, bindparam, create_engine, event, make_url, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from . import fast

_DEFERRED = "hub.deferred_inserts"
_MARKS = "hub.deferred_marks"    # savepoint -> rows deferred before it, by table
_MEMOS = "hub.memos"             # the keys of this transaction's `transaction_memo`s
_WRITES = "hub.deferred_writes"  # (statement, params) kept for the transaction's last statement


def defer_insert(session: Session, table: Table, row: dict) -> None:
    """Add `row` to `table` when the session's transaction commits, in one statement with the other
    rows deferred for that table (the run log gets several lines per event: one round trip, not one
    each). Rolled back with the transaction; not visible to queries before the commit, so only for
    rows nothing reads back in the same transaction. Every row of a table must name the same columns."""
    session.info.setdefault(_DEFERRED, {}).setdefault(table, []).append(row)


def defer_write(session: Session, statement, params: dict) -> None:
    """A write nothing reads back, and the transaction's last to its rows: on PostgreSQL it goes
    with the transaction's last statement (`pending_writes`: a worker's job completion) or, failing
    that, with the deferred inserts at the commit, as a CTE of one statement (no round trip of its
    own). Elsewhere, and inside a savepoint, it runs now (SQLite has no writes inside WITH)."""
    if session.get_bind().dialect.name != "postgresql" or session.in_nested_transaction():
        session.flush()   # as a session.execute would: pending ORM rows go first
        fast.execute(session.connection(), statement, params)
        return
    session.info.setdefault(_WRITES, []).append((statement, params))


def pending_writes(session: Session) -> list[tuple]:
    """PostgreSQL: what `defer_write` and `defer_insert` keep so far, taken out of the session as
    (statement, params) pairs, for the caller to send in its own statement (`fast.execute_together`)
    inside this transaction. Empty inside a savepoint (its rows must stay to be rolled back with it)."""
    if session.in_nested_transaction() or session.get_bind().dialect.name != "postgresql":
        return []
    return _take_deferred(session)


def _take_deferred(session: Session) -> list[tuple]:
    """The deferred writes, then the deferred inserts as multi-row INSERTs, taken out of the session."""
    writes = session.info.pop(_WRITES, None) or []
    for table, rows in (session.info.pop(_DEFERRED, None) or {}).items():
        keys = tuple(rows[0])
        for start in range(0, len(rows), _ROWS_AT_ONCE):
            chunk = rows[start:start + _ROWS_AT_ONCE]
            writes.append((_insert_rows(table, keys, len(chunk)),
                           {f"r{n}_{key}": row[key] for n, row in enumerate(chunk) for key in keys}))
    return writes


def transaction_memo(session: Session, key: str) -> dict:
    """A dict kept in `session.info` under `key` for the current transaction only (dropped when
    any transaction of the session ends): what the transaction read or locked, reused by its later
    statements instead of asking again."""
    memo = session.info.get(key)
    if memo is None:
        memo = session.info[key] = {}
        session.info.setdefault(_MEMOS, set()).add(key)
    return memo


@event.listens_for(Session, "after_transaction_end")
def _forget_memos(session: Session, _transaction) -> None:
    """Set once on the Session class: a listener added per transaction cost more than the
    statement a memo saves."""
    keys = session.info.pop(_MEMOS, None)
    if keys:
        for key in keys:
            session.info.pop(key, None)


@event.listens_for(Session, "before_commit")
def _write_deferred(session: Session) -> None:
    if session.in_nested_transaction():
        return          # a savepoint's release: its rows go with the outermost commit
    writes = _take_deferred(session)
    if not writes:
        return
    conn = session.connection()
    if len(writes) > 1 and conn.dialect.name == "postgresql":
        fast.execute_together(conn, writes)      # one statement for them all
    else:
        for statement, params in writes:
            fast.execute(conn, statement, params)


_ROWS_AT_ONCE = 50    # rows in one deferred INSERT; a statement is compiled (and prepared) per count


@functools.lru_cache(maxsize=256)
def _insert_rows(table: Table, keys: tuple[str, ...], count: int):
    """One multi-row INSERT (`VALUES (...), (...)`) for `count` rows naming `keys`, built once per
    shape. Not an executemany: psycopg runs that as a pipeline of one execution per row, which for
    the two to five lines of an event cost twice the client CPU of one statement, and as many
    executions in the server."""
    return table.insert().values([{key: bindparam(f"r{n}_{key}", type_=table.c[key].type) for key in keys}
                                  for n in range(count)])


@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction) -> None:
    if transaction.nested:   # what was deferred before it: kept if it rolls back
        marks = session.info.setdefault(_MARKS, {})
        marks[transaction] = {table: len(rows) for table, rows in session.info.get(_DEFERRED, {}).items()}


@event.listens_for(Session, "after_soft_rollback")
def _drop_deferred(session: Session, previous_transaction) -> None:
    if not previous_transaction.nested:
        session.info.pop(_DEFERRED, None)
        session.info.pop(_WRITES, None)
        session.info.pop(_MARKS, None)
        return
    marks = session.info.get(_MARKS, {}).pop(previous_transaction, None)
    if marks is not None:       # a savepoint rolled back: only the rows deferred inside it go
        pending = session.info.get(_DEFERRED, {})
        for table in list(pending):
            del pending[table][marks.get(table, 0):]


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        pool = {} if url in ("sqlite://", "sqlite:///:memory:") else {"pool_size": pool_size, "max_overflow": pool_size}
        _private_database_file(url)
        engine = create_engine(url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False}, **pool)
        _sqlite_pragmas(engine, url)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    engine = create_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size)
    _ping_when_idle(engine)
    return engine


IDLE_PING_SECONDS = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only when it sat idle a while (the server may have
    restarted or dropped it meanwhile). A busy pool hands out connections used moments ago: a
    ping per transaction (`pool_pre_ping`) would be one more round trip for every one of them.
    A dead connection raises DisconnectionError here, and the pool replaces it before handing
    it out (SQLAlchemy's pessimistic disconnect handling, applied to idle connections only)."""

    @event.listens_for(engine, "checkin")
    def on_checkin(_dbapi_connection, record) -> None:
        record.info["hub.idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def on_checkout(dbapi_connection, record, _proxy) -> None:
        since = record.info.get("hub.idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_connection.rollback()
        except Exception as exc:
            raise DisconnectionError(f"the database connection was lost while idle: {type(exc).__name__}") from exc


def _private_database_file(url: str) -> None:
    """The embedded database holds what the secret store encrypts and more in clear (webhook endpoint
    tokens, the audit trail): like the key files it is the owner's alone. SQLite creates its -wal and
    -shm files with the database file's mode, so creating that one 0600 covers them; files an older
    version left readable by others are tightened too."""
    database = make_url(url).database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT, stat.S_IRUSR | stat.S_IWUSR))
    except OSError:
        return  # no such directory, or not ours: SQLite's own error says so when the hub connects
    for each in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if each.stat().st_mode & 0o077:
                each.chmod(stat.S_IRUSR | stat.S_IWUSR)
        except OSError:  # absent (no -wal yet) or owned by someone else: nothing this process can do
            pass


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
        # FULL: each commit syncs the WAL, so what was acknowledged (a webhook answered 200) survives a
        # power loss or an OS crash; NORMAL may roll the last commits back then (SQLite's docs), as
        # PostgreSQL's synchronous_commit=off would. About 0.25 ms of fsync per commit here.
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn):
        # on the driver's connection: every transaction starts here, and SQLAlchemy's execution
        # machinery around a fixed statement without parameters or result costs more than SQLite's BEGIN
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE")


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
