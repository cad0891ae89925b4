"""Scale-out: events/s with 1, 2 and 4 worker processes at 50 ms provider latency, and the
scheduler leader failover time.

    .venv/bin/python bench/scale.py [--events 300] [--workers 1,2,4] [--concurrency 1] [--latency-ms 50]
                                    [--failovers 3]

Throughput: one hub on a fresh PostgreSQL database (gunicorn web, the sandbox as its own process,
installed through its pages, Asana connected, a "deal won -> Asana task" rule). For each worker
count, the sandbox CRM marks `--events` new deals won while no worker runs, so their webhooks
(deal created + deal won) are stored and wait in the queue; then N `flask --app hub worker`
processes start and the clock runs from the first claim to the last task created, read from the
jobs table; CPU per event is the worker processes' (with any render process of theirs, user +
system from /proc) and the sandbox's over that drain. Every Pipedrive and Asana call waits `--latency-ms` in the sandbox. An event is one won
deal carried all the way: two webhooks normalized and recorded, the rule run (deal, person,
organization, notes and files read from Pipedrive; the task found-or-created in Asana).

Failover: two `flask --app hub scheduler` processes; the leader is killed with SIGKILL and the time
until the standby holds the advisory lock (its heartbeat says leader) is measured, `--failovers`
times (the killed one is restarted as the new standby).

After the table comes the speed issue's goal (4 workers >= 3.5x one worker at 50 ms provider
latency: needs 1 and 4 in --workers and --latency-ms 50, else "not measured"), and the last line of
stdout is all the figures as one JSON object (bench/support/report.py); a row's speedup_vs_first is
against the first worker count given."""
from __future__ import annotations

import sys
from pathlib import Path

# bench/queue.py would shadow the stdlib queue module: keep this folder off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from bench.support.cluster import Cluster, wait_until  # noqa: E402
from bench.support.cpu import machine_busy, tree_cpu_seconds  # noqa: E402
from bench.support.report import emit, goal, print_goals  # noqa: E402


def throughput(cluster: Cluster, workers: int, events: int, round_no: int, timeout: float) -> dict:
    """Queue `events` won deals with no worker running, then let `workers` processes drain them."""
    last_job = cluster.scalar("SELECT coalesce(max(id), 0) FROM jobs")
    deals = cluster.sandbox("POST", "/_bench/deals", json={"plan": ["won"] * events, "prefix": f"Round {round_no}"})
    assert len(deals["deal_ids"]) == events
    flushed = cluster.sandbox("POST", "/_bench/flush", json={"timeout": timeout})
    assert flushed["flushed"], "the sandbox did not deliver every webhook"
    stored = cluster.scalar("SELECT count(*) FROM jobs WHERE id > :j AND kind = 'webhook.process'", j=last_job)
    assert stored == 2 * events, f"{stored} webhooks stored for {events} deals"
    # hold the backlog until every worker process is up, so all of them start on it together
    cluster.execute("UPDATE jobs SET run_at = run_at + interval '1 day' WHERE id > :j AND status = 'queued'", j=last_job)
    names = [f"worker-{i}" for i in range(workers)]
    for i in range(workers):
        cluster.start_worker(i)
    try:
        cluster.wait_workers_ready()
        pids = [cluster.procs[n].pid for n in names]
        cpu_before = tree_cpu_seconds(*pids)      # with any render process of theirs
        sandbox_before, machine_before = tree_cpu_seconds(cluster.procs["sandbox"].pid), machine_busy()
        cluster.execute("UPDATE jobs SET run_at = now() AT TIME ZONE 'utc' WHERE id > :j AND status = 'queued'",
                        j=last_job)
        wait_until(lambda: cluster.scalar(
            "SELECT count(*) FROM jobs WHERE id > :j AND kind = 'rule.execute' AND status IN ('done', 'dead')",
            j=last_job) >= events and cluster.scalar(
            "SELECT count(*) FROM jobs WHERE id > :j AND status IN ('queued', 'running')", j=last_job) == 0,
            timeout, f"{events} events through {workers} worker(s)", interval=0.2)
        cpu = tree_cpu_seconds(*pids) - cpu_before
        sandbox_cpu = tree_cpu_seconds(cluster.procs["sandbox"].pid) - sandbox_before
        machine = [a - b for a, b in zip(machine_busy(), machine_before)]
    finally:
        for name in names:
            cluster.kill(name, signal.SIGTERM)
    first, last = cluster.rows("SELECT min(started_at), max(finished_at) FROM jobs WHERE id > :j", j=last_job)[0]
    dead = cluster.scalar("SELECT count(*) FROM jobs WHERE id > :j AND status = 'dead'", j=last_job)
    busy = cluster.scalar("SELECT count(DISTINCT locked_by) FROM jobs WHERE id > :j", j=last_job)
    span = (last - first).total_seconds()
    return {"workers": workers, "events": events, "seconds": span, "events_per_s": events / span, "dead": dead,
            "busy_workers": busy, "cpu_ms_per_event": cpu * 1000 / events,
            "sandbox_ms_per_event": sandbox_cpu * 1000 / events, "machine_busy": machine[0] / max(1e-9, machine[1])}


def failover(cluster: Cluster, rounds: int) -> list[float]:
    """Kill the leading scheduler with SIGKILL; seconds until the standby leads."""
    cluster.start_scheduler(0)
    cluster.start_scheduler(1)

    def leader() -> int | None:
        rows = cluster.rows("SELECT pid FROM process_heartbeats WHERE role = 'scheduler' AND is_leader "
                            "ORDER BY beat_at DESC LIMIT 1")
        return rows[0][0] if rows else None

    times = []
    for _ in range(rounds):
        pid = wait_until(leader, 30, "a scheduler to lead")
        wait_until(lambda: cluster.scalar("SELECT count(*) FROM process_heartbeats WHERE role = 'scheduler' "
                                          "AND NOT is_leader") >= 1, 30, "a standby scheduler")
        name = next(n for n, p in cluster.procs.items() if n.startswith("scheduler-") and p.pid == pid)
        killed_at = time.monotonic()
        cluster.kill(name)
        cluster.execute("DELETE FROM process_heartbeats WHERE pid = :p", p=pid)   # its last beat says leader
        wait_until(lambda: (leader() or pid) != pid, 60, "the standby to take over", interval=0.02)
        times.append(time.monotonic() - killed_at)
        cluster.restart(name)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300, help="won deals per worker count")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--concurrency", type=int, default=1, help="threads per worker process")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--batch-size", type=int, default=1, help="jobs.batch_size (jobs claimed at once)")
    parser.add_argument("--failovers", type=int, default=3)
    parser.add_argument("--leader-retry", type=float, default=0.5, help="scheduler.leader_retry_seconds")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()

    counts = [int(w) for w in args.workers.split(",") if w]
    with tempfile.TemporaryDirectory() as tmp:
        # batch_size 1: these jobs wait on the network, so a thread takes one at a time and no
        # worker sits on a claimed batch while another runs out of work (the default 10 suits fast jobs)
        settings = {"HUB_JOBS_POLL_INTERVAL": "0.2", "HUB_JOBS_BATCH_SIZE": str(args.batch_size), "HUB_SCHEDULER_LEADER_RETRY_SECONDS": str(args.leader_retry),
                    "HUB_WEBHOOKS_RECONCILE_SECONDS": "3600"}
        cluster = Cluster(Path(tmp), web=2, workers=1, worker_concurrency=args.concurrency, schedulers=0,
                          settings=settings)
        try:
            cluster.start()
            cluster.wait_workers_ready()
            cluster.install()
            cluster.create_rules()
            cluster.kill("worker-0", signal.SIGTERM)
            for provider in ("pipedrive", "asana"):
                cluster.faults(provider, latency_ms=args.latency_ms)
            print(f"provider latency {args.latency_ms:g} ms; {args.concurrency} thread(s) per worker, batch size "
                  f"{args.batch_size}; {args.events} won deals per row; {os.cpu_count()} CPUs", flush=True)
            print(f"{'workers':>7} {'events':>6} {'seconds':>8} {'events/s':>9} {'speed-up':>8} {'busy':>4} {'dead':>4} "
                  f"{'CPU ms/event: workers':>21} {'sandbox':>7} {'machine busy':>12}")
            base, results, times = None, [], []
            for n, workers in enumerate(counts):
                r = throughput(cluster, workers, args.events, n, args.timeout)
                base = base or r["events_per_s"]
                r["speedup_vs_first"] = r["events_per_s"] / base
                results.append(r)
                print(f"{workers:>7} {r['events']:>6} {r['seconds']:>8.1f} {r['events_per_s']:>9.1f} "
                      f"{r['events_per_s'] / base:>7.2f}x {r['busy_workers']:>4} {r['dead']:>4} "
                      f"{r['cpu_ms_per_event']:>21.0f} {r['sandbox_ms_per_event']:>7.0f} {r['machine_busy']:>12.0%}",
                      flush=True)
            for provider in ("pipedrive", "asana"):
                cluster.faults(provider, latency_ms=0)
            if args.failovers:
                times = failover(cluster, args.failovers)
                print(f"scheduler leader failover (SIGKILL, leader_retry_seconds={args.leader_retry:g}): "
                      + ", ".join(f"{t:.2f} s" for t in times) + f"; median {statistics.median(times):.2f} s",
                      flush=True)
            one = next((r for r in results if r["workers"] == 1), None)
            four = next((r for r in results if r["workers"] == 4), None)
            speedup = four["events_per_s"] / one["events_per_s"] if one and four and args.latency_ms == 50 else None
            met = {"speedup_4_vs_1": goal(speedup, ">=", 3.5, "4 worker processes vs 1, 50 ms provider latency", "x")}
            print_goals(met)
        except BaseException:
            cluster.report_failure()
            raise
        finally:
            cluster.stop()
    emit("scale", results, met, failover_s=times, config={
        "events": args.events, "latency_ms": args.latency_ms, "worker_threads": args.concurrency,
        "batch_size": args.batch_size, "leader_retry_s": args.leader_retry, "cpus": os.cpu_count()})


if __name__ == "__main__":
    main()
