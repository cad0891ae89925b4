"""Group commit: the webhooks waiting to be written share one transaction.

SQLite has one write lock. With one transaction per webhook, a burst has every web thread queue at
BEGIN IMMEDIATE and pay a commit each; here the waiting requests are written together, in one
transaction, and each is answered after the commit that holds its rows (durability unchanged).

Leader/follower, not a writer thread: the request that finds nobody writing writes at once (a lone
request costs what it did before: no hand-over to another thread, no timer), and takes along
whatever queued behind it. Requests arriving meanwhile wait; after each commit the leader wakes
every request of the batch with its own result, writes the next batch if requests wait (at most a
few rounds: its own answer waits for them), then hands the lead to the first one still queued and
returns its own answer. No thread to start, stop, or lose in a fork (gunicorn, waitress and the
Flask test client all run requests on threads of their own), and a leader cannot vanish without its
`finally` handing over: a leader stuck in the database is the only way to wait, and that is bounded.

Failure isolation: when the batch transaction fails, each request of it is written again in a
transaction of its own, so one bad request gets its own error and never fails the others."""
from __future__ import annotations

import logging
import threading
from collections import deque
from contextlib import AbstractContextManager
from typing import Any, Callable, Generic, TypeVar

from sqlalchemy.orm import Session

log = logging.getLogger("hub.webhooks")
Item = TypeVar("Item")
Result = TypeVar("Result")
_QUEUED, _TAKEN, _DONE = "queued", "taken", "done"


class GroupCommitTimeout(RuntimeError):
    """A batch holding this request did not finish within the bound: not answered 2xx, so the
    provider delivers again (the event key makes that safe)."""


class _Entry:
    __slots__ = ("item", "state", "lead", "result", "error", "wake")

    def __init__(self, item: Any):
        self.item = item
        self.state = _QUEUED
        self.lead = False            # the leader handed the lead to this request
        self.result: Any = None
        self.error: BaseException | None = None
        self.wake = threading.Event()  # set when done, or when asked to lead


class GroupCommitter(Generic[Item, Result]):
    """`submit(item)` returns `write(session, item)`'s result once its transaction has committed,
    or raises what that write raised. `write_many(session, items)`: the same for several items at
    once (a list of results), when it can do better than `write` in turn; a request written alone
    (a batch of one, a retry, the fallback) always goes through `write`.
    `begin()` opens a transaction (committed when its block ends);
    `max_batch` bounds the requests of one transaction; `wait_seconds` bounds each wait."""

    def __init__(self, begin: Callable[[], AbstractContextManager[Session]],
                 write: Callable[[Session, Item], Result],
                 write_many: Callable[[Session, list[Item]], list[Result]] | None = None, *,
                 max_batch: int = 64, rounds: int = 4, wait_seconds: float = 60.0):
        self._begin = begin
        self._write = write
        self._write_many = write_many or (lambda session, items: [write(session, item) for item in items])
        self.max_batch = max(1, max_batch)
        self.rounds = max(1, rounds)
        self.wait_seconds = wait_seconds
        self._lock = threading.Lock()
        self._queue: deque[_Entry] = deque()
        self._leading = False        # invariant: a non-empty queue has a leader (or one being woken)

    def submit(self, item: Item) -> Result:
        entry = _Entry(item)
        with self._lock:
            self._queue.append(entry)
            lead = not self._leading
            self._leading = True
        if not lead and not self._await(entry):
            return self._alone(entry.item)      # nobody took it in time: write it here, as before
        if entry.state is not _DONE:
            self._lead()
        if entry.error is not None:
            raise entry.error
        return entry.result

    def _await(self, entry: _Entry) -> bool:
        """Wait until the entry is done or must lead; False when it was never taken within the
        bound (it is out of the queue then, and the caller writes it)."""
        if entry.wake.wait(self.wait_seconds):
            return True
        with self._lock:
            if entry.lead or entry.state is _DONE:
                return True
            if entry.state is _QUEUED:
                self._queue.remove(entry)
                log.warning("webhook group commit: no writer took the request within %ss; written alone",
                            self.wait_seconds)
                return False
        # in a batch being written: its transaction ends within SQLite's busy timeout, or never
        if not entry.wake.wait(self.wait_seconds):
            raise GroupCommitTimeout(f"the batch holding this request did not finish in {self.wait_seconds}s")
        return True

    def _lead(self) -> None:
        """Write batches while requests wait, up to `rounds` of them, then hand the lead on. Going on
        costs this request's answer a few batches; handing on after every batch stalls the writing
        until the next leader's thread gets the GIL back (milliseconds on a busy process)."""
        batch: list[_Entry] = []
        try:
            for _ in range(self.rounds):
                with self._lock:
                    if not self._queue:
                        break
                    batch = []
                    while self._queue and len(batch) < self.max_batch:
                        entry = self._queue.popleft()
                        entry.state = _TAKEN
                        batch.append(entry)
                self._write_batch(batch)
        finally:
            with self._lock:
                for entry in batch:              # only if the leader was torn out mid-write
                    if entry.state is not _DONE:
                        self._finish(entry, None, GroupCommitTimeout("the batch writer stopped"))
                if self._queue:
                    follower = self._queue[0]
                    follower.lead = True
                    follower.wake.set()
                else:
                    self._leading = False

    def _write_batch(self, batch: list[_Entry]) -> None:
        try:
            if len(batch) == 1:
                results = [self._alone(batch[0].item)]
            else:
                with self._begin() as session:
                    results = self._write_many(session, [entry.item for entry in batch])
        except Exception as exc:
            if len(batch) == 1:
                self._finish(batch[0], None, exc)
                return
            log.warning("webhook group commit of %d requests failed (%s): each written alone", len(batch),
                        type(exc).__name__)
            for entry in batch:
                try:
                    result = self._alone(entry.item)
                except Exception as alone:
                    self._finish(entry, None, alone)
                else:
                    self._finish(entry, result, None)
            return
        for entry, result in zip(batch, results):
            self._finish(entry, result, None)

    def _alone(self, item: Item) -> Result:
        with self._begin() as session:
            return self._write(session, item)

    @staticmethod
    def _finish(entry: _Entry, result: Any, error: BaseException | None) -> None:
        entry.result, entry.error, entry.state = result, error, _DONE
        entry.wake.set()
