"""webhook inbox, normalized events, object states, registered webhooks, run log, bookmarks

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "inbox_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("event_key", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("processed_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ux_inbox_events_key", "inbox_events", ["installation_id", "event_key"], unique=True)
    op.create_index("ix_inbox_events_received", "inbox_events", ["installation_id", "received_at"])
    op.create_table(
        "hub_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("occurrence", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(60), nullable=False),
        sa.Column("object_type", sa.String(40), nullable=False),
        sa.Column("object_id", sa.String(100), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("inbox_event_id", BigId, nullable=True),
        sa.Column("occurred_at", sa.DateTime(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ux_hub_events_occurrence", "hub_events", ["installation_id", "occurrence"], unique=True)
    op.create_index("ix_hub_events_object", "hub_events", ["installation_id", "object_type", "object_id"])
    op.create_table(
        "object_states",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("object_type", sa.String(40), nullable=False),
        sa.Column("object_id", sa.String(100), nullable=False),
        sa.Column("version", sa.String(60), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ux_object_states", "object_states", ["installation_id", "object_type", "object_id"], unique=True)
    op.create_table(
        "registered_webhooks",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("remote_id", sa.String(100), nullable=False),
        sa.Column("event_action", sa.String(40), nullable=False),
        sa.Column("event_object", sa.String(40), nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_registered_webhooks_installation_id", "registered_webhooks", ["installation_id"])
    op.create_table(
        "run_log",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("hub_event_id", BigId, nullable=True),
        sa.Column("inbox_event_id", BigId, nullable=True),
        sa.Column("rule_id", BigId, nullable=True),
        sa.Column("sync_id", BigId, nullable=True),
        sa.Column("job_id", BigId, nullable=True),
        sa.Column("step", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_run_log_installation", "run_log", ["installation_id", "id"])
    op.create_index("ix_run_log_event", "run_log", ["hub_event_id"])
    op.create_index("ix_run_log_rule", "run_log", ["rule_id", "id"])
    op.create_index("ix_run_log_sync", "run_log", ["sync_id", "id"])
    op.create_table(
        "bookmarks",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ux_bookmarks", "bookmarks", ["installation_id", "name"], unique=True)


def downgrade() -> None:
    for table in ("bookmarks", "run_log", "registered_webhooks", "object_states", "hub_events", "inbox_events"):
        op.drop_table(table)
