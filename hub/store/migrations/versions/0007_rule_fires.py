"""rules.fires: a rule runs every time its trigger happens again to a deal, or once per deal

Existing rules keep today's behaviour ("every": one run per occurrence); new rules get their
trigger's default when they are created.

Revision ID: 0007_rule_fires
Revises: 0006_merge
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_rule_fires"
down_revision = "0006_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rules") as batch:
        batch.add_column(sa.Column("fires", sa.String(10), nullable=False, server_default="every"))
    # "has this rule run for this deal?" (rules that fire once per deal)
    op.create_index("ix_rule_runs_object", "rule_runs", ["rule_id", "object_type", "object_id"])


def downgrade() -> None:
    op.drop_index("ix_rule_runs_object", table_name="rule_runs")
    with op.batch_alter_table("rules") as batch:
        batch.drop_column("fires")
