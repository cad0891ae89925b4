"""Regression (found by bench/chaos.py): processes starting together on a fresh PostgreSQL database
all create the key-check canary; the losers crashed with a unique violation, so one of four freshly
started workers never came up. Now every one of them starts."""
from __future__ import annotations

import threading

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from hub.secrets import KeyRing, SecretKeyError, SecretStore
from hub.store import Database

pytestmark = pytest.mark.postgres


@pytest.fixture
def fresh_pg(pg_url):
    from tests.conftest import _truncate_pg
    _truncate_pg(pg_url)
    return pg_url


def test_processes_starting_together_all_pass_the_key_check(fresh_pg):
    key = Fernet.generate_key().decode()
    n = 12
    databases = [Database(fresh_pg) for _ in range(n)]   # a pool each, as separate processes have
    for db in databases:
        db.ping()                                           # connected before the start line
    start = threading.Barrier(n)
    errors: list[BaseException] = []

    def boot(db: Database) -> None:
        try:
            start.wait()
            SecretStore(KeyRing([key])).verify(db)
        except BaseException as exc:  # collected, not lost in a thread
            errors.append(exc)

    try:
        for attempt in range(5):                            # the race window is small: try it a few times
            with databases[0].begin() as session:
                session.execute(text("DELETE FROM secrets"))
            threads = [threading.Thread(target=boot, args=(db,)) for db in databases]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert errors == [], f"attempt {attempt}: {errors[:2]}"
            start.reset()
        # and the canary they agreed on still refuses a process with other keys
        with pytest.raises(SecretKeyError):
            SecretStore(KeyRing([Fernet.generate_key().decode()])).verify(databases[0])
    finally:
        for db in databases:
            db.dispose()
