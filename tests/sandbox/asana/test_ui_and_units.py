"""Sandbox pages, safe rich-text rendering, emulator helpers and the small pure modules."""
from __future__ import annotations

import pytest
import requests

from hub.sandbox.asana import create_app, fields, richtext
from hub.sandbox.asana.models import ApiError
from hub.sandbox.asana.ui import rich_text_html
from hub.sandbox.common import SandboxState


def test_pages_show_what_landed(api, base, server, ids, users):
    task = api.post(f"{base}/tasks", json={"data": {
        "projects": [ids["onboarding"]], "name": "Onboard <Globex>", "assignee": users["luis"],
        "html_notes": "<body><strong>Deal</strong> won\n<a href=\"https://crm.example/d/1\">deal</a></body>",
        "external": {"gid": "deal-77"}}}).json()["data"]
    api.post(f"{base}/attachments", data={"parent": task["gid"]}, files={"file": ("msa.pdf", b"PDF!", "application/pdf")})
    index = requests.get(f"{server.url}/_sandbox/ui/", timeout=5).text
    assert "Acme Sandbox Org" in index and "Personal Projects" in index and "Sales Ops" in index
    assert "Won deals – onboarding" in index and "Fault knobs" in index
    project = requests.get(f"{server.url}/_sandbox/ui/projects/{ids['onboarding']}", timeout=5).text
    assert "Onboard &lt;Globex&gt;" in project and "Luis Ortega" in project
    page = requests.get(f"{server.url}/_sandbox/ui/tasks/{task['gid']}", timeout=5).text
    assert "<strong>Deal</strong>" in page and 'href="https://crm.example/d/1"' in page
    assert "deal-77" in page and "msa.pdf" in page
    att = next(a for a in api.get(f"{base}/attachments", params={"parent": task["gid"]}).json()["data"])
    download = requests.get(f"{server.url}/_sandbox/ui/attachments/{att['gid']}/download", timeout=5)
    assert download.content == b"PDF!" and "attachment" in download.headers["Content-Disposition"]
    assert requests.get(f"{server.url}/_sandbox/ui/tasks/123", timeout=5).status_code == 404


def test_signed_download_url_is_checked(api, base, server, ids):
    task = api.post(f"{base}/tasks", json={"data": {"workspace": ids["org"]}}).json()["data"]
    att = api.post(f"{base}/attachments", data={"parent": task["gid"]}, files={"file": ("f", b"1")}).json()["data"]
    assert requests.get(att["download_url"], timeout=5).content == b"1"
    tampered = att["download_url"].replace("sig=", "sig=0")
    assert requests.get(tampered, timeout=5).status_code == 403


def test_ui_fault_form_and_expire(server, faults):
    resp = requests.post(f"{server.url}/_sandbox/ui/faults", data={"latency_ms": "5", "burst_429": "3",
                                                                   "action": "save"}, allow_redirects=False, timeout=5)
    assert resp.status_code == 302
    assert faults.settings.latency_ms == 5 and faults.settings.burst_429 == 3
    faults.update({"latency_ms": 0, "burst_429": 0})
    bad = requests.post(f"{server.url}/_sandbox/ui/faults", data={"latency_ms": "fast"}, timeout=5)
    assert bad.status_code == 400
    resp = requests.post(f"{server.url}/_sandbox/ui/faults", data={"action": "expire_tokens"},
                         allow_redirects=False, timeout=5)
    assert resp.status_code == 302


def test_rich_text_rendering_is_safe():
    html = rich_text_html('<body><a href="javascript:alert(1)">x</a><em>&lt;script&gt;</em></body>')
    assert "javascript:" not in html and "<script>" not in html and "&lt;script&gt;" in html
    assert rich_text_html("not xml <") .startswith("<pre>")


def test_richtext_validate_and_plain():
    assert richtext.validate("<body>a<hr/>b</body>") == "<body>a<hr />b</body>"
    with pytest.raises(richtext.RichTextError):
        richtext.validate("<body><h1>x</h1></body>", allowed_tags=richtext.COMMON_TAGS)
    with pytest.raises(richtext.RichTextError):
        richtext.validate('<!DOCTYPE x [<!ENTITY a "b">]><body>&a;</body>')
    assert richtext.to_plain("<body><ul><li>one</li><li>two</li></ul>tail</body>") == "one\ntwo\ntail"
    assert richtext.from_plain("a < b & c") == "<body>a &lt; b &amp; c</body>"


def test_fields_parse_and_select():
    assert fields.parse(None) is None
    assert fields.parse("name,assignee.name,offset") == {"name": {}, "assignee": {"name": {}}}
    rec = {"gid": "1", "name": "n", "assignee": {"gid": "2", "resource_type": "user", "name": "A"},
           "projects": [{"gid": "3", "resource_type": "project", "name": "P"}]}
    expanded = {"gid": "2", "resource_type": "user", "name": "A", "email": "a@x"}
    out = fields.select(rec, fields.parse("assignee.email,projects"), lambda k, g: expanded)
    assert out == {"gid": "1", "assignee": {"gid": "2", "email": "a@x"},
                   "projects": [{"gid": "3", "resource_type": "project"}]}


def test_emulator_helpers_and_persistence(tmp_path):
    path = tmp_path / "asana.json"
    state = SandboxState(path)
    app = create_app(state=state)
    emu = app.extensions["sandbox"]
    org = emu.workspaces()[0]["gid"]
    ws = emu.add_workspace("Extra", is_organization=False)
    team = emu.add_team(org, "Finance")
    user = emu.add_user("Zoe Example", "zoe@acme.example", [org, ws], [team])
    project = emu.add_project(org, "Budget", team=team, owner=user)
    ctx = {"user": user, "scopes": ["default"], "client_id": "relay-hub-sandbox"}
    gid = emu.create_task({"projects": [project], "name": "Plan", "external": {"gid": "ext-1"}}, ctx)
    assert emu.tasks(project)[0]["gid"] == gid and emu.find_task("external:ext-1", ctx)["gid"] == gid
    with pytest.raises(ValueError):
        emu.add_team(ws, "no teams in plain workspaces")
    with pytest.raises(ApiError) as exc:
        emu.create_task({"workspace": org, "html_notes": "<body><p/></body>"}, ctx)
    assert exc.value.status == 400
    state.close()
    reloaded = create_app(state=SandboxState(path)).extensions["sandbox"]
    assert [t["name"] for t in reloaded.tasks()] == ["Plan"]
    assert len(reloaded.workspaces()) == 3  # seeding does not run again on a non-empty state
    reloaded.state.close()


def test_seed_can_be_disabled():
    emu = create_app(options={"seed": False}).extensions["sandbox"]
    assert emu.workspaces() == [] and emu.users() == []
