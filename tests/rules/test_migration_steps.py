"""Migration 0014: rules made with one action keep it as step 1 (templates, carried data, field
mappings, account), their runs keep what they made under the run's own effect key, and their links
become neutral; going down restores the old shape. On SQLite and PostgreSQL."""
from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import create_engine, text

from hub.store import migrate

NOW = datetime(2026, 12, 1, 12, 0)
BEFORE = "0012_job_installation"


def _at_before(engine) -> None:
    if migrate.current(engine):            # PostgreSQL: the shared test database is at the head
        migrate.downgrade(engine, BEFORE)
    else:
        migrate.upgrade(engine, BEFORE)


def _old_rules(conn) -> None:
    insert = text(
        "INSERT INTO rules (id, installation_id, name, status, preset, \"trigger\", pipeline_id, stage_id, fires, "
        "conditions, carry, action, target_connection_id, target, name_template, description_template, version, "
        "created_by, created_at, updated_at) VALUES (:id, 1, :name, 'active', '', 'deal.won', '1', NULL, 'every', "
        "'[]', :carry, :action, 5, :target, :nt, :dt, 3, '', :now, :now)")
    conn.execute(insert, {"id": 1, "name": "hand off", "action": "asana.task", "now": NOW,
                          "carry": json.dumps({"value": True, "contacts": False, "notes": True, "attachments": True}),
                          "target": json.dumps({"workspace_gid": "11", "project_gid": "22", "assignee_gid": None}),
                          "nt": "Onboard {{ deal.title }}", "dt": "Won by {{ deal.owner }}"})
    conn.execute(insert, {"id": 2, "name": "projects", "action": "asana.project", "now": NOW,
                          "carry": json.dumps({"value": True}), "target": json.dumps({"workspace_gid": "11",
                                                                                         "team_gid": "33"}),
                          "nt": "Delivery: {{ deal.title }}", "dt": ""})
    conn.execute(text("INSERT INTO rule_field_mappings (rule_id, position, source, field_key, label, field_type, "
                      "options) VALUES (1, 0, 'deal', :k, 'Tier', 'enum', :o), (1, 1, 'person', 'x', 'X', '', '{}')"),
                 {"k": "a" * 40, "o": json.dumps({"3": "Gold"})})
    run = text("INSERT INTO rule_runs (id, installation_id, rule_id, hub_event_id, effect_key, object_type, object_id, "
               "status, attempts, target_gid, creating_since, error, detail, created_at, updated_at, finished_at) "
               "VALUES (:id, 1, :rule, :id, :key, 'deal', '42', :status, 1, :gid, :creating, NULL, :detail, :now, "
               ":now, :finished)")
    conn.execute(run, {"id": 10, "rule": 1, "key": "r1:deal:42:abc", "status": "done", "gid": "1203",
                       "creating": None, "now": NOW, "finished": NOW,
                       "detail": json.dumps({"attachments": {"7": {"name": "q.pdf", "status": "copied"}}})})
    conn.execute(run, {"id": 11, "rule": 2, "key": "r2:deal:42:abc", "status": "failed", "gid": None,
                       "creating": NOW, "now": NOW, "finished": NOW, "detail": "{}"})
    conn.execute(text("INSERT INTO rule_links (installation_id, rule_id, run_id, object_type, object_id, "
                      "target_provider, target_type, target_gid, target_name, target_url, created_at) VALUES "
                      "(1, 1, 10, 'deal', '42', 'asana', 'task', '1203', 'Onboard X', 'https://t/1203', :now)"),
                 {"now": NOW})


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def test_old_rules_become_one_step_rules_and_come_back(db_url):
    engine = create_engine(db_url)
    _at_before(engine)
    with engine.begin() as conn:
        _old_rules(conn)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        steps = conn.execute(text("SELECT rule_id, position, uid, kind, connection_id, settings, templates, carry, "
                                  "mappings, condition, delay_seconds FROM rule_steps ORDER BY rule_id")).all()
        step_runs = conn.execute(text("SELECT run_id, step_uid, kind, effect_key, status, external_id, detail "
                                      "FROM rule_step_runs ORDER BY run_id")).all()
        [link] = conn.execute(text("SELECT run_id, step_uid, connector, connection_id, made, external_id, name, url, "
                                   "status FROM rule_links")).all()
        columns = {c for c in conn.execute(text("SELECT * FROM rules")).keys()}
    assert [(s.rule_id, s.position, s.uid, s.kind, s.connection_id) for s in steps] == \
        [(1, 0, "1", "asana.task", 5), (2, 0, "1", "asana.project", 5)]
    task = steps[0]
    assert _json(task.settings) == {"workspace_gid": "11", "project_gid": "22"}
    assert _json(task.templates) == {"name": "Onboard {{ deal.title }}", "description": "Won by {{ deal.owner }}"}
    assert _json(task.carry) == {"value": True, "contacts": False, "notes": True, "attachments": True}
    assert _json(task.mappings) == [{"source": "deal", "key": "a" * 40, "label": "Tier", "type": "enum",
                                     "options": {"3": "Gold"}},
                                    {"source": "person", "key": "x", "label": "X", "type": "", "options": {}}]
    assert _json(task.condition) is None and task.delay_seconds == 0
    assert _json(steps[1].settings) == {"workspace_gid": "11", "team_gid": "33"}
    done, failed = step_runs
    assert (done.run_id, done.step_uid, done.kind, done.effect_key, done.status, done.external_id) == \
        (10, "1", "asana.task", "r1:deal:42:abc", "done", "1203")
    assert _json(done.detail)["attachments"]["7"]["status"] == "copied"
    assert (failed.status, failed.external_id, failed.effect_key) == ("pending", None, "r2:deal:42:abc")
    assert _json(failed.detail) == {"sent": True}       # tried before: the retry looks before creating
    assert tuple(link) == (10, "1", "asana", 5, "task", "1203", "Onboard X", "https://t/1203", "open")
    assert not columns & {"action", "target", "carry", "name_template", "description_template"}

    migrate.downgrade(engine, BEFORE)
    with engine.connect() as conn:
        rule = conn.execute(text("SELECT action, target_connection_id, target, carry, name_template "
                                 "FROM rules WHERE id = 1")).one()
        mappings = conn.execute(text("SELECT source, field_key, label FROM rule_field_mappings "
                                     "ORDER BY position")).all()
        runs = conn.execute(text("SELECT id, target_gid, creating_since FROM rule_runs ORDER BY id")).all()
        [old_link] = conn.execute(text("SELECT target_provider, target_type, target_gid FROM rule_links")).all()
    assert (rule.action, rule.target_connection_id, rule.name_template) == ("asana.task", 5, "Onboard {{ deal.title }}")
    assert _json(rule.target) == {"workspace_gid": "11", "project_gid": "22"}
    assert [tuple(m) for m in mappings] == [("deal", "a" * 40, "Tier"), ("person", "x", "X")]
    assert [(r.id, r.target_gid, r.creating_since is not None) for r in runs] == [(10, "1203", False), (11, None, True)]
    assert tuple(old_link) == ("asana", "task", "1203")
    migrate.upgrade(engine)
    engine.dispose()
