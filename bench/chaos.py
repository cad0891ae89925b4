"""Chaos: a scale-out hub under faults loses nothing and does nothing twice.

    .venv/bin/python bench/chaos.py [--deliveries 10000] [--workers 4] [--seed 1] [--keep DIR]

Starts the hub on a fresh PostgreSQL database as production runs it (gunicorn with 2 web
processes, 4 `worker` processes, a `scheduler`) and the provider sandbox as its own process; installs
from the sandbox marketplace, connects Asana, and creates three rules (deal won, deal lost, deal
moved to "Contact made" -> an Asana task named "<event> deal <id>"). Then the sandbox CRM changes
deals (won, lost, moved, or only created) until about `--deliveries` webhook deliveries were made,
while:
- the sandbox sends 20 % of the webhooks twice and holds back 10 % behind the next one (out of order),
- Pipedrive and Asana answer 10 % of API calls with 503, and bursts of 429 (Retry-After) come every
  few seconds,
- every access token expires every few seconds (the hub refreshes on the 401, one refresh at a time),
- a random worker is killed with SIGKILL every 1-4 s and restarted a moment later,
- the scheduler polls the CRM for missed changes (reconciliation) every few seconds.

At the end (faults off, every worker back, the queue settled) it checks against the sandbox:
every won / lost / moved deal has exactly one task, no task lacks such a deal, every webhook the
sandbox sent was acknowledged and stored once, every job is done or dead with a reason, no rule run
failed, no connection needs reconnection and the sandbox counted 0 `invalid_grant`. It prints the
figures and every problem found; the exit status is 1 when there is one.

tests/scale/test_chaos.py runs the same with reduced counts (`make test`)."""
from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # bench/queue.py would shadow the stdlib queue module
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import requests  # noqa: E402

from bench.support.cluster import Cluster, wait_until  # noqa: E402

ACTIONS = {"won": "deal.won", "lost": "deal.lost", "move": "deal.stage_changed"}
MIX = (("won", 0.3), ("lost", 0.2), ("move", 0.3), ("none", 0.2))
TASK_NAME = re.compile(r"^(deal\.won|deal\.lost|deal\.stage_changed) deal (\d+)$")


@dataclass
class Options:
    deliveries: int = 10000          # webhook deliveries to provoke (first attempts + duplicates)
    duplicate_rate: float = 0.2
    reorder_rate: float = 0.1
    error_rate: float = 0.1          # 5xx share of Pipedrive and Asana API calls
    burst_every: float = 4.0         # seconds between 429 bursts (alternating Pipedrive / Asana)
    burst_size: int = 6              # API calls answered 429 per burst
    expire_every: float = 3.0        # seconds between "every access token expires now"
    strict_refresh: bool = False     # rotate refresh tokens, reuse refused (Pipedrive and Asana keep them)
    kill_every: tuple[float, float] = (1.0, 4.0)      # a random worker is SIGKILLed after this many seconds
    restart_after: tuple[float, float] = (0.2, 1.5)   # ... and restarted after this many
    web: int = 2
    workers: int = 4
    concurrency: int = 4
    scheduler: int = 1
    min_chaos_seconds: float = 0.0   # keep the faults on at least this long (while the hub works off its backlog)
    failed_calls: int = 6            # [calls] failed_calls_per_effect (the hub's default)
    batch: int = 20                  # deals changed per call to the sandbox
    max_pending: int = 150           # the sandbox's webhook backlog is kept under this
    seed: int = 1
    settle_timeout: float = 600.0
    workdir: Path | None = None
    quiet: bool = False


@dataclass
class Report:
    options: Options
    deals: dict[str, int] = field(default_factory=dict)
    deliveries: dict = field(default_factory=dict)
    oauth: dict = field(default_factory=dict)
    chaos: Counter = field(default_factory=Counter)
    jobs: dict[str, int] = field(default_factory=dict)
    dead: list = field(default_factory=list)
    tasks: int = 0
    inbox: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        d, o = self.deliveries, self.options
        out = [
            f"deals changed in the CRM: {sum(self.deals.values())} ({', '.join(f'{k} {v}' for k, v in sorted(self.deals.items()))})",
            f"webhook deliveries: {d.get('deliveries', 0)} (duplicates {d.get('duplicates', 0)}, out of order "
            f"{d.get('reordered', 0)}, sandbox retries {d.get('retries', 0)}, not acknowledged {d.get('failed', 0)}); "
            f"{d.get('events', 0)} distinct events, {self.inbox} stored by the hub",
            f"chaos: {self.chaos['kills']} workers killed (SIGKILL) and restarted, {self.chaos['expiries']} token "
            f"expiries ({self.chaos['expired_tokens']} tokens), {self.chaos['bursts']} bursts of {o.burst_size} x 429, "
            f"{o.error_rate:.0%} 5xx",
            "OAuth at the sandbox: " + "; ".join(f"{p} {dict(sorted(c.items()))}" for p, c in sorted(self.oauth.items()) if c),
            f"jobs: {', '.join(f'{k} {v}' for k, v in sorted(self.jobs.items()))}; Asana tasks: {self.tasks}",
            "hub /metrics: " + ", ".join(f"{k} {v:g}" for k, v in sorted(self.metrics.items())),
            "time: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()),
        ]
        for kind, error, count in self.dead[:10]:
            out.append(f"dead: {count} x {kind}: {error}")
        out.append("PASS: nothing lost, nothing doubled" if not self.problems else
                   f"FAIL: {len(self.problems)} problem(s)")
        out += [f"  - {p}" for p in self.problems[:40]]
        return out


class Chaos:
    """Background threads doing harm on a schedule until stopped."""

    def __init__(self, cluster: Cluster, options: Options, rng: random.Random, counts: Counter):
        self.cluster, self.o, self.rng, self.counts = cluster, options, rng, counts
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()   # process starts and kills never interleave

    def start(self) -> None:
        for target in (self._killer, self._expirer, self._bursts):
            thread = threading.Thread(target=self._guard, args=(target,), daemon=True, name=f"chaos-{target.__name__}")
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(60)

    def _guard(self, target) -> None:
        try:
            target()
        except Exception as exc:  # a chaos thread that dies would quietly weaken the test: report it
            self.errors.append(f"{target.__name__}: {type(exc).__name__}: {exc}")

    def _killer(self) -> None:
        while not self.stop_event.wait(self.rng.uniform(*self.o.kill_every)):
            with self.lock:
                alive = [n for n in self.cluster.worker_names() if self.cluster.procs[n].alive()]
                if not alive:
                    continue
                victim = self.rng.choice(alive)
                self.cluster.kill(victim, signal.SIGKILL)
                self.counts["kills"] += 1
            if self.stop_event.wait(self.rng.uniform(*self.o.restart_after)):
                break
            with self.lock:
                self.cluster.restart(victim)

    def _expirer(self) -> None:
        while not self.stop_event.wait(self.o.expire_every):
            for provider in ("pipedrive", "asana"):
                self.counts["expired_tokens"] += self.cluster.expire_tokens(provider)
            self.counts["expiries"] += 1

    def _bursts(self) -> None:
        providers = ("pipedrive", "asana")
        n = 0
        while not self.stop_event.wait(self.o.burst_every):
            self.cluster.faults(providers[n % 2], burst_429=self.o.burst_size)
            self.counts["bursts"] += 1
            n += 1

    def revive_all(self) -> None:
        with self.lock:
            for name in self.cluster.worker_names():
                if not self.cluster.procs[name].alive():
                    self.cluster.restart(name)


def plan_deals(options: Options, rng: random.Random) -> list[str]:
    """Enough deals for about `deliveries` deliveries: a created deal sends one webhook, a changed
    one two; duplicates add their share."""
    changed = sum(w for a, w in MIX if a != "none")
    per_deal = (1 + changed) * (1 + options.duplicate_rate)
    count = max(len(MIX), math.ceil(options.deliveries / per_deal))
    actions, weights = zip(*MIX)
    return rng.choices(actions, weights, k=count)


def scrape(url: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    wanted = {"hub_webhooks_accepted_total", "hub_webhook_rejects_total"}
    out: dict[str, float] = {}
    response = requests.get(f"{url}/metrics", timeout=30)
    response.raise_for_status()
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name in wanted:
                key = f"{sample.name}{{{','.join(f'{k}={v}' for k, v in sorted(sample.labels.items()))}}}"
                out[key] = out.get(key, 0) + sample.value
            elif sample.name in ("hub_jobs_dead_by_reason",):
                out[f"{sample.name}{{{sample.labels.get('kind')},{sample.labels.get('reason')}}}"] = sample.value
    return out


def check(cluster: Cluster, report: Report, made: list[dict], result: dict) -> None:
    """Compare the CRM's deals with Asana's tasks and the hub's records; fill report.problems."""
    problems = report.problems
    expected = {(ACTIONS[d["action"]], d["id"]) for d in made if d["action"] in ACTIONS}
    untouched = {d["id"] for d in made if d["action"] == "none"}
    seen: Counter = Counter()
    externals: Counter = Counter()
    for task in result["tasks"]:
        match = TASK_NAME.match(task["name"])
        if not match:
            problems.append(f"task {task['gid']} {task['name']!r} was not made by the bench rules")
            continue
        seen[(match.group(1), int(match.group(2)))] += 1
        if task.get("external_gid"):
            externals[task["external_gid"]] += 1
    report.tasks = len(result["tasks"])
    for key in sorted(expected):
        if seen[key] == 0:
            problems.append(f"lost: {key[0]} of deal {key[1]} has no Asana task")
        elif seen[key] > 1:
            problems.append(f"doubled: {key[0]} of deal {key[1]} has {seen[key]} Asana tasks")
    for key in sorted(set(seen) - expected):
        why = "was only created" if key[1] in untouched else "had no such change"
        problems.append(f"task without a deal: {key[0]} for deal {key[1]}, which {why}")
    for gid, count in externals.items():
        if count > 1:
            problems.append(f"doubled: {count} tasks carry the external id {gid}")

    deliveries = result["deliveries"]
    if deliveries["never_acknowledged"]:
        problems.append(f"lost: {deliveries['events'] - deliveries['events_acknowledged']} webhook events never "
                        f"acknowledged by the hub, e.g. {deliveries['never_acknowledged'][:3]}")
    report.inbox = cluster.scalar("SELECT count(*) FROM inbox_events")
    if report.inbox != deliveries["events_acknowledged"]:
        problems.append(f"the hub stored {report.inbox} webhooks for {deliveries['events_acknowledged']} distinct "
                        "acknowledged events (each must be stored exactly once)")
    for status, count in cluster.rows("SELECT status, count(*) FROM inbox_events WHERE status NOT IN "
                                      "('processed', 'ignored') GROUP BY status"):
        problems.append(f"{count} stored webhooks left {status}")

    report.jobs = {s: n for s, n in cluster.rows("SELECT status, count(*) FROM jobs GROUP BY status")}
    for status, kind, count in cluster.rows("SELECT status, kind, count(*) FROM jobs WHERE status NOT IN "
                                            "('done', 'dead') GROUP BY status, kind"):
        problems.append(f"{count} {kind} jobs still {status}")
    report.dead = [tuple(r) for r in cluster.rows(
        "SELECT kind, coalesce(substr(last_error, 1, 200), ''), count(*) FROM jobs WHERE status = 'dead' "
        "GROUP BY kind, substr(last_error, 1, 200) ORDER BY count(*) DESC")]
    for kind, error, count in report.dead:
        if not error.strip():
            problems.append(f"{count} dead {kind} jobs without a reason")
    for status, count, error in cluster.rows(
            "SELECT status, count(*), max(substr(coalesce(error, ''), 1, 300)) FROM rule_runs "
            "WHERE status <> 'done' GROUP BY status"):
        problems.append(f"{count} rule runs ended {status}" + (f" (e.g. {error})" if error else ""))
    runs = cluster.scalar("SELECT count(*) FROM rule_runs")
    if runs != len(expected):
        problems.append(f"{runs} rule runs for {len(expected)} won/lost/moved deals")
    events = cluster.scalar("SELECT count(*) FROM hub_events WHERE kind IN ('deal.won', 'deal.lost', 'deal.stage_changed')")
    if events != len(expected):
        problems.append(f"{events} won/lost/moved events recorded for {len(expected)} changes in the CRM")

    report.oauth = result["oauth"]
    for provider, counters in result["oauth"].items():
        if counters.get("invalid_grant"):
            problems.append(f"{provider}: {counters['invalid_grant']} invalid_grant at the token endpoint")
    for provider, status, count in cluster.rows("SELECT provider, status, count(*) FROM connections "
                                                "WHERE status <> 'connected' GROUP BY provider, status"):
        problems.append(f"{count} {provider} connection(s) {status}")


def run(options: Options) -> Report:
    rng = random.Random(options.seed)
    report = Report(options)
    owned = options.workdir is None
    tmp = tempfile.TemporaryDirectory() if owned else None
    workdir = Path(tmp.name) if tmp else Path(options.workdir)
    (workdir / "prometheus").mkdir(parents=True, exist_ok=True)
    settings = {
        "HUB_JOBS_LEASE_SECONDS": "3",          # a killed worker's jobs are taken over within seconds
        "HUB_JOBS_POLL_INTERVAL": "0.25",
        "HUB_JOBS_BACKOFF_BASE": "0.5",
        "HUB_JOBS_BACKOFF_CAP": "3",
        "HUB_JOBS_MAX_ATTEMPTS": "10",
        "HUB_CALLS_FAILED_CALLS_PER_EFFECT": str(options.failed_calls),
        "HUB_SCHEDULER_LEADER_RETRY_SECONDS": "1",
        "HUB_WEBHOOKS_RECONCILE_SECONDS": "5",  # the missed-event poll runs all through the chaos
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prometheus"),
    }
    cluster = Cluster(workdir, web=options.web, workers=options.workers, worker_concurrency=options.concurrency,
                      schedulers=options.scheduler, log_format="json", log_level="WARNING", settings=settings)
    say = (lambda *a: None) if options.quiet else (lambda *a: print(*a, flush=True))
    chaos = Chaos(cluster, options, rng, report.chaos)
    t0 = time.monotonic()
    try:
        cluster.start()
        cluster.wait_workers_ready()
        cluster.install()
        cluster.create_rules()
        report.seconds["set-up"] = time.monotonic() - t0
        plan = plan_deals(options, rng)
        report.deals = dict(Counter(plan))
        say(f"{len(plan)} deals for about {options.deliveries} deliveries; chaos on")
        cluster.faults("pipedrive", error_rate=options.error_rate, webhook_duplicate_rate=options.duplicate_rate,
                       webhook_reorder_rate=options.reorder_rate)
        cluster.faults("asana", error_rate=options.error_rate)
        if options.strict_refresh:
            for provider in ("pipedrive", "asana"):
                cluster.faults(provider, strict_refresh=True)
        chaos.start()
        t1 = time.monotonic()
        made: list[dict] = []
        for start in range(0, len(plan), options.batch):
            wait_until(lambda: cluster.sandbox("GET", "/_bench/pending")["pending"] < options.max_pending, 300,
                       "the sandbox to deliver its backlog", interval=0.05)
            chunk = plan[start:start + options.batch]
            ids = cluster.sandbox("POST", "/_bench/deals", json={"plan": chunk, "prefix": f"Chaos {start}"})["deal_ids"]
            made += [{"id": i, "action": a} for i, a in zip(ids, chunk)]
            if not options.quiet and (start // options.batch) % 25 == 0:
                say(f"  {len(made)}/{len(plan)} deals, {report.chaos['kills']} kills so far")
        flushed = cluster.sandbox("POST", "/_bench/flush", json={"timeout": 300})
        report.seconds["load under chaos"] = time.monotonic() - t1
        time.sleep(max(0.0, options.min_chaos_seconds - (time.monotonic() - t1)))
        chaos.stop()
        if chaos.errors:
            report.problems += [f"chaos thread failed: {e}" for e in chaos.errors]
        if not flushed["flushed"]:
            report.problems.append(f"the sandbox still had {flushed['pending']} webhooks to deliver")
        for provider in ("pipedrive", "asana"):
            cluster.faults(provider, error_rate=0, burst_429=0, webhook_duplicate_rate=0, webhook_reorder_rate=0)
        chaos.revive_all()
        t2 = time.monotonic()
        cluster.wait_jobs_settled(options.settle_timeout)
        report.seconds["settle"] = time.monotonic() - t2
        result = cluster.sandbox("GET", "/_bench/result")
        report.deliveries = result["deliveries"]
        check(cluster, report, made, result)
        report.metrics = scrape(cluster.web_url)
    except BaseException:
        if not options.quiet:
            cluster.report_failure()
        raise
    finally:
        chaos.stop()
        cluster.stop()
        if tmp is not None:
            tmp.cleanup()
    report.seconds["total"] = time.monotonic() - t0
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=10000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4, help="threads per worker process")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--strict-refresh", action="store_true",
                        help="the sandbox rotates refresh tokens and refuses reuse (Bitrix24-style; see README)")
    parser.add_argument("--keep", type=Path, default=None, help="keep process logs in this folder")
    args = parser.parse_args()
    options = Options(deliveries=args.deliveries, workers=args.workers, concurrency=args.concurrency, seed=args.seed,
                      workdir=args.keep, strict_refresh=args.strict_refresh)
    report = run(options)
    print("\n".join(report.lines()))
    sys.exit(1 if report.problems else 0)


if __name__ == "__main__":
    main()
