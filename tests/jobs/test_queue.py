"""The job queue on both engines: transactions, retries, dead letter, replay, leases, ordering."""
from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hub.jobs import Defer, Fatal, JobQueue, Retriable, Worker, backoff_delay, handler
from hub.store import FakeClock, Job

calls: list[tuple[int, int]] = []
behaviour: dict[str, object] = {}


@handler("test.flaky")
def flaky(ctx):
    calls.append((ctx.job_id, ctx.attempt))
    action = behaviour.get("action")
    if action == "retry_after":
        raise Retriable("provider said slow down", retry_after=42)
    if action == "fatal":
        raise Fatal("project was deleted")
    if action == "defer":
        raise Defer("connection needs reconnection", delay=300)
    if action == "fail":
        raise RuntimeError("boom")


@handler("test.ok")
def ok(ctx):
    calls.append((ctx.job_id, ctx.attempt))


@pytest.fixture(autouse=True)
def _reset():
    calls.clear()
    behaviour.clear()


@pytest.fixture
def hub(make_hub):
    clock = FakeClock()
    app = make_hub(clock=clock, **{"jobs.max_attempts": 4, "jobs.backoff_base": 2.0, "jobs.backoff_cap": 10.0,
                                   "jobs.lease_seconds": 30.0})
    services = app.extensions["hub"]
    services.queue.rng = random.Random(7)
    return services, clock


def job(services, job_id) -> Job:
    with services.db.begin() as s:
        return s.get(Job, job_id)


def test_enqueue_in_rolled_back_transaction_leaves_no_job(hub):
    services, _ = hub
    with pytest.raises(RuntimeError):
        with services.db.begin() as s:
            services.queue.enqueue(s, "test.ok", {"x": 1}, installation_id=None)
            raise RuntimeError("the business change failed")
    assert services.queue.counts() == {}
    with services.db.begin() as s:
        job_id = services.queue.enqueue(s, "test.ok", {"x": 1}, installation_id=None)
    assert job(services, job_id).status == "queued"


def test_claim_run_complete(hub):
    services, _ = hub
    with services.db.begin() as s:
        job_id = services.queue.enqueue(s, "test.ok", {"x": 1}, installation_id=None)
    worker = Worker(services.queue, worker_id="w1")
    assert worker.drain() == 1
    assert calls == [(job_id, 1)]
    row = job(services, job_id)
    assert (row.status, row.attempts, row.locked_by is not None, row.finished_at is not None) == ("done", 1, True, True)


def test_future_job_waits_for_its_time(hub):
    services, clock = hub
    with services.db.begin() as s:
        services.queue.enqueue(s, "test.ok", delay=60, installation_id=None)
    worker = Worker(services.queue, worker_id="w1")
    assert worker.run_once() == 0
    clock.advance(61)
    assert worker.run_once() == 1


def test_backoff_is_capped_exponential_with_full_jitter():
    rng = random.Random(1)
    for attempt in range(1, 12):
        ceiling = min(10.0, 2.0 * 2 ** (attempt - 1))
        samples = [backoff_delay(attempt, 2.0, 10.0, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in samples)
        assert max(samples) > ceiling * 0.8 and min(samples) < ceiling * 0.2  # spread over the whole range


def test_retries_follow_backoff_then_dead_letter(hub):
    services, clock = hub
    behaviour["action"] = "fail"
    with services.db.begin() as s:
        job_id = services.queue.enqueue(s, "test.flaky", installation_id=None)
    worker = Worker(services.queue, worker_id="w1")
    expected_rng = random.Random(7)
    for attempt in range(1, 4):
        start = clock.now()
        assert worker.run_once() == 1
        row = job(services, job_id)
        assert row.status == "queued" and row.attempts == attempt
        assert "RuntimeError: boom" in row.last_error
        delay = (row.run_at - start).total_seconds()
        assert delay == pytest.approx(backoff_delay(attempt, 2.0, 10.0, expected_rng), abs=1e-3)
        assert worker.run_once() == 0 or delay == 0  # not due before its time
        clock.advance(delay + 0.001)
    assert worker.run_once() == 1  # 4th = last attempt
    row = job(services, job_id)
    assert row.status == "dead" and row.attempts == 4 and "boom" in row.last_error
    assert [a for _, a in calls] == [1, 2, 3, 4]


def test_retry_after_from_handler_wins(hub):
    services, clock = hub
    behaviour["action"] = "retry_after"
    with services.db.begin() as s:
        job_id = services.queue.enqueue(s, "test.flaky", installation_id=None)
    Worker(services.queue, worker_id="w1").run_once()
    row = job(services, job_id)
    assert (row.run_at - clock.now()) == timedelta(seconds=42)
    assert row.last_error == "Retriable: provider said slow down"


def test_fatal_goes_to_dead_letter_at_once_and_replay_runs_it_again(hub):
    services, clock = hub
    behaviour["action"] = "fatal"
    with services.db.begin() as s:
        job_id = services.queue.enqueue(s, "test.flaky", installation_id=None)
    worker = Worker(services.queue, worker_id="w1")
    worker.run_once()
    row = job(services, job_id)
    assert row.status == "dead" and row.attempts == 1 and row.last_error == "Fatal: project was deleted"
    assert services.queue.replay(job_id, installation_id=None) is True
    assert services.queue.replay(job_id, installation_id=None) is False  # only dead jobs are replayed
    behaviour.clear()
    assert worker.run_once() == 1
    row = job(services, job_id)
    assert row.status == "done" and row.attempts == 1 and row.last_error is None


def test_defer_does_not_use_an_attempt(hub):
    services, clock = hub
    behaviour["action"] = "defer"
    with services.db.begin() as s:
        job_id = services.queue.enqueue(s, "test.flaky", installation_id=None)
    worker = Worker(services.queue, worker_id="w1")
    for _ in range(6):  # more than max_attempts: a waiting job never dies of waiting
        assert worker.run_once() == 1
        clock.advance(301)
    row = job(services, job_id)
    assert row.status == "queued" and row.attempts == 0 and "needs reconnection" in row.last_error


def test_unknown_kind_is_dead_with_reason(hub):
    services, _ = hub
    with services.db.begin() as s:
        job_id = services.queue.enqueue(s, "no.such.kind", installation_id=None)
    Worker(services.queue, worker_id="w1").run_once()
    row = job(services, job_id)
    assert row.status == "dead" and "no handler" in row.last_error


def test_expired_lease_is_claimed_again_and_the_old_owner_cannot_complete(hub):
    services, clock = hub
    queue = services.queue
    with services.db.begin() as s:
        job_id = queue.enqueue(s, "test.ok", installation_id=None)
    [claimed] = queue.claim("dead-worker")
    assert queue.claim("w2") == []  # leased
    clock.advance(31)
    [again] = queue.claim("w2")
    assert again.id == job_id and again.attempts == 2
    with services.db.begin() as s:  # the first worker wakes up late: its completion is refused
        assert queue.complete(s, claimed, "dead-worker") is False
    Worker(queue, worker_id="w2").run_job(again)
    assert job(services, job_id).status == "done"


def test_job_whose_workers_keep_dying_ends_in_dead_letter(hub):
    services, clock = hub
    queue = services.queue
    with services.db.begin() as s:
        job_id = queue.enqueue(s, "test.ok", installation_id=None)
    for n in range(4):
        assert len(queue.claim(f"w{n}")) == 1
        clock.advance(31)
    [last] = queue.claim("w9")
    assert Worker(queue, worker_id="w9").run_job(last) == "dead"
    row = job(services, job_id)
    assert row.status == "dead" and "lease expired" in row.last_error
    assert calls == []


def test_ordering_key_runs_jobs_of_one_object_one_at_a_time_in_order(hub):
    services, _ = hub
    queue = services.queue
    with services.db.begin() as s:
        a1 = queue.enqueue(s, "test.ok", {"n": 1}, ordering_key="deal:1", installation_id=None)
        a2 = queue.enqueue(s, "test.ok", {"n": 2}, ordering_key="deal:1", installation_id=None)
        b1 = queue.enqueue(s, "test.ok", {"n": 3}, ordering_key="deal:2", installation_id=None)
        free = queue.enqueue(s, "test.ok", {"n": 4}, installation_id=None)
    first = queue.claim("w1", limit=10)
    assert sorted(j.id for j in first) == sorted([a1, b1, free])
    assert queue.claim("w2", limit=10) == []  # a2 waits for a1
    worker = Worker(queue, worker_id="w1")
    for claimed in first:
        worker.run_job(claimed)
    assert [j.id for j in queue.claim("w2", limit=10)] == [a2]


def test_ordering_key_waits_for_an_earlier_job_in_backoff(hub):
    services, clock = hub
    queue = services.queue
    behaviour["action"] = "fail"
    with services.db.begin() as s:
        first = queue.enqueue(s, "test.flaky", ordering_key="deal:9", installation_id=None)
        second = queue.enqueue(s, "test.ok", ordering_key="deal:9", installation_id=None)
    worker = Worker(queue, worker_id="w1")
    assert worker.run_once() == 1  # first fails, goes to backoff
    clock.advance(0.0001)
    claimed = queue.claim("w1", limit=10)
    assert second not in [c.id for c in claimed]


def test_a_claim_takes_lapsed_and_due_jobs_together_in_run_order(hub):
    """Jobs whose lease ran out and due ones are read apart (each in claim order) and merged:
    one claim takes them in the order they were due, up to its limit, skipping blocked keys."""
    services, clock = hub
    queue = services.queue
    with services.db.begin() as s:
        lapsed = queue.enqueue(s, "test.ok", {}, ordering_key="deal:1", installation_id=None)
        behind = queue.enqueue(s, "test.ok", {}, ordering_key="deal:1", installation_id=None)  # waits for it
    assert [j.id for j in queue.claim("dying", limit=1)] == [lapsed]
    clock.advance(31)                                    # its worker died: the lease ran out
    with services.db.begin() as s:
        due = [queue.enqueue(s, "test.ok", {}, installation_id=None) for _ in range(3)]
    claimed = queue.claim("w1", limit=3)
    assert [(j.id, j.attempts) for j in claimed] == [(lapsed, 2), (due[0], 1), (due[1], 1)]
    assert [j.id for j in queue.claim("w2", limit=5)] == [due[2]]      # `behind` still waits for `lapsed`


def test_a_claim_reads_about_as_many_jobs_as_it_takes_however_long_the_backlog(hub):
    """Regression (bench/pipeline.py, pg_stat_statements): the claim filtered and sorted every
    queued and running job before taking ten, so under load it cost as much as the backlog was
    long, a third of PostgreSQL's time. Measured on PostgreSQL's plan: the rows the claim reads
    are the ones it takes (and the few running ones, whose leases it checks), not the backlog."""
    services, clock = hub
    queue = services.queue
    with services.db.begin() as s:
        queue.enqueue_many(s, [{"kind": "test.ok", "installation_id": None, "ordering_key": f"deal:{n % 400}"}
                               for n in range(1200)])
    # 20 running with live leases (deals 0-19, whose later jobs wait); 1,180 queued behind them
    assert len(queue.claim("busy", limit=20)) == 20
    clock.advance(0.001)
    if not services.db.is_postgres:   # SQLite has no row counts in its plans: the claim's answer only
        assert [j.ordering_key for j in queue.claim("w1", limit=10)] == [f"deal:{n}" for n in range(20, 30)]
        return
    from sqlalchemy import text
    from hub.jobs.queue import _claim_statement
    now = clock.now()
    params = {"worker": "w1", "lease_until": now + timedelta(seconds=30), "now": now, "limit": 10, "started": now}
    with services.db.engine.begin() as conn:
        conn.execute(text("ANALYZE jobs"))
        plan = conn.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + _claim_statement(True, False).element.text),
                            params).scalar()
        claimed = conn.execute(text("SELECT ordering_key FROM jobs WHERE locked_by = 'w1' ORDER BY id")).scalars().all()
        conn.rollback()
    assert claimed == [f"deal:{n}" for n in range(20, 30)]

    def read(node):    # rows the claim's scans for candidates (j) read, not its probes of ordering keys (e)
        here = 0
        if node.get("Alias") in ("j", "j_1"):
            here = (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"]
        return here + sum(read(child) for child in node.get("Plans", []))
    assert read(plan[0]["Plan"]) <= 10 + 20 + 10     # taken, running, a few more; not the 1,180 queued


def test_dedupe_key_makes_a_second_enqueue_a_no_op(hub):
    services, _ = hub
    with services.db.begin() as s:
        first = services.queue.enqueue(s, "test.ok", dedupe_key="schedule:x:1", installation_id=None)
        again = services.queue.enqueue(s, "test.ok", dedupe_key="schedule:x:1", installation_id=None)
    assert first is not None and again is None
    with services.db.begin() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 1


def test_worker_threads_wake_on_enqueue(make_hub):
    app = make_hub(**{"jobs.poll_interval": 60.0})  # a poll would take a minute: only the wake-up can make it
    services = app.extensions["hub"]
    done = threading.Event()

    @handler("test.signal")
    def signal(ctx):
        done.set()

    worker = services.start_worker(app, concurrency=2)
    try:
        with services.db.begin() as s:
            services.queue.enqueue(s, "test.signal", installation_id=None)
        assert done.wait(10), "the worker did not pick up the job"
    finally:
        worker.stop()


@handler("test.parent")
def parent(ctx):
    """A job whose work leads to more (as an event leads to its rule runs)."""
    calls.append((ctx.job_id, ctx.attempt))
    services = ctx.app.extensions["hub"] if ctx.app is not None else behaviour["services"]
    for n in range(int(ctx.payload.get("children", 1))):
        services.queue.enqueue(ctx.session, "test.ok", {"child": n}, installation_id=None,
                               ordering_key=ctx.payload.get("key"))


_TAKES = "THEN 'done' ELSE 'running'"   # a completion that takes a job over (queue._complete_and_take)


def claims_during(services, fn) -> list[str]:
    """The claim statements (UPDATE ... 'running': a claim, or a completion that takes a job
    over) the worker sends while `fn` runs."""
    from sqlalchemy import event as sa_event
    seen: list[str] = []

    def on_execute(conn, cursor, statement, params, context, executemany):
        if "UPDATE jobs SET status = 'running'" in statement or _TAKES in statement:
            seen.append(statement)

    sa_event.listen(services.db.engine, "before_cursor_execute", on_execute)
    try:
        fn()
    finally:
        sa_event.remove(services.db.engine, "before_cursor_execute", on_execute)
    return seen


# with "k": the job and its work share an ordering key (an object's event and its rule runs). The
# completion and the take-over are one statement, in whose snapshot the completing job still runs:
# it must not hold back its own child
@pytest.mark.parametrize("key", [None, "k"])
def test_the_work_a_job_leads_to_runs_next_in_the_same_worker_without_a_claim(hub, key):
    services, _ = hub
    behaviour["services"] = services
    with services.db.begin() as s:
        parent_id = services.queue.enqueue(s, "test.parent", {"children": 2, "key": key}, installation_id=None,
                                           ordering_key=key)
    worker = Worker(services.queue, worker_id="w1")
    claims = claims_during(services, lambda: worker.run_once(1))
    # one claim (the parent's); its completing transaction took the first child over, which ran
    # at once in this worker; the second child waits in the queue for any worker
    assert [_TAKES in c for c in claims] == [False, True]
    with services.db.begin() as s:
        rows = s.scalars(select(Job).order_by(Job.id)).all()
    assert [(r.kind, r.status, r.attempts, r.locked_by, r.ordering_key) for r in rows] == [
        ("test.parent", "done", 1, "w1", key), ("test.ok", "done", 1, "w1", key), ("test.ok", "queued", 0, None, key)]
    assert rows[1].started_at is not None and [c[0] for c in calls] == [parent_id, rows[1].id]
    assert worker.drain() == 1 and job(services, rows[2].id).status == "done"


def test_work_taken_over_waits_for_its_ordering_key_like_any_claim(hub):
    services, _ = hub
    behaviour["services"] = services
    with services.db.begin() as s:
        services.queue.enqueue(s, "test.ok", {}, installation_id=None, ordering_key="k", delay=60)   # earlier, not due
        services.queue.enqueue(s, "test.parent", {"key": "k"}, installation_id=None)
    worker = Worker(services.queue, worker_id="w1")
    worker.run_once(1)
    with services.db.begin() as s:
        rows = s.scalars(select(Job).order_by(Job.id)).all()
    # the child shares key "k" with an earlier unfinished job: not taken over, still queued
    assert [(r.kind, r.status) for r in rows] == [("test.ok", "queued"), ("test.parent", "done"), ("test.ok", "queued")]


def test_a_completion_that_lost_its_job_takes_nothing_over(hub):
    """Its lease ran out and another worker holds the job: no completion, and the job this
    transaction enqueued is not reported taken (the caller rolls back, the take with it)."""
    services, _ = hub
    queue = services.queue
    with services.db.begin() as s:
        queue.enqueue(s, "test.ok", {}, installation_id=None)
    lead, = queue.claim("w1", 1)
    with services.db.begin() as s:
        s.get(Job, lead.id).locked_by = "w2"        # w2 took it after w1's lease ran out
    with services.db.begin() as s:
        queue.enqueue(s, "test.ok", {"child": 0}, installation_id=None)
        assert queue.complete_taking(s, lead, "w1") == (False, None)
        s.rollback()
    with services.db.begin() as s:
        rows = s.scalars(select(Job).order_by(Job.id)).all()
    assert [(r.status, r.locked_by) for r in rows] == [("running", "w2")]
    with services.db.begin() as s:
        queue.enqueue(s, "test.ok", {"child": 1}, installation_id=None)
        done, taken = queue.complete_taking(s, lead, "w2", failed_calls=3)
    assert done and taken is not None and taken.attempts == 1
    with services.db.begin() as s:
        rows = s.scalars(select(Job).order_by(Job.id)).all()
    assert [(r.status, r.locked_by, r.failed_calls, r.attempts) for r in rows] == [
        ("done", "w2", 3, 1), ("running", "w2", 0, 1)]
    assert rows[0].finished_at is not None and rows[0].lease_until is None
    assert rows[1].started_at is not None and rows[1].lease_until is not None


def test_a_stopping_worker_hands_back_the_work_it_took_over(hub):
    services, _ = hub
    behaviour["services"] = services
    with services.db.begin() as s:
        services.queue.enqueue(s, "test.parent", {}, installation_id=None)
    worker = Worker(services.queue, worker_id="w1")
    real = worker.run_job

    def run_then_stop(job, start_next=None):
        outcome = real(job, start_next)
        worker._stop.set()          # SIGTERM arrives while the parent finishes
        return outcome

    worker.run_job = run_then_stop
    worker.run_once(1)
    with services.db.begin() as s:
        child = s.scalars(select(Job).where(Job.kind == "test.ok")).one()
    assert (child.status, child.attempts, child.locked_by) == ("queued", 0, None)


@handler("test.scattered")
def scattered(ctx):
    """Each attempt: the provider answers once, then one request fails (scattered 5xx)."""
    from hub.connectors import retry
    calls.append((ctx.job_id, ctx.attempt))
    retry.call(lambda: "ok", "GET", provider="crm")

    def fails():
        raise Retriable("crm 502: bad gateway")
    retry.call(fails, "GET", provider="crm")


def test_scattered_failures_over_attempts_do_not_use_up_the_budget(make_hub):
    clock = FakeClock()
    app = make_hub(clock=clock, **{"jobs.max_attempts": 12, "jobs.backoff_base": 1.0, "jobs.backoff_cap": 1.0})
    services = app.extensions["hub"]
    with services.db.begin() as s:
        job_id = services.queue.enqueue(s, "test.scattered", {}, installation_id=None)
    worker = Worker(services.queue, worker_id="w1", app=app)
    for _ in range(8):                     # more attempts than the budget's 6 failed requests
        clock.advance(seconds=5)
        assert worker.drain() == 1
    row = job(services, job_id)
    # each attempt saw the provider answer after the failure the attempt before: never "keeps failing"
    assert (row.status, row.attempts, row.failed_calls, row.failing_provider) == ("queued", 8, 1, "crm")


@handler("test.leads")
def leads(ctx):
    """Enqueues one `test.started` job and writes a run log line, as an event's job does."""
    from hub.events import trace
    services = ctx.app.extensions["hub"] if ctx.app is not None else behaviour["services"]
    services.queue.enqueue(ctx.session, "test.started", {}, installation_id=None)
    trace(ctx.session, ctx.payload["installation_id"], "test.leads", "the leading job's line")


@handler("test.started")
def started(ctx):
    calls.append((ctx.job_id, ctx.prepared))


def _commits_during(services, fn) -> int:
    from sqlalchemy import event as sa_event
    count = [0]

    def on_commit(conn):
        count[0] += 1

    sa_event.listen(services.db.engine, "commit", on_commit)
    try:
        fn()
    finally:
        sa_event.remove(services.db.engine, "commit", on_commit)
    return count[0]


@pytest.fixture
def start_behaviour():
    from hub.events import trace
    from hub.jobs.registry import _starters, starter

    @starter("test.started")
    def start(app, session, taken):
        # reads what the leading job wrote (its own row, uncommitted until now) and marks it
        row = session.get(Job, taken.id)
        trace(session, behaviour["installation_id"], "test.started", "the starter's line")
        if behaviour.get("start") == "fail":
            session.get(Job, taken.id).last_error = "half-written by a failed start"
            session.flush()
            raise RuntimeError("the start broke")
        return {"seen_status": row.status, "attempts": row.attempts}

    yield
    _starters.pop("test.started", None)


def _installation(services) -> int:
    from hub.store import Installation
    with services.db.begin() as s:
        row = Installation(provider="pipedrive", company_id="1", installer_user_id="1", endpoint_token="t-start")
        s.add(row)
        s.flush()
        behaviour["installation_id"] = row.id
        return row.id


def _log_steps(services) -> list[str]:
    from hub.store import RunLog
    with services.db.begin() as s:
        return list(s.scalars(select(RunLog.step).order_by(RunLog.id)))


def test_a_taken_over_job_starts_inside_the_completing_transaction(hub, start_behaviour):
    services, _ = hub
    behaviour["services"] = services
    installation_id = _installation(services)
    with services.db.begin() as s:
        services.queue.enqueue(s, "test.leads", {"installation_id": installation_id}, installation_id=None)
    worker = Worker(services.queue, worker_id="w1")
    # the claim (autocommitted on PostgreSQL), the leading job (with the taken job's start), the
    # taken job: no commit of its own
    commits = _commits_during(services, lambda: worker.run_once(1))
    with services.db.begin() as s:
        assert [(j.kind, j.status, j.last_error) for j in s.scalars(select(Job).order_by(Job.id))] == [
            ("test.leads", "done", None), ("test.started", "done", None)]
    assert commits == (2 if services.db.is_postgres else 3)
    assert calls[-1][1] == {"seen_status": "running", "attempts": 1}
    assert _log_steps(services) == ["test.leads", "test.started"]


def test_a_start_that_fails_leaves_the_completion_and_the_job_runs_on_its_own(hub, start_behaviour, caplog):
    services, _ = hub
    behaviour["services"] = services
    behaviour["start"] = "fail"
    installation_id = _installation(services)
    with services.db.begin() as s:
        lead_id = services.queue.enqueue(s, "test.leads", {"installation_id": installation_id}, installation_id=None)
    worker = Worker(services.queue, worker_id="w1")
    worker.run_once(1)
    with services.db.begin() as s:
        rows = s.scalars(select(Job).order_by(Job.id)).all()
    assert [(r.id == lead_id, r.kind, r.status, r.last_error) for r in rows] == [
        (True, "test.leads", "done", None), (False, "test.started", "done", None)]
    assert calls[-1] == (rows[1].id, None)          # no plan: it read its own
    # the failed start took the transaction down (no savepoint around it: two statements an event):
    # the leading job ran again, so its line is there once; the failed start's is rolled back, as is
    # the job its first run enqueued (one taken job, not two)
    assert _log_steps(services) == ["test.leads"] and len(rows) == 2
    assert "its start failed" in caplog.text


class _WatchedWake(threading.Condition):
    """The worker's wake-up condition, telling the test when a thread goes to wait (idle)."""

    def __init__(self):
        super().__init__()
        self.idle = threading.Event()

    def wait(self, timeout=None):
        self.idle.set()
        return super().wait(timeout)


@handler("test.mark")
def mark(ctx):
    behaviour.setdefault("ran", []).append(ctx.payload["name"])
    behaviour.setdefault("events", {}).setdefault(ctx.payload["name"], threading.Event()).set()


def test_a_completion_says_whether_a_job_of_its_ordering_key_waits(hub):
    from hub.jobs.queue import SUCCESSOR_WAITS
    services, _ = hub
    queue = services.queue
    with services.db.begin() as s:
        queue.enqueue(s, "test.ok", {}, installation_id=None, ordering_key="k")
        queue.enqueue(s, "test.ok", {}, installation_id=None, ordering_key="k")
        queue.enqueue(s, "test.ok", {}, installation_id=None, ordering_key="other")
    first, other = queue.claim("w1", 10)          # the second of "k" waits for the first
    seen = []
    for claimed in (first, other):
        with services.db.begin() as s:
            assert queue.complete(s, claimed, "w1")
            seen.append(s.info.pop(SUCCESSOR_WAITS, False))
    assert seen == [True, False]


def test_a_worker_claims_again_after_work_only_when_there_may_be_more(make_hub):
    """After a job, a thread whose claim left nothing due behind waits for a wake-up instead of
    claiming again (such claims found nothing); a completion that frees a waiting job of its
    ordering key (enqueued earlier, so no wake-up announces it) makes it claim again at once."""
    from hub.jobs.worker import Worker as _Worker
    app = make_hub(**{"jobs.poll_interval": 60.0})   # a poll would take a minute
    services = app.extensions["hub"]
    queue = services.queue
    with services.db.begin() as s:
        queue.enqueue(s, "test.mark", {"name": "a"}, installation_id=None)
    claims = []
    real_claim = queue.claim
    queue.claim = lambda *args, **kw: claims.append(1) or real_claim(*args, **kw)
    worker = _Worker(queue, concurrency=1, poll_interval=60.0, app=app, batch_size=10)
    wake = worker._wake = _WatchedWake()
    behaviour["events"] = {name: threading.Event() for name in ("a", "p", "s")}
    worker.start()
    try:
        assert wake.idle.wait(10) and behaviour["events"]["a"].is_set()
        assert len(claims) == 1           # the claim that took "a"; none after it
        wake.idle.clear()
        with services.db.begin() as s:    # one wake-up; "s" waits for "p" (same key)
            queue.enqueue(s, "test.mark", {"name": "p"}, installation_id=None, ordering_key="obj")
            queue.enqueue(s, "test.mark", {"name": "s"}, installation_id=None, ordering_key="obj")
        assert behaviour["events"]["s"].wait(10), "the job freed by its key's completion did not run"
        assert wake.idle.wait(10)
        assert behaviour["ran"] == ["a", "p", "s"] and len(claims) == 3
    finally:
        worker.stop()
        del queue.claim


def test_the_heartbeat_extends_what_it_can_without_waiting_for_a_locked_job(hub, db_url):
    """PostgreSQL: a job row another transaction holds (its completion) is skipped, not waited for;
    waiting while holding the others' rows deadlocked against completions (seen under chaos)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: nothing to wait for")
    services, clock = hub
    queue = services.queue
    with services.db.begin() as s:
        for n in range(2):
            queue.enqueue(s, "test.ok", {"n": n}, installation_id=None)
    first, second = queue.claim("w1", 2)
    with services.db.begin() as s:
        before = s.get(Job, first.id).lease_until
    clock.advance(20)
    done = threading.Event()
    with services.db.engine.connect() as holder:
        holder.execute(select(Job.id).where(Job.id == first.id).with_for_update())   # a completion holds it
        beat = threading.Thread(target=lambda: (queue.extend_leases("w1", [first.id, second.id]), done.set()))
        beat.start()
        finished = done.wait(30)
        holder.rollback()
    beat.join()
    assert finished, "the heartbeat waited for the locked job"
    with services.db.begin() as s:
        leases = {j.id: j.lease_until for j in s.scalars(select(Job))}
    assert leases[second.id] == clock.now() + timedelta(seconds=30)     # extended
    assert leases[first.id] == before                                   # skipped this time
