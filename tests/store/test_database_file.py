"""The embedded SQLite database, its -wal and -shm are the owner's alone, whatever the umask."""
from __future__ import annotations

import os
import stat

import pytest

from hub import create_app
from hub.store import migrate
from tests.conftest import hub_config


@pytest.fixture
def open_umask():
    old = os.umask(0o022)  # the usual default: without care, new files are world-readable
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_database_and_its_journal_files_are_created_private(tmp_path, open_umask):
    app = create_app(hub_config("", tmp_path / "instance", embedded=True))  # the default: instance/hub.db
    try:
        migrate.upgrade(app.extensions["hub"].db.engine)
        with app.extensions["hub"].db.begin() as s:
            s.connection().exec_driver_sql("SELECT 1")
            files = sorted(p.name for p in (tmp_path / "instance").glob("hub.db*"))
            assert files == ["hub.db", "hub.db-shm", "hub.db-wal"]
            for name in files:
                assert mode(tmp_path / "instance" / name) == 0o600, name
    finally:
        app.extensions["hub"].db.dispose()


def test_a_database_left_readable_by_an_older_version_is_tightened(tmp_path, open_umask):
    path = tmp_path / "hub.db"
    path.touch(mode=0o644)
    (tmp_path / "hub.db-wal").touch(mode=0o644)
    assert mode(path) == 0o644
    app = create_app(hub_config(f"sqlite:///{path}", tmp_path / "instance"))
    try:
        assert mode(path) == 0o600 and mode(tmp_path / "hub.db-wal") == 0o600
    finally:
        app.extensions["hub"].db.dispose()
