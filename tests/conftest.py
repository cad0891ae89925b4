"""Shared fixtures: a hub on SQLite and on PostgreSQL (a database of its own per test run)."""
from __future__ import annotations

pytest_plugins = ["tests.support.live", "tests.support.hubs"]

import os
import shutil
import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEST_KEY = Fernet.generate_key().decode()


@pytest.fixture(scope="session")
def pg_url():
    """A fresh PostgreSQL database for this test run, migrated once, dropped at the end."""
    name = f"hub_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - environment problem, say it plainly
        pytest.fail(f"PostgreSQL is needed at {PG_ADMIN_URL} (HUB_TEST_POSTGRES_URL): {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    from hub.store import migrate
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite database migrated to the head once per run: migrating a new file costs about 0.25 s,
    and hundreds of tests start from one (`migrated_sqlite` copies it)."""
    from hub.store import migrate
    template = tmp_path_factory.mktemp("sqlite-template") / "hub.db"
    engine = create_engine(f"sqlite:///{template}")    # rollback journal: the file alone is the database
    migrate.upgrade(engine)
    engine.dispose()
    return template


def migrated_sqlite(template: Path, path: Path) -> str:
    """The URL of a new SQLite database at `path`, already at the latest migration (a copy of the
    run's template, owner-only as the hub creates its own)."""
    shutil.copyfile(template, path)
    os.chmod(path, 0o600)
    return f"sqlite:///{path}"


def _truncate_pg(url: str) -> None:
    """Empty every table, and bring the schema back to the latest migration (a test may go down)."""
    from hub.store import migrate
    engine = create_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        tables = [r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"))]
        if tables:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """The database URL of one engine; tests using it run once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield migrated_sqlite(request.getfixturevalue("sqlite_template"), tmp_path / "hub.db")
    else:
        url = request.getfixturevalue("pg_url")
        _truncate_pg(url)
        yield url


def hub_config(db_url: str, instance: Path, **extra) -> dict:
    config = {"database_url": db_url, "instance_path": str(instance), "secret_keys": TEST_KEY,
              "session_secret": "test-session-secret", "embedded": False, "sandbox": False,
              "log_level": "WARNING", "freeze_heap": False}
    config.update(extra)
    return config


@pytest.fixture
def make_hub(db_url, tmp_path):
    """Build a migrated hub on the parametrised engine: make_hub(**settings, clock=...)."""
    from hub import create_app
    from hub.store import migrate

    apps = []

    def build(clock=None, **extra):
        app = create_app(hub_config(db_url, tmp_path / "instance", **extra), clock=clock)
        migrate.upgrade(app.extensions["hub"].db.engine)
        apps.append(app)
        return app

    yield build
    for app in apps:
        services = app.extensions["hub"]
        services.stop()
        services.db.dispose()


@pytest.fixture(autouse=True)
def _no_provider_cooldowns():
    """A rate limit one test provoked must not hold back the next test's calls (hub/connectors/base.py)."""
    yield
    from hub.connectors.base import _cooldowns
    _cooldowns.clear()
