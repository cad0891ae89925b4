"""Happy paths of every emulated endpoint over real HTTP, each exchange validated against the spec.

The `api` fixture is a ValidatingSession: any request or response that does not match the official
Asana OpenAPI document raises, and teardown asserts every exchange was validated."""
from __future__ import annotations

HTML = ("<body><h2>Deal won: Globex</h2><ul><li><strong>Amount:</strong> $48,000</li></ul>"
        "R&amp;D wants SSO; budget &lt; $50k.\n<a href=\"https://crm.example/deals/4711\">Open deal</a></body>")


def test_workspaces_list_get_and_pagination(api, base, ids):
    first = api.get(f"{base}/workspaces", params={"limit": 1, "opt_fields": "name,is_organization,email_domains"})
    assert first.status_code == 200
    body = first.json()
    assert body["data"] == [{"gid": ids["org"], "name": "Acme Sandbox Org", "is_organization": True,
                             "email_domains": ["acme.example"]}]
    nxt = body["next_page"]
    assert nxt["path"].startswith("/workspaces?") and nxt["uri"].endswith(nxt["path"])
    second = api.get(nxt["uri"]).json()
    assert [w["name"] for w in second["data"]] == ["Personal Projects"]
    assert second["next_page"] is None
    unpaged = api.get(f"{base}/workspaces").json()
    assert "next_page" not in unpaged  # only present when limit was sent
    assert unpaged["data"][0] == {"gid": ids["org"], "resource_type": "workspace", "name": "Acme Sandbox Org"}
    full = api.get(f"{base}/workspaces/{ids['personal']}").json()["data"]
    assert full["is_organization"] is False and full["email_domains"] == []


def test_teams(api, base, ids, users):
    teams = api.get(f"{base}/workspaces/{ids['org']}/teams", params={"limit": 10}).json()
    assert [t["name"] for t in teams["data"]] == ["Sales Ops", "Customer Success"]
    team = api.get(f"{base}/teams/{ids['sales']}").json()["data"]
    assert team["organization"]["gid"] == ids["org"] and "description" not in team  # opt-in
    described = api.get(f"{base}/teams/{ids['sales']}", params={"opt_fields": "description,name"}).json()["data"]
    assert set(described) == {"gid", "name", "description"}
    mine = api.get(f"{base}/users/me/teams", params={"organization": ids["org"]}).json()["data"]
    assert [t["gid"] for t in mine] == [ids["sales"]]


def test_projects_listing(api, base, ids):
    in_ws = api.get(f"{base}/workspaces/{ids['org']}/projects").json()["data"]
    assert {p["name"] for p in in_ws} == {"Won deals – onboarding", "Renewals", "Q1 pipeline review"}
    active = api.get(f"{base}/projects", params={"workspace": ids["org"], "archived": "false"}).json()["data"]
    assert "Q1 pipeline review" not in {p["name"] for p in active}
    team = api.get(f"{base}/teams/{ids['success']}/projects", params={"limit": 5}).json()
    assert [p["name"] for p in team["data"]] == ["Renewals"] and team["next_page"] is None
    one = api.get(f"{base}/projects/{ids['onboarding']}").json()["data"]
    assert one["team"]["gid"] == ids["sales"] and one["workspace"]["gid"] == ids["org"]
    assert "html_notes" not in one


def test_create_project_three_routes(api, base, ids, emu):
    via_team = api.post(f"{base}/teams/{ids['sales']}/projects", json={"data": {"name": "Globex onboarding",
                                                                             "default_view": "board"}})
    assert via_team.status_code == 201
    project = via_team.json()["data"]
    assert via_team.headers["Location"] == f"{base}/projects/{project['gid']}"
    assert project["team"]["gid"] == ids["sales"] and project["default_view"] == "board"
    via_projects = api.post(f"{base}/projects", json={"data": {"workspace": ids["org"], "team": ids["success"],
                                                               "name": "Initech", "color": "light-green"}})
    assert via_projects.status_code == 201 and via_projects.json()["data"]["color"] == "light-green"
    personal = api.post(f"{base}/workspaces/{ids['personal']}/projects", json={"data": {"name": "Side project"}},
                        params={"opt_fields": "name,team,workspace.name"})
    assert personal.status_code == 201
    assert personal.json()["data"] == {"gid": personal.json()["data"]["gid"], "name": "Side project",
                                       "workspace": {"gid": ids["personal"], "name": "Personal Projects"}}
    assert {p["name"] for p in emu.projects()} >= {"Globex onboarding", "Initech", "Side project"}


def test_users(api, base, ids, users):
    by_id = api.get(f"{base}/users", params={"workspace": ids["org"], "limit": 2}).json()
    assert [u["gid"] for u in by_id["data"]] == sorted([users["dana"], users["luis"], users["priya"]], key=int)[:2]
    assert by_id["next_page"]["offset"]
    rest = api.get(f"{base}/users", params={"workspace": ids["org"], "limit": 2,
                                            "offset": by_id["next_page"]["offset"]}).json()
    assert [u["gid"] for u in rest["data"]] == [users["priya"]] and rest["next_page"] is None
    alpha = api.get(f"{base}/workspaces/{ids['org']}/users").json()
    assert [u["name"] for u in alpha["data"]] == ["Dana Whitfield", "Luis Ortega", "Priya Natarajan"]
    me = api.get(f"{base}/users/me").json()["data"]
    assert me["gid"] == users["dana"] and me["email"] == "dana.whitfield@acme.example"
    assert {w["name"] for w in me["workspaces"]} == {"Acme Sandbox Org", "Personal Projects"}
    assert api.get(f"{base}/users/{users['luis']}").json()["data"]["name"] == "Luis Ortega"


def test_create_task_full_record_and_opt_in_fields(api, base, ids, users, emu):
    resp = api.post(f"{base}/tasks", json={"data": {
        "workspace": ids["org"], "projects": [ids["onboarding"]], "assignee": users["luis"],
        "name": "Onboard Globex (deal #4711 won)", "html_notes": HTML, "due_on": "2026-06-29",
        "external": {"gid": "deal-4711", "data": '{"deal": 4711}'}}})
    assert resp.status_code == 201
    task = resp.json()["data"]
    assert resp.headers["Location"] == f"{base}/tasks/{task['gid']}"
    assert task["assignee"] == {"gid": users["luis"], "resource_type": "user", "name": "Luis Ortega"}
    assert task["projects"][0]["gid"] == ids["onboarding"] and task["due_on"] == "2026-06-29"
    assert "html_notes" not in task and "external" not in task  # opt-in
    assert task["notes"].startswith("Deal won: Globex\nAmount: $48,000\nR&D wants SSO; budget < $50k.")
    assert {f["gid"] for f in task["followers"]} == {users["dana"], users["luis"]}
    stored = emu.tasks()[-1]
    assert stored["html_notes"] == HTML.replace("\n", "\n")
    got = api.get(f"{base}/tasks/{task['gid']}", params={"opt_fields": "name,html_notes,external,assignee.name"})
    assert got.json()["data"] == {"gid": task["gid"], "name": "Onboard Globex (deal #4711 won)", "html_notes": HTML,
                                  "external": {"gid": "deal-4711", "data": '{"deal": 4711}'},
                                  "assignee": {"gid": users["luis"], "name": "Luis Ortega"}}


def test_task_by_external_id_and_update(api, base, ids):
    created = api.post(f"{base}/tasks", json={"data": {"projects": [ids["renewals"]], "name": "Renew Initech",
                                                       "notes": "plain <text> & more",
                                                       "external": {"gid": "crm:deal/88"}}}).json()["data"]
    by_ext = api.get(f"{base}/tasks/external:crm:deal%2F88").json()["data"]
    assert by_ext["gid"] == created["gid"] and by_ext["workspace"]["gid"] == ids["org"]
    html = api.get(f"{base}/tasks/{created['gid']}", params={"opt_fields": "html_notes"}).json()["data"]
    assert html["html_notes"] == "<body>plain &lt;text&gt; &amp; more</body>"
    updated = api.put(f"{base}/tasks/external:crm:deal%2F88", json={"data": {"completed": True, "name": "Renewed"}})
    assert updated.status_code == 200
    assert updated.json()["data"]["completed"] is True and updated.json()["data"]["completed_at"]


def test_list_tasks(api, base, ids, users):
    for i in range(3):
        api.post(f"{base}/tasks", json={"data": {"projects": [ids["onboarding"]], "name": f"t{i}",
                                                 "assignee": "me"}})
    page = api.get(f"{base}/projects/{ids['onboarding']}/tasks", params={"limit": 2}).json()
    assert [t["name"] for t in page["data"]] == ["t0", "t1"]
    assert page["data"][0]["resource_subtype"] == "default_task"
    last = api.get(f"{base}{page['next_page']['path']}").json()
    assert [t["name"] for t in last["data"]] == ["t2"] and last["next_page"] is None
    same = api.get(f"{base}/tasks", params={"project": ids["onboarding"], "opt_fields": "name,assignee.name"}).json()
    assert same["data"][0]["assignee"] == {"gid": users["dana"], "name": "Dana Whitfield"}
    mine = api.get(f"{base}/tasks", params={"assignee": "me", "workspace": ids["org"]}).json()["data"]
    assert len(mine) == 3


def test_attachments_upload_list_get_download_delete(api, base, ids):
    task = api.post(f"{base}/tasks", json={"data": {"projects": [ids["onboarding"]], "name": "with file",
                                                    "external": {"gid": "deal-1"}}}).json()["data"]
    payload = b"%PDF-1.7 signed contract\r\n\x00\xff"
    up = api.post(f"{base}/attachments", data={"parent": "external:deal-1"},
                  files={"file": ("Globex-MSA signed.pdf", payload, "application/pdf")})
    assert up.status_code == 200  # not 201, per the spec
    att = up.json()["data"]
    assert att["size"] == len(payload) and att["host"] == "asana" and att["parent"]["gid"] == task["gid"]
    assert att["parent"]["resource_subtype"] == "default_task"
    downloaded = api.get(att["download_url"])  # the file host: outside the spec, ignored by the session
    assert downloaded.content == payload and downloaded.headers["Content-Type"] == "application/pdf"
    link = api.post(f"{base}/attachments", data={"parent": task["gid"], "resource_subtype": "external",
                                                 "url": "https://docs.example/spec", "name": "Spec"},
                    files={"_": ("", b"")})
    assert link.status_code == 200 and link.json()["data"]["host"] == "external"
    listed = api.get(f"{base}/attachments", params={"parent": task["gid"], "limit": 10}).json()
    assert [a["name"] for a in listed["data"]] == ["Globex-MSA signed.pdf", "Spec"]
    one = api.get(f"{base}/attachments/{att['gid']}").json()["data"]
    assert one["name"] == "Globex-MSA signed.pdf"
    assert api.delete(f"{base}/attachments/{att['gid']}").json() == {"data": {}}
    assert api.get(f"{base}/attachments/{att['gid']}").status_code == 404


def test_project_attachment(api, base, ids):
    resp = api.post(f"{base}/attachments", data={"parent": ids["onboarding"]},
                    files={"file": ("brief.txt", b"hello", "text/plain")})
    assert resp.status_code == 200
    assert resp.json()["data"]["parent"]["gid"] == ids["onboarding"]
    assert resp.json()["data"]["parent"]["resource_type"] == "project"


def test_every_emulated_operation_was_validated(api_factory, users, ids, base):
    """A catalogue check: each operation the emulator serves has at least one conforming exchange."""
    s = api_factory(users["dana"])
    task = s.post(f"{base}/tasks", json={"data": {"projects": [ids["onboarding"]], "name": "x"}}).json()["data"]
    att = s.post(f"{base}/attachments", data={"parent": task["gid"]}, files={"file": ("a", b"a")}).json()["data"]
    calls = [
        ("GET", "/workspaces"), ("GET", f"/workspaces/{ids['org']}"), ("GET", f"/workspaces/{ids['org']}/teams"),
        ("GET", f"/teams/{ids['sales']}"), ("GET", f"/users/me/teams?organization={ids['org']}"),
        ("GET", f"/projects?workspace={ids['org']}"), ("GET", f"/workspaces/{ids['org']}/projects"),
        ("GET", f"/teams/{ids['sales']}/projects"), ("GET", f"/projects/{ids['onboarding']}"),
        ("GET", f"/users?workspace={ids['org']}"), ("GET", f"/workspaces/{ids['org']}/users"),
        ("GET", "/users/me"), ("GET", f"/tasks/{task['gid']}"), ("GET", f"/tasks?project={ids['onboarding']}"),
        ("GET", f"/projects/{ids['onboarding']}/tasks"), ("GET", f"/attachments?parent={task['gid']}"),
        ("GET", f"/attachments/{att['gid']}"),
    ]
    for method, path in calls:
        assert s.request(method, base + path).status_code == 200, path
    s.put(f"{base}/tasks/{task['gid']}", json={"data": {"name": "y"}})
    s.post(f"{base}/teams/{ids['sales']}/projects", json={"data": {"name": "p1"}})
    s.post(f"{base}/projects", json={"data": {"workspace": ids["personal"], "name": "p2"}})
    s.post(f"{base}/workspaces/{ids['personal']}/projects", json={"data": {"name": "p3"}})
    s.delete(f"{base}/attachments/{att['gid']}")
    expected = {
        "getWorkspaces", "getWorkspace", "getTeamsForWorkspace", "getTeam", "getTeamsForUser", "getProjects",
        "getProjectsForWorkspace", "getProjectsForTeam", "getProject", "createProject",
        "createProjectForWorkspace", "createProjectForTeam", "getUsers", "getUsersForWorkspace", "getUser",
        "createTask", "getTask", "updateTask", "getTasks", "getTasksForProject", "createAttachmentForObject",
        "getAttachmentsForObject", "getAttachment", "deleteAttachment",
    }
    assert expected <= s.operations_validated()
    s.assert_all_validated()
