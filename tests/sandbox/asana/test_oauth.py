"""OAuth over real HTTP: authorize screen, code exchange (PKCE), refresh, strict rotation, revoke."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from .conftest import (
    CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, authorize, code_from, exchange, login, pkce_pair,
)


def token_post(base: str, **form) -> requests.Response:
    return requests.post(f"{base}/-/oauth_token", data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                                         **form}, timeout=5)


def refresh(base: str, refresh_token: str) -> requests.Response:
    return token_post(base, grant_type="refresh_token", refresh_token=refresh_token, redirect_uri=REDIRECT_URI)


def assert_oauth_error(resp: requests.Response, status: int, error: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == error and isinstance(body["error_description"], str)


def redirect_query(resp: requests.Response) -> dict:
    assert resp.status_code == 302, resp.text
    loc = resp.headers["Location"]
    assert loc.startswith(REDIRECT_URI)
    return {k: v[0] for k, v in parse_qs(urlsplit(loc).query).items()}


def me(server, access: str) -> requests.Response:
    return requests.get(f"{server.url}/api/1.0/users/me", headers={"Authorization": f"Bearer {access}"}, timeout=5)


@pytest.mark.parametrize("method", ["S256", "plain"])
def test_code_flow_with_pkce(server, users, method):
    verifier, challenge = pkce_pair(method)
    redirect = authorize(server.url, users["luis"], challenge=challenge, method=method, state="xyz",
                         scope="workspaces:read users:read")
    query = redirect_query(redirect)
    assert query["state"] == "xyz" and query["code"]
    resp = exchange(server.url, query["code"], code_verifier=verifier)
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["access_token"] and body["refresh_token"]
    assert body["data"] == {"id": users["luis"], "gid": users["luis"], "name": "Luis Ortega",
                            "email": "luis.ortega@acme.example"}
    assert me(server, body["access_token"]).json()["data"]["gid"] == users["luis"]


def test_pkce_verifier_must_match(server, users):
    _, challenge = pkce_pair()
    code = code_from(authorize(server.url, users["dana"], challenge=challenge))
    assert_oauth_error(exchange(server.url, code, code_verifier="wrong-verifier-" + "x" * 40), 400, "invalid_grant")


def test_code_is_single_use_and_expires(server, users, emu):
    code = code_from(authorize(server.url, users["dana"]))
    assert exchange(server.url, code).status_code == 200
    assert_oauth_error(exchange(server.url, code), 400, "invalid_grant")
    late = code_from(authorize(server.url, users["dana"]))
    with emu.state.change() as data:
        data["oauth_codes"][late]["expires_at"] = 0
    assert_oauth_error(exchange(server.url, late), 400, "invalid_grant")


def test_token_endpoint_errors(server, users):
    code = code_from(authorize(server.url, users["dana"]))
    bad_secret = requests.post(f"{server.url}/-/oauth_token", data={
        "grant_type": "authorization_code", "client_id": CLIENT_ID, "client_secret": "nope",
        "redirect_uri": REDIRECT_URI, "code": code}, timeout=5)
    assert_oauth_error(bad_secret, 401, "invalid_client")
    assert_oauth_error(token_post(server.url, grant_type="password"), 400, "unsupported_grant_type")
    assert_oauth_error(token_post(server.url, grant_type="authorization_code"), 400, "invalid_request")
    assert_oauth_error(exchange(server.url, code, redirect_uri="https://other.example/cb"), 400, "invalid_grant")
    as_json = requests.post(f"{server.url}/-/oauth_token", json={"grant_type": "authorization_code"}, timeout=5)
    assert_oauth_error(as_json, 400, "invalid_request")  # form-encoded only


def test_wrong_client_or_redirect_shows_plain_text_and_never_redirects(server):
    for params in ({"client_id": "unknown", "redirect_uri": REDIRECT_URI},
                   {"client_id": CLIENT_ID, "redirect_uri": "https://evil.example/cb"}):
        resp = requests.get(f"{server.url}/-/oauth_authorize", params={**params, "response_type": "code",
                                                                       "state": "s"},
                            allow_redirects=False, timeout=5)
        assert resp.status_code == 400 and "Location" not in resp.headers
        assert resp.headers["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize("params, error", [
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"scope": "tasks:read bogus:scope"}, "invalid_scope"),
    ({"state": ""}, "invalid_request"),
    ({"code_challenge": "abc", "code_challenge_method": "S512"}, "invalid_request"),
])
def test_other_authorize_errors_go_to_redirect_uri(server, params, error):
    base = {"client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "response_type": "code", "state": "s9"}
    resp = requests.get(f"{server.url}/-/oauth_authorize", params={**base, **params}, allow_redirects=False,
                        timeout=5)
    query = redirect_query(resp)
    assert query["error"] == error
    if params.get("state", "s9"):
        assert query["state"] == "s9"


def test_deny(server, users):
    query = redirect_query(authorize(server.url, users["dana"], decision="deny", state="d1"))
    assert query == {"error": "access_denied", "error_description": "The user denied the request", "state": "d1"}


def test_refresh_keeps_refresh_token_in_normal_mode(server, users):
    token = login(server.url, users["dana"])
    first = refresh(server.url, token["refresh_token"])
    assert first.status_code == 200
    assert "refresh_token" not in first.json()  # Asana does not rotate
    assert first.json()["token_type"] == "bearer" and first.json()["data"]["gid"] == users["dana"]
    again = refresh(server.url, token["refresh_token"])
    assert again.status_code == 200
    assert me(server, again.json()["access_token"]).status_code == 200


def test_strict_refresh_rotates_and_refuses_reuse(server, users, faults):
    faults.update({"strict_refresh": True})
    token = login(server.url, users["dana"])
    rotated = refresh(server.url, token["refresh_token"])
    assert rotated.status_code == 200
    new_refresh = rotated.json()["refresh_token"]
    assert new_refresh != token["refresh_token"]
    assert_oauth_error(refresh(server.url, token["refresh_token"]), 400, "invalid_grant")
    assert refresh(server.url, new_refresh).status_code == 200


def test_revoke_refresh_token_ends_grant(server, users):
    token = login(server.url, users["dana"])
    assert me(server, token["access_token"]).status_code == 200
    access_revoke = requests.post(f"{server.url}/-/oauth_revoke", data={
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "token": token["access_token"]}, timeout=5)
    assert_oauth_error(access_revoke, 400, "invalid_request")  # only refresh tokens
    ok = requests.post(f"{server.url}/-/oauth_revoke", data={
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "token": token["refresh_token"]}, timeout=5)
    assert ok.status_code == 200
    assert me(server, token["access_token"]).status_code == 401
    assert_oauth_error(refresh(server.url, token["refresh_token"]), 400, "invalid_grant")
    unknown = requests.post(f"{server.url}/-/oauth_revoke", data={
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "token": "never-issued"}, timeout=5)
    assert unknown.status_code == 200  # revoked *or not found*
    malformed = requests.post(f"{server.url}/-/oauth_revoke", data={
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}, timeout=5)
    assert_oauth_error(malformed, 400, "invalid_request")


def test_expired_access_token_gets_401_then_refresh_recovers(server, users, emu):
    token = login(server.url, users["dana"])
    with emu.state.change() as data:
        data["oauth_access"][token["access_token"]]["expires_at"] = 0
    resp = me(server, token["access_token"])
    assert resp.status_code == 401 and resp.json()["errors"][0]["message"] == "Not Authorized"
    fresh = refresh(server.url, token["refresh_token"]).json()["access_token"]
    assert me(server, fresh).status_code == 200


def test_expire_now_knob(server, users):
    token = login(server.url, users["dana"])
    assert requests.post(f"{server.url}/_sandbox/tokens/expire", timeout=5).json()["expired"] >= 1
    assert me(server, token["access_token"]).status_code == 401
    counters = requests.get(f"{server.url}/_sandbox/oauth/counters", timeout=5).json()
    assert counters["grants"] >= 1


def test_access_ttl_option(users, faults, plug):
    from hub.sandbox.asana import create_app
    from hub.sandbox.common import SandboxState

    app = create_app(state=SandboxState(), faults=faults, options={"access_ttl": 60})
    srv = plug(app)
    user = app.extensions["sandbox"].users()[0]["gid"]
    resp = requests.post(f"{srv.url}/-/oauth_authorize", data={
        "client_id": "relay-hub-sandbox", "redirect_uri": "https://any.example/cb", "response_type": "code",
        "state": "s", "user": user, "decision": "allow"}, allow_redirects=False, timeout=5)
    code = parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0]
    body = requests.post(f"{srv.url}/-/oauth_token", data={
        "grant_type": "authorization_code", "client_id": "relay-hub-sandbox", "client_secret": "sandbox-secret",
        "redirect_uri": "https://any.example/cb", "code": code}, timeout=5).json()
    assert body["expires_in"] == 60
