"""Exactly one scheduler leads; a standby takes over within seconds of the leader's death."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import select

from hub.scheduler import HubScheduler, Periodic, periodic
from hub.scheduler.leader import FileLeaderLock, PostgresLeaderLock
from hub.store import Job, ProcessHeartbeat
from hub import create_app
from tests.conftest import REPO, hub_config
from tests.jobs.test_multiprocess import wait_for, worker_env


def pg_plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def test_file_lock_admits_one_leader(tmp_path):
    a, b = FileLeaderLock(tmp_path / "s.lock"), FileLeaderLock(tmp_path / "s.lock")
    assert a.try_acquire() and not b.try_acquire()
    a.release()
    assert b.try_acquire()
    b.release()


@pytest.mark.postgres
def test_advisory_lock_admits_one_leader_and_frees_on_disconnect(pg_url):
    a, b = PostgresLeaderLock(pg_plain(pg_url), key=4242), PostgresLeaderLock(pg_plain(pg_url), key=4242)
    assert a.try_acquire() and a.still_held()
    assert not b.try_acquire()
    a.release()  # the connection closes, as when the process dies
    assert b.try_acquire() and b.still_held()
    assert not a.still_held()
    b.release()


def test_fire_enqueues_once_per_slot(make_hub):
    app = make_hub()
    services = app.extensions["hub"]
    sched = HubScheduler.for_database(services.queue, services.instance_path)
    schedule = Periodic("report", "test.ok", seconds=60, installation_id=None)
    assert sched.fire(schedule, at=600.0) is not None
    assert sched.fire(schedule, at=659.0) is None  # same slot: a second leader's firing is a no-op
    assert sched.fire(schedule, at=660.0) is not None
    with services.db.begin() as s:
        jobs = s.scalars(select(Job).where(Job.kind == "test.ok")).all()
    assert sorted(j.payload["slot"] for j in jobs) == [10, 11]


def test_leader_runs_registered_schedules(make_hub):
    app = make_hub()
    services = app.extensions["hub"]
    fired = threading.Event()
    services.queue.on_enqueue(fired.set)
    periodic("test.tick", "test.ok", seconds=0.2)
    try:
        sched = HubScheduler.for_database(services.queue, services.instance_path, retry_seconds=0.1).start()
        assert sched.became_leader.wait(10)
        assert fired.wait(10), "the leader did not fire its schedule"
        sched.stop()
    finally:
        from hub.scheduler import _periodics
        _periodics.pop("test.tick", None)


@pytest.mark.postgres
@pytest.mark.slow
def test_standby_takes_over_when_the_leader_is_killed(pg_url, tmp_path):
    from tests.conftest import _truncate_pg
    _truncate_pg(pg_url)
    env = worker_env(pg_url, tmp_path / "instance")
    env["HUB_SCHEDULER_LEADER_RETRY_SECONDS"] = "0.5"
    leader = subprocess.Popen([sys.executable, "-m", "flask", "--app", "hub", "scheduler"], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    app = create_app(hub_config(pg_url, tmp_path / "standby"))
    services = app.extensions["hub"]

    def leader_pid():
        with services.db.begin() as s:
            return s.scalar(select(ProcessHeartbeat.pid).where(ProcessHeartbeat.role == "scheduler",
                                                              ProcessHeartbeat.is_leader.is_(True)))
    try:
        wait_for(lambda: leader_pid() == leader.pid, 30, "the subprocess to lead")
        standby = HubScheduler.for_database(services.queue, services.instance_path, retry_seconds=0.2).start()
        time.sleep(0)  # let it try once; it must stay standby while the leader lives
        assert not standby.became_leader.wait(1.0)
        killed_at = time.monotonic()
        leader.send_signal(signal.SIGKILL)
        assert standby.became_leader.wait(10), "no takeover within 10 s"
        takeover = time.monotonic() - killed_at
        assert takeover < 5.0
        standby.stop()
        print(f"scheduler takeover after SIGKILL: {takeover:.2f} s")
    finally:
        services.db.dispose()
        if leader.poll() is None:
            leader.kill()
