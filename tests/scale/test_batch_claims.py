"""Regression (found by bench/chaos.py): a worker claims jobs in batches and runs them one after
another. When workers were killed, every job of the batch paid an attempt, even those that never
started; jobs waiting behind a slow one were claimed by worker after worker and went to the dead
letter ("lease expired 10 times") without ever running, so their webhooks and rule runs were lost.
Now an attempt counts when a job starts (the first of a batch is started by the claim itself, as a
single claim's job is); a job that really kills its workers still ends dead."""
from __future__ import annotations

from hub.jobs import Worker, handler
from hub.store import FakeClock, Job

ran: list[int] = []


@handler("test.batch.ok")
def _ok(ctx) -> None:
    ran.append(ctx.payload["n"])


def row(services, job_id) -> Job:
    with services.db.begin() as s:
        return s.get(Job, job_id)


def test_jobs_claimed_in_a_batch_but_never_started_keep_their_attempts(make_hub):
    clock = FakeClock()
    app = make_hub(clock=clock, **{"jobs.max_attempts": 20, "jobs.lease_seconds": 5.0})
    services = app.extensions["hub"]
    queue = services.queue
    with services.db.begin() as s:
        ids = [queue.enqueue(s, "test.batch.ok", {"n": n}, installation_id=None) for n in range(4)]
    # ten workers in a row claim the batch and die (kill -9): each had started only the first job
    for n in range(10):
        claimed = queue.claim(f"doomed-{n}", limit=10)
        assert [j.id for j in claimed] == ids
        assert [j.attempts for j in claimed] == [n + 1, 1, 1, 1]   # the waiting ones: the attempt about to be made
        assert row(services, ids[0]).started_at is not None and row(services, ids[1]).started_at is None
        clock.advance(6)
    ran.clear()
    worker = Worker(queue, app=app, worker_id="survivor", batch_size=10)
    assert worker.run_once(limit=10) == 4
    assert sorted(ran) == [0, 1, 2, 3]
    assert [(row(services, i).status, row(services, i).attempts) for i in ids] == [("done", 11)] + [("done", 1)] * 3


def test_a_job_started_in_a_batch_that_kills_its_workers_still_ends_dead(make_hub):
    clock = FakeClock()
    app = make_hub(clock=clock, **{"jobs.max_attempts": 3, "jobs.lease_seconds": 5.0})
    services = app.extensions["hub"]
    queue = services.queue
    with services.db.begin() as s:
        poison = queue.enqueue(s, "test.batch.ok", {"n": 1}, installation_id=None)
        waiting = queue.enqueue(s, "test.batch.ok", {"n": 2}, installation_id=None)
    for n in range(3):   # each worker starts the first job of its batch, then dies inside it
        first, second = queue.claim(f"w{n}", limit=10)
        assert first.id == poison and queue.mark_started(first, f"w{n}")
        clock.advance(6)
    ran.clear()
    Worker(queue, app=app, worker_id="last", batch_size=10).run_once(limit=10)
    dead = row(services, poison)
    assert dead.status == "dead" and "lease expired 3 times" in dead.last_error
    assert row(services, waiting).status == "done" and row(services, waiting).attempts == 1 and ran == [2]


def test_a_batch_job_taken_over_before_it_started_does_not_run_twice(make_hub):
    clock = FakeClock()
    app = make_hub(clock=clock, **{"jobs.lease_seconds": 5.0})
    services = app.extensions["hub"]
    queue = services.queue
    with services.db.begin() as s:
        queue.enqueue(s, "test.batch.ok", {"n": 6}, installation_id=None)
        job_id = queue.enqueue(s, "test.batch.ok", {"n": 7}, installation_id=None)
    [_, stale] = queue.claim("slow", limit=10)
    clock.advance(6)                                        # "slow" stalls past its lease ...
    [_, fresh] = queue.claim("fast", limit=10)              # ... and another worker takes the batch
    assert fresh.id == job_id
    assert queue.mark_started(stale, "slow") is False       # the stalled worker must not start it
    assert queue.mark_started(fresh, "fast") is True
    ran.clear()
    assert Worker(queue, app=app, worker_id="fast").run_job(fresh) == "done"
    assert ran == [7] and row(services, job_id).attempts == 1
