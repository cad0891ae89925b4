"""Scheduling and the database-dependent parts on both engines: one schedule per enabled sync, a
tick asks for a run, requests coalesce, runs of one sync never overlap, kill-and-resume."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from hub.scheduler import HubScheduler
from hub.store import Job
from hub.store.models import SyncLink, SyncRun
from hub.sync.engine import SyncBusy, SyncEngine
from hub.sync.jobs import request_run
from tests.sync.conftest import make_setup
from tests.sync.test_engine import Killed, bulk_persons


@pytest.fixture
def db_setup(make_live_hub, db_url):
    return make_setup(make_live_hub(db_url))


def test_schedules_ticks_and_coalesced_runs(db_setup):
    setup, hub = db_setup, db_setup.hub
    setup.change(schedule_seconds=600)
    scheduler = HubScheduler(hub.services.queue, lock=None, app=hub.app)
    [schedule] = [p for p in scheduler.all_schedules() if p.name == f"sync:{setup.sync_id}"]
    assert (schedule.kind, schedule.seconds, schedule.payload) == ("sync.tick", 600.0, {"sync_id": setup.sync_id})
    assert scheduler.fire(schedule, at=1200.0) is not None
    assert scheduler.fire(schedule, at=1300.0) is None        # same slot: once
    with hub.services.db.begin() as s:
        assert request_run(hub.services, s, setup.sync_id, "manual") is not None
    hub.run_jobs()                                            # tick -> request coalesces with the waiting run
    with hub.services.db.begin() as s:
        runs = s.scalar(select(func.count()).select_from(Job).where(Job.kind == "sync.run"))
        assert runs == 1
        assert s.scalar(select(func.count()).select_from(SyncRun)) == 1
    setup.change(enabled=False)
    assert not [p for p in scheduler.all_schedules() if p.name.startswith("sync:")]


def test_one_run_at_a_time_and_kill_resume(db_setup):
    setup = db_setup
    bulk_persons(setup, 210)
    other = SyncEngine(setup.hub.services, setup.sync_id)

    def kill_and_try_a_second_run(engine, what):
        with pytest.raises(SyncBusy):                          # the lease keeps a second run out
            other.run()
        raise Killed()

    with pytest.raises(Killed):
        setup.run(after_batch=kill_and_try_a_second_run)
    result = setup.run()
    assert result["status"] == "done"
    assert len(setup.label_contacts()) == 213
    with setup.hub.services.db.begin() as s:
        assert s.scalar(select(func.count()).select_from(SyncLink).where(SyncLink.state == "linked")) == 213
        assert s.scalar(select(func.count()).select_from(SyncRun)) == 1
