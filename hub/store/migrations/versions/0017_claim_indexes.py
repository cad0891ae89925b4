"""ix_jobs_claim gains the job id, the claim's tie-break: a claim (hub/jobs/queue.py) walks the
due jobs in the order it takes them, by (run_at, id), and stops once it has its batch; without
the id, PostgreSQL filtered and sorted the whole backlog on every claim.

Revision ID: 0017_claim_indexes
Revises: 0016_failing_provider
Create Date: 2026-12-05
"""
from alembic import op

revision = "0017_claim_indexes"
down_revision = "0016_failing_provider"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_jobs_claim", "jobs")
    op.create_index("ix_jobs_claim", "jobs", ["status", "run_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_claim", "jobs")
    op.create_index("ix_jobs_claim", "jobs", ["status", "run_at"])
