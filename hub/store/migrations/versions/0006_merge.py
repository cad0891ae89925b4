"""one head again: the rules and sync branches meet here

Revision ID: 0006_merge
Revises: 0004_rules, 0005_sync_shares
Create Date: 2026-12-04
"""

revision = "0006_merge"
down_revision = ("0004_rules", "0005_sync_shares")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
