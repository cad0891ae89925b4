"""In-memory emulator state that survives restarts of `make run`.

Emulators mutate plain dicts under one lock; a background thread writes a JSON snapshot at most
once per `save_interval` and on close, so a burst of 10,000 webhooks does not rewrite the file
10,000 times. Tests pass `path=None` and keep everything in memory."""
from __future__ import annotations

import atexit
import json
import os
import tempfile
import threading
from contextlib import contextmanager
from typing import Any, Iterator


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
            with open(self.path, encoding="utf-8") as fh:
                self.data = json.load(fh)
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
    def save(self) -> None:
        if not self.path:
            return
        with self.lock:
            payload = json.dumps(self.data, separators=(",", ":"), default=str)
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
                self.save()
                self._closed.wait(self.save_interval)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._dirty.set()
        if self.path:
            self.save()
