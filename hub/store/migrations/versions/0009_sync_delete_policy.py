"""contact sync safety: a delete policy per sync, conflict entries that say what happened

Revision ID: 0009_sync_delete_policy
Revises: 0008_roles
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_sync_delete_policy"
down_revision = "0008_roles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contact_syncs") as batch:
        batch.add_column(sa.Column("delete_policy", sa.String(20), nullable=False, server_default="edit_wins"))
    with op.batch_alter_table("sync_conflicts") as batch:
        batch.add_column(sa.Column("message", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("sync_conflicts") as batch:
        batch.drop_column("message")
    with op.batch_alter_table("contact_syncs") as batch:
        batch.drop_column("delete_policy")
