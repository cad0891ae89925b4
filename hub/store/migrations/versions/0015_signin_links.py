"""sign_in_links: one-time sign-in links e-mailed to the members of installations whose CRM has no
OAuth (hub accounts)

Revision ID: 0015_signin_links
Revises: 0014_rules_steps
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0015_signin_links"
down_revision = "0014_rules_steps"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        "sign_in_links",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("crm_user_id", sa.String(100), nullable=False),
        sa.Column("email", sa.String(300), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False, server_default="login"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_sign_in_links_email", "sign_in_links", ["email", "created_at"])


def downgrade():
    op.drop_index("ix_sign_in_links_email", table_name="sign_in_links")
    op.drop_table("sign_in_links")
