"""Exactly one scheduler leads. PostgreSQL: a session advisory lock held on a dedicated connection
(it dies with the process or its connection, so a standby takes over on its next try). SQLite
(one machine by definition): an exclusive flock on a file next to the database."""
from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

log = logging.getLogger("hub.scheduler")
LOCK_KEY = 0x6875625F  # "hub_" as an int: the advisory lock id every scheduler agrees on


class PostgresLeaderLock:
    def __init__(self, url: str, key: int = LOCK_KEY):
        self.url = url
        self.key = key
        self._conn = None

    def try_acquire(self) -> bool:
        import psycopg

        if self._conn is not None:
            return self.still_held()
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
        except Exception as exc:
            log.warning("scheduler: database unreachable while trying to lead: %s", type(exc).__name__)
            return False
        # keepalives make a half-dead network visible, so a leader that cannot reach the database
        # notices (still_held fails) and steps down instead of scheduling blind.
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()[0]
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def still_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            row = self._conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                "AND objid = %s AND granted", (self.key & 0xFFFFFFFF,)).fetchone()
            return bool(row and row[0])
        except Exception:
            self.release()
            return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()  # closing the session releases the advisory lock
            except Exception:
                pass
            self._conn = None


class FileLeaderLock:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._fh = None

    def try_acquire(self) -> bool:
        if self._fh is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return True

    def still_held(self) -> bool:
        return self._fh is not None

    def release(self) -> None:
        if self._fh is not None:
            try:
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            finally:
                self._fh.close()
                self._fh = None
