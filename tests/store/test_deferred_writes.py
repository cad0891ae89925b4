"""Writes sent together (PostgreSQL): `fast.execute_together` composes several writes and a last
statement into one, and `defer_write` keeps a transaction's last writes for its job completion (or
its commit). The rows must be those of the statements run one by one, on both engines."""
from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import bindparam, event, func, literal, select, text

from hub.events import trace
from hub.store import FakeClock, Job, fast
from hub.store.db import Database, defer_write
from hub.store.models import RunLog

_JOBS = Job.__table__
_AT = datetime(2026, 12, 5, 10, 0, 0)
_VALUES = dict(payload=bindparam("payload", type_=_JOBS.c.payload.type), status="queued", attempts=0, max_attempts=5,
               failed_calls=0, run_at=bindparam("at"), created_at=bindparam("at"), updated_at=bindparam("at"))
# a write with a CTE of its own (lifted to the top when composed): a job, and a second one naming it
_FIRST = _JOBS.insert().values(kind=bindparam("kind"), dedupe_key=bindparam("key"), **_VALUES) \
    .returning(_JOBS.c.id).cte("first")
_PAIR = _JOBS.insert().from_select(
    ["kind", "dedupe_key", "payload", "status", "attempts", "max_attempts", "failed_calls", "run_at", "created_at",
     "updated_at"],
    select(literal("follow-up"), bindparam("key") + literal(":next"),
           func.json_build_object("after", _FIRST.c.id), literal("queued"), literal(0), literal(5), literal(0),
           bindparam("at"), bindparam("at"), bindparam("at")).select_from(_FIRST), include_defaults=False)
_RENAME = _JOBS.update().where(_JOBS.c.dedupe_key == bindparam("b_key")).values(kind=bindparam("b_kind"),
                                                                                updated_at=bindparam("b_at"))
_MANY = _JOBS.insert().values([{"kind": bindparam(f"k{n}"), "dedupe_key": bindparam(f"d{n}"), **_VALUES}
                               for n in range(2)])
# the last statement: text with a CTE of its own and rows to return
_LAST = text("WITH gone AS (UPDATE jobs SET status = 'done' WHERE dedupe_key = :key RETURNING id) "
             "SELECT id, 'done' AS what FROM gone").bindparams(bindparam("key"))


def _writes():
    """The same statements twice with other values (their parameter and CTE names are the same)."""
    payload = {"n": [1, "é", None]}
    return [(_PAIR, {"kind": "start", "key": "a", "payload": payload, "at": _AT}),
            (_PAIR, {"kind": "start", "key": "b", "payload": {}, "at": _AT}),
            (_RENAME, {"b_key": "old", "b_kind": "renamed", "b_at": _AT}),
            (_MANY, {"k0": "x", "d0": "x0", "k1": "y", "d1": "y1", "payload": None, "at": _AT})]


def _rows(conn) -> list[tuple]:
    """The jobs, ids named by their dedupe keys (a rolled-back run still used up its ids)."""
    rows = conn.execute(select(_JOBS).order_by(_JOBS.c.dedupe_key)).all()
    key = {r.id: r.dedupe_key for r in rows}
    return [(r.kind, r.dedupe_key, {k: key[v] if k == "after" else v for k, v in r.payload.items()} if r.payload else r.payload, r.status,
             r.updated_at) for r in rows]


def _keys(conn, rows) -> list[tuple]:
    return [(conn.execute(select(_JOBS.c.dedupe_key).where(_JOBS.c.id == r.id)).scalar_one(), r.what) for r in rows]


def _seed(conn) -> None:
    for key in ("old", "last"):
        fast.execute(conn, _JOBS.insert().values(kind=bindparam("kind"), dedupe_key=bindparam("key"), **_VALUES),
                     {"kind": "seed", "key": key, "payload": None, "at": _AT})


@pytest.fixture
def pg(pg_url):
    from tests.conftest import _truncate_pg
    _truncate_pg(pg_url)
    database = Database(pg_url)
    yield database
    database.dispose()


def _one_by_one(conn, writes, last, params):
    for statement, values in writes:
        fast.execute(conn, statement, values)
    return fast.execute(conn, last, params).all()


@pytest.mark.postgres
@pytest.mark.parametrize("watched", [False, True], ids=["fast", "watched"])
def test_writes_together_are_the_writes_one_by_one(pg, watched):
    """One statement, the same rows and the same answer as each write and then the last alone; with a
    statement listener (SQLAlchemy's own execution) it sees one statement, the composed one."""
    with pg.engine.begin() as conn:
        _seed(conn)
        alone = _keys(conn, _one_by_one(conn, _writes(), _LAST, {"key": "last"}))
        expected = _rows(conn)
        conn.rollback()
    seen: list[str] = []
    if watched:
        event.listen(pg.engine, "before_cursor_execute", lambda c, cur, sql, *a: seen.append(sql))
    with pg.engine.begin() as conn:
        _seed(conn)
        seen.clear()
        result = fast.execute_together(conn, _writes(), _LAST, {"key": "last"}).all()
        sent = list(seen)
        together = _keys(conn, result)
        got = _rows(conn)
    assert together == alone == [("last", "done")]
    assert got == expected
    assert [r[1] for r in got] == ["a", "a:next", "b", "b:next", "last", "old", "x0", "y1"]   # each write once
    assert [r[0] for r in got if r[1] == "old"] == ["renamed"] and got[1][2] == {"after": "a"}
    if watched:
        assert len(sent) == 1 and sent[0].startswith("WITH w0_first AS (INSERT INTO jobs")


@pytest.mark.postgres
def test_without_a_last_statement_the_last_write_is_the_main_one(pg):
    with pg.engine.begin() as conn:
        _seed(conn)
        _one_by_one(conn, _writes()[:-1], *_writes()[-1], )
        expected = _rows(conn)
        conn.rollback()
    with pg.engine.begin() as conn:
        _seed(conn)
        assert fast.execute_together(conn, _writes()).rowcount == 2       # the last write's: two rows
        assert _rows(conn) == expected


def test_the_with_clause_is_read_through_parentheses_in_strings():
    ctes, main = fast._split_with("WITH a AS (SELECT ')' AS x, f(1)), b AS NOT MATERIALIZED (SELECT \"(\" FROM a) "
                                  "SELECT * FROM b")
    assert ctes == [("a", "SELECT ')' AS x, f(1)"), ("b", "SELECT \"(\" FROM a")] and main.strip() == "SELECT * FROM b"
    assert fast._split_with("UPDATE t SET x = 1") == ([], "UPDATE t SET x = 1")


@pytest.fixture
def hub(make_hub):
    app = make_hub(clock=FakeClock())
    return app.extensions["hub"]


def _log(services) -> list[str]:
    with services.db.begin() as s:
        return list(s.scalars(select(RunLog.step).order_by(RunLog.id)))


def test_deferred_writes_go_with_the_completion_and_are_undone_with_it(hub):
    """A job's deferred writes and run log lines: kept (PostgreSQL: in the completion's statement)
    when the job is still the worker's, gone with the rollback when it is not."""
    services = hub
    queue = services.queue
    with services.db.begin() as s:
        queue.enqueue(s, "test.ok", {}, installation_id=None, dedupe_key="target")
        queue.enqueue(s, "test.ok", {}, installation_id=None, dedupe_key="other", run_at=_AT.replace(year=2099))
    job, = queue.claim("w1", 1)
    statements: list[str] = []

    def run(worker: str) -> bool:
        with services.db.begin() as s:
            defer_write(s, _RENAME, {"b_key": "other", "b_kind": f"by-{worker}", "b_at": _AT})
            trace(s, 1, f"step-{worker}", "a line")
            event.listen(services.db.engine, "before_cursor_execute", record)
            try:
                done, _ = queue.complete_taking(s, job, worker)
            finally:
                event.remove(services.db.engine, "before_cursor_execute", record)
            if not done:
                s.rollback()
            return done

    def record(conn, cursor, sql, *args):
        statements.append(sql)

    assert run("w2") is False            # w1 holds it: nothing of w2's attempt stays
    with services.db.begin() as s:
        assert [(r.kind, r.status) for r in s.scalars(select(Job).order_by(Job.id))] == [
            ("test.ok", "running"), ("test.ok", "queued")]
    assert _log(services) == []
    statements.clear()
    assert run("w1") is True
    with services.db.begin() as s:
        assert [(r.kind, r.status) for r in s.scalars(select(Job).order_by(Job.id))] == [
            ("test.ok", "done"), ("by-w1", "queued")]
    assert _log(services) == ["step-w1"]
    if services.db.is_postgres:           # the rename and the line went with the completion
        assert len(statements) == 1 and statements[0].startswith("WITH w0 AS (UPDATE jobs")


def test_a_rolled_back_transaction_forgets_its_deferred_writes(hub):
    services = hub
    with services.db.begin() as s:
        services.queue.enqueue(s, "test.ok", {}, installation_id=None, dedupe_key="other")
    with services.db.Session() as s:
        with s.begin():
            defer_write(s, _RENAME, {"b_key": "other", "b_kind": "renamed", "b_at": _AT})
            trace(s, 1, "step", "a line")
            s.rollback()
        with s.begin():
            pass                                 # a later transaction of the same session commits
    with services.db.begin() as s:
        assert s.scalar(select(Job.kind)) == "test.ok"
    assert _log(services) == []
