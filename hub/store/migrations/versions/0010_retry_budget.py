"""jobs.failed_calls: the failed provider requests of a job's effect, over all its attempts

Revision ID: 0010_retry_budget
Revises: 0009_sync_delete_policy
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0010_retry_budget"
down_revision = "0009_sync_delete_policy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("failed_calls", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("failed_calls")
