"""The migrations build exactly the schema the models describe, on both engines, and go down cleanly."""
from datetime import datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

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


def test_rules_made_before_the_fires_choice_keep_running_every_time(db_url):
    """0007_rule_fires: a rule saved before it keeps today's behaviour (one run per occurrence)."""
    engine = create_engine(db_url)
    if migrate.current(engine):      # PostgreSQL: the test database is already at the head
        migrate.downgrade(engine, "0006_merge")
    else:
        migrate.upgrade(engine, "0006_merge")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO rules (installation_id, name, status, preset, \"trigger\", conditions, carry, action, target, "
            "name_template, description_template, version, created_by, created_at, updated_at) VALUES "
            "(1, 'moved', 'active', '', 'deal.stage_changed', '[]', '{}', 'asana.task', '{}', 'x', '', 1, '', "
            ":now, :now)"), {"now": datetime(2026, 12, 1)})
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT fires FROM rules")).scalar_one() == "every"
    engine.dispose()
