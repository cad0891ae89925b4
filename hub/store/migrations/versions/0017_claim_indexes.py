"""Partial indexes a job claim walks (hub/jobs/queue.py): the due jobs in claim order
(`ix_jobs_due`, PostgreSQL only: SQLite walks ix_jobs_claim in that order, its rowid last) and the
running ones by lease (`ix_jobs_lease`). Each holds only the rows a
claim can take, so a claim reads about as many rows as it takes however long the backlog is.

Revision ID: 0017_claim_indexes
Revises: 0016_failing_provider
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0017_claim_indexes"
down_revision = "0016_failing_provider"
branch_labels = None
depends_on = None


def upgrade() -> None:
    queued, running = sa.text("status = 'queued'"), sa.text("status = 'running'")
    if op.get_bind().dialect.name == "postgresql":    # SQLite walks ix_jobs_claim in that order (rowid last)
        op.create_index("ix_jobs_due", "jobs", ["run_at", "id"], postgresql_where=queued)
    op.create_index("ix_jobs_lease", "jobs", ["lease_until"], postgresql_where=running, sqlite_where=running)


def downgrade() -> None:
    op.drop_index("ix_jobs_lease", "jobs")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_jobs_due", "jobs")
