"""installations, their users and connections, audit events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "installations",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("company_name", sa.String(300), nullable=False),
        sa.Column("company_domain", sa.String(300), nullable=False),
        sa.Column("api_domain", sa.String(500), nullable=False),
        sa.Column("installer_user_id", sa.String(100), nullable=False),
        sa.Column("installer_name", sa.String(300), nullable=False),
        sa.Column("installer_email", sa.String(300), nullable=False),
        sa.Column("visibility", sa.String(20), nullable=False),
        sa.Column("visibility_confirmed", sa.Boolean(), nullable=False),
        sa.Column("shared_signal", sa.Boolean(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("endpoint_token", sa.String(100), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("uninstalled_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ux_installations_company", "installations", ["provider", "company_id"], unique=True)
    op.create_table(
        "installation_users",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("crm_user_id", sa.String(100), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("email", sa.String(300), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("notified_at", sa.DateTime(), nullable=True),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_installation_users_installation_id", "installation_users", ["installation_id"])
    op.create_index("ux_installation_users", "installation_users", ["installation_id", "crm_user_id"], unique=True)
    op.create_table(
        "connections",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("account_id", sa.String(300), nullable=False),
        sa.Column("account_name", sa.String(300), nullable=False),
        sa.Column("account_email", sa.String(300), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("api_base", sa.String(500), nullable=False),
        sa.Column("token_url", sa.String(500), nullable=False),
        sa.Column("revoke_url", sa.String(500), nullable=False),
        sa.Column("token_expires_at", sa.DateTime(), nullable=True),
        sa.Column("refresh_due_at", sa.DateTime(), nullable=True),
        sa.Column("refresh_count", sa.Integer(), nullable=False),
        sa.Column("last_refreshed_at", sa.DateTime(), nullable=True),
        sa.Column("reauth_notified_at", sa.DateTime(), nullable=True),
        sa.Column("connected_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_connections_installation_id", "connections", ["installation_id"])
    op.create_index("ix_connections_lookup", "connections", ["installation_id", "provider", "role"])
    op.create_table(
        "audit_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=True),
        sa.Column("actor", sa.String(300), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_audit_events_installation_id", "audit_events", ["installation_id"])


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("connections")
    op.drop_table("installation_users")
    op.drop_table("installations")
