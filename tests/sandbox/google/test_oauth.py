"""OAuth 2.0 web-server flow: consent screen, code exchange, refresh (normal and strict), revoke."""
from .conftest import ANNA, BEN, CLIENT_ID, CONTACTS, READONLY, REDIRECT, error_of, reason_of

TOKEN_KEYS = {"access_token", "expires_in", "refresh_token", "scope", "token_type", "id_token"}


def assert_token_body(body: dict, *, refresh: bool, scopes: set[str]) -> None:
    assert set(body) <= TOKEN_KEYS
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599
    assert set(body["scope"].split(" ")) == scopes
    assert ("refresh_token" in body) is refresh


def assert_oauth_error(resp, status: int, error: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error", "error_description"} and body["error"] == error


def test_consent_screen_lists_accounts_and_scopes(google, sandbox):
    page, form = google.consent_page([CONTACTS, "openid", "email"], login_hint=BEN)
    assert page.status_code == 200
    assert "Signed in as" in page.text
    assert {a["id"] for a in sandbox.accounts()} == set(form.accounts)
    assert ANNA in page.text and BEN in page.text
    assert form.scopes == [CONTACTS]  # basic scopes have no checkbox; contacts can be unticked
    assert 'checked' in page.text.split(BEN)[0].rsplit("<label>", 1)[1]  # login_hint preselects Ben


def test_code_exchange_offline_gives_refresh_token(google):
    query = google.authorize(ANNA, [CONTACTS], access_type="offline")
    assert query["state"] == ["st-1"]
    resp = google.exchange(query["code"][0])
    assert resp.status_code == 200
    assert_token_body(resp.json(), refresh=True, scopes={CONTACTS})
    # the token works for the account that consented
    google.token = resp.json()["access_token"]
    me = google.ok("GET", "/v1/people/me", params={"personFields": "emailAddresses"})
    assert me["emailAddresses"][0]["value"] == ANNA


def test_online_access_has_no_refresh_token(google):
    query = google.authorize(ANNA, [CONTACTS])
    body = google.exchange(query["code"][0]).json()
    assert_token_body(body, refresh=False, scopes={CONTACTS})


def test_refresh_token_only_on_first_consent_unless_prompt_consent(google):
    first = google.exchange(google.authorize(ANNA, [CONTACTS], access_type="offline")["code"][0]).json()
    assert "refresh_token" in first
    again = google.exchange(google.authorize(ANNA, [CONTACTS], access_type="offline")["code"][0]).json()
    assert "refresh_token" not in again
    forced = google.exchange(google.authorize(ANNA, [CONTACTS], access_type="offline",
                                              prompt="consent")["code"][0]).json()
    assert "refresh_token" in forced and forced["refresh_token"] != first["refresh_token"]


def test_granular_consent_user_unticks_contacts(google):
    query = google.authorize(ANNA, [CONTACTS, "email"], grant=[])
    body = google.exchange(query["code"][0]).json()
    assert body["scope"] == "email"  # contacts not granted: the hub must notice
    google.token = body["access_token"]
    resp = google.get("/v1/people/me/connections", params={"personFields": "names"})
    assert resp.status_code == 403 and reason_of(resp) == "ACCESS_TOKEN_SCOPE_INSUFFICIENT"


def test_readonly_scope_cannot_write(google):
    google.login(ANNA, [READONLY])
    assert google.get("/v1/people/me/connections", params={"personFields": "names"}).status_code == 200
    resp = google.post("/v1/contactGroups", json={"contactGroup": {"name": "X"}})
    assert resp.status_code == 403 and error_of(resp)["status"] == "PERMISSION_DENIED"


def test_deny_redirects_with_access_denied(google):
    query = google.authorize(ANNA, [CONTACTS], decision="deny")
    assert query == {"error": ["access_denied"], "state": ["st-1"]}


def test_openid_adds_id_token(google):
    body = google.exchange(google.authorize(BEN, [CONTACTS, "openid", "email"])["code"][0]).json()
    assert body["id_token"].count(".") == 2


def test_authorize_errors_are_pages_not_redirects(google):
    page, _ = google.consent_page([CONTACTS], redirect_uri=REDIRECT, client_id="nope")
    assert page.status_code == 401 and "invalid_client" in page.text
    page, _ = google.consent_page(["https://www.googleapis.com/auth/drive"])
    assert page.status_code == 400 and "invalid_scope" in page.text


def test_redirect_uri_must_match_registered(discovery):
    from hub.sandbox.google import create_app
    app = create_app(options={"clients": [{"client_id": "c", "client_secret": "s",
                                           "redirect_uris": ["https://hub.example/cb"]}]})
    client = app.test_client()
    resp = client.get("/o/oauth2/v2/auth", query_string={"client_id": "c", "redirect_uri": "https://evil.example/cb",
                                                          "response_type": "code", "scope": CONTACTS})
    assert resp.status_code == 400 and b"redirect_uri_mismatch" in resp.data


def test_code_reuse_and_expiry_refused(google, clock):
    code = google.authorize(ANNA, [CONTACTS])["code"][0]
    assert google.exchange(code).status_code == 200
    assert_oauth_error(google.exchange(code), 400, "invalid_grant")
    late = google.authorize(ANNA, [CONTACTS])["code"][0]
    clock.advance(301)
    assert_oauth_error(google.exchange(late), 400, "invalid_grant")


def test_token_endpoint_client_and_grant_errors(google):
    code = google.authorize(ANNA, [CONTACTS])["code"][0]
    assert_oauth_error(google.exchange(code, client_secret="wrong"), 401, "invalid_client")
    assert_oauth_error(google.exchange(code, grant_type="password"), 400, "unsupported_grant_type")
    assert_oauth_error(google.exchange(code, redirect_uri="http://other/cb"), 400, "redirect_uri_mismatch")
    assert_oauth_error(google.exchange(""), 400, "invalid_request")


def test_access_token_expiry_and_refresh(google, clock):
    tokens = google.login(ANNA)
    params = {"personFields": "names"}
    assert google.get("/v1/people/me/connections", params=params).status_code == 200
    clock.advance(3600)
    resp = google.get("/v1/people/me/connections", params=params)
    assert resp.status_code == 401 and error_of(resp)["status"] == "UNAUTHENTICATED"
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    refreshed = google.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200
    assert_token_body(refreshed.json(), refresh=False, scopes={CONTACTS})
    google.token = refreshed.json()["access_token"]
    assert google.get("/v1/people/me/connections", params=params).status_code == 200
    # without strict mode the same refresh token keeps working
    assert google.refresh(tokens["refresh_token"]).status_code == 200


def test_strict_refresh_rotates_and_refuses_reuse(google, faults):
    tokens = google.login(ANNA)
    faults.update({"strict_refresh": True})
    first = google.refresh(tokens["refresh_token"]).json()
    assert first["refresh_token"] != tokens["refresh_token"]
    assert_oauth_error(google.refresh(tokens["refresh_token"]), 400, "invalid_grant")
    assert google.refresh(first["refresh_token"]).status_code == 200


def test_expire_now_knob(google):
    google.login(ANNA)
    assert google.http.post(f"{google.base}/_sandbox/tokens/expire").json()["expired"] >= 1
    resp = google.get("/v1/contactGroups")
    assert resp.status_code == 401 and reason_of(resp) == "ACCESS_TOKEN_EXPIRED"


def test_missing_token_is_401(google):
    resp = google.get("/v1/contactGroups", token=None)
    assert resp.status_code == 401 and reason_of(resp) == "CREDENTIALS_MISSING"


def test_revoke_access_token_revokes_grant(google):
    tokens = google.login(ANNA)
    resp = google.http.post(f"{google.base}/revoke", data={"token": tokens["access_token"]})
    assert resp.status_code == 200
    assert google.get("/v1/contactGroups").status_code == 401
    assert_oauth_error(google.refresh(tokens["refresh_token"]), 400, "invalid_grant")
    assert_oauth_error(google.http.post(f"{google.base}/revoke", data={"token": tokens["access_token"]}),
                       400, "invalid_token")
    # consent is gone: the next offline authorization is a first consent again
    again = google.exchange(google.authorize(ANNA, [CONTACTS], access_type="offline")["code"][0]).json()
    assert "refresh_token" in again


def test_revoke_refresh_token(google):
    tokens = google.login(ANNA)
    assert google.http.post(f"{google.base}/revoke", data={"token": tokens["refresh_token"]}).status_code == 200
    assert google.get("/v1/contactGroups").status_code == 401


def test_prompt_none(google):
    query = google.authorize(ANNA, [CONTACTS])  # consent once
    assert "code" in query
    resp = google.http.get(f"{google.base}/o/oauth2/v2/auth", allow_redirects=False, params={
        "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code", "scope": CONTACTS,
        "prompt": "none", "login_hint": ANNA})
    assert resp.status_code == 302 and "code=" in resp.headers["Location"]
    resp = google.http.get(f"{google.base}/o/oauth2/v2/auth", allow_redirects=False, params={
        "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code", "scope": CONTACTS,
        "prompt": "none", "login_hint": BEN})
    assert "error=interaction_required" in resp.headers["Location"]


def test_tokens_belong_to_their_account(google, sandbox):
    google.login(BEN)
    names = {p["names"][0]["displayName"] for p in google.list_all()[0]}
    assert "Tom Becker" in names and "José Ñúñez-Łęcki" not in names
