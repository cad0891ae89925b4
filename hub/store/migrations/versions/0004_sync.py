"""contact sync: syncs, runs, links, conflicts

Revision ID: 0004_sync
Revises: 0003
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_sync"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "contact_syncs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("google_connection_id", BigId, nullable=False),
        sa.Column("group_resource_name", sa.String(200), nullable=False),
        sa.Column("group_name", sa.String(300), nullable=False),
        sa.Column("direction", sa.String(20), nullable=False),
        sa.Column("person_filter", sa.JSON(), nullable=False),
        sa.Column("field_map", sa.JSON(), nullable=False),
        sa.Column("conflict_policy", sa.String(20), nullable=False),
        sa.Column("schedule_seconds", sa.Integer(), nullable=False),
        sa.Column("delete_share", sa.Float(), nullable=False),
        sa.Column("contact_cap", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=False),
        sa.Column("pending_deletes", sa.JSON(), nullable=False),
        sa.Column("lease_owner", sa.String(120), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("last_run_id", BigId, nullable=True),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_contact_syncs_installation_id", "contact_syncs", ["installation_id"])
    op.create_table(
        "sync_runs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("sync_id", BigId, nullable=False),
        sa.Column("job_id", BigId, nullable=True),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("phase", sa.String(30), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_sync_runs_sync", "sync_runs", ["sync_id", "id"])
    op.create_table(
        "sync_links",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("sync_id", BigId, nullable=False),
        sa.Column("crm_id", sa.String(100), nullable=True),
        sa.Column("resource_name", sa.String(200), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("display_name", sa.String(300), nullable=False),
        sa.Column("base", sa.JSON(), nullable=False),
        sa.Column("crm_fingerprint", sa.String(64), nullable=False),
        sa.Column("crm_version", sa.String(60), nullable=False),
        sa.Column("google_fingerprint", sa.String(64), nullable=False),
        sa.Column("google_etag", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ux_sync_links_crm", "sync_links", ["sync_id", "crm_id"], unique=True)
    op.create_index("ix_sync_links_resource", "sync_links", ["sync_id", "resource_name"])
    op.create_table(
        "sync_conflicts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("sync_id", BigId, nullable=False),
        sa.Column("run_id", BigId, nullable=True),
        sa.Column("crm_id", sa.String(100), nullable=False),
        sa.Column("resource_name", sa.String(200), nullable=False),
        sa.Column("field", sa.String(120), nullable=False),
        sa.Column("crm_value", sa.JSON(), nullable=True),
        sa.Column("google_value", sa.JSON(), nullable=True),
        sa.Column("winner", sa.String(10), nullable=False),
        sa.Column("policy", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_sync_conflicts_sync", "sync_conflicts", ["sync_id", "id"])


def downgrade() -> None:
    op.drop_table("sync_conflicts")
    op.drop_table("sync_links")
    op.drop_table("sync_runs")
    op.drop_table("contact_syncs")
