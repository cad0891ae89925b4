"""Four worker processes on PostgreSQL, 5,000 jobs, one worker killed with SIGKILL midway:
every job's effect is recorded exactly once and every job ends done."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, text

from hub.jobs import JobQueue
from hub.store import Database
from tests.conftest import REPO, TEST_KEY
from tests.jobs.effect_handlers import EFFECTS_DDL, RUNS_DDL

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

N_JOBS = 5000


def worker_env(db_url: str, instance) -> dict:
    env = dict(os.environ)
    env.update({
        "HUB_DATABASE_URL": db_url, "HUB_SECRET_KEYS": TEST_KEY, "HUB_SESSION_SECRET": "t",
        "HUB_INSTANCE_PATH": str(instance), "HUB_EMBEDDED": "false", "HUB_SANDBOX": "false",
        "HUB_JOBS_HANDLER_MODULES": "tests.jobs.effect_handlers", "HUB_JOBS_LEASE_SECONDS": "3",
        "HUB_JOBS_POLL_INTERVAL": "0.2", "HUB_LOG_LEVEL": "WARNING", "PYTHONPATH": str(REPO),
    })
    return env


def scalar(engine, sql: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def wait_for(predicate, timeout: float, what: str) -> None:
    """Wait on other processes' progress, read from the database (there is no in-process event)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_four_workers_one_killed_every_effect_exactly_once(pg_url, tmp_path):
    from tests.conftest import _truncate_pg
    _truncate_pg(pg_url)
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS job_effects"))
        conn.execute(text("DROP TABLE IF EXISTS job_runs"))
        conn.execute(text(EFFECTS_DDL))
        conn.execute(text(RUNS_DDL))
    db = Database(pg_url)
    queue = JobQueue(db)
    with db.begin() as session:
        for n in range(N_JOBS):
            queue.enqueue(session, "test.effect", {"n": n}, installation_id=None)

    env = worker_env(pg_url, tmp_path / "instance")
    cmd = [sys.executable, "-m", "flask", "--app", "hub", "worker", "--concurrency", "2"]
    procs = [subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(4)]
    try:
        wait_for(lambda: scalar(engine, "SELECT count(*) FROM job_effects") >= N_JOBS // 3, 120, "a third of the jobs")
        victim = procs[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        wait_for(lambda: scalar(engine, "SELECT count(*) FROM jobs WHERE status <> 'done'") == 0, 180, "all jobs done")
    finally:
        for proc in procs[1:]:
            proc.send_signal(signal.SIGTERM)
        for proc in procs[1:]:
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                proc.kill()

    assert victim.returncode == -signal.SIGKILL
    assert scalar(engine, "SELECT count(*) FROM job_effects") == N_JOBS
    assert scalar(engine, "SELECT count(DISTINCT n) FROM job_effects") == N_JOBS
    assert scalar(engine, "SELECT count(*) FROM jobs WHERE status = 'done'") == N_JOBS
    assert scalar(engine, f"SELECT count(DISTINCT pid) FROM job_runs WHERE pid = {victim.pid}") == 1
    assert scalar(engine, "SELECT count(DISTINCT pid) FROM job_effects") == 4  # all four did work
    runs = scalar(engine, "SELECT count(*) FROM job_runs")
    assert runs >= N_JOBS  # a run the kill interrupted was run again, yet its effect stands once
    for proc in procs[1:]:
        assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
    db.dispose()
    with engine.begin() as conn:  # the test's own tables must not outlive it
        conn.execute(text("DROP TABLE job_effects"))
        conn.execute(text("DROP TABLE job_runs"))
    engine.dispose()
