"""Projects: the team route in organizations, the workspace route elsewhere, Asana's refusal."""
from __future__ import annotations

import pytest

from hub.connectors.asana.richtext import to_html_notes
from hub.errors import Fatal


def test_project_in_an_organization_goes_through_the_team(dana, emu, ids):
    notes = to_html_notes("<h1>Globex</h1>Kick-off <b>next week</b>", target="project")
    project = dana.client.create_project(ids["org"], "Globex onboarding", team_gid=ids["sales"], html_notes=notes)
    assert project["resource_type"] == "project" and project["name"] == "Globex onboarding"
    assert project["team"]["gid"] == ids["sales"] and project["workspace"]["gid"] == ids["org"]
    assert dana.calls[-1] == ("POST", dana.client.base_url + f"/teams/{ids['sales']}/projects")
    stored = emu.get("projects", project["gid"])
    assert stored["html_notes"] == notes and stored["team"] == ids["sales"]


def test_project_in_a_plain_workspace_needs_no_team(dana, emu, ids):
    project = dana.client.create_project(ids["personal"], "Side project")
    assert project["workspace"]["gid"] == ids["personal"] and "team" not in project
    assert dana.calls[-1] == ("POST", dana.client.base_url + "/projects")


def test_organization_without_team_is_fatal_with_asanas_message(dana, emu, ids):
    with pytest.raises(Fatal) as err:
        dana.client.create_project(ids["org"], "No team")
    assert err.value.status == 400
    assert "Missing required `team` field" in str(err.value)
    assert [p["name"] for p in emu.projects(ids["org"])].count("No team") == 0


def test_project_fields_can_be_narrowed(dana, ids):
    project = dana.client.create_project(ids["personal"], "Narrow", fields=["name", "html_notes"])
    assert project == {"gid": project["gid"], "name": "Narrow", "html_notes": "<body></body>"}
