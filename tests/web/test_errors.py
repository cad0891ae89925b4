"""When a request fails: a person's browser gets a page in the hub's look with a way back, the API
and programs get JSON `{"error", "message"}`, and the CLI prints one line on stderr and exits non-zero."""
from __future__ import annotations

import pytest

from hub import create_app
from hub.web.access import public
from tests.conftest import hub_config
from tests.sync.conftest import make_setup
from tests.web.conftest import BEN, install

# what Chromium sends for a page: a parametrised type first, so werkzeug's `accept_mimetypes.best`
# names `application/signed-exchange` (the hub once sent Chromium JSON because of it)
CHROMIUM = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,"
                      "*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"}
JSON = {"Accept": "application/json"}


def is_hub_page(response) -> bool:
    return (response.headers["Content-Type"].startswith("text/html") and "/static/hub.css" in response.text
            and '<a class="brand" href="/">Relay Hub</a>' in response.text)


def test_an_unknown_address_is_a_page_for_a_browser_and_json_for_programs(live_hub):
    browser = live_hub.browser()
    page = browser.get("/no/such/page", headers=CHROMIUM)
    assert page.status_code == 404 and is_hub_page(page)
    assert "<h1>Not found</h1>" in page.text and '<a class="btn" href="/">Back to Relay Hub</a>' in page.text
    program = browser.get("/no/such/page")
    assert program.status_code == 404 and program.json()["error"] == "not_found"
    assert set(program.json()) == {"error", "message"}
    api = browser.get("/api/v1/no/such/thing", headers=CHROMIUM)   # the API never answers with a page
    assert api.status_code == 404 and api.json()["error"] == "not_found"
    provider = browser.get("/install/nope", headers=CHROMIUM)
    assert provider.status_code == 404 and is_hub_page(provider) and "no such provider" in provider.text
    hook = browser.post("/hooks/nope/token", headers=CHROMIUM, data="{}")   # webhooks: JSON whatever they accept
    assert hook.status_code == 404 and hook.json() == {"error": "not_found", "message": "provider: no such provider"}


def test_a_missing_object_leads_back_to_the_page_the_browser_came_from(live_hub):
    setup = make_setup(live_hub)
    came_from = f"{live_hub.url}/i/{setup.iid}/sync"
    page = setup.admin.get(f"/i/{setup.iid}/sync/987654", headers={**CHROMIUM, "Referer": came_from})
    assert page.status_code == 404 and is_hub_page(page)
    assert "no such sync" in page.text
    assert f'<a class="btn" href="/i/{setup.iid}/sync">Back to the previous page</a>' in page.text
    foreign = setup.admin.get(f"/i/{setup.iid}/sync/987654",
                              headers={**CHROMIUM, "Referer": f"http://evil.example/i/{setup.iid}/sync"})
    assert '<a class="btn" href="/">Back to Relay Hub</a>' in foreign.text and "evil.example" not in foreign.text
    api = setup.admin.get(f"/i/{setup.iid}/sync/987654", headers=JSON)
    assert api.status_code == 404 and api.json() == {"error": "not_found", "message": "no such sync"}


def test_a_wrong_method_is_405_with_its_allowed_methods(live_hub):
    browser = live_hub.browser()
    page = browser.get("/logout", headers=CHROMIUM)
    assert page.status_code == 405 and is_hub_page(page) and "POST" in page.headers["Allow"]
    assert "open the page the form is on" in page.text
    program = browser.get("/logout", headers=JSON)
    assert program.status_code == 405 and program.json()["error"] == "method_not_allowed"


def test_bad_input_is_a_400_page_naming_the_field(live_hub):
    admin, iid = install(live_hub)
    page = admin.get(f"/i/{iid}/settings", params={"q": "a\x00b"}, headers=CHROMIUM)
    assert page.status_code == 400 and is_hub_page(page) and "q" in page.text and "Error 400" in page.text
    program = admin.get(f"/i/{iid}/settings", params={"q": "a\x00b"}, headers=JSON)
    assert program.status_code == 400 and program.json()["error"] == "invalid" and "q" in program.json()["fields"]
    refused = admin.form_post(f"/i/{iid}/uninstall", {"confirm": "no"}, csrf_from=f"/i/{iid}/settings",
                              headers=CHROMIUM)
    assert refused.status_code == 400 and is_hub_page(refused) and "Type &#39;uninstall&#39; to confirm." in refused.text


def test_a_member_without_the_role_gets_a_403_page_with_a_way_back(live_hub):
    admin, iid = install(live_hub, visibility_in_crm="all", hub_visibility="all")
    ben = live_hub.browser()
    assert ben.authorize_pipedrive("/login/pipedrive", user_id=BEN).status_code == 200
    came_from = f"{live_hub.url}/i/{iid}/settings"
    refused = ben.form_post(f"/i/{iid}/uninstall", {"confirm": "uninstall"}, csrf_from=f"/i/{iid}/settings",
                            headers={**CHROMIUM, "Referer": came_from})
    assert refused.status_code == 403 and is_hub_page(refused) and "Only an admin can do this." in refused.text
    assert f'href="/i/{iid}/settings">Back to the previous page</a>' in refused.text
    assert admin.get(f"/i/{iid}/settings").status_code == 200   # nothing was uninstalled


@pytest.fixture
def failing_app(tmp_path):
    """A hub with one page and one API route that fail in a way nobody foresaw."""
    app = create_app(hub_config(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path / "instance"))

    @public
    def boom():
        raise RuntimeError("token=very-secret-value")

    app.add_url_rule("/boom", "boom", boom)
    app.add_url_rule("/api/v1/boom", "api_boom", boom)
    yield app
    app.extensions["hub"].db.dispose()


def test_an_unforeseen_failure_is_a_500_that_shows_no_detail(failing_app):
    client = failing_app.test_client()
    page = client.get("/boom", headers=CHROMIUM)
    assert page.status_code == 500 and "Something went wrong" in page.text and "/static/hub.css" in page.text
    api = client.get("/api/v1/boom", headers=CHROMIUM)
    assert api.status_code == 500 and api.json["error"] == "internal_error"
    for response in (page, api):
        assert "very-secret-value" not in response.text and "Traceback" not in response.text


# -- the CLI ------------------------------------------------------------------------------------------
def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert result.exit_code != 0
    return lines[0]


def test_cli_bad_ids_and_arguments_are_one_line_on_stderr(failing_app):
    from hub.store import migrate
    runner = failing_app.test_cli_runner()
    unmigrated = one_line_error(runner.invoke(args=["jobs", "list"]))
    assert "not migrated" in unmigrated and "flask --app hub db upgrade" in unmigrated
    migrate.upgrade(failing_app.extensions["hub"].db.engine)
    bad = runner.invoke(args=["jobs", "show", "abc"])
    assert "'abc' is not a valid integer" in one_line_error(bad) and bad.exit_code == 2
    assert "`flask --app hub jobs show --help`" in bad.stderr
    assert one_line_error(runner.invoke(args=["jobs", "show", "424242"])) == "Error: no job 424242"
    assert "No such command 'nothing'" in one_line_error(runner.invoke(args=["jobs", "nothing"]))
    both = runner.invoke(args=["jobs", "list", "--installation", "1", "--global"])
    assert "--installation and --global exclude each other" in one_line_error(both)
    assert "not in the range" in one_line_error(runner.invoke(args=["worker", "--concurrency", "0"]))
    assert "'x' is not a valid integer" in one_line_error(runner.invoke(args=["sync", "run", "x"]))
    assert one_line_error(runner.invoke(args=["sync", "run", "999"])) == "Error: no sync 999"


def test_cli_http_errors_are_one_line_without_the_page(live_hub):
    runner = live_hub.app.test_cli_runner()
    missing = runner.invoke(args=["sandbox", "deal", "won", "999999"])
    assert one_line_error(missing) == "Error: 404: Deal not found"
    knob = runner.invoke(args=["sandbox", "faults", "pipedrive", "error_rate=abc"])
    line = one_line_error(knob)
    assert line.startswith("Error: 400: ") and "error_rate" in line and "{" not in line


def test_cli_error_text_of_a_page_leaves_out_its_head_and_styles():
    from requests.models import Response

    from hub.sandbox.cli import error_text
    page = Response()
    page.status_code, page.reason = 404, "NOT FOUND"
    page._content = (b"<!doctype html><html><head><title>Not saved</title><style>body{font:14px}</style></head>"
                     b"<body><script>var x = 1;</script><h2>Not saved</h2><p>Deal not found</p></body></html>")
    assert error_text(page) == "Not saved Deal not found"
