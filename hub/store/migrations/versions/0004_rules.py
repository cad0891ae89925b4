"""rules, their field mappings, runs and links

Revision ID: 0004_rules
Revises: 0003
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_rules"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rules",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("preset", sa.String(40), nullable=False),
        sa.Column("trigger", sa.String(40), nullable=False),
        sa.Column("pipeline_id", sa.String(40), nullable=True),
        sa.Column("stage_id", sa.String(40), nullable=True),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("carry", sa.JSON(), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target_connection_id", BigId, nullable=True),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("name_template", sa.Text(), nullable=False),
        sa.Column("description_template", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("notified_version", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("activated_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_rules_match", "rules", ["installation_id", "status", "trigger"])
    op.create_table(
        "rule_field_mappings",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("rule_id", BigId, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("field_key", sa.String(100), nullable=False),
        sa.Column("label", sa.String(300), nullable=False),
        sa.Column("field_type", sa.String(40), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
    )
    op.create_index("ux_rule_field_mappings", "rule_field_mappings", ["rule_id", "source", "field_key"], unique=True)
    op.create_table(
        "rule_runs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("rule_id", BigId, nullable=False),
        sa.Column("hub_event_id", BigId, nullable=False),
        sa.Column("effect_key", sa.String(200), nullable=False),
        sa.Column("object_type", sa.String(40), nullable=False),
        sa.Column("object_id", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("target_gid", sa.String(100), nullable=True),
        sa.Column("creating_since", sa.DateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ux_rule_runs_effect", "rule_runs", ["installation_id", "effect_key"], unique=True)
    op.create_index("ix_rule_runs_rule", "rule_runs", ["rule_id", "id"])
    op.create_table(
        "rule_links",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("rule_id", BigId, nullable=False),
        sa.Column("run_id", BigId, nullable=False),
        sa.Column("object_type", sa.String(40), nullable=False),
        sa.Column("object_id", sa.String(100), nullable=False),
        sa.Column("target_provider", sa.String(40), nullable=False),
        sa.Column("target_type", sa.String(20), nullable=False),
        sa.Column("target_gid", sa.String(100), nullable=False),
        sa.Column("target_name", sa.String(1024), nullable=False),
        sa.Column("target_url", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ux_rule_links_run", "rule_links", ["run_id"], unique=True)
    op.create_index("ix_rule_links_object", "rule_links", ["installation_id", "object_type", "object_id"])


def downgrade() -> None:
    for table in ("rule_links", "rule_runs", "rule_field_mappings", "rules"):
        op.drop_table(table)
