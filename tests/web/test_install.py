"""Marketplace install end to end, over HTTP against the sandbox: visibility, e-mail, refusals,
reinstall, target connections, uninstall, and every bad-input path of the OAuth round trips."""
from __future__ import annotations

import base64

import requests
from sqlalchemy import func, select

from hub.store import AuditEvent, Connection, Installation, Secret
from tests.web.conftest import ADMIN, BEN, CLEO, install


def count(hub, model, *where) -> int:
    with hub.services.db.begin() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def installation(hub, installation_id) -> Installation:
    with hub.services.db.begin() as s:
        return s.get(Installation, installation_id)


def sign_in(hub, user_id):
    browser = hub.browser()
    return browser, browser.authorize_pipedrive("/login/pipedrive", user_id=user_id)


def dana(hub) -> str:
    return next(u["gid"] for u in hub.emulator("asana").users() if u["email"].startswith("dana"))


def test_install_only_me_then_connect_asana_and_see_settings(live_hub):
    admin, iid = install(live_hub, hub_visibility="only_me")
    inst = installation(live_hub, iid)
    assert (inst.company_name, inst.installer_name, inst.visibility, inst.status) == \
        ("Acme Sandbox", "Ada Admin", "only_me", "active")
    landed = admin.authorize_target(iid, "asana", {"decision": "allow", "user": dana(live_hub)})
    assert landed.status_code == 200 and "Asana connected." in landed.text
    assert "Dana Whitfield" in landed.text and "Connected" in landed.text
    with live_hub.services.db.begin() as s:
        conns = {c.provider: c for c in s.scalars(select(Connection).where(Connection.installation_id == iid))}
        assert set(conns) == {"pipedrive", "asana"}
        assert conns["asana"].account_email == "dana.whitfield@acme.example"
        # tokens only encrypted in the secrets table
        access = live_hub.services.secrets.get(s, f"connection:{conns['asana'].id}:access_token")
        raw = s.scalar(select(Secret.ciphertext).where(Secret.ref == f"connection:{conns['asana'].id}:access_token"))
        assert access and access.encode() not in raw
    # the token works at the provider: the sandbox knows it
    assert live_hub.emulator("asana").tokens.validate(access) is not None
    # Ben is not in the CRM install's visibility: the provider itself refuses him
    refused = sign_in(live_hub, BEN)[1]
    assert refused.status_code == 403 and "has not been shared with you" in refused.text


def test_all_users_can_sign_in(live_hub):
    install(live_hub, visibility_in_crm="all", hub_visibility="all")
    ben, page = sign_in(live_hub, BEN)
    assert page.status_code == 200 and "Settings for Acme Sandbox" in page.text
    assert "Only an admin can change this." in page.text
    assert ben.get("/api/v1/me").json()["crm_user_id"] == str(BEN)


def test_specific_users_are_emailed_and_only_they_get_in(live_hub, smtp):
    admin, iid = install(live_hub, visibility_in_crm="all", hub_visibility="specific", hub_users=[BEN], notify=True)
    assert live_hub.run_jobs() >= 1
    [(rcpts, message)] = smtp.wait_for(1)
    assert rcpts == ["ben.seller@acme-sandbox.example"]
    assert message["Subject"] == "You can now use Relay Hub at Acme Sandbox"
    assert f"{live_hub.url}/login/pipedrive" in message.get_payload()
    _, ok = sign_in(live_hub, BEN)
    assert ok.status_code == 200 and "Settings for Acme Sandbox" in ok.text
    _, refused = sign_in(live_hub, CLEO)
    assert refused.status_code == 403
    assert "not shared with you" in refused.text and "Ada Admin &lt;ada.admin@acme-sandbox.example&gt;" in refused.text
    assert count(live_hub, Connection, Connection.account_id == str(CLEO)) == 0  # an outsider's tokens are not kept


def _sweep(hub, iid, browser, token):
    """Every installation route, every method, as `browser` (JSON, with the CSRF token it had): the answers."""
    routes = [r for r in hub.app.url_map.iter_rules() if "installation_id" in r.arguments]
    assert len(routes) >= 12
    answers = []
    for rule in routes:
        path = rule.rule
        for name in rule.arguments:
            value = iid if name == "installation_id" else "asana" if name == "provider" else 1
            path = path.replace(f"<int:{name}>", str(value)).replace(f"<{name}>", str(value))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = browser.request(method, path, allow_redirects=False, json={},
                                        headers={"Accept": "application/json", "X-CSRF-Token": token})
            answers.append((method, path, response))
    assert len(answers) >= 14
    return answers


def test_user_outside_visibility_is_refused_on_every_route(live_hub):
    admin, iid = install(live_hub, visibility_in_crm="all", hub_visibility="all")
    cleo, page = sign_in(live_hub, CLEO)
    assert page.status_code == 200
    ben, _ = sign_in(live_hub, BEN)
    token = admin.csrf(f"/i/{iid}/settings")
    cleo_token = cleo.csrf(f"/i/{iid}/settings")  # her own session's token
    changed = admin.put(f"/api/v1/installations/{iid}/visibility", json={"visibility": "specific", "users": [str(BEN)]},
                        headers={"X-CSRF-Token": token})
    assert changed.status_code == 200, changed.text
    # Cleo's session ended with her access: her old cookie is signed out on every route, reads and writes
    for method, path, response in _sweep(live_hub, iid, cleo, cleo_token):
        assert response.status_code == 401, (method, path, response.status_code, response.text[:200])
    # Ben, who is allowed, reads the same pages
    assert ben.get(f"/i/{iid}/settings").status_code == 200
    assert ben.get(f"/api/v1/installations/{iid}/connections").status_code == 200
    # and only the installer may change access
    assert ben.get(f"/i/{iid}/visibility").status_code == 403
    # should a change of access ever leave a session alive, the access check still refuses on every route
    ben_token = ben.csrf(f"/i/{iid}/settings")
    with live_hub.services.db.begin() as s:
        s.get(Installation, iid).visibility = "only_me"
    for method, path, response in _sweep(live_hub, iid, ben, ben_token):
        assert response.status_code == 403, (method, path, response.status_code, response.text[:200])
        assert "Ada Admin" in response.text  # who can grant access


def test_reinstall_reuses_the_installation(live_hub):
    _, first = install(live_hub, hub_visibility="all")
    _, again = install(live_hub, hub_visibility="all")
    assert first == again
    assert count(live_hub, Installation) == 1
    assert count(live_hub, Connection, Connection.role == "crm") == 1
    assert count(live_hub, AuditEvent, AuditEvent.action == "installation.reinstalled") == 1


def test_uninstall_revokes_and_deletes_tokens_and_keeps_the_audit(live_hub):
    admin, iid = install(live_hub)
    live_hub.run_jobs()  # registers the hub's webhooks at the CRM
    pipedrive = live_hub.emulator("pipedrive")
    assert len([w for w in pipedrive.webhooks("relay-hub-sandbox") if not w.get("is_deleted")]) == 4
    admin.authorize_target(iid, "asana", {"decision": "allow", "user": dana(live_hub)})
    with live_hub.services.db.begin() as s:
        conns = s.scalars(select(Connection).where(Connection.installation_id == iid)).all()
        tokens = {c.provider: live_hub.services.secrets.get(s, f"connection:{c.id}:access_token") for c in conns}
    done = admin.form_post(f"/i/{iid}/uninstall", {"confirm": "uninstall"}, csrf_from=f"/i/{iid}/settings")
    assert done.status_code == 200 and "uninstalled" in done.text
    assert installation(live_hub, iid).status == "uninstalled"
    assert count(live_hub, Secret, Secret.ref.like("connection:%")) == 0
    assert live_hub.emulator("asana").tokens.validate(tokens["asana"]) is None
    assert live_hub.emulator("pipedrive").tokens.validate(tokens["pipedrive"]) is None
    assert count(live_hub, AuditEvent, AuditEvent.action == "installation.uninstalled") == 1
    assert [w for w in pipedrive.webhooks("relay-hub-sandbox") if not w.get("is_deleted")] == []
    after = admin.get(f"/i/{iid}/settings", allow_redirects=False)   # signed out with the uninstall
    if after.status_code == 302:      # one CRM to sign in with: straight to it
        assert after.headers["Location"].startswith("/login/")
    else:                             # several: the sign-in choices
        assert after.status_code == 401 and "/login/" in after.text


def test_state_missing_forged_or_replayed_is_refused_and_stores_nothing(live_hub):
    browser = live_hub.browser()
    missing = browser.get("/oauth/pipedrive/callback?code=abc")
    forged = browser.get("/oauth/pipedrive/callback?code=abc&state=forged")
    assert missing.status_code == forged.status_code == 400
    assert "expired" in missing.text.lower()
    admin, iid = install(live_hub)
    login = live_hub.browser()
    landed = login.authorize_pipedrive("/login/pipedrive", user_id=ADMIN)
    assert landed.status_code == 200
    callback_url = landed.history[0].url
    assert "/oauth/pipedrive/callback?code=" in callback_url
    replay = login.get(callback_url)  # the same code and state a second time
    assert replay.status_code == 400 and "expired" in replay.text.lower()
    assert count(live_hub, Installation) == 1 and count(live_hub, Connection) == 1


def test_user_denied_and_token_endpoint_failure_leave_nothing(live_hub):
    browser = live_hub.browser()
    denied = browser.authorize_pipedrive("/install/pipedrive", user_id=ADMIN, decision="cancel")
    assert denied.status_code == 400 and "did not grant access" in denied.text
    requests.post(f"{live_hub.url}/sandbox/pipedrive/_sandbox/faults", json={"error_rate": 1.0, "error_status": 503})
    failed = browser.authorize_pipedrive("/install/pipedrive", user_id=ADMIN)
    assert failed.status_code == 502 and "not answering" in failed.text
    requests.post(f"{live_hub.url}/sandbox/pipedrive/_sandbox/faults", json={"error_rate": 0.0})
    assert count(live_hub, Installation) == 0 and count(live_hub, Connection) == 0
    assert count(live_hub, Secret, Secret.ref.like("connection:%")) == 0


def test_uninstall_callback_checks_its_credentials(live_hub):
    _, iid = install(live_hub)
    url = f"{live_hub.url}/oauth/pipedrive/callback"
    body = {"client_id": "relay-hub-sandbox", "company_id": 7004211, "user_id": ADMIN, "timestamp": 1}
    tampered = requests.delete(url, json=body, auth=("relay-hub-sandbox", "wrong-secret"))
    assert tampered.status_code == 401
    assert requests.delete(url, json=body).status_code == 401
    assert installation(live_hub, iid).status == "active"
    malformed = requests.delete(url, data="nope", auth=("relay-hub-sandbox", "sandbox-secret"))
    assert malformed.status_code == 400
    ok = requests.delete(url, json=body, auth=("relay-hub-sandbox", "sandbox-secret"))
    assert ok.status_code == 200 and ok.json()["uninstalled"] == "installation"
    assert installation(live_hub, iid).status == "uninstalled"


def test_uninstall_in_the_crm_reaches_the_hub(live_hub):
    """The sandbox's own uninstall sends Pipedrive's DELETE callback; the hub ends the installation."""
    _, iid = install(live_hub)
    pipedrive = live_hub.emulator("pipedrive")
    pipedrive.installs.uninstall("relay-hub-sandbox", ADMIN)
    pipedrive.flush(10)
    assert installation(live_hub, iid).status == "uninstalled"
    assert count(live_hub, Secret, Secret.ref.like("connection:%")) == 0


def test_sharing_callback_is_a_hint_never_a_permission(live_hub):
    admin, iid = install(live_hub, visibility_in_crm="all", hub_visibility="all")
    url = f"{live_hub.url}/oauth/pipedrive/callback"
    known = requests.post(url, json={"company_id": 7004211, "user_id": ADMIN, "isShared": False})
    unknown = requests.post(url, json={"company_id": 9999999, "user_id": ADMIN, "isShared": False})
    assert known.status_code == unknown.status_code == 200 and known.json() == unknown.json()  # tells nobody who is a customer
    assert installation(live_hub, iid).visibility == "all"  # anyone can send this POST: access is unchanged
    assert "Pipedrive reports the app is private now" in admin.get(f"/i/{iid}/settings").text
    assert requests.post(url, data="x").status_code == 400


def test_ids_beyond_the_database_range_are_not_found(live_hub):
    admin, iid = install(live_hub)
    huge = 2**70
    assert admin.get(f"/i/{huge}/settings", allow_redirects=False).status_code == 404
    assert admin.get(f"/api/v1/installations/{huge}/connections").status_code == 404
