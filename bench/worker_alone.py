"""The worker alone: what one event costs the job that records it and the rule run it leads to.

    .venv/bin/python bench/worker_alone.py [--events 350] [--engine postgres|sqlite] [--trace] [--profile out.prof]

A cluster of bench/support (the sandbox as its own server, gunicorn, one worker for the install)
gets the bench rule of bench/pipeline.py ("deal won -> Asana task"); its worker is stopped, N
"deal won" webhooks are posted and stored, and then this process drains them with one worker
thread (the hub's own Worker, as `flask worker` runs it). Printed: events/s and CPU per event of this
process (user + system; the sandbox and the database server are not counted) over all but the
first 50 events; SQL statements and committed transactions per event (engine events) over those
first 50, counted apart because a statement listener turns off hub/store/fast.py; with --trace the
statements of the first events in order. Single-threaded and in-process, it reads the same on a busy machine where the
multi-process benches do not. Every event must give one done rule run (checked). The last line of
stdout is the figures as one JSON object (bench/support/report.py)."""
from __future__ import annotations

import sys
from pathlib import Path

# bench/queue.py would shadow the stdlib queue module: keep this folder off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import cProfile  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.pipeline import Pipeline  # noqa: E402
from bench.support.pipeline_cluster import PipelineCluster  # noqa: E402
from bench.support.report import emit  # noqa: E402

TRACED = 60   # statements shown by --trace
COUNTED = 50  # events whose statements and transactions are counted (not timed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=350)
    parser.add_argument("--engine", default="postgres", choices=("postgres", "sqlite"))
    parser.add_argument("--trace", action="store_true", help="print the first statements, in order")
    parser.add_argument("--profile", default="", help="write a cProfile (CPU time) of the drain here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = PipelineCluster(workdir=Path(tmp), engine=args.engine, workers=1, schedulers=0,
                                  worker_concurrency=1)
        cluster.start()
        try:
            pipeline = Pipeline(cluster)          # installs (the worker registers the webhooks) and adds the rule
            cluster.wait_jobs_settled(60)
            cluster._terminate(cluster.procs["worker-0"])
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(pipeline.post, pipeline.deal_ids(args.events)))
            result = drain(cluster, args)
        finally:
            cluster.stop()
    n, timed = args.events, result["timed"]
    print(f"{args.engine}: {n} events, {result['jobs']} jobs; the last {timed} timed: {timed / result['seconds']:.1f} "
          f"events/s, {result['cpu'] * 1000 / timed:.2f} ms CPU/event; the first {n - timed} counted: "
          f"{result['statements']:.1f} statements/event, {result['commits']:.2f} transactions/event")
    emit("worker_alone", [{"engine": args.engine, "events": n, "events_per_s": timed / result["seconds"],
                           "cpu_ms_per_event": result["cpu"] * 1000 / timed,
                           "statements_per_event": result["statements"],
                           "transactions_per_event": result["commits"]}], {})


def drain(cluster: PipelineCluster, args) -> dict:
    for key, value in cluster.env().items():
        if key.startswith("HUB_"):
            os.environ[key] = value
    from sqlalchemy import event

    from hub import create_app
    from hub.jobs.worker import Worker

    app = create_app()
    services = app.extensions["hub"]
    counts = {"statements": 0, "commits": 0}
    shown: list[str] = []

    def on_execute(conn, cursor, statement, params, context, executemany):
        counts["statements"] += 1
        if args.trace and len(shown) < TRACED:
            shown.append("claim" if "SET status = 'running'" in statement else statement.split("\n")[0][:120])

    def on_commit(conn):
        counts["commits"] += 1
        if args.trace and len(shown) < TRACED:
            shown.append("-- commit")

    event.listen(services.db.engine, "before_cursor_execute", on_execute)
    event.listen(services.db.engine, "commit", on_commit)
    worker = Worker(services.queue, concurrency=1, app=app)
    # statements are counted on the first events only: a statement listener sends the hub's hot
    # statements through SQLAlchemy's own execution (hub/store/fast.py), so the timed part runs without
    counted_jobs = worker.drain(max_jobs=2 * COUNTED)
    counted = cluster.scalar("SELECT count(*) FROM rule_runs WHERE status = 'done'")
    event.remove(services.db.engine, "before_cursor_execute", on_execute)
    event.remove(services.db.engine, "commit", on_commit)
    profile = cProfile.Profile(time.process_time) if args.profile else None
    wall, cpu = time.perf_counter(), time.process_time()
    if profile:
        profile.enable()
    jobs = worker.drain()
    if profile:
        profile.disable()
        profile.dump_stats(args.profile)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done = cluster.scalar("SELECT count(*) FROM rule_runs WHERE status = 'done'")
    services.db.dispose()
    if done != args.events:
        sys.exit(f"{done} rule runs done for {args.events} events")
    if args.trace:
        print("\n".join(shown))
    return {"jobs": counted_jobs + jobs, "seconds": wall, "cpu": cpu, "timed": args.events - counted,
            "statements": counts["statements"] / counted, "commits": counts["commits"] / counted}


if __name__ == "__main__":
    main()
