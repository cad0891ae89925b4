"""`GET /metrics` in the Prometheus text format, and the request fields of structured logs.

Two sources, so any web process answers for the whole cluster:
- **the database** (read at scrape time): queue depth by status and kind, due backlog and its age,
  jobs waiting for a retry, the dead letter by reason, latency and retries of recently finished
  jobs, live processes and the scheduler leader, connections needing the admin, contact sync
  progress. Workers need no scrape port of their own: the queue they work from *is* the record.
- **in-process counters**: webhook requests accepted and refused by reason (refusals are never
  stored, so only the process that answered knows). Under gunicorn set `PROMETHEUS_MULTIPROC_DIR`
  to an empty folder (one per machine, emptied at start) so the web processes' counters add up.

Every query is bounded by an index or a LIMIT: a scrape stays cheap with millions of done jobs."""
from __future__ import annotations

import functools
import hmac
import logging
import math
import os
import re
import time
from datetime import timedelta, timezone
from typing import Iterable

from flask import Blueprint, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select

from ..jobs.queue import DEAD, DONE, QUEUED, RUNNING
from ..logs import bind_context, unbind_context
from ..store import Connection, Job, ProcessHeartbeat
from ..store.models import ContactSync, SyncRun

log = logging.getLogger("hub.metrics")
bp = Blueprint("metrics", __name__)

RECENT_JOBS = 5000          # latency and retry figures come from the newest jobs that finished ...
RECENT_SECONDS = 300.0      # ... within this window
QUANTILES = (0.5, 0.9, 0.99)
_REASON = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]{0,60}):")

WEBHOOK_REJECTS = Counter("hub_webhook_rejects", "Webhook requests refused, by provider and reason "
                          "(too_large, not_found, unauthorized, malformed ...)", ["provider", "reason"])
WEBHOOKS_ACCEPTED = Counter("hub_webhooks_accepted", "Webhook requests answered 2xx: stored, or a known "
                            "event id answered without storing (duplicate)", ["provider", "result"])


def dead_reason(error: str | None) -> str:
    """A short, bounded label for a dead job: the error class its message starts with
    (Fatal, NeedsReauth, HTTPError ...), 'lease_expired' for lost workers, else 'other'."""
    if not error:
        return "unknown"
    if error.startswith("lease expired"):
        return "lease_expired"
    if error.startswith("no handler registered"):
        return "no_handler"
    match = _REASON.match(error)
    return match.group(1).rsplit(".", 1)[-1] if match else "other"


def _quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile of a sorted list."""
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


class DatabaseCollector(Collector):
    """Reads the cluster's state at scrape time (see the module docstring)."""

    def __init__(self, services):
        self.services = services

    def collect(self) -> Iterable[Metric]:
        started = time.perf_counter()
        up = GaugeMetricFamily("hub_database_up", "1 when the metrics queries could read the database")
        try:
            families = list(self._families())
        except Exception as exc:  # a scrape must answer even when the database does not
            log.warning("metrics: database unreadable: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families
        took = GaugeMetricFamily("hub_metrics_scrape_seconds", "Time the database part of this scrape took")
        took.add_metric([], time.perf_counter() - started)
        yield took

    def _families(self) -> Iterable[Metric]:
        services = self.services
        now = services.queue.clock.now()
        with services.db.engine.connect() as conn:
            yield from self._queue(conn, now)
            yield from self._recent(conn, now)
            yield from self._processes(conn, now)
            yield from self._connections(conn)
            yield from self._syncs(conn)

    # -- the queue ----------------------------------------------------------------------------------
    def _queue(self, conn, now) -> Iterable[Metric]:
        depth = GaugeMetricFamily("hub_jobs", "Jobs by status and kind (done jobs are counted in "
                                  "hub_jobs_finished_recent; housekeeping deletes them)", labels=["status", "kind"])
        for status, kind, count in conn.execute(
                select(Job.status, Job.kind, func.count()).where(Job.status.in_((QUEUED, RUNNING, DEAD)))
                .group_by(Job.status, Job.kind)):
            depth.add_metric([status, kind], count)
        yield depth

        due = GaugeMetricFamily("hub_jobs_due", "Queued jobs whose time has come (the backlog workers face)",
                                labels=["kind"])
        retrying = GaugeMetricFamily("hub_jobs_retrying", "Queued jobs that failed before and wait for their next "
                                     "attempt (backoff or Retry-After)", labels=["kind"])
        oldest = GaugeMetricFamily("hub_jobs_oldest_due_seconds", "How long the oldest due job has been waiting "
                                   "(0 when none): the lag of the queue", labels=["kind"])
        is_due = case((Job.run_at <= now, 1), else_=0)
        retried = case((Job.attempts > 0, 1), else_=0)
        rows = conn.execute(select(Job.kind, is_due, retried, func.count(), func.min(Job.run_at))
                            .where(Job.status == QUEUED).group_by(Job.kind, is_due, retried)).all()
        for kind in sorted({r[0] for r in rows}):
            mine = [r for r in rows if r[0] == kind]
            due.add_metric([kind], sum(r[3] for r in mine if r[1]))
            retrying.add_metric([kind], sum(r[3] for r in mine if r[2]))
            firsts = [r[4] for r in mine if r[1] and r[4] is not None]
            oldest.add_metric([kind], max(0.0, (now - min(firsts)).total_seconds()) if firsts else 0.0)
        yield due
        yield retrying
        yield oldest

        dead = GaugeMetricFamily("hub_jobs_dead_by_reason", "Jobs in the dead letter, by kind and the error class "
                                 "they died of (replay with `flask --app hub jobs replay`)", labels=["kind", "reason"])
        head = func.substr(Job.last_error, 1, 80)
        counts: dict[tuple[str, str], int] = {}
        for kind, error, count in conn.execute(select(Job.kind, head, func.count()).where(Job.status == DEAD)
                                               .group_by(Job.kind, head)):
            key = (kind, dead_reason(error))
            counts[key] = counts.get(key, 0) + count
        for (kind, reason), count in sorted(counts.items()):
            dead.add_metric([kind, reason], count)
        yield dead

    def _recent(self, conn, now) -> Iterable[Metric]:
        newest = (select(Job.kind, Job.status, Job.attempts, Job.created_at, Job.started_at, Job.finished_at)
                  .order_by(Job.id.desc()).limit(RECENT_JOBS).subquery())
        rows = conn.execute(select(newest).where(newest.c.status.in_((DONE, DEAD)),
                                                 newest.c.finished_at >= now - timedelta(seconds=RECENT_SECONDS))).all()
        window = f"the newest {RECENT_JOBS} jobs that finished in the last {RECENT_SECONDS:g} s"
        finished = GaugeMetricFamily("hub_jobs_finished_recent", f"Jobs that ended, of {window}",
                                     labels=["kind", "status"])
        retries = GaugeMetricFamily("hub_job_retries_recent", f"Attempts beyond the first, of {window}",
                                    labels=["kind"])
        latency = GaugeMetricFamily("hub_job_latency_seconds", f"Enqueue to done, quantiles of {window}",
                                    labels=["kind", "quantile"])
        run = GaugeMetricFamily("hub_job_run_seconds", f"Last attempt's claim to done, quantiles of {window}",
                                labels=["kind", "quantile"])
        by_kind: dict[str, list] = {}
        for row in rows:
            by_kind.setdefault(row.kind, []).append(row)
        for kind, mine in sorted(by_kind.items()):
            for status in (DONE, DEAD):
                finished.add_metric([kind, status], sum(1 for r in mine if r.status == status))
            retries.add_metric([kind], sum(max(0, (r.attempts or 0) - 1) for r in mine))
            done = [r for r in mine if r.status == DONE]
            waits = sorted((r.finished_at - r.created_at).total_seconds() for r in done if r.created_at)
            runs = sorted((r.finished_at - r.started_at).total_seconds() for r in done if r.started_at)
            for q in QUANTILES:
                if waits:
                    latency.add_metric([kind, str(q)], _quantile(waits, q))
                if runs:
                    run.add_metric([kind, str(q)], _quantile(runs, q))
        yield from (finished, retries, latency, run)

    # -- processes, connections, syncs --------------------------------------------------------------
    def _processes(self, conn, now) -> Iterable[Metric]:
        stale = self.services.settings["scheduler.heartbeat_stale_seconds"]
        live = GaugeMetricFamily("hub_processes_live", f"Worker and scheduler processes with a heartbeat in the "
                                 f"last {stale:g} s", labels=["role"])
        leaders = GaugeMetricFamily("hub_scheduler_leaders", "Live schedulers holding the leader lock (1 expected)")
        counts = {"worker": 0, "scheduler": 0}
        lead = 0
        for role, is_leader, count in conn.execute(
                select(ProcessHeartbeat.role, ProcessHeartbeat.is_leader, func.count())
                .where(ProcessHeartbeat.beat_at >= now - timedelta(seconds=stale))
                .group_by(ProcessHeartbeat.role, ProcessHeartbeat.is_leader)):
            counts[role] = counts.get(role, 0) + count
            lead += count if role == "scheduler" and is_leader else 0
        for role, count in sorted(counts.items()):
            live.add_metric([role], count)
        leaders.add_metric([], lead)
        yield live
        yield leaders

    def _connections(self, conn) -> Iterable[Metric]:
        family = GaugeMetricFamily("hub_connections", "Provider connections by status (needs_reconnection: the "
                                   "provider refused the refresh token; the admin must reconnect)",
                                   labels=["provider", "role", "status"])
        for provider, role, status, count in conn.execute(
                select(Connection.provider, Connection.role, Connection.status, func.count())
                .group_by(Connection.provider, Connection.role, Connection.status)):
            family.add_metric([provider, role, status], count)
        yield family

    def _syncs(self, conn) -> Iterable[Metric]:
        status = GaugeMetricFamily("hub_sync_status", "1 for each contact sync's current status",
                                   labels=["sync_id", "installation_id", "status"])
        done = GaugeMetricFamily("hub_sync_progress_done", "Items done in the current or last run, by phase",
                                 labels=["sync_id", "phase"])
        total = GaugeMetricFamily("hub_sync_progress_total", "Items to do in the current or last run, by phase "
                                  "(absent while not known)", labels=["sync_id", "phase"])
        items = GaugeMetricFamily("hub_sync_run_items", "What the current or last run did so far (created, "
                                  "updated, deleted, conflicts ...)", labels=["sync_id", "what"])
        finished = GaugeMetricFamily("hub_sync_last_finished_timestamp_seconds", "When the last run ended "
                                     "(Unix time), by how it ended", labels=["sync_id", "status"])
        rows = conn.execute(
            select(ContactSync.id, ContactSync.installation_id, ContactSync.status, SyncRun.status, SyncRun.progress,
                   SyncRun.stats, SyncRun.finished_at)
            .select_from(ContactSync).outerjoin(SyncRun, SyncRun.id == ContactSync.last_run_id)
            .order_by(ContactSync.id)).all()
        for sync_id, installation_id, sync_status, run_status, progress, stats, finished_at in rows:
            sid = str(sync_id)
            status.add_metric([sid, str(installation_id), sync_status], 1)
            for phase, value in sorted((progress or {}).items()):
                if isinstance(value, dict):
                    if isinstance(value.get("done"), (int, float)):
                        done.add_metric([sid, phase], value["done"])
                    if isinstance(value.get("total"), (int, float)):
                        total.add_metric([sid, phase], value["total"])
            for what, value in sorted((stats or {}).items()):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    items.add_metric([sid, what], value)
            if finished_at is not None and run_status:
                finished.add_metric([sid, run_status], finished_at.replace(tzinfo=timezone.utc).timestamp())
        yield from (status, done, total, items, finished)


def _registry(services) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_InProcess())
    registry.register(DatabaseCollector(services))
    return registry


class _InProcess(Collector):
    """This process's own counters (without PROMETHEUS_MULTIPROC_DIR)."""

    def collect(self) -> Iterable[Metric]:
        yield from WEBHOOK_REJECTS.collect()
        yield from WEBHOOKS_ACCEPTED.collect()


@bp.get("/metrics")
def metrics() -> Response:
    services = current_app.extensions["hub"]
    token = services.settings["metrics.token"]
    if token and not hmac.compare_digest(request.headers.get("Authorization", "").encode(), f"Bearer {token}".encode()):
        return Response("metrics: Authorization: Bearer <metrics.token> required\n", status=401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    return Response(generate_latest(_registry(services)), mimetype=CONTENT_TYPE_LATEST)


@functools.lru_cache(maxsize=1)
def _known_providers() -> frozenset[str]:
    from .. import connectors
    return frozenset(connectors.available())


# -- request hooks: webhook counters and the log context of a request ------------------------------
def _bind_request() -> None:
    view_args = request.view_args or {}
    g._log_token = bind_context(request_id=(request.headers.get("X-Request-Id") or os.urandom(6).hex())[:64],
                                method=request.method, path=request.path,
                                installation_id=view_args.get("installation_id"))


@bp.record_once
def _bind_first(state) -> None:
    """Bind before the access checks run, so their log lines carry the request's fields too."""
    state.app.before_request_funcs.setdefault(None, []).insert(0, _bind_request)


@bp.after_app_request
def _count_webhooks(response: Response) -> Response:
    if request.endpoint == "hooks.receive":
        provider = (request.view_args or {}).get("provider", "")
        provider = provider if provider in _known_providers() else "unknown"   # labels stay bounded
        if response.status_code < 300:
            duplicate = g.get("webhook_duplicate")   # set by the ingest: no parse of its own answer
            if duplicate is None:
                duplicate = (response.get_json(silent=True) or {}).get("duplicate")
            WEBHOOKS_ACCEPTED.labels(provider, "duplicate" if duplicate else "stored").inc()
        else:
            body = response.get_json(silent=True) or {}
            reason = str(body.get("error") or f"http_{response.status_code}")
            WEBHOOK_REJECTS.labels(provider, reason if reason.isidentifier() else f"http_{response.status_code}").inc()
    return response


@bp.teardown_app_request
def _unbind_request(_exc) -> None:
    token = g.pop("_log_token", None)
    if token is not None:
        try:
            unbind_context(token)
        except ValueError:  # torn down in another context than it was bound in: nothing to undo
            pass
