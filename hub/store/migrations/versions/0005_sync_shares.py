"""contact sync sharing: a share is a sync of its own, child of the shared sync

Revision ID: 0005_sync_shares
Revises: 0004_sync
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_sync_shares"
down_revision = "0004_sync"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("contact_syncs") as batch:
        batch.add_column(sa.Column("parent_id", BigId, nullable=True))
        batch.add_column(sa.Column("share_mode", sa.String(10), nullable=False, server_default=""))
    op.create_index("ix_contact_syncs_parent", "contact_syncs", ["parent_id"])


def downgrade() -> None:
    op.drop_index("ix_contact_syncs_parent", table_name="contact_syncs")
    with op.batch_alter_table("contact_syncs") as batch:
        batch.drop_column("share_mode")
        batch.drop_column("parent_id")
