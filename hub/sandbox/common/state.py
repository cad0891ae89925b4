"""In-memory emulator state that survives restarts of `make run`.

Emulators mutate plain dicts under one lock; a background thread writes a JSON snapshot at most
once per `save_interval` and on close, so a burst of 10,000 webhooks does not rewrite the file
10,000 times. Tests pass `path=None` and keep everything in memory."""
from __future__ import annotations

import atexit
import json
import logging
import os
import tempfile
import threading
from contextlib import contextmanager
from typing import Any, Iterator

log = logging.getLogger("hub.sandbox")

class SandboxState:
    def __init__(self, path: str | os.PathLike | None = None, *, save_interval: float = 1.0):
        self.path = os.fspath(path) if path else None
        self.save_interval = save_interval
        self.lock = threading.RLock()
        self.data: dict[str, Any] = {}
        self._dirty = threading.Event()
        self._closed = threading.Event()
        self._saver: threading.Thread | None = None
        if self.path and os.path.exists(self.path):
            self.data = self._load(self.path)
        if self.path:
            self._saver = threading.Thread(target=self._save_loop, name="sandbox-state-saver", daemon=True)
            self._saver.start()
            atexit.register(self.close)

    # -- access ---------------------------------------------------------------------------------
    def table(self, name: str) -> dict:
        """A named dict inside the state (created on first use); call under `self.lock` or `change()`."""
        return self.data.setdefault(name, {})

    @contextmanager
    def change(self) -> Iterator[dict]:
        """Hold the lock while mutating; the snapshot is scheduled when the block exits."""
        with self.lock:
            yield self.data
            self._dirty.set()

    def next_id(self, kind: str, start: int = 1) -> int:
        with self.lock:
            seq = self.data.setdefault("_sequences", {})
            value = seq.get(kind, start - 1) + 1
            seq[kind] = value
            self._dirty.set()
            return value

    # -- persistence ----------------------------------------------------------------------------
    @staticmethod
    def _load(path: str) -> dict[str, Any]:
        """The saved state; a file that cannot be read is kept aside (`.broken`) and the emulator
        starts afresh instead of failing every start."""
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            if isinstance(data, dict):
                return data
        except (OSError, ValueError, RecursionError) as exc:
            log.warning("sandbox state %s unreadable (%s); starting afresh", path, exc)
        os.replace(path, path + ".broken")
        return {}

    def save(self) -> None:
        """Snapshot the state. ASCII JSON (`\\ud800` stays an escape), so any string an emulator
        kept, valid Unicode or not, can be written and read back."""
        if not self.path:
            return
        with self.lock:
            payload = json.dumps(self.data, separators=(",", ":"), default=str, ensure_ascii=True)
            self._dirty.clear()
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".sandbox-", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(payload)
        os.replace(tmp, self.path)

    def _save_loop(self) -> None:
        while not self._closed.is_set():
            self._dirty.wait(timeout=self.save_interval)
            if self._dirty.is_set():
                try:
                    self.save()
                except Exception:   # noqa: BLE001  (the saver must outlive one failed write)
                    log.exception("sandbox state %s could not be saved; will try again", self.path)
                    self._dirty.set()
                self._closed.wait(self.save_interval)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._dirty.set()
        if self.path:
            self.save()
