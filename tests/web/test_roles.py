"""Roles and tenant privacy over HTTP against the sandbox: every installation route x every method x
every kind of caller (admin, user, a member without access, another company's user, signed out),
and the ownership rules (a user disconnects only their own connections and cannot raise their own
share). A refused request changes nothing in the database."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from hub.rules import service as rules
from hub.store import Base, Connection, Installation, InstallationUser
from hub.store.models import ContactSync
from hub.sync import service as sync
from hub.web.access import NOT_FOUND
from tests.sync.conftest import connect_google
from tests.web.conftest import ADMIN, BEN, CLEO, DEV, install

ANNA, BENS = "anna@sandbox.example", "ben@sandbox.example"
JSON = {"Accept": "application/json"}
UNKNOWN = 987654321

# The product's decision, written down: what a user (not an admin) may do. Reading is open to every
# member except the access page; of the state-changing routes only these are. Everything else that
# changes state is for admins. A new route that users may call must be added here on purpose.
USER_WRITES = {
    ("pages.connect", "POST"),             # connect an account of their own
    ("pages.disconnect", "POST"),          # ... and disconnect it (ownership checked)
    ("api.disconnect", "POST"),
    ("sync.share_change", "POST"),         # lower or stop their own share (ownership checked)
    ("sync.api_share_change", "PATCH"),
    ("sync.api_share_remove", "DELETE"),
    ("task_templates.apply_page", "POST"),            # apply templates to a record by hand
    ("task_templates.api_apply", "POST"),
    ("task_templates.calendar_edit", "POST"),         # a colleague's task the sharing mode lets them edit
    ("task_templates.api_calendar_complete", "POST"),
    ("task_templates.api_calendar_move", "PATCH"),
    ("task_templates.suggestion_decide", "POST"),     # their own next-task suggestions
    ("task_templates.api_suggestion_accept", "POST"),
    ("task_templates.api_suggestion_dismiss", "POST"),
}
ADMIN_READS = {("pages.visibility", "GET"), ("automation.page", "GET"), ("task_templates.settings_page", "GET"),
               ("task_templates.set_page", "GET")}    # forms only an admin can use


class Team:
    """Ada installed (admin); Ben and Dev are users; Cleo signed in while everyone could and was
    then left out; another company has an installation of its own."""

    def __init__(self, hub):
        self.hub = hub
        self.admin, self.iid = install(hub, visibility_in_crm="all", hub_visibility="all")
        self.ben, self.dev, self.cleo = (self.sign_in(u) for u in (BEN, DEV, CLEO))
        dana = next(u["gid"] for u in hub.emulator("asana").users() if u["email"].startswith("dana"))
        assert self.admin.authorize_target(self.iid, "asana", {"decision": "allow", "user": dana}).status_code == 200
        connect_google(hub, self.admin, self.iid, ANNA)
        connect_google(hub, self.ben, self.iid, BENS)
        with hub.services.db.begin() as s:
            conns = {(c.provider, c.account_email): c.id for c in s.scalars(select(Connection).where(
                Connection.installation_id == self.iid, Connection.role == "target"))}
        self.asana_id = next(v for (p, _), v in conns.items() if p == "asana")
        self.anna_id, self.bens_id = conns[("google", ANNA)], conns[("google", BENS)]
        self.rule_id = rules.create(hub.services, self.iid, {"preset": "won_handoff"}, str(ADMIN))["id"]
        self.sync_id = sync.create(hub.services, self.iid, "test", {
            "name": "Team contacts", "store_connection_id": self.anna_id, "group": "__new__",
            "new_group_name": "Acme CRM", "schedule_seconds": 0}).id
        self.share_id = sync.create_share(hub.services, self.iid, self.sync_id, "test",
                                          {"connection_id": self.bens_id, "mode": "read"}).id
        changed = self.api(self.admin, "PUT", "visibility", json={"visibility": "specific",
                                                                  "users": [str(BEN), str(DEV), str(CLEO)]})
        assert changed.status_code == 200, changed.text
        # Cleo is taken off the list behind the hub's back: a change through the hub would also end her
        # session (tests/web/test_sessions.py), and the access check must refuse her on its own.
        with hub.services.db.begin() as s:
            s.scalar(select(InstallationUser).where(InstallationUser.installation_id == self.iid,
                                                    InstallationUser.crm_user_id == str(CLEO))).allowed = False
        with hub.services.db.begin() as s:
            other = Installation(provider="pipedrive", company_id="555000", company_name="Other Company Ltd",
                                 installer_user_id="555001", installer_name="Olga Other",
                                 installer_email="olga@other.example", visibility="all", endpoint_token="other-token",
                                 status="active")
            s.add(other)
            s.flush()
            self.other_iid = other.id

    def sign_in(self, user_id):
        browser = self.hub.browser()
        landed = browser.authorize_pipedrive("/login/pipedrive", user_id=user_id)
        assert landed.status_code == 200, landed.text[:300]
        return browser

    def api(self, browser, method, suffix, iid=None, **kw):
        token = browser.csrf(f"/i/{self.iid}/settings")
        return browser.request(method, f"/api/v1/installations/{iid or self.iid}/{suffix}",
                               headers={"X-CSRF-Token": token, **JSON}, **kw)

    def ids(self, installation_id: int) -> dict:
        return {"installation_id": installation_id, "provider": "asana", "connection_id": self.asana_id,
                "rule_id": self.rule_id, "sync_id": self.sync_id, "share_id": self.share_id,
                "crm_user_id": str(DEV), "run_id": 1, "event_id": 1, "inbox_id": 1, "job_id": 1,
                "object_type": "deal", "object_id": "1"}

    def share(self) -> ContactSync:
        with self.hub.services.db.begin() as s:
            row = s.get(ContactSync, self.share_id)
            s.expunge(row)
            return row


@pytest.fixture
def team(live_hub) -> Team:
    return Team(live_hub)


def snapshot(hub) -> dict[str, list[str]]:
    """Every row of every table: a refused request must leave all of it as it was."""
    with hub.services.db.begin() as s:
        return {t.name: sorted(repr(tuple(r)) for r in s.execute(select(t)).all()) for t in Base.metadata.sorted_tables}


def scoped_routes(hub) -> list[tuple[str, str, object]]:
    out = []
    for rule in hub.app.url_map.iter_rules():
        if "installation_id" in rule.arguments:
            out += [(rule.endpoint, method, rule) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return sorted(out, key=lambda x: (x[1] != "GET", x[0] == "api.uninstall", x[0], x[1]))


def path_of(rule, ids: dict) -> str:
    path = rule.rule
    for name in rule.arguments:
        value = str(ids.get(name, 1))   # an object this test made, or 1 (the check comes first either way)
        path = re.sub(rf"<(?:[a-z]+:)?{name}>", value, path)
    return path


def call(browser, method, path, token):
    return browser.request(method, path, allow_redirects=False, json={},
                           headers={**JSON, **({"X-CSRF-Token": token} if token else {})})


def test_every_route_for_every_role(team):
    hub = team.hub
    routes = scoped_routes(hub)
    assert len(routes) >= 70, len(routes)
    tokens = {name: b.csrf(f"/i/{team.iid}/settings") for name, b in
              (("admin", team.admin), ("dev", team.dev), ("cleo", team.cleo))}
    before = snapshot(hub)
    signed_out = hub.browser()
    for endpoint, method, rule in routes:
        where = (endpoint, method)
        path = path_of(rule, team.ids(team.iid))

        # a user: admin routes refused for the role; member routes never refused for it
        got = call(team.dev, method, path, tokens["dev"])
        assert got.status_code < 500, (where, got.status_code, got.text[:300])
        admin_only = (where in ADMIN_READS) if method == "GET" else (where not in USER_WRITES)
        if admin_only:
            assert got.status_code == 403 and got.json().get("required_role") == "admin", (where, got.text[:300])
            assert "Ada Admin" in got.json()["grant_access"]
        else:
            assert got.status_code != 401 and NOT_FOUND not in got.text, (where, got.text[:300])
            assert got.status_code != 403 or got.json().get("required_role") is None, (where, got.text[:300])

        # a member the visibility leaves out: refused, told whom to ask
        got = call(team.cleo, method, path, tokens["cleo"])
        assert got.status_code == 403 and "Ada Admin" in got.json()["grant_access"], (where, got.text[:300])

        # another company's installation and one that does not exist: the same answer, naming nobody
        other = call(team.admin, method, path_of(rule, team.ids(team.other_iid)), tokens["admin"])
        unknown = call(team.admin, method, path_of(rule, team.ids(UNKNOWN)), tokens["admin"])
        assert other.status_code == unknown.status_code == 404, (where, other.text[:200], unknown.text[:200])
        assert other.json() == unknown.json() and "grant_access" not in other.json()
        assert "Olga" not in other.text and "Other Company" not in other.text

        # signed out: one answer for ours, theirs and none, naming nobody
        answers = [call(signed_out, method, path_of(rule, team.ids(i)), None)
                   for i in (team.iid, team.other_iid, UNKNOWN)]
        assert {a.status_code for a in answers} == {401}, (where, [a.status_code for a in answers])
        assert answers[0].json() == answers[1].json() == answers[2].json()
        assert "Ada" not in answers[0].text and "grant_access" not in answers[0].json()
    assert snapshot(hub) == before          # nothing a refused (or merely reading) request did stuck

    # the admin is refused nothing (the API's uninstall comes last: scoped_routes sorts it there)
    for endpoint, method, rule in routes:
        got = call(team.admin, method, path_of(rule, team.ids(team.iid)), tokens["admin"])
        assert got.status_code < 500, ((endpoint, method), got.status_code, got.text[:300])
        assert got.status_code not in (401, 403), ((endpoint, method), got.text[:300])
        assert NOT_FOUND not in got.text, ((endpoint, method), got.text[:300])


def test_signed_out_pages_redirect_to_sign_in_alike(team):
    browser = team.hub.browser()
    for iid in (team.iid, team.other_iid, UNKNOWN):
        page = browser.get(f"/i/{iid}/settings", allow_redirects=False)
        target = f"/login/pipedrive?next=/i/{iid}/settings"
        if page.status_code == 302:     # one CRM to sign in with: straight to it
            assert page.headers["Location"] == target
        else:                           # several: the choices, each coming back here
            assert page.status_code == 401 and f'href="{target}"' in page.text
    refused = browser.post(f"/i/{team.iid}/uninstall", data={"confirm": "uninstall"}, allow_redirects=False)
    assert refused.status_code == 401 and "Ada" not in refused.text
    with team.hub.services.db.begin() as s:
        assert s.get(Installation, team.iid).status == "active"


def test_every_state_changing_route_declares_who_may_call_it(live_hub):
    from hub.web.access import required_level
    undeclared = []
    for rule in live_hub.app.url_map.iter_rules():
        view = live_hub.app.view_functions[rule.endpoint]
        for method in rule.methods - {"GET", "HEAD", "OPTIONS"}:
            if required_level(view, method, "installation_id" in rule.arguments) is None:
                undeclared.append((rule.endpoint, method))
    assert undeclared == []


def test_an_undeclared_state_changing_route_is_refused(make_live_hub):
    from hub.web.access import member
    hub = make_live_hub()
    calls = []

    @hub.app.post("/i/<int:installation_id>/forgotten")
    def forgotten(installation_id: int):
        calls.append(installation_id)
        return "done"

    @hub.app.post("/i/<int:installation_id>/declared")
    @member
    def declared(installation_id: int):
        calls.append(installation_id)
        return "done"

    admin, iid = install(hub)
    token = admin.csrf(f"/i/{iid}/settings")
    refused = admin.post(f"/i/{iid}/forgotten", headers={"X-CSRF-Token": token, **JSON})
    assert refused.status_code == 403 and "declares no access" in refused.json()["message"]
    assert admin.post(f"/i/{iid}/declared", headers={"X-CSRF-Token": token}).text == "done"
    assert calls == [iid]


def test_users_cannot_change_access_roles_rules_or_uninstall(team):
    dev = team.dev
    assert team.api(dev, "PUT", "visibility", json={"visibility": "all"}).status_code == 403
    assert team.api(dev, "PUT", f"members/{DEV}/role", json={"role": "admin"}).status_code == 403
    assert team.api(dev, "POST", "uninstall").status_code == 403
    assert team.api(dev, "POST", "rules", json={"preset": "won_handoff"}).status_code == 403
    assert team.api(dev, "POST", f"rules/{team.rule_id}/activate").status_code == 403
    page = dev.form_post(f"/i/{team.iid}/roles", {f"role_{DEV}": "admin"}, csrf_from=f"/i/{team.iid}/settings")
    assert page.status_code == 403 and "Ada Admin" in page.text
    with team.hub.services.db.begin() as s:
        installation = s.get(Installation, team.iid)
        assert (installation.visibility, installation.status) == ("specific", "active")
        assert s.scalar(select(InstallationUser.role).where(InstallationUser.crm_user_id == str(DEV))) == "user"
    assert [r["id"] for r in team.api(dev, "GET", "rules").json()["rules"]] == [team.rule_id]   # reading is fine
    settings = dev.get(f"/i/{team.iid}/settings").text
    assert "Uninstall Relay Hub" not in settings and "Only an admin can change this." in settings


def test_admins_name_admins_and_the_installer_stays_one(team):
    named = team.api(team.admin, "PUT", f"members/{CLEO}/role", json={"role": "admin"})
    assert named.status_code == 200 and named.json()["role"] == "admin", named.text
    # Cleo is not on the 'specific users' list, but an admin is always let in; now she changes access
    assert team.api(team.cleo, "GET", "connections").status_code == 200
    assert team.api(team.cleo, "PUT", f"members/{DEV}/role", json={"role": "admin"}).status_code == 200
    demote_installer = team.api(team.cleo, "PUT", f"members/{ADMIN}/role", json={"role": "user"})
    assert demote_installer.status_code == 400 and "stays an admin" in demote_installer.json()["message"]
    assert team.api(team.cleo, "PUT", f"members/{ADMIN}/role", json={"role": "boss"}).status_code == 400
    assert team.api(team.cleo, "PUT", "members/31337/role", json={"role": "admin"}).status_code == 400
    people = {m["crm_user_id"]: m for m in team.api(team.ben, "GET", "members").json()["members"]}
    assert people[str(ADMIN)]["role"] == "admin" and people[str(ADMIN)]["installer"]
    assert (people[str(CLEO)]["role"], people[str(DEV)]["role"], people[str(BEN)]["role"]) == ("admin", "admin", "user")
    # the page: Ada demotes Cleo with the roles form; Cleo is out again (visibility leaves her out)
    page = team.admin.get(f"/i/{team.iid}/visibility")
    assert f'name="role_{CLEO}"' in page.text and f'name="role_{ADMIN}"' not in page.text
    bad = team.admin.form_post(f"/i/{team.iid}/roles", {f"role_{ADMIN}": "user", f"role_{CLEO}": "user"},
                               csrf_from=f"/i/{team.iid}/visibility")
    assert bad.status_code == 400 and "stays an admin" in bad.text
    assert f'name="users" value="{BEN}" checked' in " ".join(bad.text.split())   # the access form keeps its state
    assert team.api(team.cleo, "GET", "connections").status_code == 200  # nothing was half-saved
    saved = team.admin.form_post(f"/i/{team.iid}/roles", {f"role_{CLEO}": "user"}, csrf_from=f"/i/{team.iid}/visibility")
    assert saved.status_code == 200 and "Roles saved." in saved.text
    # out of the installation now, so her session ended in every process: the signed-out answer
    assert team.cleo.get(f"/api/v1/installations/{team.iid}/connections", headers=JSON).status_code == 401


def test_a_user_disconnects_only_their_own_connections(team):
    refused = team.api(team.ben, "POST", f"connections/{team.anna_id}/disconnect")
    assert refused.status_code == 403 and "only an admin" in refused.json()["message"]
    page = team.ben.form_post(f"/i/{team.iid}/connections/{team.asana_id}/disconnect",
                              csrf_from=f"/i/{team.iid}/settings")
    assert page.status_code == 403
    with team.hub.services.db.begin() as s:
        assert {s.get(Connection, i).status for i in (team.anna_id, team.asana_id)} == {"connected"}
    settings = team.ben.get(f"/i/{team.iid}/settings").text
    assert settings.count(">Disconnect</button>") == 1       # only his own offers the button
    assert team.api(team.ben, "POST", f"connections/{team.bens_id}/disconnect").status_code == 200
    with team.hub.services.db.begin() as s:
        assert s.get(Connection, team.bens_id).status == "disconnected"
    # an admin disconnects anyone's
    assert team.api(team.admin, "POST", f"connections/{team.asana_id}/disconnect").status_code == 200


def test_a_user_cannot_take_over_a_colleagues_connection(team):
    with team.hub.services.db.begin() as s:
        before = s.get(Connection, team.anna_id)
        owner, by = before.owner_user_id, before.connected_by
    assert owner == str(ADMIN)
    anna = next(a["id"] for a in team.hub.emulator("google").accounts() if a["email"] == ANNA)
    from hub.connectors.google.manifest import CONTACTS_SCOPE
    landed = team.ben.authorize_target(team.iid, "google", {"decision": "allow", "account": anna,
                                                             "granted_scope": CONTACTS_SCOPE})
    assert landed.status_code == 403 and "only an admin can reconnect it" in landed.text
    with team.hub.services.db.begin() as s:
        after = s.get(Connection, team.anna_id)
        assert (after.owner_user_id, after.connected_by, after.status) == (owner, by, "connected")
    # an admin reconnecting a colleague's account leaves it theirs
    connect_google(team.hub, team.admin, team.iid, BENS)
    with team.hub.services.db.begin() as s:
        assert s.get(Connection, team.bens_id).owner_user_id == str(BEN)


def test_a_user_cannot_raise_their_own_share_but_may_lower_or_stop_it(team):
    share = f"sync/{team.sync_id}/shares/{team.share_id}"
    raised = team.api(team.ben, "PATCH", share, json={"mode": "edit"})
    assert raised.status_code == 403 and raised.json()["fields"] == {"mode": "only an admin can make a share can-edit"}
    page = team.ben.form_post(f"/i/{team.iid}/{share}", {"mode": "edit"}, csrf_from=f"/i/{team.iid}/settings")
    assert page.status_code == 403
    assert (team.share().share_mode, team.share().direction) == ("read", "crm_to_store")
    # someone else's share: neither changed nor stopped by a user
    assert team.api(team.dev, "PATCH", share, json={"mode": "read"}).status_code == 403
    assert team.api(team.dev, "DELETE", share).status_code == 403
    # the admin raises it; Ben lowers it again himself, then stops it
    assert team.api(team.admin, "PATCH", share, json={"mode": "edit"}).status_code == 200
    lowered = team.api(team.ben, "PATCH", share, json={"mode": "read"})
    assert lowered.status_code == 200 and lowered.json()["mode"] == "read"
    assert team.api(team.ben, "DELETE", share).status_code == 204
    with team.hub.services.db.begin() as s:
        assert s.get(ContactSync, team.share_id) is None


def test_pages_offer_users_only_what_they_may_do(team):
    iid = team.iid
    rules_page = team.dev.get(f"/i/{iid}/rules").text
    assert "Use this" not in rules_page and ">Activate<" not in rules_page
    assert "Only an admin can create or change rules." in rules_page
    assert "Use this" in team.admin.get(f"/i/{iid}/rules").text
    editor = team.dev.get(f"/i/{iid}/rules/{team.rule_id}").text
    assert "Save and activate" not in editor and "Only an admin can change rules." in editor
    sync_page = team.dev.get(f"/i/{iid}/sync/{team.sync_id}").text
    assert "Sync now" not in sync_page and "Stop sharing" not in sync_page
    assert "Only an admin can change a sync." in sync_page
    bens = team.ben.get(f"/i/{iid}/sync/{team.sync_id}").text
    assert bens.count("Stop sharing") == 1 and "Share the label" not in bens
    admins = team.admin.get(f"/i/{iid}/sync/{team.sync_id}").text
    assert "Sync now" in admins and "Stop sharing" in admins
