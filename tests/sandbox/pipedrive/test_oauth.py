"""OAuth host: authorize screens with app sharing, code/refresh/revoke grants, uninstall callbacks."""
from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from hub.sandbox.common import Faults, SandboxState
from hub.sandbox.pipedrive import create_app
from .conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, authorize, code_from, exchange, live_server


def token_error(resp, error: str):
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["success"] is False and body["error"] == error and body["error_description"]


def test_admin_install_shows_sharing_step_then_consent_and_redirects_with_code(server, emu, api, receiver):
    first = requests.get(f"{server.url}/oauth/authorize",
                         params={"client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "state": "abc"})
    assert first.status_code == 200
    assert "Signed in as" in first.text and "Acme Sandbox" in first.text
    for label in ("All users", "Only me", "Specific users", "Notify users via email"):
        assert label in first.text
    resp = authorize(server, visibility="specific", user_ids=[emu.users()[1]["id"]], notify=True, state="abc")
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert resp.headers["Location"].startswith(REDIRECT_URI + "?")
    assert query["state"] == ["abc"] and "error" not in query
    body = exchange(api, query["code"][0]).json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599
    assert body["scope"] == "base,deals:full,contacts:full,leads:read,users:read,activities:full,admin"
    assert body["api_domain"] == server.url
    install = emu.installs.get(CLIENT_ID)
    assert install["visibility"] == "specific" and install["user_ids"] == [emu.users()[1]["id"]]
    # the notice mail goes to the chosen user only (recorded, never sent)
    assert [m["to_user_id"] for m in emu.data["pd_outbox"]] == [emu.users()[1]["id"]]
    assert emu.flush(5)
    calls = receiver.wait_for(lambda rs: any(r["path"] == "/callback" for r in rs))
    sharing = [r for r in calls if r["path"] == "/callback"][0]
    assert sharing["method"] == "POST"
    assert sharing["json"] == {"company_id": emu.company()["id"], "user_id": emu.admin_id(), "isShared": True}


def test_cancel_redirects_with_user_denied_and_no_code(server):
    resp = authorize(server, decision="cancel", state="xyz")
    assert resp.status_code == 302
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert query == {"error": ["user_denied"], "state": ["xyz"]}


def test_unknown_client_or_redirect_gets_an_error_page_not_a_redirect(server):
    bad_client = requests.get(f"{server.url}/oauth/authorize", params={"client_id": "nope", "redirect_uri": REDIRECT_URI},
                              allow_redirects=False)
    bad_uri = requests.get(f"{server.url}/oauth/authorize",
                           params={"client_id": CLIENT_ID, "redirect_uri": "https://evil.example/cb"}, allow_redirects=False)
    assert bad_client.status_code == 400 and bad_uri.status_code == 400
    assert "Location" not in bad_uri.headers


def test_only_users_the_app_was_shared_with_can_authorize(server, emu, install):
    users = emu.users()
    install(visibility="specific", user_ids=[users[1]["id"]])
    # allowed non-admin: consent only (no sharing step)
    page = requests.get(f"{server.url}/oauth/authorize", params={"client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
                                                                 "user_id": users[1]["id"]})
    assert 'name="step" value="2"' in page.text and "Who can use this app" not in page.text
    ben = install(users[1]["id"])
    assert ben.access_token
    # not shared with this user: a clear page, no code
    refused = authorize(server, user_id=users[2]["id"])
    assert refused.status_code == 403 and "not been shared with you" in refused.text
    assert "Location" not in refused.headers


def test_all_users_visibility_lets_everyone_in(install, emu):
    install(visibility="all", notify=True)
    assert {m["to_user_id"] for m in emu.data["pd_outbox"]} == {u["id"] for u in emu.users()[1:]}
    assert install(emu.users()[3]["id"]).access_token


def test_going_back_to_private_sends_is_shared_false(install, emu, receiver):
    install(visibility="all")
    emu.installs.set_visibility(CLIENT_ID, emu.admin_id(), "me")
    receiver.wait_for(lambda rs: sum(r["path"] == "/callback" for r in rs) == 2)
    last = receiver.at("/callback")[-1]
    assert last["json"] == {"company_id": emu.company()["id"], "user_id": emu.admin_id(), "isShared": False}
    with pytest.raises(Exception):
        emu.installs.set_visibility(CLIENT_ID, emu.users()[1]["id"], "all")   # only the installing admin


def test_code_works_once(server, api):
    code = code_from(authorize(server))
    assert exchange(api, code).status_code == 200
    token_error(exchange(api, code), "invalid_grant")


def test_code_expires_after_five_minutes(receiver):
    now = [1_800_000_000.0]
    app = create_app(state=SandboxState(), faults=Faults(), options={"clock": lambda: now[0]})
    with live_server(app) as srv:
        code = code_from(authorize(srv, redirect_uri="https://any.example/cb"))
        now[0] += 301
        resp = requests.post(f"{srv.url}/oauth/token", auth=("relay-hub-sandbox", "sandbox-secret"),
                             data={"grant_type": "authorization_code", "code": code, "redirect_uri": "https://any.example/cb"})
        token_error(resp, "invalid_grant")


def test_token_endpoint_errors(server, api):
    code = code_from(authorize(server))
    url = f"{server.url}/oauth/token"
    token_error(api.post(url, data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
                         auth=(CLIENT_ID, "wrong")), "invalid_client")
    token_error(requests.post(url, data={"grant_type": "password", "code": code},
                              auth=(CLIENT_ID, CLIENT_SECRET)), "unsupported_grant_type")
    token_error(api.post(url, data={"grant_type": "refresh_token", "refresh_token": "nope"},
                         auth=(CLIENT_ID, CLIENT_SECRET)), "invalid_grant")
    token_error(api.post(url, data={"grant_type": "authorization_code", "code": code,
                                    "redirect_uri": "https://other.example/cb"}, auth=(CLIENT_ID, CLIENT_SECRET)),
                "invalid_grant")


def test_client_credentials_in_body_are_tolerated_and_trailing_slash_works(server):
    code = code_from(authorize(server))
    resp = requests.post(f"{server.url}/oauth/token/", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert resp.status_code == 200 and resp.json()["access_token"]


def test_refresh_keeps_the_refresh_token_by_default(api, admin):
    resp = api.post(f"{api.server.url}/oauth/token", data={"grant_type": "refresh_token",
                                                           "refresh_token": admin.refresh_token},
                    auth=(CLIENT_ID, CLIENT_SECRET))
    body = resp.json()
    assert resp.status_code == 200 and body["refresh_token"] == admin.refresh_token
    assert body["access_token"] != admin.access_token
    assert api.get(f"{api.server.url}/api/v1/users/me",
                   headers={"Authorization": f"Bearer {body['access_token']}"}).status_code == 200
    again = api.post(f"{api.server.url}/oauth/token", data={"grant_type": "refresh_token",
                                                            "refresh_token": admin.refresh_token},
                     auth=(CLIENT_ID, CLIENT_SECRET))
    assert again.status_code == 200


def test_strict_refresh_rotates_and_refuses_reuse(api, admin, faults):
    faults.update({"strict_refresh": True})
    url = f"{api.server.url}/oauth/token"
    first = api.post(url, data={"grant_type": "refresh_token", "refresh_token": admin.refresh_token},
                     auth=(CLIENT_ID, CLIENT_SECRET)).json()
    assert first["refresh_token"] != admin.refresh_token
    token_error(api.post(url, data={"grant_type": "refresh_token", "refresh_token": admin.refresh_token},
                         auth=(CLIENT_ID, CLIENT_SECRET)), "invalid_grant")
    second = api.post(url, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
                      auth=(CLIENT_ID, CLIENT_SECRET))
    assert second.status_code == 200


def test_expire_now_gives_401_until_refresh(api, admin):
    me = f"{api.server.url}/api/v1/users/me"
    assert api.get(me, headers=admin.headers).status_code == 200
    assert requests.post(f"{api.server.url}/_sandbox/tokens/expire").json()["expired"] >= 1
    resp = api.get(me, headers=admin.headers)
    assert resp.status_code == 401
    assert resp.json()["success"] is False and resp.json()["errorCode"] == 401
    fresh = api.post(f"{api.server.url}/oauth/token", data={"grant_type": "refresh_token",
                                                            "refresh_token": admin.refresh_token},
                     auth=(CLIENT_ID, CLIENT_SECRET)).json()
    assert api.get(me, headers={"Authorization": f"Bearer {fresh['access_token']}"}).status_code == 200


def test_access_token_expires_after_access_ttl():
    now = [1_800_000_000.0]
    app = create_app(state=SandboxState(), faults=Faults(), options={"clock": lambda: now[0], "access_ttl": 60})
    with live_server(app) as srv:
        code = code_from(authorize(srv, redirect_uri="https://any.example/cb"))
        body = requests.post(f"{srv.url}/oauth/token", auth=("relay-hub-sandbox", "sandbox-secret"), data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": "https://any.example/cb"}).json()
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        assert requests.get(f"{srv.url}/api/v1/users/me", headers=headers).status_code == 200
        now[0] += 61
        assert requests.get(f"{srv.url}/api/v1/users/me", headers=headers).status_code == 401


def test_revoke_refresh_token_uninstalls(api, admin, emu, receiver):
    url = api.server.url
    hook = api.post(f"{url}/api/v1/webhooks", headers=admin.headers, json={
        "subscription_url": receiver.url + "/hooks", "event_action": "*", "event_object": "deal", "name": "deals"})
    assert hook.status_code == 201
    unknown = requests.post(f"{url}/oauth/revoke", data={"token": "never-issued"}, auth=(CLIENT_ID, CLIENT_SECRET))
    assert unknown.status_code == 200
    resp = requests.post(f"{url}/oauth/revoke", data={"token": admin.refresh_token,
                                                       "token_type_hint": "refresh_token"}, auth=(CLIENT_ID, CLIENT_SECRET))
    assert resp.status_code == 200
    assert api.get(f"{url}/api/v1/users/me", headers=admin.headers).status_code == 401
    assert emu.webhooks(CLIENT_ID) == []
    calls = receiver.wait_for(lambda rs: any(r["method"] == "DELETE" for r in rs))
    delete = [r for r in calls if r["method"] == "DELETE"][0]
    assert delete["path"] == "/callback"
    assert delete["authorization"] == "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert set(delete["json"]) == {"client_id", "company_id", "user_id", "timestamp"}
    assert delete["json"]["client_id"] == CLIENT_ID and delete["json"]["user_id"] == emu.admin_id()
    assert emu.installs.get(CLIENT_ID) is None
    token_error(api.post(f"{url}/oauth/token", data={"grant_type": "refresh_token", "refresh_token": admin.refresh_token},
                         auth=(CLIENT_ID, CLIENT_SECRET)), "invalid_grant")


def test_revoke_access_token_kills_only_that_token(api, admin):
    url = api.server.url
    assert requests.post(f"{url}/oauth/revoke", data={"token": admin.access_token},
                         auth=(CLIENT_ID, CLIENT_SECRET)).status_code == 200
    assert api.get(f"{url}/api/v1/users/me", headers=admin.headers).status_code == 401
    refreshed = api.post(f"{url}/oauth/token", data={"grant_type": "refresh_token", "refresh_token": admin.refresh_token},
                         auth=(CLIENT_ID, CLIENT_SECRET))
    assert refreshed.status_code == 200


def test_revoke_needs_client_auth(server, admin):
    resp = requests.post(f"{server.url}/oauth/revoke", data={"token": admin.refresh_token}, auth=(CLIENT_ID, "bad"))
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"


def test_ui_uninstall_button_does_the_same(server, admin, emu, receiver, api):
    resp = requests.post(f"{server.url}/_sandbox/ui/installs/{CLIENT_ID}/uninstall/{emu.admin_id()}",
                         allow_redirects=False)
    assert resp.status_code == 302
    assert api.get(f"{server.url}/api/v1/users/me", headers=admin.headers).status_code == 401
    receiver.wait_for(lambda rs: any(r["method"] == "DELETE" for r in rs))
