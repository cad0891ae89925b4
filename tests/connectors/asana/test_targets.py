"""Asana's contract parts: the workspace catalog, the `task` and `project` step kinds (validation,
exactly-once `ensure` also after a lost answer, complete, status, attachments)."""
from __future__ import annotations

from datetime import date

import pytest
import requests
import urllib3

from hub.connectors import connector
from hub.connectors.asana.catalogs import CATALOGS
from hub.connectors.contract.targets import AttachmentRefused, TargetContext, TaskSpec
from hub.errors import Retriable

from .conftest import MAX_ATTACHMENT

KEY = "relayhub:pipedrive:7004211:r1:deal:5:0123abcd:s0"


@pytest.fixture
def catalog(dana):
    cache: dict = {}

    def load(name: str):
        if name not in cache:
            cache[name] = CATALOGS[name].load(dana.client)
        return cache[name]
    return load


def target(client, what: str, **settings):
    kind = connector("asana").targets[what]
    return kind.target(TargetContext(client=client, api_base=client.base_url, catalog=lambda n: None,
                                     settings=settings))


def lose_answers(client, method: str, path_end: str, times: int = 1) -> list[int]:
    """The next `times` matching requests reach Asana, but their answers are lost on the way back."""
    real = client.http.request
    lost: list[int] = []

    def request(m, url, **kwargs):
        response = real(m, url, **kwargs)
        if m == method and url.split("?")[0].endswith(path_end) and len(lost) < times:
            lost.append(response.status_code)
            raise requests.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted."))
        return response
    client.http.request = request
    return lost


def test_catalog_lists_workspaces_with_teams_projects_and_users(catalog, ids):
    ws = {w["name"]: w for w in catalog("workspaces")}
    org = ws["Acme Sandbox Org"]
    assert org["gid"] == ids["org"] and org["is_organization"] is True
    assert {t["name"] for t in org["teams"]} >= {"Sales Ops", "Customer Success"}
    names = {p["name"] for p in org["projects"]}
    assert "Won deals – onboarding" in names and "Q1 pipeline review" not in names   # archived: left out
    assert ids["dana"] in {u["gid"] for u in org["users"]}
    assert ws["Personal Projects"]["is_organization"] is False and ws["Personal Projects"]["teams"] == []


def test_task_validation_names_the_settings(catalog, ids):
    validate = connector("asana").targets["task"].validate
    assert validate({}, catalog, False) == {}
    assert validate({}, None, True) == {"workspace_gid": "pick the Asana workspace or organization",
                                        "project_gid": "pick the project the tasks go to"}
    ok = {"workspace_gid": ids["org"], "project_gid": ids["onboarding"], "assignee_gid": ids["luis"]}
    assert validate(ok, catalog, True) == {}
    errors = validate({**ok, "project_gid": ids["archived"], "assignee_gid": "999"}, catalog, True)
    assert errors == {"project_gid": "this project is not an active project of Acme Sandbox Org",
                      "assignee_gid": "this user is not a member of Acme Sandbox Org"}
    assert validate({"workspace_gid": "123"}, catalog, False) == {
        "workspace_gid": "this workspace is not visible to the connected Asana account"}


def test_project_validation_knows_organizations_need_a_team(catalog, ids):
    validate = connector("asana").targets["project"].validate
    assert validate({"workspace_gid": ids["org"]}, catalog, True) == {
        "team_gid": "Acme Sandbox Org is an organization: pick the team that owns the new projects"}
    assert validate({"workspace_gid": ids["org"], "team_gid": ids["sales"]}, catalog, True) == {}
    assert validate({"workspace_gid": ids["personal"], "team_gid": ids["sales"]}, catalog, True) == {
        "team_gid": "Personal Projects is a workspace without teams: leave the team empty"}
    assert validate({"workspace_gid": ids["personal"]}, catalog, True) == {}


def spec(ids, **kw):
    settings = {"workspace_gid": ids["org"], "project_gid": ids["onboarding"], "assignee_gid": ids["luis"]}
    return TaskSpec(name=kw.pop("name", "Onboard Nordwind"), notes_html=kw.pop("notes_html", "<p>Won by <b>Ben</b> & co</p>"),
                    settings={**settings, **kw.pop("settings", {})}, **kw)


def test_ensure_twice_gives_one_task(dana, emu, ids):
    tasks = target(dana.client, "task")
    first = tasks.ensure(spec(ids, due="2026-12-15"), KEY, first_try=True)
    again = tasks.ensure(spec(ids), KEY, first_try=False)
    same_first = tasks.ensure(spec(ids), KEY, first_try=True)   # a run repeated by hand: Asana refuses the id
    assert first.created and not again.created and not same_first.created
    assert first.external_id == again.external_id == same_first.external_id
    assert first.url.startswith("https://") and first.name == "Onboard Nordwind"
    [task] = emu.tasks()
    assert task["assignee"] == ids["luis"] and task["due_on"] == "2026-12-15"
    assert task["html_notes"] == "<body>Won by <strong>Ben</strong> &amp; co</body>"


def test_a_lost_answer_to_a_task_create_is_found_on_the_retry(dana, emu, ids):
    tasks = target(dana.client, "task")
    lost = lose_answers(dana.client, "POST", "/tasks")
    with pytest.raises(Retriable):
        tasks.ensure(spec(ids), KEY, first_try=True)
    assert lost == [201] and len(emu.tasks()) == 1          # it was made; we never heard
    made = tasks.ensure(spec(ids), KEY, first_try=False)
    assert not made.created and made.external_id == emu.tasks()[0]["gid"]
    assert len(emu.tasks()) == 1


def test_complete_and_status(dana, ids):
    tasks = target(dana.client, "task")
    made = tasks.ensure(spec(ids), KEY, first_try=True)
    assert tasks.status(made.external_id) == "open"
    assert tasks.complete(made.external_id) == "completed"
    assert tasks.status(made.external_id) == "completed"


def test_state_reads_the_deadline_the_assignee_and_a_deleted_task_as_gone(dana, emu, ids):
    tasks = target(dana.client, "task")
    made = tasks.ensure(spec(ids, due="2026-12-15"), KEY, first_try=True)
    state = tasks.state(made.external_id)
    luis = next(u["name"] for u in emu.users() if u["gid"] == ids["luis"])
    assert (state.status, state.deadline, state.responsible) == ("open", date(2026, 12, 15), luis)
    assert state.changed_at is not None
    tasks.complete(made.external_id)
    assert tasks.state(made.external_id).status == "completed"
    with emu.state.change():                                     # a person deletes it in Asana
        emu._t("tasks").pop(made.external_id)
    assert tasks.state(made.external_id).status == "gone"


def test_project_is_looked_up_only_when_a_create_may_have_been_sent(dana, emu, ids):
    projects = target(dana.client, "project")
    s = spec(ids, name="Delivery: Nordwind", settings={"team_gid": ids["sales"], "project_gid": None})
    lost = lose_answers(dana.client, "POST", f"/teams/{ids['sales']}/projects")
    with pytest.raises(Retriable):
        projects.ensure(s, KEY, first_try=True)
    assert lost == [201]
    found = projects.ensure(s, KEY, first_try=False)
    assert not found.created
    assert [p["gid"] for p in emu.projects() if p["name"] == "Delivery: Nordwind"] == [found.external_id]
    # a first try never looks: a person's project of the same name is not taken for ours
    fresh = projects.ensure(s, KEY + "x", first_try=True)
    assert fresh.created and fresh.external_id != found.external_id
    assert projects.status(fresh.external_id) == "open"


def test_attach_streams_refuses_too_large_and_skips_a_file_already_sent(dana, emu, ids):
    tasks = target(dana.client, "task", attachment_max_bytes=1000)
    assert tasks.max_attachment_bytes == 1000
    made = tasks.ensure(spec(ids), KEY, first_try=True)
    pdf = {"id": "7", "name": "quote.pdf", "size": 11, "mime": "application/pdf"}
    gid = tasks.attach(made.external_id, pdf, iter([b"%PDF-", b"1.4 ok"]))
    assert [a["gid"] for a in emu.attachments(made.external_id)] == [gid]
    again = tasks.attach(made.external_id, pdf, iter([b"never read"]), maybe_sent=True)
    assert again == gid and len(emu.attachments(made.external_id)) == 1

    def unread():
        raise AssertionError("a refused file is never read")
        yield b""
    with pytest.raises(AttachmentRefused) as err:
        tasks.attach(made.external_id, {"id": "8", "name": "big.zip", "size": 1001}, unread())
    assert err.value.reason == "too_large" and "1001 bytes; the limit is 1000 bytes" in str(err.value)
    with pytest.raises(AttachmentRefused) as err:     # size unknown: counted while streaming
        tasks.attach(made.external_id, {"id": "9", "name": "big.bin", "size": None}, iter([b"x" * 600] * 2))
    assert err.value.reason == "too_large"
    assert len(emu.attachments(made.external_id)) == 1


def test_the_hub_limit_never_raises_asanas(dana):
    assert target(dana.client, "task").max_attachment_bytes == MAX_ATTACHMENT
    assert target(dana.client, "task", attachment_max_bytes=10 ** 12).max_attachment_bytes == MAX_ATTACHMENT


def test_the_hubs_sharing_mode_becomes_followers_and_a_deadline_moves(dana, emu, ids):
    """read_only / full: the responsible's colleagues follow the task; free_busy / none: nobody is
    added. The team calendar moves a deadline with `reschedule`."""
    tasks = target(dana.client, "task")
    colleague = next(u["gid"] for u in emu.users() if u["gid"] not in (ids["dana"], ids["luis"]))
    shared = tasks.ensure(spec(ids, name="Shared", sharing="read_only", colleagues=(colleague,)), KEY, first_try=True)
    tasks.ensure(spec(ids, name="Private", sharing="free_busy", colleagues=(colleague,)), KEY + "b", first_try=True)
    followers = {t["name"]: set(t["followers"]) for t in emu.tasks()}
    assert colleague in followers["Shared"] and colleague not in followers["Private"]
    tasks.reschedule(shared.external_id, "2026-12-09T08:00:00Z")
    assert emu.get("tasks", shared.external_id)["due_at"].startswith("2026-12-09T08:00")
