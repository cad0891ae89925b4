"""Webhook v2 delivery: one lazy daemon thread per emulator, Pipedrive's retry schedule and ban.

Documented behaviour (FACTS §8): success is any 2xx within 10 s; after a failed first attempt three
retries follow after 3, 30 and 150 s (attempt 2..4, same `meta.id`); each failed *first* attempt
counts towards a ban, at 10 the webhook is banned for 30 min (events meanwhile are lost) and then
reactivated with the counter at 0; no success for 3 days deletes the webhook. All delays are
multiplied by `time_scale` so tests run the real schedule in milliseconds.

Fault knobs: `webhooks_paused` holds deliveries in the queue, `webhook_duplicate_rate` sends an
event twice with the same `meta.id`, `webhook_reorder_rate` holds a delivery back until a later
delivery of the same object has gone out (the receiver sees the newer state first)."""
from __future__ import annotations

import copy
import heapq
import itertools
import threading
import time
from typing import Any, Callable

import requests

RETRY_DELAYS = (3.0, 30.0, 150.0)   # seconds before attempts 2, 3, 4
BAN_THRESHOLD = 10                  # failed first attempts before a ban
BAN_SECONDS = 30 * 60
DELETE_AFTER_SECONDS = 3 * 86400    # no successful delivery for 3 days -> webhook deleted
LOG_LIMIT = 2000
REORDER_HOLD_SECONDS = 10.0         # longest a reordered delivery waits for a later one of its object


class Dispatcher:
    def __init__(self, sandbox, *, time_scale: float = 1.0, timeout: float = 10.0,
                 session_factory: Callable[[], requests.Session] = requests.Session):
        self.sandbox = sandbox
        self.time_scale = time_scale
        self.timeout = timeout
        self.deliveries: list[dict[str, Any]] = []   # every attempt, newest last (tests read it)
        self.callbacks: list[dict[str, Any]] = []    # app-sharing / uninstall callbacks sent
        self._queue: list[tuple[float, int, dict]] = []
        self._seq = itertools.count()
        self._inflight = 0
        self._flushing = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._session_factory = session_factory

    # -- queueing ---------------------------------------------------------------------------------
    def enqueue(self, job: dict, delay: float = 0.0) -> None:
        with self._cond:
            heapq.heappush(self._queue, (time.monotonic() + delay, next(self._seq), job))
            self._ensure_thread()
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._inflight

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until nothing is queued or in flight (retries included); False on timeout."""
        with self._cond:
            # held-back deliveries stop waiting for a successor, except those whose successor is
            # queued already: it goes first (and releases them, `_overtake`), as the knob promises
            queued = [(e[1], self._object(e[2])) for e in self._queue]
            for n, entry in enumerate(self._queue):
                key = self._object(entry[2])
                if entry[2].get("waiting") and not any(seq > entry[1] and other == key for seq, other in queued):
                    entry[2]["waiting"] = False
                    self._queue[n] = (0.0, entry[1], entry[2])
            heapq.heapify(self._queue)
            self._flushing += 1                        # and no new one waits while someone flushes
            try:
                self._ensure_thread()
                self._cond.notify_all()
                return self._cond.wait_for(lambda: not self._queue and self._inflight == 0, timeout)
            finally:
                self._flushing -= 1

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="pipedrive-webhooks", daemon=True)
            self._thread.start()

    # -- worker -----------------------------------------------------------------------------------
    def _paused(self) -> bool:
        return bool(self.sandbox.faults.settings.webhooks_paused)

    def _take(self) -> dict:
        """Block until a job is due (webhook jobs wait while paused); honour the reorder knob."""
        with self._cond:
            while True:
                now = time.monotonic()
                paused = self._paused()
                ready = sorted(e for e in self._queue if e[0] <= now and not (paused and e[2]["kind"] == "webhook"))
                if ready:
                    entry = self._reorder(ready, now)
                    if entry is not None:
                        self._queue.remove(entry)
                        heapq.heapify(self._queue)
                        self._inflight += 1
                        return entry[2]
                    continue
                waits = [e[0] - now for e in self._queue if not (paused and e[2]["kind"] == "webhook")]
                wait = min(waits) if waits else None
                if paused and len(waits) < len(self._queue):
                    wait = 0.02 if wait is None else min(wait, 0.02)   # poll the pause knob
                self._cond.wait(wait)

    @staticmethod
    def _object(job: dict) -> tuple | None:
        if job["kind"] != "webhook":
            return None
        meta = job["payload"]["meta"]
        return job["webhook_id"], meta.get("entity"), meta.get("entity_id")

    def _reorder(self, ready: list[tuple[float, int, dict]], now: float) -> tuple[float, int, dict] | None:
        """The entry to send next (call under the lock). A delivery the reorder knob picks is held
        back until a later delivery of the same object (same webhook) has been sent, so the
        receiver really gets the newer state first: one already queued goes ahead at once; if none
        is queued, the delivery waits up to REORDER_HOLD_SECONDS (scaled) for one, then goes.
        None: the queue changed, look again."""
        entry = ready[0]
        job = entry[2]
        key = self._object(job)
        if key is None or job.get("rolled"):
            return entry
        job["rolled"] = True   # one roll per delivery attempt
        if any(e[1] < entry[1] and e[2].get("waiting") and self._object(e[2]) == key for e in self._queue):
            return self._overtake(entry)        # an earlier one of its object waits for this one
        if not self.sandbox.faults.roll(self.sandbox.faults.settings.webhook_reorder_rate):
            return entry
        later = next((e for e in ready[1:] if self._object(e[2]) == key), None)
        if later is not None:
            job["held"] = True                  # sent right after the one that overtakes it
            return later
        if self._flushing:
            return entry
        job["waiting"] = True
        self._queue.remove(entry)
        heapq.heappush(self._queue, (now + REORDER_HOLD_SECONDS * self.time_scale, entry[1], job))
        return None

    def _overtake(self, entry: tuple[float, int, dict]) -> tuple[float, int, dict]:
        """`entry` goes now; the held deliveries of its object become due right after it."""
        key = self._object(entry[2])
        for n, other in enumerate(self._queue):
            if other[1] < entry[1] and other[2].get("waiting") and self._object(other[2]) == key:
                other[2].update(held=True, waiting=False)
                self._queue[n] = (0.0, other[1], other[2])
        heapq.heapify(self._queue)
        return entry

    def _run(self) -> None:
        session = self._session_factory()
        while True:
            job = self._take()
            try:
                if job["kind"] == "webhook":
                    self._deliver(session, job)
                else:
                    self._callback(session, job)
            except Exception as exc:  # never let one bad job kill the worker
                self._log(self.deliveries, {"kind": job["kind"], "error": f"internal: {exc!r}"})
            finally:
                with self._cond:
                    self._inflight -= 1
                    self._cond.notify_all()

    def _post(self, session, method: str, url: str, body: Any, auth) -> tuple[int | None, str | None]:
        try:
            resp = session.request(method, url, json=body, auth=auth, timeout=self.timeout,
                                   allow_redirects=False)
            return resp.status_code, None
        except requests.RequestException as exc:
            return None, type(exc).__name__

    def _callback(self, session, job: dict) -> None:
        status, error = self._post(session, job["method"], job["url"], job["body"], job.get("auth"))
        self._log(self.callbacks, {"method": job["method"], "url": job["url"], "body": job["body"],
                                   "status": status, "error": error, "time": time.time()})

    def _deliver(self, session, job: dict) -> None:
        sb = self.sandbox
        hook = sb.webhook_for_delivery(job["webhook_id"])
        payload = copy.deepcopy(job["payload"])
        payload["meta"]["attempt"] = job["attempt"]
        entry = {"kind": "webhook", "webhook_id": job["webhook_id"], "event_id": payload["meta"]["id"],
                 "attempt": job["attempt"], "duplicate": job.get("duplicate", False), "payload": payload,
                 "time": time.time()}
        if hook is None or not hook["is_active"]:
            entry.update(status=None, ok=False, error="dropped: webhook " + ("deleted" if hook is None else "inactive"))
            self._log(self.deliveries, entry)
            return
        auth = (hook["http_auth_user"], hook["http_auth_password"] or "") if hook.get("http_auth_user") else None
        status, error = self._post(session, "POST", hook["subscription_url"], payload, auth)
        ok = status is not None and 200 <= status < 300
        entry.update(url=hook["subscription_url"], status=status, ok=ok, error=error)
        self._log(self.deliveries, entry)
        if job.get("duplicate"):
            return   # the chaos copy neither retries nor counts towards a ban
        retry = sb.record_delivery(job["webhook_id"], status, ok, job["attempt"], self.time_scale)
        if retry and job["attempt"] <= len(RETRY_DELAYS):
            delay = RETRY_DELAYS[job["attempt"] - 1] * self.time_scale
            self.enqueue(dict(job, attempt=job["attempt"] + 1, held=False, rolled=False, waiting=False), delay)

    def _log(self, log: list, entry: dict) -> None:
        with self._cond:
            log.append(entry)
            del log[:-LOG_LIMIT]
