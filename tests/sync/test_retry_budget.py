"""A sync whose Google account keeps refusing (quota 429 with a long Retry-After): the sync job
makes at most `calls.failed_calls_per_effect` requests for its batch, waits at least Retry-After
between attempts (checked on the stored run time) and ends dead with Google's message; a
committed batch gives the next one a fresh budget. Both engines; the queue is driven by making
waiting jobs due, never by sleeping."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from hub.store import Job, utcnow
from hub.store.models import SyncRun
from hub.sync.jobs import RUN_KIND, request_run
from tests.sync.conftest import make_setup

BUDGET = 6


@pytest.fixture
def db_setup(make_live_hub, db_url):
    return make_setup(make_live_hub(db_url))


def sync_job(hub) -> Job:
    with hub.services.db.begin() as s:
        return s.scalar(select(Job).where(Job.kind == RUN_KIND).order_by(Job.id.desc()))


def make_due(hub) -> None:
    with hub.services.db.begin() as s:
        s.execute(update(Job).where(Job.status == "queued").values(run_at=utcnow() - timedelta(seconds=1)))


def run_sync_to_the_end(setup, each_wait=lambda job: None) -> Job:
    """Request a run and drive its job until it is no longer waiting, making each wait due at once
    (after `each_wait` has looked at the stored run time)."""
    hub = setup.hub
    with hub.services.db.begin() as s:
        request_run(hub.services, s, setup.sync_id, "manual")
    hub.run_jobs()
    for _ in range(20):
        job = sync_job(hub)
        if job.status != "queued":
            return job
        each_wait(job)
        make_due(hub)
        hub.run_jobs()
    return sync_job(hub)


def test_google_quota_refusals_forever_end_the_sync_job_after_six_requests(db_setup):
    setup, hub = db_setup, db_setup.hub
    setup.google.faults.update({"burst_429": 10_000, "retry_after": 90})
    before = setup.google.faults.api_requests

    def retry_after_honoured(job: Job) -> None:
        assert job.run_at - job.updated_at >= timedelta(seconds=90)   # Retry-After honoured by the queue
    job = run_sync_to_the_end(setup, retry_after_honoured)

    assert setup.google.faults.api_requests - before == BUDGET
    assert job.status == "dead" and job.failed_calls == BUDGET and job.attempts == BUDGET
    assert "google 429" in job.last_error and f"after {BUDGET} failed requests" in job.last_error
    with hub.services.db.begin() as s:
        run = s.scalars(select(SyncRun).where(SyncRun.sync_id == setup.sync_id)).one()
        assert run.status == "failed" and "google 429" in run.message

    setup.google.faults.update({"burst_429": 0})
    assert hub.services.queue.replay(job.id, installation_id=job.installation_id)                # a fresh budget: the sync goes through
    hub.run_jobs()
    assert sync_job(hub).status == "done" and len(setup.label_contacts()) == 3


def test_a_committed_batch_gives_the_next_batch_a_fresh_budget(db_setup, monkeypatch):
    from hub.sync import jobs
    from tests.sync.test_engine import bulk_persons

    setup = db_setup
    bulk_persons(setup, 250)                                   # two create batches of at most 200
    setup.google.faults.update({"burst_429": BUDGET - 1, "retry_after": 90})
    renew, refused = jobs.renew_budget, []

    def renew_then_refuse_once() -> None:                      # right after the first committed batch
        renew()
        if not refused:
            refused.append(True)
            setup.google.faults.update({"burst_429": 1})
    monkeypatch.setattr(jobs, "renew_budget", renew_then_refuse_once)
    job = run_sync_to_the_end(setup)

    assert refused and job.status == "done"                    # 5 + 1 failures, but in two effects
    assert len(setup.label_contacts()) == 253
