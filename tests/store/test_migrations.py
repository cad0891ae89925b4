"""The migrations build exactly the schema the models describe, on both engines, and go down cleanly."""
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from hub.store import Base, migrate


def test_migrations_match_models_and_downgrade(db_url):
    engine = create_engine(db_url)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    assert migrate.is_current(engine)
    migrate.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)
    engine.dispose()
