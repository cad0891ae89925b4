"""The Bitrix24 emulator as the docs describe Bitrix24: OAuth at the portal and the OAuth server
(30-second single-use code, GET token exchange, rotating refresh tokens), the REST envelope and
its errors, deals with stage semantics, tasks with their lifecycle, event bindings and deliveries."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from hub.sandbox.bitrix24 import create_app
from hub.sandbox.bitrix24.util import parse_query
from hub.sandbox.common import Faults, SandboxState

CLIENT_ID, SECRET = "app.test", "app-secret"
CALLBACK = "https://hub.test/oauth/bitrix24/callback"


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class Recorder:
    """A requests-like session: the deliveries Bitrix24 would POST, answered with `status`."""

    def __init__(self):
        self.posts = []
        self.status = 200

    def post(self, url, data=None, timeout=None, allow_redirects=None, headers=None):
        self.posts.append({"url": url, "body": data.decode(), "headers": headers,
                           "form": parse_query(data.decode())})
        return type("Resp", (), {"status_code": self.status})()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def faults():
    return Faults(seed=3)


@pytest.fixture
def app(clock, recorder, faults):
    return create_app(state=SandboxState(), faults=faults, options={
        "clock": clock, "auto_deliver": False, "session": recorder, "base_url": "http://b24.test",
        "clients": [{"client_id": CLIENT_ID, "client_secret": SECRET, "redirect_uris": [CALLBACK], "name": "Relay Hub"}]})


@pytest.fixture
def emu(app):
    return app.extensions["sandbox"]


@pytest.fixture
def web(app):
    return app.test_client()


def consent(web, user_id=1, portal="demo", state="xyz"):
    page = web.get(f"/portal/{portal}/oauth/authorize/?client_id={CLIENT_ID}&state={state}&redirect_uri=https://evil.test/")
    assert page.status_code == 200 and "Relay Hub" in page.text
    answer = web.post(f"/portal/{portal}/oauth/authorize/", data={"client_id": CLIENT_ID, "state": state,
                                                                 "user_id": str(user_id), "decision": "allow"})
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def exchange(web, **params):
    query = {"client_id": CLIENT_ID, "client_secret": SECRET, **params}
    return web.get("/oauth/token/", query_string=query)


def connect(web, user_id=1):
    location = consent(web, user_id)
    code = parse_qs(urlsplit(location).query)["code"][0]
    answer = exchange(web, grant_type="authorization_code", code=code)
    assert answer.status_code == 200, answer.text
    return answer.json


def rest(web, method, token, params=None, *, json=True, portal="demo"):
    if json:
        return web.post(f"/portal/{portal}/rest/{method}?auth={token}", json=params or {})
    return web.get(f"/portal/{portal}/rest/{method}", query_string={"auth": token, **(params or {})})


# -- OAuth ------------------------------------------------------------------------------------------
def test_authorize_redirects_to_the_registered_uri_with_the_portal(web, emu):
    location = consent(web)
    assert location.startswith(CALLBACK + "?")                       # not the redirect_uri parameter
    q = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    portal = emu.portals()[0]
    assert q["state"] == "xyz" and q["domain"] == portal["domain"] and q["member_id"] == portal["member_id"]
    assert q["scope"] == "crm,task,user,basic" and q["server_domain"] == "b24.test" and q["code"]


def test_code_exchange_by_get_gives_the_portal_endpoints(web, emu):
    token = connect(web)
    assert token["client_endpoint"] == "http://b24.test/portal/demo/rest/"
    assert token["server_endpoint"] == "http://b24.test/rest/"
    assert token["member_id"] == emu.portals()[0]["member_id"] and token["expires_in"] == 3600
    assert token["status"] == "L" and token["user_id"] == 1 and token["refresh_token"] != token["access_token"]
    assert web.post("/oauth/token/", data={"grant_type": "authorization_code"}).status_code == 405


def test_code_lives_30_seconds_and_works_once(web, clock):
    code = parse_qs(urlsplit(consent(web)).query)["code"][0]
    clock.advance(31)
    late = exchange(web, grant_type="authorization_code", code=code)
    assert late.status_code == 400 and late.json["error"] == "invalid_grant"
    code = parse_qs(urlsplit(consent(web)).query)["code"][0]
    clock.advance(29)
    assert exchange(web, grant_type="authorization_code", code=code).status_code == 200
    again = exchange(web, grant_type="authorization_code", code=code)
    assert again.status_code == 400 and again.json["error"] == "invalid_grant"


def test_wrong_secret_is_invalid_client(web):
    code = parse_qs(urlsplit(consent(web)).query)["code"][0]
    bad = web.get("/oauth/token/", query_string={"client_id": CLIENT_ID, "client_secret": "nope",
                                                 "grant_type": "authorization_code", "code": code})
    assert bad.status_code == 401 and bad.json["error"] == "invalid_client" and "nope" not in bad.text


def test_refresh_rotates_and_the_old_token_is_refused(web, faults):
    token = connect(web)
    first = exchange(web, grant_type="refresh_token", refresh_token=token["refresh_token"])
    assert first.status_code == 200 and first.json["refresh_token"] != token["refresh_token"]
    assert first.json["client_endpoint"] == token["client_endpoint"]
    reused = exchange(web, grant_type="refresh_token", refresh_token=token["refresh_token"])
    assert reused.status_code == 400 and reused.json["error"] == "invalid_grant"
    faults.update({"refresh_reuse": True})                           # the lenient variant, for comparison
    second = exchange(web, grant_type="refresh_token", refresh_token=first.json["refresh_token"])
    assert exchange(web, grant_type="refresh_token", refresh_token=first.json["refresh_token"]).status_code == 200
    assert second.json["refresh_token"] != first.json["refresh_token"]


def test_only_an_admin_installs_the_app(web):
    answer = web.post("/portal/demo/oauth/authorize/", data={"client_id": CLIENT_ID, "user_id": "2", "decision": "allow"})
    assert answer.status_code == 403 and "administrator" in answer.text
    consent(web, user_id=1)
    assert consent(web, user_id=2).startswith(CALLBACK)               # installed now: any user may consent


# -- envelope and errors ----------------------------------------------------------------------------
def test_envelope_paging_and_auth_errors(web, emu, clock):
    token = connect(web)["access_token"]
    for n in range(60):
        emu.create_deal("demo", {"TITLE": f"Bulk {n}"})
    first = rest(web, "crm.deal.list", token, {"select": ["ID", "TITLE"]})
    body = first.json
    assert first.status_code == 200 and len(body["result"]) == 50 and body["total"] == 64 and body["next"] == 50
    assert set(body["time"]) >= {"start", "finish", "duration", "date_start", "operating"}
    assert set(body["result"][0]) == {"ID", "TITLE"}
    last = rest(web, "crm.deal.list.json", token, {"start": "50", "select[]": "ID"}, json=False).json
    assert len(last["result"]) == 14 and "next" not in last and last["total"] == 64
    assert "total" not in rest(web, "crm.deal.list", token, {"start": -1}).json

    missing = rest(web, "crm.deal.list", "")
    assert missing.status_code == 401 and missing.json["error"] == "NO_AUTH_FOUND"
    assert rest(web, "crm.deal.list", "forged").json["error"] == "NO_AUTH_FOUND"
    assert rest(web, "no.such.method", token).status_code == 404
    clock.advance(3601)
    expired = rest(web, "crm.deal.list", token)
    assert expired.status_code == 401 and expired.json == {"error": "expired_token",
                                                           "error_description": "The access token provided has expired."}


def test_scope_is_checked(web, emu, app):
    emu.client_options[CLIENT_ID]["scopes"] = ["crm"]
    token = connect(web)["access_token"]
    denied = rest(web, "tasks.task.list", token)
    assert denied.status_code == 403 and denied.json["error"] == "insufficient_scope"
    assert rest(web, "crm.deal.list", token).status_code == 200


def test_filters_on_dates_and_operators(web, emu, clock):
    token = connect(web)["access_token"]
    clock.advance(100)
    moved = emu.win_deal("demo", 2)
    since = rest(web, "crm.deal.list", token, {"filter": {">=DATE_MODIFY": moved["DATE_MODIFY"]}}).json["result"]
    assert [d["ID"] for d in since] == ["2"] and since[0]["STAGE_SEMANTIC_ID"] == "S" and since[0]["CLOSED"] == "Y"
    many = rest(web, "crm.deal.list", token, {"filter": {"@ID": [1, 3]}, "order": {"ID": "DESC"}}).json["result"]
    assert [d["ID"] for d in many] == ["3", "1"]
    other = rest(web, "crm.deal.list", token, {"filter": {"CATEGORY_ID": 1}}).json["result"]
    assert [d["STAGE_ID"] for d in other] == ["C1:NEW"]


# -- deals, stages, users -----------------------------------------------------------------------------
def test_stages_carry_semantics(web):
    token = connect(web)["access_token"]
    stages = rest(web, "crm.status.list", token, {"filter": {"ENTITY_ID": "DEAL_STAGE"}}).json["result"]
    sem = {s["STATUS_ID"]: (s["SEMANTICS"], s["EXTRA"]["SEMANTICS"]) for s in stages}
    assert sem["NEW"] == (None, "process") and sem["WON"] == ("S", "success") and sem["LOSE"] == ("F", "failure")
    renewals = rest(web, "crm.dealcategory.stage.list", token, {"id": 1}).json["result"]
    assert [s["STATUS_ID"] for s in renewals] == ["C1:NEW", "C1:NEGOTIATION", "C1:WON", "C1:LOSE"]
    cats = rest(web, "crm.category.list", token, {"entityTypeId": 2}).json["result"]["categories"]
    assert {c["id"]: c["isDefault"] for c in cats} == {0: "Y", 1: "N"}
    assert [c["NAME"] for c in rest(web, "crm.dealcategory.list", token).json["result"]] == ["Renewals"]


def test_deal_add_update_get(web):
    token = connect(web)["access_token"]
    new_id = rest(web, "crm.deal.add", token, {"fields": {"TITLE": "API deal", "OPPORTUNITY": 99.5,
                                                          "ASSIGNED_BY_ID": 2}}).json["result"]
    assert isinstance(new_id, int)
    assert rest(web, "crm.deal.update", token, {"id": new_id, "fields": {"STAGE_ID": "LOSE"}}).json["result"] is True
    deal = rest(web, "crm.deal.get", token, {"id": new_id}).json["result"]
    assert (deal["TITLE"], deal["OPPORTUNITY"], deal["STAGE_SEMANTIC_ID"], deal["CLOSED"]) == ("API deal", "99.50", "F", "Y")
    bad = rest(web, "crm.deal.update", token, {"id": new_id, "fields": {"STAGE_ID": "C1:WON"}})
    assert bad.status_code == 400 and "STAGE_ID" in bad.json["error_description"]
    gone = rest(web, "crm.deal.get", token, {"id": 999})
    assert gone.status_code == 400 and gone.json == {"error": "", "error_description": "Not found"}
    assert "STAGE_SEMANTIC_ID" in rest(web, "crm.deal.fields", token).json["result"]


def test_profile_and_users(web):
    token = connect(web, user_id=1)["access_token"]
    me = rest(web, "profile", token).json["result"]
    assert me["ID"] == "1" and me["ADMIN"] is True
    assert rest(web, "user.current", token).json["result"]["EMAIL"] == "anna@demo.test"
    users = rest(web, "user.get", token, {"filter": {"ACTIVE": True}}).json["result"]
    assert [u["ID"] for u in users] == ["1", "2", "3"]
    assert rest(web, "app.info", token).json["result"]["INSTALLED"] is True


# -- tasks -------------------------------------------------------------------------------------------
def test_task_add_returns_camel_case_and_crm_link_on_select(web):
    token = connect(web)["access_token"]
    added = rest(web, "tasks.task.add", token, {"fields": {
        "TITLE": "Prepare contract", "RESPONSIBLE_ID": 2, "DEADLINE": "2027-01-20T10:00:00+00:00", "PRIORITY": 2,
        "TASK_CONTROL": "Y", "UF_CRM_TASK": ["D_1"], "AUDITORS": [3]}}).json["result"]["task"]
    assert (added["title"], added["responsibleId"], added["createdBy"], added["priority"], added["taskControl"]) == \
        ("Prepare contract", "2", "1", "2", "Y")
    assert added["status"] == "2" and added["subStatus"] == "-2" and added["auditors"] == ["3"]
    assert "ufCrmTask" not in added
    got = rest(web, "tasks.task.get", token, {"taskId": added["id"],
                                              "select": ["ID", "STATUS", "UF_CRM_TASK", "DEADLINE"]}).json["result"]["task"]
    assert got["ufCrmTask"] == ["D_1"] and got["deadline"] == "2027-01-20T10:00:00+00:00"
    linked = rest(web, "tasks.task.list", token, {"filter": {"UF_CRM_TASK": "D_1"}, "select": ["ID"]}).json
    assert [t["id"] for t in linked["result"]["tasks"]] == ["1", added["id"]] and linked["total"] == 2
    assert rest(web, "tasks.task.get", token, {"taskId": 999}).json["result"] == []
    bad = rest(web, "tasks.task.add", token, {"fields": {"TITLE": "x", "UF_CRM_TASK": ["DEAL_1"]}})
    assert bad.status_code == 400 and "UF_CRM_TASK" in bad.json["error_description"]


def test_task_lifecycle_with_control_on_completion(web, emu, clock):
    admin = connect(web, user_id=1)["access_token"]
    bob = connect(web, user_id=2)["access_token"]
    task = rest(web, "tasks.task.add", admin, {"fields": {"TITLE": "Checked work", "RESPONSIBLE_ID": 2,
                                                         "TASK_CONTROL": "Y"}}).json["result"]["task"]
    tid = task["id"]

    def status(token=admin):
        t = rest(web, "tasks.task.get", token, {"taskId": tid, "select": ["STATUS"]}).json["result"]["task"]
        return t["status"], t["subStatus"]

    assert status() == ("2", "-2")                                   # pending, not viewed by the responsible
    emu.view_task("demo", tid, 2)
    assert status() == ("2", "2")
    assert rest(web, "tasks.task.start", bob, {"taskId": tid}).json["result"]["task"]["status"] == "3"
    assert rest(web, "tasks.task.pause", bob, {"taskId": tid}).json["result"]["task"]["status"] == "2"
    assert rest(web, "tasks.task.start", bob, {"taskId": tid}).status_code == 200
    assert rest(web, "tasks.task.complete", bob, {"taskId": tid}).json["result"]["task"]["status"] == "4"
    refused = rest(web, "tasks.task.approve", bob, {"taskId": tid})     # only the creator approves
    assert refused.status_code == 400 and refused.json["error_description"] == "Action on the task is not allowed"
    assert rest(web, "tasks.task.disapprove", admin, {"taskId": tid}).json["result"]["task"]["status"] == "2"
    assert rest(web, "tasks.task.complete", bob, {"taskId": tid}).json["result"]["task"]["status"] == "4"
    done = rest(web, "tasks.task.approve", admin, {"taskId": tid}).json["result"]["task"]
    assert done["status"] == "5" and done["closedBy"] == "1"
    assert rest(web, "tasks.task.pause", bob, {"taskId": tid}).status_code == 400
    assert rest(web, "tasks.task.renew", admin, {"taskId": tid}).json["result"]["task"]["status"] == "2"
    assert rest(web, "tasks.task.defer", admin, {"taskId": tid}).json["result"]["task"]["status"] == "6"
    # the creator completes a controlled task directly
    assert rest(web, "tasks.task.complete", admin, {"taskId": tid}).json["result"]["task"]["status"] == "5"


def test_sub_status_overdue_and_almost_overdue(web, emu, clock):
    token = connect(web)["access_token"]
    soon = emu.create_task("demo", {"TITLE": "Soon", "RESPONSIBLE_ID": 1, "DEADLINE": clock.now + 600})
    later = emu.create_task("demo", {"TITLE": "Later", "RESPONSIBLE_ID": 1, "DEADLINE": clock.now + 5 * 86400})
    sub = lambda t: rest(web, "tasks.task.get", token, {"taskId": t["id"]}).json["result"]["task"]["subStatus"]
    assert (sub(soon), sub(later)) == ("-3", "2")
    clock.advance(700)                                               # (the token lives on: 1 h)
    assert sub(soon) == "-1"
    overdue = rest(web, "tasks.task.list", token, {"filter": {"STATUS": -1}, "select": ["ID"]}).json["result"]["tasks"]
    assert [t["id"] for t in overdue] == [str(soon["id"])]
    emu.task_action("demo", soon["id"], "complete", actor=1)
    assert sub(soon) == "5"
    real = rest(web, "tasks.task.list", token, {"filter": {"!REAL_STATUS": 5}, "select": ["ID"]}).json
    assert str(soon["id"]) not in [t["id"] for t in real["result"]["tasks"]]


# -- events -------------------------------------------------------------------------------------------
def test_event_bind_get_unbind(web):
    admin = connect(web, user_id=1)["access_token"]
    hook = "https://hub.test/hooks/bitrix24"
    assert rest(web, "event.bind", admin, {"event": "ONCRMDEALUPDATE", "handler": hook}).json["result"] is True
    again = rest(web, "event.bind", admin, {"event": "ONCRMDEALUPDATE", "handler": hook})
    assert again.status_code == 400 and again.json["error"] == "ERROR_CORE"
    assert rest(web, "event.bind", admin, {"event": "ONNOTHING", "handler": hook}).status_code == 400
    assert rest(web, "event.get", admin).json["result"] == [
        {"event": "ONCRMDEALUPDATE", "handler": hook, "auth_type": "0", "offline": 0}]
    bob = connect(web, user_id=2)["access_token"]
    assert rest(web, "event.bind", bob, {"event": "ONTASKADD", "handler": hook}).status_code == 403
    assert rest(web, "event.unbind", admin, {"event": "ONCRMDEALUPDATE", "handler": hook}).json["result"] == {"count": 1}
    assert rest(web, "event.get", admin).json["result"] == []


def test_task_list_filters_documented_fields_only_and_changes_since(web, emu, clock):
    token = connect(web)["access_token"]
    first = emu.create_task("demo", {"TITLE": "Old", "RESPONSIBLE_ID": 2, "XML_ID": "key-1"})
    clock.advance(60)
    second = emu.create_task("demo", {"TITLE": "New", "RESPONSIBLE_ID": 3})
    since = rest(web, "tasks.task.list", token, {"filter": {">=CHANGED_DATE": second["changedDate"]},
                                                 "select": ["ID", "XML_ID"]}).json["result"]["tasks"]
    assert [t["id"] for t in since] == [str(second["id"])]
    ignored = rest(web, "tasks.task.list", token, {"filter": {"XML_ID": "key-1"}, "select": ["ID"]}).json
    assert ignored["total"] == 4                                          # XML_ID is not a filter field
    got = rest(web, "tasks.task.get", token, {"taskId": first["id"], "select": ["XML_ID"]}).json["result"]["task"]
    assert got == {"id": str(first["id"]), "xmlId": "key-1"}
    assert rest(web, "crm.lead.fields", token).json["result"]["STATUS_ID"]["type"] == "crm_status"


def test_a_task_that_requires_a_result_completes_only_with_one(web, emu):
    admin = connect(web, user_id=1)["access_token"]
    bob = connect(web, user_id=2)["access_token"]
    tid = rest(web, "tasks.task.add", admin, {"fields": {"TITLE": "Report", "RESPONSIBLE_ID": 2,
                                                        "SE_PARAMETER": [{"VALUE": "Y", "CODE": 3}]}}).json["result"]["task"]["id"]
    info = rest(web, "tasks.task.get", admin, {"taskId": tid, "select": ["ID"], "params": {"WITH_RESULT_INFO": "Y"}})
    assert info.json["result"]["task"]["taskRequireResult"] == "Y" and info.json["result"]["task"]["taskHasResult"] == "N"
    refused = rest(web, "tasks.task.complete", bob, {"taskId": tid})
    assert refused.status_code == 400 and "result" in refused.json["error_description"]
    web.post("/_sandbox/ui/who", data={"actor": "2"})
    assert web.post(f"/_sandbox/ui/tasks/{tid}/result", data={"text": "Sent on Monday"}).status_code == 302
    assert [r["text"] for r in rest(web, "tasks.task.result.list", admin, {"taskId": tid}).json["result"]] == ["Sent on Monday"]
    assert rest(web, "tasks.task.complete", bob, {"taskId": tid}).json["result"]["task"]["status"] == "5"


def test_tasks_are_visible_to_admins_and_members_only(web, emu):
    admin = connect(web, user_id=1)["access_token"]                     # the admin installs the app
    cleo = connect(web, user_id=3)["access_token"]
    mine = emu.create_task("demo", {"TITLE": "Cleo's", "RESPONSIBLE_ID": 3})
    other = emu.create_task("demo", {"TITLE": "Not Cleo's", "RESPONSIBLE_ID": 2})
    listed = rest(web, "tasks.task.list", cleo, {"select": ["ID"]}).json["result"]["tasks"]
    assert [t["id"] for t in listed] == ["1", str(mine["id"])]          # seed task 1 has her as auditor
    assert rest(web, "tasks.task.get", cleo, {"taskId": other["id"]}).json["result"] == []
    assert rest(web, "tasks.task.complete", cleo, {"taskId": other["id"]}).status_code == 400
    emu.update_task("demo", mine["id"], {"RESPONSIBLE_ID": 2})           # handed over: access lost
    assert rest(web, "tasks.task.get", cleo, {"taskId": mine["id"]}).json["result"] == []
    emu.delete_task("demo", other["id"])
    assert rest(web, "tasks.task.get", admin, {"taskId": other["id"]}).json["result"] == []
    assert rest(web, "tasks.task.get", admin, {"taskId": mine["id"]}).json["result"]["task"]["responsibleId"] == "2"


def test_two_portals_have_their_own_ids_tokens_and_consent(clock, recorder):
    two = create_app(state=SandboxState(), faults=Faults(), options={
        "clock": clock, "auto_deliver": False, "session": recorder, "base_url": "http://b24.test",
        "portals": [{"name": "alpha"}, {"name": "beta", "title": "Beta Ltd"}],
        "clients": [{"client_id": CLIENT_ID, "client_secret": SECRET, "redirect_uris": [CALLBACK]}]})
    web2 = two.test_client()
    picker = web2.get(f"/oauth/authorize/?client_id={CLIENT_ID}&state=s&portal=beta")   # the host-less address
    assert picker.status_code == 200 and 'value="beta" selected' in picker.text
    answer = web2.post("/oauth/authorize/", data={"client_id": CLIENT_ID, "portal": "beta", "user_id": "1",
                                                 "decision": "allow", "state": "s"})
    q = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
    members = {p["name"]: p["member_id"] for p in two.extensions["sandbox"].portals()}
    assert q["member_id"] == members["beta"] != members["alpha"]
    token = web2.get("/oauth/token/", query_string={"client_id": CLIENT_ID, "client_secret": SECRET,
                                                    "grant_type": "authorization_code", "code": q["code"]}).json
    assert token["client_endpoint"] == "http://b24.test/portal/beta/rest/"
    assert rest(web2, "profile", token["access_token"], portal="beta").status_code == 200
    assert rest(web2, "profile", token["access_token"], portal="alpha").json["error"] == "NO_AUTH_FOUND"
    denied = web2.post("/oauth/authorize/", data={"client_id": CLIENT_ID, "portal": "beta", "decision": "deny",
                                                 "state": "s"})
    assert parse_qs(urlsplit(denied.headers["Location"]).query)["error"] == ["access_denied"]
