"""The database is the queue.

`enqueue()` adds a row in the caller's transaction, so a job exists exactly when the business
change that asked for it was committed. Workers claim rows with a lease in one atomic UPDATE
(`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite serialises writers); a job whose lease ran out
(its worker died) is claimable again. Jobs sharing an `ordering_key` run one at a time, in order."""
from __future__ import annotations

import functools
import random
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Final, Iterator

from sqlalchemy import DateTime, Integer, bindparam, event, func, select, text, update
from sqlalchemy.orm import Session

from ..store import Clock, Database, Job, fast
from ..store.db import pending_writes
from ..store.sql import insert_ignore

QUEUED, RUNNING, DONE, DEAD = "queued", "running", "done", "dead"
_JOBS = Job.__table__   # the worker's statements are Core: no ORM unit of work on the hot path
_PLAIN_INSERT = _JOBS.insert().returning(_JOBS.c.id)  # values bound per call: compiled once
# the hot path's updates, built once with bound values (a statement built per call costs more
# than sending it): the job while this worker holds it
_MINE = (_JOBS.c.id == bindparam("b_id")) & (_JOBS.c.locked_by == bindparam("b_worker")) & (_JOBS.c.status == RUNNING)
# RETURNING of a completion: whether a job of the completed one's ordering key waits (it may run now)
_SUCCESSOR = """EXISTS (SELECT 1 FROM jobs e WHERE e.ordering_key = jobs.ordering_key AND e.status = 'queued'
                AND e.id <> jobs.id{also}) AS successor"""
_START = _JOBS.update().where(_MINE).values(started_at=bindparam("b_now"), updated_at=bindparam("b_now"))
NOTIFY_CHANNEL = "hub_jobs"
_NOTIFY = text(f"NOTIFY {NOTIFY_CHANNEL}")
_AFTER_COMMIT_KEY = "hub.jobs.enqueued"
_NEW_JOBS = "hub.jobs.new"        # (id, kind) of the due jobs the session's transaction enqueued
_NOTIFY_PENDING = "hub.jobs.notify"
_CORE_ENQUEUED = "hub.jobs.core_enqueued"   # on a Core connection's info: its transaction enqueued
# session.info: a completion in this transaction found a job of its ordering key waiting, which no
# wake-up announces (it was enqueued earlier, blocked until now): its worker claims again at once
SUCCESSOR_WAITS = "hub.jobs.successor_waits"


@event.listens_for(Session, "before_commit")
def _notify_at_commit(session: Session) -> None:
    """One NOTIFY per transaction that enqueued, unless its worker took over all it enqueued."""
    if session.info.pop(_NOTIFY_PENDING, False):
        fast.execute(session.connection(), _NOTIFY)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    queue = session.info.pop(_AFTER_COMMIT_KEY, None)
    if queue is not None:
        session.info.pop(_NEW_JOBS, None)
        session.info.pop(_NOTIFY_PENDING, None)
        for callback in queue._listeners:
            callback()


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction) -> None:
    if previous_transaction.nested:
        return   # a savepoint: the jobs enqueued before it still commit
    for key in (_AFTER_COMMIT_KEY, _NEW_JOBS, _NOTIFY_PENDING):
        session.info.pop(key, None)


_ROWS_PER_INSERT = 500   # x 11 columns: within SQLite's 32766 bound parameters


class _EveryInstallation:
    def __repr__(self) -> str:
        return "EVERY_INSTALLATION"


# Operator tools (the CLI) act across tenants and say so with this; tenant pages pass their id.
EVERY_INSTALLATION: Final = _EveryInstallation()
Scope = int | None | _EveryInstallation


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    ordering_key: str | None
    failed_calls: int = 0      # failed provider requests of its effect so far (hub/connectors/retry.py)
    installation_id: int | None = None
    failing_provider: str | None = None   # the provider those failures came from
    prepared: Any = None       # its starter's result, when a completion took it over (registry.starter)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Capped exponential backoff with full jitter: uniform(0, min(cap, base * 2^(attempt-1)))."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(0, ceiling)


class JobQueue:
    def __init__(self, db: Database, *, clock: Clock | None = None, max_attempts: int = 8,
                 backoff_base: float = 2.0, backoff_cap: float = 600.0, lease_seconds: float = 60.0,
                 rng: random.Random | None = None):
        self.db = db
        self.clock = clock or Clock()
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.lease_seconds = lease_seconds
        self.rng = rng or random.Random()
        self._listeners: list[Callable[[], None]] = []

    # -- producers ------------------------------------------------------------------------------
    def enqueue(self, session: Session, kind: str, payload: dict[str, Any] | None = None, *,
                installation_id: int | None, ordering_key: str | None = None, dedupe_key: str | None = None,
                run_at: datetime | None = None, delay: float = 0.0, max_attempts: int | None = None) -> int | None:
        """Add a job inside `session`'s transaction. With `dedupe_key`, a second enqueue of the same key
        is a no-op and returns None (used by schedules, so a failover never fires twice).

        `installation_id` has no default on purpose: every job belongs to the tenant whose work it
        is (its run log, dead letter and replay are filtered by it), and only truly global work
        (housekeeping, the fan-out of a schedule over all installations) passes None."""
        if installation_id is not None and (isinstance(installation_id, bool) or not isinstance(installation_id, int)):
            raise TypeError(f"installation_id must be an int or None, not {installation_id!r}")
        now = self.clock.now()
        values = dict(kind=kind, payload=payload or {}, installation_id=installation_id, status=QUEUED, attempts=0,
                      max_attempts=max_attempts or self.max_attempts,
                      run_at=run_at or (now + timedelta(seconds=delay)), ordering_key=ordering_key,
                      dedupe_key=dedupe_key, created_at=now, updated_at=now)
        if dedupe_key is None:
            job_id = fast.execute(session.connection(), _PLAIN_INSERT, values).scalar_one()
        else:
            job_id = insert_ignore(session, Job, values, ["dedupe_key"])
            if job_id is None:
                return None
        self.inserted(session, job_id, kind, due=run_at is None and delay <= 0)
        return job_id

    def inserted(self, session: Session, job_id: int, kind: str, *, due: bool = True) -> None:
        """A job `session`'s transaction inserted by a statement of its own (as `enqueue` does): it is
        announced at the commit, and a due one may be taken over by the completing job."""
        if self.db.is_postgres:
            session.info[_NOTIFY_PENDING] = True   # NOTIFY at commit (delivered only if it commits)
        self._wake_after_commit(session)
        if due:
            session.info.setdefault(_NEW_JOBS, []).append((job_id, kind))

    def enqueue_many(self, session: Session, jobs: list[dict[str, Any]]) -> None:
        """Add several jobs in `session`'s transaction with few statements (multi-row INSERTs, ids in
        list order): each dict holds `kind`, `payload`, `installation_id` and `ordering_key`, as
        `enqueue` takes them. For bursts written at once (a webhook group commit); no dedupe keys."""
        if not jobs:
            return
        self._insert_many(session, jobs)
        if self.db.is_postgres:
            session.info[_NOTIFY_PENDING] = True   # NOTIFY at commit
        self._wake_after_commit(session)

    def enqueue_many_core(self, conn: Any, jobs: list[dict[str, Any]]) -> None:
        """`enqueue_many` in a `core_transaction`."""
        if jobs:
            self._insert_many(conn, jobs)
            conn.info[_CORE_ENQUEUED] = True

    def _insert_many(self, executor: Any, jobs: list[dict[str, Any]]) -> None:
        now = self.clock.now()
        rows = [dict(kind=j["kind"], payload=j.get("payload") or {}, installation_id=j["installation_id"],
                     status=QUEUED, attempts=0, max_attempts=self.max_attempts, run_at=now,
                     ordering_key=j.get("ordering_key"), dedupe_key=None, created_at=now, updated_at=now)
                for j in jobs]
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            executor.execute(_JOBS.insert().values(rows[start:start + _ROWS_PER_INSERT]))

    def enqueue_core(self, conn: Any, kind: str, payload: dict[str, Any], *, installation_id: int,
                     ordering_key: str | None = None) -> int:
        """`enqueue` (due now, no dedupe key) in a `core_transaction`: for the webhook ingest, whose
        hot path has no ORM session and its unit of work."""
        now = self.clock.now()
        conn.info[_CORE_ENQUEUED] = True
        values = dict(kind=kind, payload=payload, installation_id=installation_id, status=QUEUED, attempts=0,
                      max_attempts=self.max_attempts, run_at=now, ordering_key=ordering_key, dedupe_key=None,
                      created_at=now, updated_at=now, failed_calls=0)
        return fast.execute(conn, _PLAIN_INSERT, values).scalar_one()

    @contextmanager
    def core_transaction(self) -> Iterator[Any]:
        """A Core connection in a transaction (committed when the block ends), whose `enqueue_core`
        and `enqueue_many_core` jobs are announced as a session's are: one NOTIFY in it (PostgreSQL),
        the in-process listeners woken once after its commit."""
        with self.db.engine.connect() as conn:
            conn.info.pop(_CORE_ENQUEUED, None)   # the DBAPI connection's: a failed block may have left it
            with conn.begin():
                yield conn
                if self.db.is_postgres and conn.info.get(_CORE_ENQUEUED):
                    fast.execute(conn, _NOTIFY)
            enqueued = conn.info.pop(_CORE_ENQUEUED, False)
        if enqueued:
            self.enqueued()

    def enqueued(self) -> None:
        """After a commit that enqueued outside a session or `core_transaction` (one statement that
        enqueued with its own NOTIFY, hub/webhooks/ingest.py): wake the in-process workers."""
        for callback in self._listeners:
            callback()

    def on_enqueue(self, callback: Callable[[], None]) -> None:
        """Called after a transaction that enqueued commits (wakes in-process workers at once)."""
        self._listeners.append(callback)

    def _wake_after_commit(self, session: Session) -> None:
        """Wake the in-process listeners once the session's transaction commits (`_after_commit`);
        a rollback forgets it. Marked in `session.info`, read by listeners set once on the Session
        class: a listener added per transaction cost more than the statement that enqueued."""
        session.info[_AFTER_COMMIT_KEY] = self

    # -- workers --------------------------------------------------------------------------------
    def claim(self, worker_id: str, limit: int = 1, kinds: list[str] | None = None) -> list[ClaimedJob]:
        """Up to `limit` due jobs for this worker, in the order they run (by id). The first is started
        by the claim itself (it runs at once); the others wait in the worker for `mark_started`, or
        for the completion before them to start them (`complete_taking`'s `start_next`)."""
        now = self.clock.now()
        postgres = self.db.is_postgres
        params: dict[str, Any] = {"worker": worker_id, "lease_until": now + timedelta(seconds=self.lease_seconds),
                                  "now": now, "limit": limit, "started": now if limit == 1 or postgres else None}
        if kinds:
            params["kinds"] = kinds
        with self._claiming() as conn:
            rows = fast.execute(conn, _claim_statement(postgres, bool(kinds)), params).all()
            if rows and not postgres and limit > 1:
                # SQLite's batch claim starts none (it has no CTE read once to tell the first): the
                # first starts here, in the same BEGIN IMMEDIATE, so no later transaction of its own
                fast.execute(conn, _START, {"b_id": min(r.id for r in rows), "b_worker": worker_id, "b_now": now})
        claimed = [ClaimedJob(r.id, r.kind, r.payload or {}, r.attempts, r.max_attempts, r.ordering_key,
                              r.failed_calls or 0, r.installation_id, r.failing_provider) for r in rows]
        return sorted(claimed, key=lambda c: c.id)

    @contextmanager
    def _claiming(self) -> Iterator[Any]:
        """Where a claim runs. PostgreSQL: autocommitted, as the one statement it is (SKIP LOCKED makes
        it atomic on its own): one round trip, where BEGIN, the claim and COMMIT took three, and most
        claims of an idle worker find nothing. SQLite: in BEGIN IMMEDIATE, whose write lock its
        read-then-write needs."""
        if self.db.is_postgres:
            with self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                yield conn
        else:
            with self.db.engine.begin() as conn:
                yield conn

    def mark_started(self, job: ClaimedJob, worker_id: str) -> bool:
        """A job of a batch claim is about to run: from now on, losing its worker costs an attempt.
        False when this worker no longer holds it (its lease ran out): then it must not run here."""
        now = self.clock.now()
        with self.db.engine.begin() as conn:
            result = fast.execute(conn, _START, {"b_id": job.id, "b_worker": worker_id, "b_now": now})
        return result.rowcount == 1

    def complete(self, session: Session, job: ClaimedJob, worker_id: str, *,
                 start_next: ClaimedJob | None = None, failed_calls: int | None = None) -> bool:
        """Mark done inside the handler's transaction; False if this worker no longer owns the job
        (its lease ran out and another worker took it), in which case the caller must roll back.
        `start_next`: the next job of the same batch starts now (saves `mark_started`'s transaction)."""
        return self.complete_taking(session, job, worker_id, start_next=start_next, failed_calls=failed_calls)[0]

    def complete_taking(self, session: Session, job: ClaimedJob, worker_id: str, *,
                        start_next: ClaimedJob | None = None, failed_calls: int | None = None,
                        kinds: list[str] | None = None, take: bool = True) -> tuple[bool, ClaimedJob | None]:
        """`complete`, and in the same transaction claim (started, for this worker) the first due job
        this transaction enqueued, if it is claimable as `claim` would find it (its ordering key
        free): the work an event leads to (its rule run) goes on in the same worker at once,
        without another claim's transaction or a wake-up. Then `start_next` is not started: the
        taken job runs first, and its own completion starts it."""
        now = self.clock.now()
        session.flush()   # the handler's pending ORM changes go first, as a session.execute would
        conn = session.connection()
        taken = None
        new = [job_id for job_id, kind in session.info.get(_NEW_JOBS, ()) if kinds is None or kind in kinds] if take else []
        if new:
            rows = _with_pending(session, conn, _complete_and_take(failed_calls is not None), {
                "b_id": job.id, "worker": worker_id, "lease_until": now + timedelta(seconds=self.lease_seconds),
                "now": now, "started": now, "b_failed": failed_calls, "take": min(new)})
            if not any(row.id == job.id for row in rows):
                return False, None    # not ours any more: the caller rolls back, the take with it
            row = next((row for row in rows if row.id != job.id), None)
            if row is not None:
                taken = ClaimedJob(row.id, row.kind, row.payload or {}, row.attempts, row.max_attempts,
                                   row.ordering_key, row.failed_calls or 0, row.installation_id, row.failing_provider)
                if [job_id for job_id, _ in session.info.get(_NEW_JOBS, ())] == [taken.id]:
                    session.info.pop(_NOTIFY_PENDING, None)    # nothing left for other workers to wake for
        else:
            rows = _with_pending(session, conn, _complete(failed_calls is not None), {
                "b_id": job.id, "b_worker": worker_id, "b_now": now, "b_failed": failed_calls})
            if not rows:
                return False, None
        if any(row.successor for row in rows if row.id == job.id):
            session.info[SUCCESSOR_WAITS] = True
        if taken is None and start_next is not None:
            fast.execute(conn, _START, {"b_id": start_next.id, "b_worker": worker_id, "b_now": now})
        return True, taken

    def fail(self, job: ClaimedJob, worker_id: str, error: str, *, retry_after: float | None = None,
             fatal: bool = False, failed_calls: int | None = None, failing: str | None = None) -> str:
        """Schedule a retry (backoff, or `retry_after` when given: the provider's wait is the least
        the job waits) or move to the dead letter. `failed_calls`: its effect's budget used so far."""
        now = self.clock.now()
        error = error[:4000]
        if fatal or job.attempts >= job.max_attempts:
            values = dict(status=DEAD, finished_at=now, lease_until=None, last_error=error, updated_at=now)
            outcome = DEAD
        else:
            delay = retry_after if retry_after is not None else backoff_delay(
                job.attempts, self.backoff_base, self.backoff_cap, self.rng)
            values = dict(status=QUEUED, run_at=now + timedelta(seconds=max(0.0, delay)), lease_until=None,
                          locked_by=None, last_error=error, updated_at=now)
            outcome = QUEUED
        if failed_calls is not None:
            values["failed_calls"], values["failing_provider"] = failed_calls, failing
        with self.db.engine.begin() as conn:
            conn.execute(_JOBS.update().where(_owned(job.id, worker_id)).values(**values))
        return outcome

    def defer(self, job: ClaimedJob, worker_id: str, reason: str, delay: float, *,
              failed_calls: int | None = None, failing: str | None = None) -> None:
        """Put the job back without using up an attempt (its effect's failed calls still count)."""
        now = self.clock.now()
        values = dict(status=QUEUED, attempts=_JOBS.c.attempts - 1, run_at=now + timedelta(seconds=delay),
                      lease_until=None, locked_by=None, last_error=reason[:4000], updated_at=now)
        if failed_calls is not None:
            values["failed_calls"], values["failing_provider"] = failed_calls, failing
        with self.db.engine.begin() as conn:
            conn.execute(_JOBS.update().where(_owned(job.id, worker_id)).values(**values))

    def release(self, job: ClaimedJob, worker_id: str) -> None:
        """Hand back a claimed job that was never started (a stopping worker); no attempt used."""
        with self.db.engine.begin() as conn:
            conn.execute(_JOBS.update().where(_owned(job.id, worker_id)).values(
                status=QUEUED, attempts=_JOBS.c.attempts - 1, lease_until=None, locked_by=None,
                updated_at=self.clock.now()))

    def extend_leases(self, worker_id: str, job_ids: list[int]) -> None:
        """The heartbeat: this worker's running jobs keep their leases. On PostgreSQL a job whose row
        another transaction holds (its own completion, most often) is skipped this time, not waited
        for: the heartbeat locks many rows in whatever order it finds them, and waiting for one
        while holding others deadlocked against completions that lock two jobs (seen under chaos)."""
        if not job_ids:
            return
        now = self.clock.now()
        mine = (_JOBS.c.id.in_(job_ids), _JOBS.c.locked_by == worker_id, _JOBS.c.status == RUNNING)
        if self.db.is_postgres:
            mine = (_JOBS.c.id.in_(select(_JOBS.c.id).where(*mine).with_for_update(skip_locked=True)),)
        with self.db.engine.begin() as conn:
            conn.execute(_JOBS.update().where(*mine).values(lease_until=now + timedelta(seconds=self.lease_seconds)))

    def bury_exhausted(self, job: ClaimedJob, worker_id: str) -> None:
        """A job claimed after its workers kept dying: more attempts than allowed, so dead-letter it."""
        self.fail(job, worker_id, f"lease expired {job.attempts - 1} times (worker lost while running)", fatal=True)

    # -- operators ------------------------------------------------------------------------------
    def replay(self, job_id: int, *, installation_id: Scope) -> bool:
        """Give a dead job of `installation_id` (None: a global job; EVERY_INSTALLATION: any, for
        operators) a fresh set of attempts and calls; its last error stays visible until it runs."""
        now = self.clock.now()
        with self.db.begin() as session:
            result = session.execute(update(Job).where(Job.id == job_id, Job.status == DEAD,
                                                       *scope_filter(installation_id)).values(
                status=QUEUED, attempts=0, failed_calls=0, failing_provider=None, run_at=now, finished_at=None,
                locked_by=None,
                lease_until=None, updated_at=now))
            if result.rowcount:
                self._wake_after_commit(session)
            return result.rowcount == 1

    def list_jobs(self, *, installation_id: Scope, status: str | None = None, kind: str | None = None,
             before_id: int | None = None, limit: int = 100) -> list[Job]:
        """Jobs of one installation, newest first, filtered in SQL (an index on installation, status,
        id), so no other tenant's rows can push them off a page. Page on with `before_id` = the
        last id of the previous page."""
        query = select(Job).where(*scope_filter(installation_id))
        if status:
            query = query.where(Job.status == status)
        if kind:
            query = query.where(Job.kind == kind)
        if before_id is not None:
            query = query.where(Job.id < before_id)
        with self.db.begin() as session:
            return list(session.scalars(query.order_by(Job.id.desc()).limit(max(1, limit))))

    def get(self, job_id: int, *, installation_id: Scope = EVERY_INSTALLATION) -> Job | None:
        with self.db.begin() as session:
            return session.scalar(select(Job).where(Job.id == job_id, *scope_filter(installation_id)))

    def counts(self, *, installation_id: Scope = EVERY_INSTALLATION) -> dict[str, int]:
        with self.db.begin() as session:
            rows = session.execute(select(Job.status, func.count()).where(*scope_filter(installation_id))
                                   .group_by(Job.status)).all()
        return {status: count for status, count in rows}


def scope_filter(installation_id: Scope) -> tuple:
    """SQL conditions selecting the jobs of `installation_id` (see `Scope`)."""
    if isinstance(installation_id, _EveryInstallation):
        return ()
    if installation_id is None:
        return (Job.installation_id.is_(None),)
    return (Job.installation_id == installation_id,)


_BLOCKED = """(j.ordering_key IS NULL OR NOT EXISTS (
               SELECT 1 FROM jobs e WHERE e.ordering_key = j.ordering_key AND e.status IN ('queued', 'running')
                AND e.id <> j.id AND (e.id < j.id OR (e.status = 'running' AND e.lease_until >= :now))))"""
_CLAIMED = """status = 'running',
               attempts = attempts + CASE WHEN status = 'running' AND started_at IS NULL THEN 0 ELSE 1 END,
               locked_by = :worker, lease_until = :lease_until, updated_at = :now"""
_RETURNING = """RETURNING id, kind, payload, attempts, max_attempts, ordering_key, failed_calls, installation_id,
                  failing_provider"""


@functools.lru_cache(maxsize=8)
def _claim_statement(postgres: bool, by_kind: bool):
    """The claim, built once per engine kind (a worker claims many times a second under load).

    A job is claimable when it is due (or its lease ran out) and, with an ordering key, no other
    job of that key is ahead of it (an earlier one unfinished) or holds a live lease. An attempt
    counts when a job *starts* (so a job that keeps killing its worker ends in the dead letter),
    not when it is claimed: jobs of a batch claim wait their turn, and if the worker dies before
    reaching one, its next claim is not another attempt. The job that runs first (the lowest id)
    is started here, started_at set in the claim, as a single claim's is: no transaction of its
    own to mark it, where one per event was a third of the worker's commits. On PostgreSQL the
    picked jobs are a CTE, read once; SQLite's statement starts none of a batch (`started` is
    NULL then) and `claim` starts the first in the same transaction.

    The due jobs and the ones whose lease ran out are read apart, each in claim order along
    ix_jobs_claim (status, run_at, id), so a claim reads about as many rows as it takes and stops:
    read together (an OR), every queued and running row was filtered and sorted first, and a claim
    cost as much as the backlog was long. A completing transaction takes the job it enqueued by
    its id instead (`_complete_and_take`)."""
    kinds = "AND j.kind IN :kinds " if by_kind else ""
    lock = "FOR UPDATE SKIP LOCKED" if postgres else ""

    def branch(state: str) -> str:
        return f"""SELECT j.id, j.run_at FROM jobs j
               WHERE {state} {kinds}AND {_BLOCKED}
               ORDER BY j.run_at, j.id LIMIT :limit {lock}"""
    due = branch("j.status = 'queued' AND j.run_at <= :now")
    lapsed = branch("j.status = 'running' AND j.lease_until < :now")
    if postgres:
        sql = f"""WITH due AS ({due}), lapsed AS ({lapsed}),
             picked AS (SELECT id FROM (SELECT * FROM due UNION ALL SELECT * FROM lapsed) c
                        ORDER BY run_at, id LIMIT :limit)
        UPDATE jobs SET {_CLAIMED},
               started_at = CASE WHEN id = (SELECT min(id) FROM picked) THEN :started END
        WHERE id IN (SELECT id FROM picked)
        {_RETURNING}"""
    else:
        sql = f"""UPDATE jobs SET {_CLAIMED}, started_at = :started
        WHERE id IN (SELECT id FROM (SELECT * FROM ({due}) UNION ALL SELECT * FROM ({lapsed}))
                     ORDER BY run_at, id LIMIT :limit)
        {_RETURNING}"""
    return _typed(text(sql), by_kind)


@functools.lru_cache(maxsize=4)
def _complete_and_take(counted: bool):
    """`_complete` of the job this worker holds (:b_id) and the take-over by id of the job its
    transaction enqueued (:take) if a claim could take it (due, its ordering key free), in one
    UPDATE of both rows (two round trips were one per event). That job is not committed yet, so
    no other worker sees it: no lock to skip, no order to keep, no lapsed lease. The completed job
    is left out of the taken one's ordering-key check: in this statement's snapshot it still runs,
    though it ends here. RETURNING gives the completed row (absent: this worker lost it) and the
    taken one."""
    done = "jobs.id = :b_id"
    failed = f"CASE WHEN {done} THEN :b_failed ELSE jobs.failed_calls END" if counted else "jobs.failed_calls"
    blocked = _BLOCKED.replace("j.", "jobs.").replace("AND e.id <> jobs.id ", "AND e.id <> jobs.id AND e.id <> :b_id ")
    sql = f"""UPDATE jobs SET
               status = CASE WHEN {done} THEN 'done' ELSE 'running' END,
               attempts = CASE WHEN {done} THEN jobs.attempts ELSE jobs.attempts + 1 END,
               locked_by = :worker,
               lease_until = CASE WHEN {done} THEN NULL ELSE :lease_until END,
               started_at = CASE WHEN {done} THEN jobs.started_at ELSE :started END,
               finished_at = CASE WHEN {done} THEN :now ELSE jobs.finished_at END,
               last_error = CASE WHEN {done} THEN NULL ELSE jobs.last_error END,
               failed_calls = {failed},
               updated_at = :now
        WHERE ({done} AND jobs.locked_by = :worker AND jobs.status = 'running')
           OR (jobs.id = :take AND jobs.status = 'queued' AND jobs.run_at <= :now AND {blocked})
        {_RETURNING}, {_SUCCESSOR.format(also=" AND e.id <> :take")}"""
    stmt = _typed(text(sql), False)
    if counted:
        stmt = stmt.bindparams(bindparam("b_failed", type_=Integer()))
    return stmt


def _with_pending(session: Session, conn, statement, params: dict) -> list:
    """The completion's rows; on PostgreSQL the handler's deferred writes (its run log lines, a rule
    run's outcome ...) go in the same statement (`defer_write`): the completion is the transaction's
    last write, so a job's outcome costs one round trip. A completion that finds the job not ours
    returns no row of it, and the caller's rollback undoes those writes with it."""
    writes = pending_writes(session)
    if writes:
        return fast.execute_together(conn, writes, statement, params).all()
    return fast.execute(conn, statement, params).all()


@functools.lru_cache(maxsize=4)
def _complete(counted: bool):
    """The job this worker holds is done (`counted`: with its effect's failed calls so far);
    RETURNING whether a job of its ordering key waits (`SUCCESSOR_WAITS`). No row: not ours."""
    failed = ", failed_calls = :b_failed" if counted else ""
    sql = f"""UPDATE jobs SET status = 'done', finished_at = :b_now, updated_at = :b_now, lease_until = NULL,
               last_error = NULL{failed}
        WHERE id = :b_id AND locked_by = :b_worker AND status = 'running'
        RETURNING id, {_SUCCESSOR.format(also="")}"""
    stmt = text(sql).bindparams(bindparam("b_now", type_=DateTime()))
    return stmt.bindparams(bindparam("b_failed", type_=Integer())) if counted else stmt


def _typed(stmt, by_kind: bool):
    stmt = stmt.bindparams(bindparam("now", type_=DateTime()), bindparam("lease_until", type_=DateTime()),
                           bindparam("started", type_=DateTime()))
    if by_kind:
        stmt = stmt.bindparams(bindparam("kinds", expanding=True))
    return stmt.columns(payload=_JOBS.c.payload.type)


def _owned(job_id: int, worker_id: str):
    """The job, while this worker still holds it (its lease may have gone to another)."""
    return (_JOBS.c.id == job_id) & (_JOBS.c.locked_by == worker_id) & (_JOBS.c.status == RUNNING)
