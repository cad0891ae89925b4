"""every job records its installation: dead letter, run log and replay filter on it in SQL

Revision ID: 0012_job_installation
Revises: 0011_web_sessions
Create Date: 2026-12-04

Backfill, where the payload leads to an installation:
- jobs whose payload names `installation_id` (webhook.process, webhooks.register, webhooks.reconcile);
- rule.execute: payload `run_id` -> rule_runs.installation_id;
- sync.run and sync.tick: payload `sync_id` -> contact_syncs.installation_id.
Left NULL (global): hub.housekeeping and webhooks.reconcile_all (global by nature), and mail.send
jobs queued before this revision (their payload holds only the message), as well as rule and sync
jobs whose run or sync was deleted since.
"""
import sqlalchemy as sa
from alembic import op

revision = "0012_job_installation"
down_revision = "0011_web_sessions"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _payload_int(dialect: str, key: str) -> tuple[str, str]:
    """(SQL for the payload's integer `key`, SQL condition that it is one) on this engine."""
    if dialect == "postgresql":
        text = f"(jobs.payload::jsonb ->> '{key}')"
        return f"CAST({text} AS BIGINT)", f"{text} ~ '^[0-9]{{1,18}}$'"
    value = f"json_extract(jobs.payload, '$.{key}')"
    return value, f"typeof({value}) = 'integer'"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("installation_id", BigId, nullable=True))
    op.create_index("ix_jobs_installation", "jobs", ["installation_id", "status", "id"])

    dialect = op.get_bind().dialect.name
    value, is_int = _payload_int(dialect, "installation_id")
    op.execute(f"UPDATE jobs SET installation_id = {value} WHERE installation_id IS NULL AND {is_int}")
    run_id, run_is_int = _payload_int(dialect, "run_id")
    op.execute(f"UPDATE jobs SET installation_id = (SELECT r.installation_id FROM rule_runs r WHERE r.id = {run_id}) "
               f"WHERE installation_id IS NULL AND kind = 'rule.execute' AND {run_is_int}")
    sync_id, sync_is_int = _payload_int(dialect, "sync_id")
    op.execute(f"UPDATE jobs SET installation_id = (SELECT c.installation_id FROM contact_syncs c WHERE c.id = {sync_id}) "
               f"WHERE installation_id IS NULL AND kind IN ('sync.run', 'sync.tick') AND {sync_is_int}")


def downgrade() -> None:
    op.drop_index("ix_jobs_installation", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("installation_id")
