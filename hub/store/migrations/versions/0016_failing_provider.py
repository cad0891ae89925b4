"""jobs.failing_provider: which provider's failures the job's failed-call count is counting, so a
later attempt that sees that provider answer again starts the count over (hub/connectors/retry.py)

Revision ID: 0016_failing_provider
Revises: 0015_leads_object_flags
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0016_failing_provider"
down_revision = "0015_leads_object_flags"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("failing_provider", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("failing_provider")
