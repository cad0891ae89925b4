"""Schedules: APScheduler (3.x) runs them in the one leading scheduler process.

A schedule only *enqueues* a job, with a dedupe key per firing slot, so even the moment two
processes both believe they lead (a failover) cannot run a firing twice; the work itself is done
by workers. Standbys retry the lock every `scheduler.leader_retry_seconds`."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from apscheduler.schedulers.background import BackgroundScheduler

from ..jobs.queue import JobQueue
from ..jobs.worker import process_id, record_heartbeat, remove_heartbeat
from .leader import FileLeaderLock, PostgresLeaderLock

log = logging.getLogger("hub.scheduler")


@dataclass
class Periodic:
    """Every `seconds`, enqueue job `kind` (once per slot, whichever process leads)."""

    name: str
    kind: str
    seconds: float
    payload: dict[str, Any] = field(default_factory=dict)
    installation_id: int | None = field(kw_only=True)   # whose job it is; None only for global work


_periodics: dict[str, Periodic] = {}
_dynamic_sources: list[Callable[[Any], list[Periodic]]] = []


def periodic(name: str, kind: str, seconds: float, payload: dict[str, Any] | None = None) -> None:
    """A schedule fixed at import time: global work (housekeeping); per-tenant schedules come from
    `dynamic_schedules`, which name their installation."""
    _periodics[name] = Periodic(name, kind, seconds, payload or {}, installation_id=None)


def dynamic_schedules(source: Callable[[Any], list[Periodic]]) -> Callable[[Any], list[Periodic]]:
    """Register a function returning schedules read from the database (e.g. one per contact sync)."""
    _dynamic_sources.append(source)
    return source


def registered() -> list[Periodic]:
    return list(_periodics.values())


class HubScheduler:
    def __init__(self, queue: JobQueue, lock, *, retry_seconds: float = 2.0, app: Any = None,
                 refresh_seconds: float = 30.0):
        self.queue = queue
        self.lock = lock
        self.retry_seconds = retry_seconds
        self.refresh_seconds = refresh_seconds
        self.app = app
        self.id = process_id("scheduler")
        self.is_leader = False
        self.became_leader = threading.Event()
        self._stop = threading.Event()
        self._aps: BackgroundScheduler | None = None
        self._thread: threading.Thread | None = None
        self._installed: dict[str, Periodic] = {}

    @classmethod
    def for_database(cls, queue: JobQueue, instance_path, **kwargs) -> "HubScheduler":
        db = queue.db
        if db.is_postgres:
            url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            lock = PostgresLeaderLock(url)
        else:
            lock = FileLeaderLock(instance_path / "scheduler.lock")
        return cls(queue, lock, **kwargs)

    # -- firing ---------------------------------------------------------------------------------
    def fire(self, schedule: Periodic, at: float | None = None) -> int | None:
        slot = int((at if at is not None else time.time()) // schedule.seconds)
        with self.queue.db.begin() as session:
            return self.queue.enqueue(session, schedule.kind, dict(schedule.payload, schedule=schedule.name, slot=slot),
                                      installation_id=schedule.installation_id,
                                      dedupe_key=f"schedule:{schedule.name}:{slot}")

    def all_schedules(self) -> list[Periodic]:
        schedules = registered()
        for source in _dynamic_sources:
            try:
                schedules.extend(source(self.app))
            except Exception:
                log.exception("scheduler: a schedule source failed; keeping the others")
        return schedules

    def _sync_jobs(self) -> None:
        assert self._aps is not None
        wanted = {s.name: s for s in self.all_schedules()}
        for name in list(self._installed):
            if name not in wanted or wanted[name] != self._installed[name]:
                self._aps.remove_job(name)
                del self._installed[name]
        for name, schedule in wanted.items():
            if name not in self._installed:
                self._aps.add_job(self.fire, "interval", seconds=schedule.seconds, args=[schedule], id=name,
                                  coalesce=True, max_instances=1, misfire_grace_time=max(1, int(schedule.seconds)))
                self._installed[name] = schedule

    # -- leadership -----------------------------------------------------------------------------
    def _lead(self) -> None:
        self._aps = BackgroundScheduler(timezone="UTC")
        self._aps.start()
        self._installed.clear()
        self._sync_jobs()
        self.is_leader = True
        self.became_leader.set()
        log.info("scheduler %s is the leader (%d schedules)", self.id, len(self._installed))

    def _step_down(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None
        self._installed.clear()
        if self.is_leader:
            log.warning("scheduler %s lost the leadership", self.id)
        self.is_leader = False
        self.became_leader.clear()
        self.lock.release()

    def _loop(self) -> None:
        last_refresh = time.monotonic()
        while not self._stop.is_set():
            try:
                if self.is_leader:
                    if not self.lock.still_held():
                        self._step_down()
                    elif time.monotonic() - last_refresh >= self.refresh_seconds:
                        self._sync_jobs()
                        last_refresh = time.monotonic()
                elif self.lock.try_acquire():
                    self._lead()
                    last_refresh = time.monotonic()
                record_heartbeat(self.queue, self.id, "scheduler", is_leader=self.is_leader)
            except Exception:
                log.exception("scheduler %s: loop error", self.id)
            self._stop.wait(self.retry_seconds)

    def start(self) -> "HubScheduler":
        self._thread = threading.Thread(target=self._loop, name="hub-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        self._step_down()
        try:
            remove_heartbeat(self.queue, self.id)
        except Exception:
            pass

    def wait(self) -> None:
        while not self._stop.wait(1.0):
            pass
