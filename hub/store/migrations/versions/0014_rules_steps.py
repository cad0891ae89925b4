"""rules with ordered steps: rule_steps, a run per step (rule_step_runs), neutral links

A rule was a trigger, conditions and one action (a task or a project in one target, with its
templates, carried data and field mappings). Now it is a trigger, conditions and ordered steps.
Every existing rule keeps its action as step 1 (uid "1", kind = its action, e.g. `asana.task`),
its field mappings move into that step, and every existing run gets a step run for it that keeps
the run's own effect key and what it made (target id, copied attachments) and, for a run tried
before, the write-ahead mark `sent`, so a failed run retried after the upgrade looks for the task
or project an earlier attempt may have made before creating one. Links lose
their provider-named columns (target_gid -> external_id ...) and may be several per run.

Revision ID: 0014_rules_steps
Revises: 0013_sync_neutral
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = "0014_rules_steps"
down_revision = "0013_sync_neutral"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LEGACY_UID = "1"      # the uid of the step a rule's single action became

OLD_RULE_COLUMNS = (("action", sa.String(40)), ("target_connection_id", BigId), ("target", sa.JSON()),
                    ("carry", sa.JSON()), ("name_template", sa.Text()), ("description_template", sa.Text()))


def _steps_table():
    return sa.table("rule_steps", sa.column("rule_id", BigId), sa.column("position", sa.Integer()),
                    sa.column("uid", sa.String(16)), sa.column("kind", sa.String(80)),
                    sa.column("connection_id", BigId), sa.column("settings", sa.JSON()),
                    sa.column("templates", sa.JSON()), sa.column("carry", sa.JSON()),
                    sa.column("mappings", sa.JSON()), sa.column("condition", sa.JSON()),
                    sa.column("delay_seconds", sa.Integer()), sa.column("due_in_days", sa.Integer()))


def _mappings_table():
    return sa.table("rule_field_mappings", sa.column("rule_id", BigId), sa.column("position", sa.Integer()),
                    sa.column("source", sa.String(20)), sa.column("field_key", sa.String(100)),
                    sa.column("label", sa.String(300)), sa.column("field_type", sa.String(40)),
                    sa.column("options", sa.JSON()))


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        "rule_steps",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("rule_id", BigId, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(80), nullable=False),
        sa.Column("connection_id", BigId, nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("templates", sa.JSON(), nullable=False),
        sa.Column("carry", sa.JSON(), nullable=False),
        sa.Column("mappings", sa.JSON(), nullable=False),
        sa.Column("condition", sa.JSON(), nullable=True),
        sa.Column("delay_seconds", sa.Integer(), nullable=False),
        sa.Column("due_in_days", sa.Integer(), nullable=True),
    )
    op.create_index("ux_rule_steps_uid", "rule_steps", ["rule_id", "uid"], unique=True)
    op.create_index("ix_rule_steps_rule", "rule_steps", ["rule_id", "position"])
    op.create_table(
        "rule_step_runs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("installation_id", BigId, nullable=False),
        sa.Column("run_id", BigId, nullable=False),
        sa.Column("step_uid", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(80), nullable=False),
        sa.Column("effect_key", sa.String(220), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=True),
        sa.Column("wake_at", sa.DateTime(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ux_rule_step_runs_step", "rule_step_runs", ["run_id", "step_uid"], unique=True)
    op.create_index("ux_rule_step_runs_effect", "rule_step_runs", ["installation_id", "effect_key"], unique=True)

    # each rule's action becomes its step 1, with the rule's field mappings
    old_rules = sa.table("rules", sa.column("id", BigId), *(sa.column(n, t) for n, t in OLD_RULE_COLUMNS))
    old_mappings = _mappings_table()
    by_rule: dict[int, list] = {}
    for m in bind.execute(sa.select(old_mappings).order_by(old_mappings.c.rule_id, old_mappings.c.position)):
        by_rule.setdefault(m.rule_id, []).append({"source": m.source, "key": m.field_key, "label": m.label,
                                                  "type": m.field_type, "options": dict(m.options or {})})
    steps = _steps_table()
    for r in bind.execute(sa.select(old_rules).order_by(old_rules.c.id)):
        bind.execute(steps.insert().values(
            rule_id=r.id, position=0, uid=LEGACY_UID, kind=r.action or "", connection_id=r.target_connection_id,
            settings={k: v for k, v in (r.target or {}).items() if v not in (None, "")},
            templates={"name": r.name_template or "", "description": r.description_template or ""},
            carry=dict(r.carry or {}), mappings=by_rule.get(r.id, []), condition=None, delay_seconds=0,
            due_in_days=None))

    # each run's progress becomes the progress of its step 1, under the run's own effect key
    op.execute(
        "INSERT INTO rule_step_runs (installation_id, run_id, step_uid, position, kind, effect_key, status, "
        "external_id, wake_at, detail, created_at, updated_at, finished_at) "
        f"SELECT r.installation_id, r.id, '{LEGACY_UID}', 0, COALESCE(rl.action, ''), r.effect_key, "
        "CASE WHEN r.status = 'done' THEN 'done' ELSE 'pending' END, r.target_gid, NULL, "
        "r.detail, r.created_at, r.updated_at, CASE WHEN r.status = 'done' THEN r.finished_at END "
        "FROM rule_runs r LEFT JOIN rules rl ON rl.id = r.rule_id")
    # a run tried before (or with a create in flight) may have made its object: its step carries the
    # write-ahead mark, so the retry looks before creating (first_try=False)
    step_runs = sa.table("rule_step_runs", sa.column("id", BigId), sa.column("run_id", BigId),
                         sa.column("detail", sa.JSON()))
    tried = sa.table("rule_runs", sa.column("id", BigId), sa.column("status", sa.String(20)),
                     sa.column("attempts", sa.Integer()), sa.column("creating_since", sa.DateTime()))
    for row in bind.execute(sa.select(step_runs.c.id, step_runs.c.detail).join(tried, tried.c.id == step_runs.c.run_id)
                            .where(tried.c.status != "done",
                                   sa.or_(tried.c.attempts > 0, tried.c.creating_since.is_not(None)))):
        bind.execute(step_runs.update().where(step_runs.c.id == row.id).values(detail={**(row.detail or {}),
                                                                                       "sent": True}))

    with op.batch_alter_table("rule_links") as batch:
        batch.drop_index("ux_rule_links_run")
        batch.alter_column("target_provider", new_column_name="connector", existing_type=sa.String(40),
                           existing_nullable=False)
        batch.alter_column("target_type", new_column_name="made", existing_type=sa.String(20), existing_nullable=False)
        batch.alter_column("target_gid", new_column_name="external_id", existing_type=sa.String(100),
                           type_=sa.String(200), existing_nullable=False)
        batch.alter_column("target_name", new_column_name="name", existing_type=sa.String(1024),
                           existing_nullable=False)
        batch.alter_column("target_url", new_column_name="url", existing_type=sa.String(500), existing_nullable=False)
        batch.add_column(sa.Column("step_uid", sa.String(16), nullable=False, server_default=""))
        batch.add_column(sa.Column("connection_id", BigId, nullable=True))
        batch.add_column(sa.Column("status", sa.String(20), nullable=False, server_default="open"))
        batch.add_column(sa.Column("completed_at", sa.DateTime(), nullable=True))
    op.execute(f"UPDATE rule_links SET step_uid = '{LEGACY_UID}', connection_id = "
               "(SELECT rules.target_connection_id FROM rules WHERE rules.id = rule_links.rule_id)")
    op.create_index("ux_rule_links_step", "rule_links", ["run_id", "step_uid"], unique=True)

    with op.batch_alter_table("rule_runs") as batch:
        batch.drop_column("target_gid")
        batch.drop_column("creating_since")
        batch.add_column(sa.Column("step_uid", sa.String(16), nullable=True))
        batch.add_column(sa.Column("wake_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("rules") as batch:
        for name, _ in OLD_RULE_COLUMNS:
            batch.drop_column(name)
    op.drop_table("rule_field_mappings")


def downgrade() -> None:
    """Back to one action per rule: each rule keeps its first step (later steps are dropped)."""
    bind = op.get_bind()
    with op.batch_alter_table("rules") as batch:
        for name, type_ in OLD_RULE_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    op.create_table(
        "rule_field_mappings",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("rule_id", BigId, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("field_key", sa.String(100), nullable=False),
        sa.Column("label", sa.String(300), nullable=False),
        sa.Column("field_type", sa.String(40), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
    )
    op.create_index("ux_rule_field_mappings", "rule_field_mappings", ["rule_id", "source", "field_key"], unique=True)
    steps = _steps_table()
    old_rules = sa.table("rules", sa.column("id", BigId), *(sa.column(n, t) for n, t in OLD_RULE_COLUMNS))
    mappings = _mappings_table()
    seen: set[int] = set()
    for s in bind.execute(sa.select(steps).order_by(steps.c.rule_id, steps.c.position)):
        if s.rule_id in seen:
            continue
        seen.add(s.rule_id)
        templates = s.templates or {}
        bind.execute(old_rules.update().where(old_rules.c.id == s.rule_id).values(
            action=s.kind[:40], target_connection_id=s.connection_id, target=dict(s.settings or {}),
            carry=dict(s.carry or {}), name_template=templates.get("name", ""),
            description_template=templates.get("description", "")))
        keys = set()
        for n, m in enumerate(s.mappings or []):
            if (m.get("source"), m.get("key")) in keys:
                continue
            keys.add((m.get("source"), m.get("key")))
            bind.execute(mappings.insert().values(rule_id=s.rule_id, position=n, source=m.get("source", "deal"),
                                                  field_key=m.get("key", ""), label=m.get("label", ""),
                                                  field_type=m.get("type", ""), options=m.get("options") or {}))
    op.execute("UPDATE rules SET action = '', target = '{}', carry = '{}', name_template = '', "
               "description_template = '' WHERE action IS NULL")

    with op.batch_alter_table("rule_runs") as batch:
        batch.drop_column("step_uid")
        batch.drop_column("wake_at")
        batch.add_column(sa.Column("target_gid", sa.String(100), nullable=True))
        batch.add_column(sa.Column("creating_since", sa.DateTime(), nullable=True))
    op.execute("UPDATE rule_runs SET target_gid = (SELECT SUBSTR(s.external_id, 1, 100) FROM rule_step_runs s "
               "WHERE s.run_id = rule_runs.id ORDER BY s.position LIMIT 1)")
    # a step whose create may be out (its write-ahead mark) was a run with a create in flight
    step_runs = sa.table("rule_step_runs", sa.column("run_id", BigId), sa.column("position", sa.Integer()),
                         sa.column("detail", sa.JSON()), sa.column("updated_at", sa.DateTime()),
                         sa.column("external_id", sa.String(200)))
    runs = sa.table("rule_runs", sa.column("id", BigId), sa.column("creating_since", sa.DateTime()))
    for row in bind.execute(sa.select(step_runs).where(step_runs.c.position == 0, step_runs.c.external_id.is_(None))):
        if (row.detail or {}).get("sent"):
            bind.execute(runs.update().where(runs.c.id == row.run_id).values(creating_since=row.updated_at))

    op.drop_index("ux_rule_links_step", table_name="rule_links")
    op.execute("DELETE FROM rule_links WHERE id NOT IN (SELECT MIN(l.id) FROM rule_links l GROUP BY l.run_id)")
    op.execute("UPDATE rule_links SET external_id = SUBSTR(external_id, 1, 100)")
    with op.batch_alter_table("rule_links") as batch:
        for name in ("step_uid", "connection_id", "status", "completed_at"):
            batch.drop_column(name)
        batch.alter_column("connector", new_column_name="target_provider", existing_type=sa.String(40),
                           existing_nullable=False)
        batch.alter_column("made", new_column_name="target_type", existing_type=sa.String(20), existing_nullable=False)
        batch.alter_column("external_id", new_column_name="target_gid", existing_type=sa.String(200),
                           type_=sa.String(100), existing_nullable=False)
        batch.alter_column("name", new_column_name="target_name", existing_type=sa.String(1024),
                           existing_nullable=False)
        batch.alter_column("url", new_column_name="target_url", existing_type=sa.String(500), existing_nullable=False)
    op.create_index("ux_rule_links_run", "rule_links", ["run_id"], unique=True)
    op.drop_table("rule_step_runs")
    op.drop_table("rule_steps")
