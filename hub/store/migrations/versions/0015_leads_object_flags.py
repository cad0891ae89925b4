"""per-object automation state (object_flags); rules' other trigger params and where a rule comes from

object_flags: what an automation keeps per CRM object ("auto-advance is off for lead 7 since a
person moved it back"), one row per installation, connector, object and key, with who set it, why
and when. rules.params: the trigger params a rule narrows by besides pipeline and stage (a value,
or a list meaning any of them). rules.origin: the page that wrote the rule ("automation:
lead_pipelines:<entry>:<preset>"), so saving that page again updates the rule it made.

Revision ID: 0015_leads_object_flags
Revises: 0015_tasks_status
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0015_leads_object_flags"
down_revision = "0015_templates_tasks"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "object_flags",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("connector", sa.String(40), nullable=False),
        sa.Column("object_type", sa.String(40), nullable=False),
        sa.Column("object_id", sa.String(100), nullable=False),
        sa.Column("key", sa.String(60), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("set_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("set_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ux_object_flags", "object_flags",
                    ["installation_id", "connector", "object_type", "object_id", "key"], unique=True)
    with op.batch_alter_table("rules") as batch:
        batch.add_column(sa.Column("params", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("origin", sa.String(200), nullable=False, server_default=""))
    op.create_index("ix_rules_origin", "rules", ["installation_id", "origin"])


def downgrade() -> None:
    op.drop_index("ix_rules_origin", table_name="rules")
    with op.batch_alter_table("rules") as batch:
        batch.drop_column("origin")
        batch.drop_column("params")
    op.drop_index("ux_object_flags", table_name="object_flags")
    op.drop_table("object_flags")
