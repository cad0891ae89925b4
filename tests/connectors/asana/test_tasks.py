"""Tasks: create with rich text and external data, read back, look up by external id (exactly-once)."""
from __future__ import annotations

import pytest

from hub.connectors.asana.richtext import to_html_notes
from hub.errors import Fatal

from .conftest import OTHER_CLIENT_ID


def test_create_task_and_read_it_back(dana, emu, ids):
    notes = to_html_notes("<h2>Deal won: Globex</h2><ul><li><b>Amount:</b> $48,000</li></ul>R&D wants SSO")
    created = dana.client.create_task(ids["org"], "Onboard Globex", html_notes=notes, projects=[ids["onboarding"]],
                                      assignee=ids["luis"], external_gid="pipedrive:deal:4711",
                                      external_data='{"deal": 4711}')
    assert created["resource_type"] == "task" and created["name"] == "Onboard Globex"
    assert created["assignee"]["gid"] == ids["luis"]
    assert [p["gid"] for p in created["projects"]] == [ids["onboarding"]]
    assert "html_notes" not in created  # opt-in, FACTS §5
    assert dana.calls[-1][0] == "POST"

    again = dana.client.task(created["gid"], fields=["name", "html_notes", "external", "notes"])
    assert again["html_notes"] == notes
    assert again["external"] == {"gid": "pipedrive:deal:4711", "data": '{"deal": 4711}'}
    assert "Amount: $48,000" in again["notes"] and "R&D wants SSO" in again["notes"]
    stored = emu.get("tasks", created["gid"])
    assert stored["workspace"] == ids["org"] and stored["assignee"] == ids["luis"]


def test_task_by_external_finds_only_this_apps_task(connect, dana, ids):
    external = "pipedrive/deal 42?x=1&y=ü"  # FACTS §8: escape ids used in URLs
    task = dana.client.create_task(ids["personal"], "Follow up", external_gid=external)
    found = dana.client.task_by_external(external)
    assert found is not None and found["gid"] == task["gid"]
    narrowed = dana.client.task_by_external(external, fields=["name"])
    assert narrowed == {"gid": task["gid"], "name": "Follow up"}
    assert dana.client.task_by_external("pipedrive/deal 43") is None

    # External data is private to the OAuth app that set it: another app cannot find it ...
    other = connect(ids["dana"], client_id=OTHER_CLIENT_ID)
    assert other.client.task_by_external(external) is None
    # ... and may use the same external id for its own task.
    mine = other.client.create_task(ids["personal"], "Other app's task", external_gid=external)
    assert other.client.task_by_external(external)["gid"] == mine["gid"] != task["gid"]
    assert dana.client.task_by_external(external)["gid"] == task["gid"]


def test_duplicate_external_id_is_refused(dana, ids):
    dana.client.create_task(ids["personal"], "First", external_gid="deal-1")
    with pytest.raises(Fatal) as err:
        dana.client.create_task(ids["personal"], "Second", external_gid="deal-1")
    assert err.value.status == 400 and "deal-1" in str(err.value)


def test_ensure_task_is_idempotent(dana, emu, ids):
    first, created = dana.client.ensure_task(ids["org"], "Onboard", external_gid="deal-7", projects=[ids["onboarding"]])
    second, created_again = dana.client.ensure_task(ids["org"], "Onboard", external_gid="deal-7",
                                                    projects=[ids["onboarding"]])
    assert created and not created_again and first["gid"] == second["gid"]
    assert len(emu.tasks()) == 1


def test_ensure_task_loses_a_race_gracefully(dana, emu, ids, monkeypatch):
    """Another worker created the task between our look-up and our create: Asana refuses the
    duplicate external id and we return the winner's task instead of failing or duplicating."""
    winner = dana.client.create_task(ids["org"], "Onboard", external_gid="deal-8")
    real_lookup = dana.client.task_by_external
    lookups: list[str] = []

    def stale_first(ext, fields=None):
        lookups.append(ext)
        return None if len(lookups) == 1 else real_lookup(ext, fields)

    monkeypatch.setattr(dana.client, "task_by_external", stale_first)
    task, created = dana.client.ensure_task(ids["org"], "Onboard", external_gid="deal-8")
    assert not created and task["gid"] == winner["gid"]
    assert len(lookups) == 2 and [m for m, _ in dana.calls].count("POST") == 2  # ours was refused
    assert len(emu.tasks()) == 1


def test_external_limits_checked_before_sending(dana, ids):
    with pytest.raises(Fatal):
        dana.client.create_task(ids["org"], "x", external_gid="g" * 1025)
    with pytest.raises(Fatal):
        dana.client.create_task(ids["org"], "x", external_gid="ok", external_data="d" * 32769)
    assert dana.calls == []


def test_invalid_rich_text_is_fatal_with_asanas_message(dana, ids):
    with pytest.raises(Fatal) as err:
        dana.client.create_task(ids["org"], "x", html_notes="<body><p>R&D</p></body>")
    assert err.value.status == 400 and "html_notes" in str(err.value)


def test_unknown_task_is_fatal_404(dana):
    with pytest.raises(Fatal) as err:
        dana.client.task("1207999999999999")
    assert err.value.status == 404 and "Unknown object" in str(err.value)
