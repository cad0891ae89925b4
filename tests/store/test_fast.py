"""hub/store/fast.py runs hot Core statements on the DBAPI cursor: the rows it writes and reads, its
defaults, row counts and errors must be exactly what `conn.execute` gives, on both engines."""
from __future__ import annotations

from datetime import datetime
from unittest import mock

import pytest
from sqlalchemy import bindparam, event, func, select
from sqlalchemy.exc import IntegrityError

from hub.store import fast, migrate
from hub.store.db import Database
from hub.store.models import Job

_JOBS = Job.__table__
_INSERT = _JOBS.insert().returning(_JOBS.c.id, _JOBS.c.status, _JOBS.c.payload, _JOBS.c.run_at)
_READ = select(_JOBS.c.id, _JOBS.c.kind, _JOBS.c.payload, _JOBS.c.run_at, _JOBS.c.attempts,
               (_JOBS.c.attempts + 1).label("next_attempt")).where(_JOBS.c.kind == bindparam("kind")).order_by(_JOBS.c.id)
_FINISH = _JOBS.update().where(_JOBS.c.kind == bindparam("b_kind")).values(status="done", lease_until=None,
                                                                         updated_at=bindparam("b_at"))


@pytest.fixture
def database(db_url):
    database = Database(db_url)
    migrate.upgrade(database.engine)
    yield database
    database.dispose()


def _write(database, run) -> list:
    """Insert two jobs (defaults filled in), one more as executemany, update them: what each step gave."""
    seen = []
    with database.engine.begin() as conn:
        row = run(conn, _INSERT, {"kind": "a", "payload": {"x": [1, None, "é"]}, "dedupe_key": "k-a", "max_attempts": 5}).first()
        seen.append((row.status, row.payload, type(row.run_at)))
        row = run(conn, _INSERT, {"kind": "a", "payload": None, "dedupe_key": "k-b", "max_attempts": 5}).first()
        seen.append((row.status, row.payload))
        run(conn, _JOBS.insert(), [{"kind": "b", "payload": {"n": i}, "dedupe_key": f"m-{i}", "max_attempts": 5} for i in range(3)])
        seen.append(run(conn, _FINISH, {"b_kind": "b", "b_at": datetime(2026, 1, 2, 3, 4, 5)}).rowcount)
        seen.append([(r.kind, r.payload, r.run_at is not None, r.attempts, r.next_attempt, r._mapping["kind"])
                     for r in run(conn, _READ, {"kind": "b"})])
        seen.append(run(conn, _READ, {"kind": "none"}).first())
    with database.engine.connect() as conn:
        rows = conn.execute(select(_JOBS.c.kind, _JOBS.c.status, _JOBS.c.payload, _JOBS.c.attempts, _JOBS.c.max_attempts,
                                   _JOBS.c.updated_at, _JOBS.c.lease_until, _JOBS.c.payload.is_(None).label("sql_null"))
                            .order_by(_JOBS.c.id)).all()
    # now-defaults differ between runs: their type is compared, fixed times by value
    seen.append([(*r[:5], r.updated_at if r.kind == "b" else type(r.updated_at), *r[6:]) for r in rows])
    with database.engine.begin() as conn:
        conn.execute(_JOBS.delete())
    return seen


def _fast_only(conn, statement, params):
    """fast.execute, failing if it hands the statement to SQLAlchemy's execution."""
    with mock.patch.object(type(conn), "execute", side_effect=AssertionError("fell back to conn.execute")):
        return fast.execute(conn, statement, params)


def test_the_fast_path_writes_and_reads_what_sqlalchemy_does(database):
    through_sqlalchemy = _write(database, lambda conn, stmt, params: conn.execute(stmt, params))
    fast_path = _write(database, _fast_only)
    assert fast_path == through_sqlalchemy
    assert through_sqlalchemy[0] == ("queued", {"x": [1, None, "é"]}, datetime)
    assert through_sqlalchemy[2] == 3


def test_a_listener_sees_every_statement(database):
    """Statement counters (tests, bench/worker_alone.py) and SQL echo see the fast path's statements."""
    seen = []
    event.listen(database.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    with database.engine.begin() as conn:
        fast.execute(conn, _INSERT, {"kind": "a", "dedupe_key": "k", "max_attempts": 5})
        assert fast.execute(conn, _READ, {"kind": "a"}).one().kind == "a"
    assert sum(1 for s in seen if "jobs" in s) == 2


def test_errors_are_sqlalchemys_and_the_transaction_stays_usable_on_rollback(database):
    with database.engine.begin() as conn:
        fast.execute(conn, _INSERT, {"kind": "a", "dedupe_key": "same", "max_attempts": 5})
    with pytest.raises(IntegrityError):
        with database.engine.begin() as conn:
            fast.execute(conn, _INSERT, {"kind": "b", "dedupe_key": "same", "max_attempts": 5})
    with database.engine.begin() as conn:
        assert conn.execute(select(func.count()).select_from(_JOBS)).scalar_one() == 1
        fast.execute(conn, _INSERT, {"kind": "c", "dedupe_key": "other", "max_attempts": 5})
        assert [r.kind for r in fast.execute(conn, select(_JOBS.c.kind).order_by(_JOBS.c.id)).all()] == ["a", "c"]


def test_statements_it_cannot_compile_once_go_through_sqlalchemy(database):
    with database.engine.begin() as conn:
        fast.execute(conn, _JOBS.insert(), [{"kind": k, "dedupe_key": k, "max_attempts": 5} for k in "abc"])
        expanding = select(_JOBS.c.kind).where(_JOBS.c.kind.in_(bindparam("kinds", expanding=True))).order_by(_JOBS.c.kind)
        assert [r.kind for r in fast.execute(conn, expanding, {"kinds": ["a", "c"]})] == ["a", "c"]
        assert [r.kind for r in fast.execute(conn, expanding, {"kinds": ["b"]})] == ["b"]
