"""The editor's form as a rule body, its step buttons, and the settings' dropdowns derived from a
step kind's catalogs (units: the page and browser tests drive them end to end)."""
from __future__ import annotations

import pytest
from werkzeug.datastructures import MultiDict

from hub.inputs import InputError
from hub.rules.editor import delay_parts, form_body, step_action
from hub.rules.kinds import _settings, options


def test_the_form_becomes_a_rule_body_with_its_steps():
    form = MultiDict([("name", "R"), ("trigger", "deal.won"), ("step_count", "2"), ("condition_rows", "0"),
                      ("step_0_id", "a1"), ("step_0_kind", "email"), ("step_0_tpl_to", "x@example.com"),
                      ("step_0_tpl_subject", "Hi"), ("step_0_delay_amount", "3"), ("step_0_delay_unit", "hours"),
                      ("step_0_map", "deal:abc"), ("step_0_map", "person:def"), ("step_0_carry_notes", "1"),
                      ("step_0_cond_field", "value"), ("step_0_cond_op", "gt"), ("step_0_cond_value", "5"),
                      ("step_1_kind", "complete_linked"), ("step_1_setting_scope", "rule"),
                      ("step_1_setting_fields", '{"probability": 50}'), ("step_1_due_in_days", "x")])
    body = form_body(form)
    first, second = body["steps"]
    assert (first["id"], first["kind"], first["delay_seconds"]) == ("a1", "email", 3 * 3600)
    assert first["templates"] == {"to": "x@example.com", "subject": "Hi"}
    assert first["field_mappings"] == [{"source": "deal", "key": "abc"}, {"source": "person", "key": "def"}]
    assert first["carry"] == {"value": False, "contacts": False, "notes": True, "attachments": False}
    assert first["condition"] == {"field": "value", "op": "gt", "value": "5"}
    assert second["settings"] == {"scope": "rule", "fields": {"probability": 50}}   # several values: JSON
    assert "carry" not in second and second["due_in_days"] == "x"                 # refused later, by its name
    assert delay_parts(3 * 3600) == (3, "hours") and delay_parts(2 * 86400) == (2, "days") and delay_parts(0)[0] == ""


def test_step_buttons_add_move_and_remove_without_saving():
    values = {"name": "R", "steps": []}
    values = step_action(values, "step_add", "email")
    values = step_action(values, "step_add", "wait")
    assert [s["kind"] for s in values["steps"]] == ["email", "wait"] and values["steps"][1]["delay_seconds"] == 86400
    values = step_action(values, "step_up:1", "")
    assert [s["kind"] for s in values["steps"]] == ["wait", "email"]
    values = step_action(values, "step_down:0", "")
    assert [s["kind"] for s in values["steps"]] == ["email", "wait"]
    values = step_action(values, "step_remove:0", "")
    assert [s["kind"] for s in values["steps"]] == ["wait"]
    for do, kind in (("step_add", "nope"), ("step_up:7", ""), ("step_up:x", ""), ("step_jump:0", "")):
        with pytest.raises(InputError):
            step_action(values, do, kind)


def test_settings_take_their_options_from_the_kinds_catalogs():
    workspace, project, assignee = _settings(("workspace_gid", "project_gid", "assignee_gid"), ("workspaces",))
    assert (workspace.catalog, workspace.path) == ("workspaces", None)
    assert (project.catalog, project.path, project.parent) == ("workspaces", "projects", "workspace_gid")
    assert (assignee.path, assignee.parent) == ("users", "workspace_gid")
    catalog = [{"gid": "1", "name": "Org", "projects": [{"gid": "11", "name": "P"}],
                "users": [{"gid": "u", "name": "Una", "email": "una@example.com"}]}]
    assert options(workspace, catalog) == [{"id": "1", "name": "Org", "parent": ""}]
    assert options(project, catalog) == [{"id": "11", "name": "P", "parent": "1"}]
    assert options(assignee, catalog) == [{"id": "u", "name": "Una <una@example.com>", "parent": "1"}]
    kind, user = _settings(("type", "user_id"), ("activity_types", "users"))
    assert (kind.catalog, user.catalog) == ("activity_types", "users")
    assert options(kind, [{"key": "call", "name": "Call"}]) == [{"id": "call", "name": "Call", "parent": ""}]
    stage, fields = _settings(("stage_id", "fields"), ("stages", "deal_fields"))
    assert stage.catalog == "stages" and fields.many and fields.catalog is None
    assert options(stage, {"not": "a list"}) is None


def test_a_step_kind_that_describes_its_settings_is_shown_as_described():
    from hub.connectors.contract.targets import Input, StepKind
    from hub.rules.kinds import _declared

    step = StepKind("lead", "Create a lead", "record", ("pipeline", "stage", "priority"), lambda s, c, d: {},
                    target=None, catalogs=("lead_pipelines",),
                    inputs=(Input("pipeline", "Pipeline", catalog="lead_pipelines", required=True),
                            Input("stage", "First stage", catalog="lead_pipelines", parent="pipeline", path="stages"),
                            Input("priority", "Priority", choices=(("HIGH", "High"), ("LOW", "Low")))))
    pipeline, stage, priority = _declared(step)
    assert (pipeline.label, pipeline.catalog, pipeline.required) == ("Pipeline", "lead_pipelines", True)
    assert (stage.catalog, stage.parent, stage.path) == ("lead_pipelines", "pipeline", "stages")
    catalog = [{"id": "p1", "label": "Sales", "stages": [{"id": "s1", "label": "New"}]}]
    assert options(stage, catalog) == [{"id": "s1", "name": "New", "parent": "p1"}]
    assert priority.choices == (("HIGH", "High"), ("LOW", "Low"))
    # the names alone would not have told the stage's list from the pipeline's
    assert _settings(("pipeline", "stage", "priority"), ("lead_pipelines",))[1].path is None
