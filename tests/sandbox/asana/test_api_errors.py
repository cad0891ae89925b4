"""Every emulated error path: status code AND Asana's `{"errors": [{"message", "help"}]}` body.

Responses go through the spec validator too; requests that deliberately break the spec (limit
above 100, bad html_notes is still spec-valid) say so with `skip_request_validation`."""
from __future__ import annotations

import pytest
import requests

from tests.sandbox.openapi_conformance import SpecValidator, ValidatingSession

HELP_PREFIX = "For more information on API status codes"


def assert_error(resp: requests.Response, status: int, message: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1
    err = body["errors"][0]
    assert isinstance(err["message"], str) and err["message"]
    assert err["help"].startswith(HELP_PREFIX)
    if status < 500:
        assert "phrase" not in err  # phrases are for 500s only
    if message is not None:
        assert err["message"] == message
    return err


@pytest.fixture
def anon(server, validator) -> ValidatingSession:
    session = ValidatingSession(validator, f"{server.url}/api/1.0")
    yield session
    session.assert_all_validated()


def test_401_without_or_with_bad_token(anon, base):
    assert_error(anon.get(f"{base}/workspaces"), 401, "Not Authorized")
    assert_error(anon.get(f"{base}/users/me", headers={"Authorization": "Bearer nope"}), 401, "Not Authorized")
    assert_error(anon.post(f"{base}/tasks", json={"data": {"name": "x"}}), 401)


def test_400_missing_team_in_organization(api, base, ids):
    for url in (f"{base}/projects", f"{base}/workspaces/{ids['org']}/projects"):
        assert_error(api.post(url, json={"data": {"workspace": ids["org"], "name": "Globex"}}), 400,
                     "Missing required `team` field")


def test_400_project_body_problems(api, base, ids):
    assert_error(api.post(f"{base}/projects", json={"data": {"name": "no workspace"}}), 400, "workspace: Missing input")
    with api.skip_request_validation("deliberately not an enum value"):
        assert_error(api.post(f"{base}/teams/{ids['sales']}/projects",
                              json={"data": {"name": "x", "default_view": "kanban"}}), 400)
    with api.skip_request_validation("deliberately no data envelope"):
        assert_error(api.post(f"{base}/projects", json={"name": "x"}), 400, "data: Missing input")


def test_400_task_needs_a_workspace(api, base):
    assert_error(api.post(f"{base}/tasks", json={"data": {"name": "orphan"}}), 400,
                 "You should specify one of workspace, parent, projects")


@pytest.mark.parametrize("html", [
    "<body><p>R&D wants SSO</p></body>",            # bare & and unsupported <p> (the FACTS example)
    "<body>R&D</body>",                             # bare ampersand
    "<body><p>text</p></body>",                     # well-formed but <p> unsupported
    "<body><strong>unclosed</body>",                # not well-formed
    "<div>no body root</div>",
    "<body><em class=\"x\">attr</em></body>",       # attributes only on <a>
    "<body><a>no target</a></body>",
    "<body><a href=\"javascript:alert(1)\">x</a></body>",
    "<body><a data-asana-gid=\"999\">unknown</a></body>",
    "plain text",
    "<body>&nbsp;</body>",                          # HTML entity, not XML
])
def test_400_invalid_html_notes(api, base, ids, html, emu):
    before = len(emu.tasks())
    err = assert_error(api.post(f"{base}/tasks", json={"data": {"workspace": ids["org"], "name": "x",
                                                                "html_notes": html}}), 400)
    assert err["message"].startswith("html_notes:")
    assert len(emu.tasks()) == before  # nothing half-created


def test_html_notes_allowed_tags_and_mentions(api, base, ids, users):
    html = (f"<body><h1>T</h1><hr/><ol><li><u>a</u> <s>b</s> <code>c</code></li></ol>"
            f"<a data-asana-gid=\"{users['luis']}\"/></body>")
    resp = api.post(f"{base}/tasks", json={"data": {"workspace": ids["org"], "html_notes": html}},
                    params={"opt_fields": "html_notes"})
    assert resp.status_code == 201
    stored = resp.json()["data"]["html_notes"]
    assert 'data-asana-type="user"' in stored and 'data-asana-accessible="true"' in stored
    # Project notes do not allow the task-only headings.
    assert_error(api.post(f"{base}/teams/{ids['sales']}/projects",
                          json={"data": {"name": "p", "html_notes": "<body><h1>x</h1></body>"}}), 400)


def test_400_other_task_rules(api, base, ids, users):
    assert_error(api.post(f"{base}/tasks", json={"data": {"workspace": ids["org"], "due_on": "2026-01-01",
                                                          "due_at": "2026-01-01T10:00:00Z"}}), 400)
    assert_error(api.post(f"{base}/tasks", json={"data": {"workspace": ids["org"], "start_on": "2026-01-01"}}), 400)
    assert_error(api.post(f"{base}/tasks", json={"data": {"workspace": ids["org"], "assignee": "9999"}}), 400,
                 "assignee: Not a recognized ID: 9999")
    assert_error(api.post(f"{base}/tasks", json={"data": {"workspace": ids["personal"],
                                                          "assignee": users["luis"]}}), 400)
    assert_error(api.post(f"{base}/tasks", json={"data": {"workspace": ids["personal"],
                                                          "projects": [ids["onboarding"]]}}), 400)
    assert_error(api.post(f"{base}/tasks", json={"data": {"projects": ["123"]}}), 400,
                 "projects: Not a recognized ID: 123")


def test_external_gid_unique_per_app_and_limits(api_factory, base, ids, users, server, emu):
    dana = api_factory(users["dana"])
    first = dana.post(f"{base}/tasks", json={"data": {"workspace": ids["org"], "external": {"gid": "deal-9"}}})
    assert first.status_code == 201
    assert_error(dana.post(f"{base}/tasks", json={"data": {"workspace": ids["org"], "external": {"gid": "deal-9"}}}),
                 400)
    assert_error(dana.post(f"{base}/tasks", json={"data": {"workspace": ids["org"],
                                                           "external": {"gid": "x" * 1025}}}), 400)
    assert_error(dana.post(f"{base}/tasks", json={"data": {"workspace": ids["org"],
                                                           "external": {"data": "x" * 32769}}}), 400)
    # The same user through a different OAuth app sees neither the external id nor the lookup.
    emu.tokens.register_client(type(next(iter(emu.tokens.clients.values())))("other-app", "s2", []))
    code = emu.tokens.issue_code("other-app", "https://o.example/cb",
                                 {"user": users["dana"], "scopes": ["default"], "client_id": "other-app"})
    other_token = emu.tokens.issue("other-app", emu.tokens.redeem_code(code, "other-app", None))["access_token"]
    other = dana.__class__(dana.mounts[base], base)
    other.headers["Authorization"] = f"Bearer {other_token}"
    assert_error(other.get(f"{base}/tasks/external:deal-9"), 404)
    gid = first.json()["data"]["gid"]
    seen = other.get(f"{base}/tasks/{gid}", params={"opt_fields": "external,name"}).json()["data"]
    assert "external" not in seen
    # ...and may use the same external id for its own task.
    assert other.post(f"{base}/tasks", json={"data": {"workspace": ids["org"],
                                                      "external": {"gid": "deal-9"}}}).status_code == 201
    other.assert_all_validated()
    dana.assert_all_validated()


def test_404s(api, base):
    assert_error(api.get(f"{base}/tasks/123"), 404)
    assert_error(api.get(f"{base}/tasks/external:nope"), 404)
    assert_error(api.get(f"{base}/projects/123"), 404)
    assert_error(api.get(f"{base}/workspaces/123"), 404)
    assert_error(api.get(f"{base}/users/nobody@example.com"), 404)
    assert_error(api.get(f"{base}/attachments/123"), 404)
    assert_error(api.get(f"{base}/no/such/route"), 404, "No matching route for request")


def test_403_outside_membership_and_missing_scope(api_factory, base, ids, users):
    luis = api_factory(users["luis"])  # not a member of "Personal Projects"
    assert_error(luis.get(f"{base}/workspaces/{ids['personal']}"), 403)
    assert_error(luis.get(f"{base}/projects/{ids['home']}"), 403)
    assert_error(luis.post(f"{base}/tasks", json={"data": {"workspace": ids["personal"]}}), 403)
    reader = api_factory(users["dana"], scope="workspaces:read tasks:read")
    assert reader.get(f"{base}/workspaces").status_code == 200
    err = assert_error(reader.post(f"{base}/tasks", json={"data": {"workspace": ids["org"]}}), 403)
    assert "tasks:write" in err["message"]
    luis.assert_all_validated()
    reader.assert_all_validated()


def test_400_pagination_and_filters(api, base, ids):
    with api.skip_request_validation("limit outside 1..100 on purpose"):
        assert_error(api.get(f"{base}/workspaces", params={"limit": 101}), 400)
        assert_error(api.get(f"{base}/workspaces", params={"limit": 0}), 400)
        assert_error(api.get(f"{base}/workspaces", params={"limit": "ten"}), 400)
    assert_error(api.get(f"{base}/workspaces", params={"limit": 1, "offset": "forged.token.x"}), 400,
                 "offset: Your pagination token is invalid")
    assert_error(api.get(f"{base}/tasks"), 400, "project: Missing input")
    assert_error(api.get(f"{base}/tasks", params={"assignee": "me"}), 400, "workspace: Missing input")
    assert_error(api.get(f"{base}/users"), 400, "workspace: Missing input")
    with api.skip_request_validation("organization is required by the spec; omitted on purpose"):
        assert_error(api.get(f"{base}/users/me/teams"), 400, "organization: Missing input")
    assert_error(api.get(f"{base}/workspaces/{ids['personal']}/teams"), 400)


def test_expired_offset_token(api, base, monkeypatch):
    import hub.sandbox.asana.api as api_module
    token = api.get(f"{base}/workspaces", params={"limit": 1}).json()["next_page"]["offset"]
    real = api_module.time.time
    monkeypatch.setattr(api_module.time, "time", lambda: real() + api_module.OFFSET_TTL + 5)
    assert_error(api.get(f"{base}/workspaces", params={"limit": 1, "offset": token}), 400,
                 "offset: Your pagination token has expired")


def test_attachment_errors(api, base, ids, emu):
    task = api.post(f"{base}/tasks", json={"data": {"workspace": ids["org"], "name": "t"}}).json()["data"]
    with api.skip_request_validation("parent is required by the spec; omitted on purpose"):
        assert_error(api.post(f"{base}/attachments", files={"file": ("a.txt", b"x")}), 400, "parent: Missing input")
    assert_error(api.post(f"{base}/attachments", data={"parent": "123"}, files={"file": ("a.txt", b"x")}), 400)
    assert_error(api.post(f"{base}/attachments", data={"parent": task["gid"], "name": "n"},
                          files={"x": ("", b"")}), 400, "file: Missing input")
    too_big = b"x" * (emu.attachment_max_bytes + 1)  # the test app sets a 64 KiB limit
    err = assert_error(api.post(f"{base}/attachments", data={"parent": task["gid"]},
                                files={"file": ("big.bin", too_big)}), 400)
    assert "too large" in err["message"]
    assert emu.attachments(task["gid"]) == []
    with api.skip_request_validation("JSON body where the spec requires multipart"):
        assert_error(api.post(f"{base}/attachments", json={"data": {"parent": task["gid"]}}), 400)


def test_oversize_body_beyond_server_cap_is_still_an_asana_400(api, base, ids, emu):
    task = api.post(f"{base}/tasks", json={"data": {"workspace": ids["org"], "name": "t"}}).json()["data"]
    huge = b"x" * (emu.attachment_max_bytes + 2 * 1024 * 1024)  # beyond MAX_CONTENT_LENGTH
    assert_error(api.post(f"{base}/attachments", data={"parent": task["gid"]}, files={"file": ("h", huge)}), 400)


def test_validator_catches_a_non_conforming_response(validator):
    """The conformance net must be able to fail: a wrong shape is reported with a JSON pointer."""
    chk = validator.check("GET", "http://x/api/1.0/workspaces", prefix="/api/1.0",
                          headers={"Authorization": "Bearer t"}, status=200,
                          response_headers={"Content-Type": "application/json"},
                          response_body=b'{"data": [{"gid": 1, "name": "x"}]}')
    assert not chk.ok and any(i.pointer == "/data/0/gid" for i in chk.issues)
    assert isinstance(validator, SpecValidator)
