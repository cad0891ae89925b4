"""An acknowledged webhook is on disk: the embedded SQLite database commits with synchronous=FULL
(in WAL mode NORMAL does not sync the log at commit, and a power loss may roll the last commits
back); every connection of the pool is opened so, not just the first."""
from __future__ import annotations

from hub.store.db import make_engine

FULL = 2


def test_every_sqlite_connection_syncs_each_commit(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        # two connections at once (raw: a transaction would take the write lock)
        one, two = engine.raw_connection(), engine.raw_connection()
        try:
            modes = [c.cursor().execute("PRAGMA synchronous").fetchone()[0] for c in (one, two)]
            journal = one.cursor().execute("PRAGMA journal_mode").fetchone()[0]
        finally:
            one.close()
            two.close()
        assert modes == [FULL, FULL] and journal == "wal"
    finally:
        engine.dispose()
