"""task templates and sets, post-sale sets, next-task rules and suggestions, task types, status
names, the tasks the hub made from templates (the team calendar's rows); the account's time zone
and sharing on task_settings

Revision ID: 0015_templates_tasks
Revises: 0015_tasks_status
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0015_templates_tasks"
down_revision = "0015_tasks_status"   # adds to its task_settings
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("task_settings") as batch:
        batch.add_column(sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"))
        batch.add_column(sa.Column("sharing", sa.String(20), nullable=False, server_default="free_busy"))
        batch.add_column(sa.Column("statuses_enabled", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "task_types",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("sharing", sa.String(20), nullable=True),
    )
    op.create_index("ux_task_types_name", "task_types", ["installation_id", "name"], unique=True)
    op.create_table(
        "task_status_options",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("closes", sa.Boolean(), nullable=False),
    )
    op.create_index("ux_task_status_options_name", "task_status_options", ["installation_id", "name"], unique=True)
    op.create_table(
        "task_template_sets",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_task_template_sets", "task_template_sets", ["installation_id", "id"])
    op.create_table(
        "task_templates",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("set_id", BigId, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("type_id", BigId, nullable=True),
        sa.Column("responsible", sa.String(100), nullable=False),
        sa.Column("delay_days", sa.Integer(), nullable=False),
        sa.Column("day_kind", sa.String(10), nullable=False),
        sa.Column("time_of_day", sa.String(5), nullable=False),
        sa.Column("kind", sa.String(80), nullable=False),
        sa.Column("connection_id", BigId, nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
    )
    op.create_index("ix_task_templates_set", "task_templates", ["set_id", "position"])
    op.create_table(
        "post_sale_sets",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("pipeline_id", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("set_id", BigId, nullable=False),
    )
    op.create_index("ux_post_sale_sets", "post_sale_sets", ["installation_id", "pipeline_id", "outcome"], unique=True)
    op.create_table(
        "next_task_rules",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("from_type_id", BigId, nullable=False),
        sa.Column("template_id", BigId, nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
    )
    op.create_index("ux_next_task_rules", "next_task_rules", ["installation_id", "from_type_id"], unique=True)
    op.create_table(
        "task_suggestions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("effect_key", sa.String(200), nullable=False),
        sa.Column("template_id", BigId, nullable=False),
        sa.Column("object_type", sa.String(40), nullable=False),
        sa.Column("object_id", sa.String(100), nullable=False),
        sa.Column("completed_task", sa.String(300), nullable=False),
        sa.Column("to_email", sa.String(300), nullable=False),
        sa.Column("to_user_id", sa.String(100), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("task_id", BigId, nullable=True),
    )
    op.create_index("ix_task_suggestions_to", "task_suggestions", ["installation_id", "status", "to_email"])
    op.create_index("ux_task_suggestions_effect", "task_suggestions", ["installation_id", "effect_key"], unique=True)
    op.create_table(
        "hub_tasks",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("effect_key", sa.String(300), nullable=False),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("run_id", BigId, nullable=True),
        sa.Column("template_id", BigId, nullable=True),
        sa.Column("object_type", sa.String(40), nullable=False),
        sa.Column("object_id", sa.String(100), nullable=False),
        sa.Column("connector", sa.String(40), nullable=False),
        sa.Column("connection_id", BigId, nullable=True),
        sa.Column("kind", sa.String(80), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("title", sa.String(1024), nullable=False),
        sa.Column("task_type", sa.String(80), nullable=False),
        sa.Column("sharing", sa.String(20), nullable=True),
        sa.Column("owner_id", sa.String(100), nullable=False),
        sa.Column("owner_name", sa.String(300), nullable=False),
        sa.Column("owner_email", sa.String(300), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_hub_tasks_due", "hub_tasks", ["installation_id", "due_at"])
    op.create_index("ix_hub_tasks_external", "hub_tasks", ["installation_id", "connector", "external_id"])
    op.create_index("ux_hub_tasks_effect", "hub_tasks", ["installation_id", "effect_key"], unique=True)


def downgrade() -> None:
    op.drop_table("hub_tasks")
    op.drop_table("task_suggestions")
    op.drop_table("next_task_rules")
    op.drop_table("post_sale_sets")
    op.drop_table("task_templates")
    op.drop_table("task_template_sets")
    op.drop_table("task_status_options")
    op.drop_table("task_types")
    with op.batch_alter_table("task_settings") as batch:
        batch.drop_column("statuses_enabled")
        batch.drop_column("sharing")
        batch.drop_column("timezone")

