"""linked tasks: their status mirror (task_statuses) and the closing settings (task_settings)

Revision ID: 0015_tasks_status
Revises: 0014_rules_steps
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0015_tasks_status"
down_revision = "0015_signin_links"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "task_statuses",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("link_id", BigId, nullable=False),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("connector", sa.String(40), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("object_type", sa.String(40), nullable=False),
        sa.Column("object_id", sa.String(100), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("deadline", sa.String(32), nullable=False, server_default=""),
        sa.Column("due_at", sa.DateTime(), nullable=True),
        sa.Column("status_changed_at", sa.DateTime(), nullable=False),
        sa.Column("responsible", sa.String(200), nullable=False, server_default=""),
        sa.Column("detail", sa.String(500), nullable=False, server_default=""),
        sa.Column("gone", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("checked_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ux_task_statuses_link", "task_statuses", ["link_id"], unique=True)
    op.create_index("ix_task_statuses_task", "task_statuses", ["installation_id", "connector", "external_id"])
    op.create_index("ix_task_statuses_object", "task_statuses", ["installation_id", "object_type", "object_id"])
    op.create_table(
        "task_settings",
        sa.Column("installation_id", BigId, primary_key=True, autoincrement=False),
        sa.Column("close_deal_tasks", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("close_lead_tasks", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("updated_by", sa.String(300), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("task_settings")
    op.drop_index("ux_task_statuses_link", "task_statuses")
    op.drop_index("ix_task_statuses_task", "task_statuses")
    op.drop_index("ix_task_statuses_object", "task_statuses")
    op.drop_table("task_statuses")
