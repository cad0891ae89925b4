"""server-side sign-in sessions: sign-out and removal from an installation end them everywhere

Revision ID: 0011_web_sessions
Revises: 0010_retry_budget
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0011_web_sessions"
down_revision = "0010_retry_budget"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("crm_user_id", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_web_sessions_user", "web_sessions", ["installation_id", "crm_user_id"])
    op.create_index("ix_web_sessions_expires", "web_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_web_sessions_expires", table_name="web_sessions")
    op.drop_index("ix_web_sessions_user", table_name="web_sessions")
    op.drop_table("web_sessions")
