"""roles per installation member (admin / user) and who owns each connection

Revision ID: 0008_roles
Revises: 0007_rule_fires
Create Date: 2026-12-04
"""
import re

import sqlalchemy as sa
from alembic import op

revision = "0008_roles"
down_revision = "0007_rule_fires"
branch_labels = None
depends_on = None

ACTOR_ID = re.compile(r"\(([^()]+)\)$")  # the audit actor "Name (crm user id)" ends with the id


def upgrade() -> None:
    with op.batch_alter_table("installation_users") as batch:
        batch.add_column(sa.Column("role", sa.String(10), nullable=False, server_default="user"))
    with op.batch_alter_table("connections") as batch:
        batch.add_column(sa.Column("owner_user_id", sa.String(100), nullable=False, server_default=""))
    # existing rows: a CRM connection is its user's; a target's owner is the id in `connected_by`
    bind = op.get_bind()
    connections = sa.table("connections", sa.column("id", sa.BigInteger), sa.column("role", sa.String),
                           sa.column("account_id", sa.String), sa.column("connected_by", sa.String),
                           sa.column("owner_user_id", sa.String))
    for row in bind.execute(sa.select(connections.c.id, connections.c.role, connections.c.account_id,
                                      connections.c.connected_by)).all():
        found = ACTOR_ID.search(row.connected_by or "")
        owner = row.account_id if row.role == "crm" else (found.group(1) if found else (row.connected_by or ""))
        bind.execute(connections.update().where(connections.c.id == row.id).values(owner_user_id=owner[:100]))


def downgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("owner_user_id")
    with op.batch_alter_table("installation_users") as batch:
        batch.drop_column("role")
