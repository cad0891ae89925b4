"""Job queue throughput: enqueue + claim + complete, on SQLite and PostgreSQL, 1 and 4 worker processes.

    .venv/bin/python bench/queue.py [--jobs 3000] [--engines sqlite,postgres] [--workers 1,4]

First enqueues the jobs, one per transaction (as webhooks do), and prints that rate; then starts
real `flask --app hub worker` processes (one thread each, batch claims of jobs.batch_size) and
prints jobs/s from the first claim to the last completion, read from the jobs table."""
from __future__ import annotations

import sys
from pathlib import Path

# this file is named queue.py: keep its folder off the import path, or it would shadow the stdlib queue
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import os
import subprocess
import tempfile
import time
import uuid

from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hub.jobs import JobQueue  # noqa: E402
from hub.store import Database, migrate  # noqa: E402

PG_ADMIN = os.environ.get("HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def make_database(engine_name: str, tmp: Path) -> tuple[str, callable]:
    if engine_name == "sqlite":
        url = f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:6]}.db'}"
        return url, lambda: None
    name = f"hub_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return url, drop


def run(engine_name: str, workers: int, jobs: int, tmp: Path) -> dict:
    url, drop = make_database(engine_name, tmp)
    db = Database(url)
    migrate.upgrade(db.engine)
    key = Fernet.generate_key().decode()
    env = dict(os.environ, HUB_DATABASE_URL=url, HUB_SECRET_KEYS=key, HUB_SESSION_SECRET="bench",
               HUB_INSTANCE_PATH=str(tmp / "instance"), HUB_EMBEDDED="false", HUB_SANDBOX="false",
               HUB_JOBS_HANDLER_MODULES="queue_handlers", HUB_JOBS_POLL_INTERVAL="0.05", HUB_LOG_LEVEL="WARNING",
               PYTHONPATH=f"{REPO / 'bench' / 'support'}{os.pathsep}{REPO}")
    from hub.secrets import KeyRing, SecretStore
    SecretStore(KeyRing([key])).verify(db)
    queue = JobQueue(db)
    t0 = time.perf_counter()
    for n in range(jobs):  # one transaction per job, as a webhook does
        with db.begin() as session:
            queue.enqueue(session, "bench.noop", {"n": n}, installation_id=None)
    enqueue_rate = jobs / (time.perf_counter() - t0)
    procs = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "hub", "worker", "--concurrency", "1"],
                              env=env, cwd=REPO, stdout=subprocess.DEVNULL) for _ in range(workers)]
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with db.engine.connect() as conn:
                if conn.execute(text("SELECT count(*) FROM jobs WHERE status <> 'done'")).scalar_one() == 0:
                    break
            time.sleep(0.1)
        from sqlalchemy import func, select
        from hub.store import Job
        with db.begin() as session:
            first, last = session.execute(select(func.min(Job.started_at), func.max(Job.finished_at))).one()
            per_worker = session.execute(select(Job.locked_by, func.count()).group_by(Job.locked_by)).all()
        span = (last - first).total_seconds()
        return {"engine": engine_name, "workers": workers, "jobs": jobs, "jobs_per_s": jobs / span,
                "enqueue_per_s": enqueue_rate, "busy_workers": len(per_worker)}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        db.dispose()
        drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--workers", default="1,4")
    args = parser.parse_args()
    print(f"{'engine':<10} {'workers':>7} {'jobs':>6} {'enqueue/s':>10} {'claim+run+complete/s':>21}")
    with tempfile.TemporaryDirectory() as tmp:
        for engine_name in args.engines.split(","):
            for workers in [int(w) for w in args.workers.split(",")]:
                r = run(engine_name, workers, args.jobs, Path(tmp))
                print(f"{r['engine']:<10} {r['workers']:>7} {r['jobs']:>6} {r['enqueue_per_s']:>10.0f} "
                      f"{r['jobs_per_s']:>21.0f}", flush=True)


if __name__ == "__main__":
    main()
