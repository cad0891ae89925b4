"""A worker process (or, embedded, a few threads of the web process) that runs queued jobs.

Each thread claims one job at a time; a heartbeat thread renews the leases of running jobs and
records the process in `process_heartbeats` (read by /readyz). Wake-ups come from in-process
enqueues and, on PostgreSQL, LISTEN/NOTIFY, so polling is only the fallback."""
from __future__ import annotations

import logging
import dataclasses
import os
import socket
import threading
import traceback
import uuid
from typing import Any

from sqlalchemy import delete, update

from ..connectors.retry import CallBudget, effect_budget, policy
from ..logs import log_context
from ..store import ProcessHeartbeat
from ..store.sql import upsert
from .errors import Defer, Fatal, Retriable
from .queue import NOTIFY_CHANNEL, SUCCESSOR_WAITS, ClaimedJob, JobQueue
from .registry import JobContext, get_handler, get_starter

log = logging.getLogger("hub.jobs")


def process_id(role: str) -> str:
    return f"{role}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def record_heartbeat(queue: JobQueue, pid: str, role: str, *, is_leader: bool = False,
                     info: dict[str, Any] | None = None) -> None:
    db = queue.db
    now = queue.clock.now()
    values = dict(id=pid, role=role, hostname=socket.gethostname(), pid=os.getpid(), started_at=now,
                  beat_at=now, is_leader=is_leader, info=info or {})
    with db.begin() as session:
        upsert(session, ProcessHeartbeat, values, ["id"], {"beat_at": now, "is_leader": is_leader, "info": info or {}})


def remove_heartbeat(queue: JobQueue, pid: str) -> None:
    with queue.db.begin() as session:
        session.execute(delete(ProcessHeartbeat).where(ProcessHeartbeat.id == pid))


class Worker:
    def __init__(self, queue: JobQueue, *, concurrency: int = 4, poll_interval: float = 1.0,
                 app: Any = None, worker_id: str | None = None, kinds: list[str] | None = None,
                 batch_size: int = 1):
        self.queue = queue
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.app = app
        self.worker_id = worker_id or process_id("worker")
        self.kinds = kinds
        self.batch_size = batch_size
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._wakeups = 0
        self._running: dict[int, ClaimedJob] = {}
        self._running_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        # per thread: .taken, the job the last completion took over; .again, claim again at once
        self._local = threading.local()
        self.processed = 0
        queue.on_enqueue(self.wake)

    # -- running one job ------------------------------------------------------------------------
    def run_job(self, job: ClaimedJob, start_next: ClaimedJob | None = None) -> str:
        """Run a claimed job to one outcome: done, queued (retry/deferred) or dead. Every log line
        written meanwhile (JSON format) names the job, its kind, attempt, worker and installation.
        `start_next` (batch claims): when this job is done, the next one is marked started in the
        same transaction."""
        with log_context(job_id=job.id, job_kind=job.kind, attempt=job.attempts, worker=self.worker_id,
                         installation_id=job.installation_id):
            return self._run_job(job, start_next)

    def _run_job(self, job: ClaimedJob, start_next: ClaimedJob | None = None) -> str:
        if job.attempts > job.max_attempts:
            self.queue.bury_exhausted(job, self.worker_id)
            log.warning("job %s (%s) dead: its workers kept dying", job.id, job.kind)
            return "dead"
        fn = get_handler(job.kind)
        if fn is None:
            self.queue.fail(job, self.worker_id, f"no handler registered for job kind {job.kind!r}", fatal=True)
            log.error("job %s dead: no handler for %s", job.id, job.kind)
            return "dead"
        ctx = JobContext(job.id, job.kind, job.payload, job.attempts, job.max_attempts, self.queue.db, self.app,
                         prepared=job.prepared)
        # one retry budget for the job's effect over all its attempts: what earlier attempts spent
        budget = CallBudget(policy().failed_calls_per_effect, job.failed_calls, job.failing_provider)
        try:
            try:
                with effect_budget(budget):
                    self._handle(fn, ctx)
                    session = ctx.session
                    done, taken = self._complete(session, job, start_next, budget)
                    if taken is not None:
                        started = self._start_taken(session, taken)
                        if started is None:
                            # its start failed and took the transaction down with it: the job again
                            # (as a retry would), and the job it takes over starts on its own
                            ctx._session.close()
                            ctx._session = None
                            self._handle(fn, ctx)
                            session = ctx.session
                            done, taken = self._complete(session, job, start_next, budget)
                        else:
                            taken = started
                if done:
                    session.commit()
                    self.processed += 1
                    self._local.taken = taken
                    if session.info.pop(SUCCESSOR_WAITS, False):
                        self._local.again = True
                    return "done"
                session.rollback()  # another worker owns it now: its run decides, ours leaves no trace
                log.warning("job %s lost its lease while running; effects rolled back", job.id)
                return "lost"
            except BaseException:
                if ctx._session is not None:
                    ctx._session.rollback()
                raise
            finally:
                if ctx._session is not None:
                    ctx._session.close()
        except Defer as exc:
            self.queue.defer(job, self.worker_id, str(exc), exc.delay, failed_calls=budget.spent,
                             failing=budget.failing)
            return "queued"
        except Fatal as exc:
            self.queue.fail(job, self.worker_id, f"{type(exc).__name__}: {exc}", fatal=True,
                            failed_calls=budget.spent, failing=budget.failing)
            log.warning("job %s (%s) dead: %s", job.id, job.kind, exc)
            return "dead"
        except Retriable as exc:
            outcome = self.queue.fail(job, self.worker_id, f"{type(exc).__name__}: {exc}", retry_after=exc.retry_after,
                                      failed_calls=budget.spent, failing=budget.failing)
        except Exception as exc:  # any other error: retry with backoff, keep the trace for the operator
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            outcome = self.queue.fail(job, self.worker_id, detail, failed_calls=budget.spent, failing=budget.failing)
        if outcome == "dead":
            log.warning("job %s (%s) dead after %s attempts", job.id, job.kind, job.attempts)
        return outcome

    def _handle(self, fn, ctx: JobContext) -> None:
        if self.app is not None:
            with self.app.app_context():
                fn(ctx)
        else:
            fn(ctx)

    def _complete(self, session, job: ClaimedJob, start_next: ClaimedJob | None,
                  budget: CallBudget) -> tuple[bool, ClaimedJob | None]:
        return self.queue.complete_taking(
            session, job, self.worker_id, start_next=start_next, kinds=self.kinds,
            take=getattr(self._local, "chaining", False),
            failed_calls=budget.spent if budget.spent != job.failed_calls else None)

    def _start_taken(self, session, taken: ClaimedJob) -> ClaimedJob | None:
        """The taken job's starter (registry.starter) runs in the completing transaction, so its
        start commits with the rows it reads instead of in a transaction of its own. No savepoint
        around it (two statements per event): if it fails, the transaction is rolled back and None
        returned; the caller runs its job again and lets the taken one start on its own."""
        start = get_starter(taken.kind)
        if start is None:
            return taken
        try:
            with log_context(job_id=taken.id, job_kind=taken.kind, attempt=taken.attempts):
                if self.app is not None:
                    with self.app.app_context():
                        prepared = start(self.app, session, taken)
                else:
                    prepared = start(self.app, session, taken)
        except Exception:
            log.exception("job %s (%s): its start failed in the transaction that took it over; it starts on its own",
                          taken.id, taken.kind)
            session.rollback()
            return None
        return dataclasses.replace(taken, prepared=prepared)

    def run_once(self, limit: int = 1) -> int:
        """Claim up to `limit` due jobs and run them here, in order; returns how many were claimed.
        Claimed jobs waiting their turn count as running, so the heartbeat keeps their leases."""
        jobs = self.queue.claim(self.worker_id, limit, self.kinds)
        # a full claim may have left due jobs behind; so may a job that ends other than done (a dead
        # one frees its ordering key), or a completion that finds one of its key waiting
        self._local.again = len(jobs) >= limit
        with self._running_lock:
            for job in jobs:
                self._running[job.id] = job
        ran = 0
        try:
            started = True        # the claim started the first job; each next one is marked before it runs
            for i, job in enumerate(jobs):
                if self._stop.is_set():
                    # shutting down: hand the rest back at once instead of letting their leases run out
                    self.queue.release(job, self.worker_id)
                    continue
                if not started and not self.queue.mark_started(job, self.worker_id):
                    log.warning("job %s lost its lease before it started; left to its new owner", job.id)
                    continue
                following = jobs[i + 1] if limit > 1 and i + 1 < len(jobs) else None
                # done: the completing transaction also marked the next job started
                outcome, ran = self._run_chain(job, following, ran)
                started = outcome == "done" and following is not None
                if outcome != "done":
                    self._local.again = True
        finally:
            with self._running_lock:
                for job in jobs:
                    self._running.pop(job.id, None)
        return len(jobs) + ran

    def _run_chain(self, job: ClaimedJob, following: ClaimedJob | None, ran: int) -> tuple[str, int]:
        """Run `job`, then each job its completion took over (`JobQueue.complete_taking`); the last
        one to complete starts `following`. (outcome of the last one, jobs taken over so far)."""
        self._local.taken, self._local.chaining = None, True
        try:
            return self._chain(job, following, ran)
        finally:
            self._local.chaining = False

    def _chain(self, job: ClaimedJob, following: ClaimedJob | None, ran: int) -> tuple[str, int]:
        outcome = self.run_job(job, start_next=following)
        taken = self._local.taken if outcome == "done" else None
        while taken is not None:
            self._local.taken = None
            with self._running_lock:
                self._running[taken.id] = taken      # the heartbeat keeps its lease
            try:
                if self._stop.is_set():
                    self.queue.release(taken, self.worker_id)
                    return "released", ran
                ran += 1
                outcome = self.run_job(taken, start_next=following)
            finally:
                with self._running_lock:
                    self._running.pop(taken.id, None)
            taken = self._local.taken if outcome == "done" else None
        return outcome, ran

    def drain(self, max_jobs: int = 100000) -> int:
        """Run due jobs until none is left (tests): never waits for a future run_at."""
        total = 0
        while total < max_jobs:
            n = self.run_once()
            if not n:
                return total
            total += n
        return total

    # -- threads --------------------------------------------------------------------------------
    def wake(self) -> None:
        """Something was enqueued: one waiting thread claims (a thread that claims a full batch
        wakes the next), and running threads claim again before they wait."""
        with self._wake:
            self._wakeups += 1
            self._wake.notify()

    def _loop(self) -> None:
        while not self._stop.is_set():
            seen = self._wakeups
            try:
                claimed = self.run_once(self.batch_size)
            except Exception:
                log.exception("worker %s: claim failed; retrying", self.worker_id)
                claimed = 0
                self._stop.wait(self.poll_interval)
            # after work, claim again only if it may find some: the claim left due jobs behind, or
            # a job was announced since (else, under load, most such claims found nothing)
            if claimed and (getattr(self._local, "again", True) or self._wakeups != seen):
                if claimed >= self.batch_size > 1:
                    self.wake()       # a full batch: there may be more waiting, for another thread
                continue
            with self._wake:
                if self._wakeups == seen and not self._stop.is_set():
                    self._wake.wait(self.poll_interval)

    def _heartbeat_loop(self) -> None:
        interval = max(0.5, min(self.queue.lease_seconds / 3, 10.0))
        while not self._stop.is_set():
            try:
                with self._running_lock:
                    ids = list(self._running)
                self.queue.extend_leases(self.worker_id, ids)
                record_heartbeat(self.queue, self.worker_id, "worker",
                                 info={"concurrency": self.concurrency, "running": len(ids), "processed": self.processed})
            except Exception:
                log.exception("worker %s: heartbeat failed", self.worker_id)
            self._stop.wait(interval)

    def _listen_loop(self) -> None:
        """PostgreSQL only: wake on NOTIFY from any process's enqueue."""
        import psycopg

        url = self.queue.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self.wake()
            except Exception:
                if not self._stop.is_set():
                    log.warning("worker %s: LISTEN connection lost; polling until it is back", self.worker_id)
                    self._stop.wait(self.poll_interval)

    def start(self) -> "Worker":
        record_heartbeat(self.queue, self.worker_id, "worker", info={"concurrency": self.concurrency})
        targets = [(self._heartbeat_loop, "heartbeat")] + [(self._loop, f"run-{i}") for i in range(self.concurrency)]
        if self.queue.db.is_postgres:
            targets.append((self._listen_loop, "listen"))
        for target, name in targets:
            thread = threading.Thread(target=target, name=f"hub-worker-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("worker %s started (%s threads)", self.worker_id, self.concurrency)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        try:
            remove_heartbeat(self.queue, self.worker_id)
        except Exception:
            log.warning("worker %s: could not remove its heartbeat", self.worker_id)
        log.info("worker %s stopped", self.worker_id)

    def wait(self) -> None:
        """Block until stopped (the `worker` command)."""
        while not self._stop.wait(1.0):
            pass
