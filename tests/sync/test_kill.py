"""kill -9 in the middle of a run: `flask --app hub sync run <id>` in its own process on PostgreSQL,
against the sandbox served from this test process, is killed with SIGKILL after some batches were
written; once its lease runs out the next run resumes the same run and nothing is duplicated."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from hub.store.models import ContactSync, SyncLink, SyncRun
from tests.conftest import REPO, TEST_KEY, _truncate_pg
from tests.sync.conftest import make_setup
from tests.sync.test_engine import bulk_persons

pytestmark = pytest.mark.postgres
LEASE = 2


def wait_for(predicate, timeout: float, what: str) -> None:
    """Another process's progress is only visible in the database: poll it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_mid_run_then_resume_without_duplicates(make_live_hub, pg_url, tmp_path):
    _truncate_pg(pg_url)
    hub = make_live_hub(pg_url, **{"sync.lease_seconds": LEASE})
    setup = make_setup(hub)
    bulk_persons(setup, 997)                                  # 1,000 persons: 5 batch creates of 200
    setup.google.faults.update({"latency_ms": 150})           # slow enough to be caught between batches
    db = hub.services.db

    def linked() -> int:
        with db.begin() as s:
            return s.scalar(select(func.count()).select_from(SyncLink).where(
                SyncLink.sync_id == setup.sync_id, SyncLink.state == "linked"))

    env = dict(os.environ, HUB_DATABASE_URL=pg_url, HUB_SECRET_KEYS=TEST_KEY, HUB_SESSION_SECRET="t",
               HUB_INSTANCE_PATH=str(tmp_path / "cli"), HUB_EMBEDDED="false", HUB_SANDBOX="false",
               HUB_LOG_LEVEL="WARNING", HUB_SYNC_LEASE_SECONDS=str(LEASE), PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "hub", "sync", "run", str(setup.sync_id)],
                            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: linked() >= 400 or proc.poll() is not None, 90, "two batches written")
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    killed_at = linked()
    assert 400 <= killed_at < 1000
    with db.begin() as s:
        [run] = s.scalars(select(SyncRun).where(SyncRun.sync_id == setup.sync_id)).all()
        assert run.status == "running"
        sync = s.get(ContactSync, setup.sync_id)
        assert sync.lease_owner and sync.lease_owner.split(":")[1] == str(proc.pid)   # the dead run still holds it

    setup.google.faults.update({"latency_ms": 0})
    wait_for(lambda: _lease_expired(db, setup.sync_id), LEASE + 5, "the dead run's lease to run out")
    result = setup.run()
    assert result["status"] == "done" and result["run_id"] == run.id, result

    contacts = setup.label_contacts()
    markers = Counter(next(c["value"] for c in p.get("clientData") or [] if c["key"] == "relayhub.crm_id")
                      for p in contacts)
    assert len(contacts) == 1000 and len(markers) == 1000 and max(markers.values()) == 1   # no duplicates
    assert set(markers) == {str(p["id"]) for p in setup.persons().values()}
    assert len(setup.persons()) == 1000                                                # nor in the CRM
    assert linked() == 1000
    with db.begin() as s:
        assert s.get(SyncRun, run.id).attempts == 2
    assert setup.run()["message"] == "nothing to do"


def _lease_expired(db, sync_id: int) -> bool:
    from hub.store import utcnow
    with db.begin() as s:
        sync = s.get(ContactSync, sync_id)
        return sync.lease_until is None or sync.lease_until < utcnow()
