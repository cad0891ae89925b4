"""Sign-in sessions end for real: sign-out, removal from an installation and uninstall revoke them in
the database, so a copy of the cookie is signed out in every web process; cookie flags and headers."""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from hub import create_app
from hub.oauth.web_sessions import is_alive, open_session
from hub.store import Database, FakeClock, Installation, WebSession, migrate
from tests.conftest import hub_config
from tests.web.conftest import ADMIN, BEN, install
from tests.web.test_install import sign_in


def replay(hub, browser):
    """A second browser holding a copy of `browser`'s cookie (a stolen or kept copy)."""
    copy = hub.browser()
    copy.cookies.update(browser.cookies)
    return copy


def test_sign_out_ends_every_copy_of_the_cookie_in_every_process(db_url, make_live_hub, tmp_path):
    hub = make_live_hub(db_url=db_url)
    admin, iid = install(hub, hub_visibility="all")
    kept = replay(hub, admin)
    token = admin.csrf(f"/i/{iid}/settings")
    # another web process on the same database (scale-out: they share nothing else)
    other = create_app(hub_config(db_url, tmp_path / "other", base_url=hub.url))
    try:
        client = other.test_client()
        client.set_cookie("session", admin.cookies["session"])
        assert client.get("/api/v1/me").status_code == 200
        assert kept.get("/api/v1/me").status_code == 200

        out = admin.form_post("/logout", csrf_from=f"/i/{iid}/settings", allow_redirects=False)
        assert out.status_code == 302

        assert kept.get("/api/v1/me").status_code == 401
        page = kept.get(f"/i/{iid}/settings", allow_redirects=False)
        assert (page.status_code == 302 and page.headers["Location"].startswith("/login/pipedrive")
                or page.status_code == 401 and 'href="/login/pipedrive?next=' in page.text)   # one CRM, or several
        write = kept.put(f"/api/v1/installations/{iid}/visibility", headers={"X-CSRF-Token": token},
                         json={"visibility": "only_me", "users": []})
        assert write.status_code == 401 and write.json()["error"] == "unauthorized"
        assert client.get("/api/v1/me").status_code == 401
        assert client.put(f"/api/v1/installations/{iid}/visibility", headers={"X-CSRF-Token": token},
                          json={"visibility": "only_me", "users": []}).status_code == 401
        with hub.services.db.begin() as s:
            assert s.get(Installation, iid).visibility == "all"
            assert s.query(WebSession).count() == 0
    finally:
        other.extensions["hub"].db.dispose()


def test_uninstall_and_the_users_own_uninstall_end_their_sessions(live_hub):
    admin, iid = install(live_hub, visibility_in_crm="all", hub_visibility="all")
    ben, page = sign_in(live_hub, BEN)
    assert page.status_code == 200
    kept = replay(live_hub, ben)
    admin.form_post(f"/i/{iid}/uninstall", {"confirm": "uninstall"}, csrf_from=f"/i/{iid}/settings")
    admin, again = install(live_hub, visibility_in_crm="all", hub_visibility="all")
    assert again == iid  # the same installation is active again, with the same visibility
    assert kept.get("/api/v1/me").status_code == 401  # and yet the old cookie does not come back to life

    ben, page = sign_in(live_hub, BEN)
    assert ben.get("/api/v1/me").status_code == 200
    # Ben removes the app for himself in Pipedrive: its uninstall callback ends his hub session too
    gone = requests.delete(f"{live_hub.url}/oauth/pipedrive/callback", auth=("relay-hub-sandbox", "sandbox-secret"),
                           json={"client_id": "relay-hub-sandbox", "company_id": 7004211, "user_id": BEN})
    assert gone.status_code == 200 and gone.json()["uninstalled"] == "user"
    assert ben.get("/api/v1/me").status_code == 401
    assert admin.get("/api/v1/me").json()["crm_user_id"] == str(ADMIN)


def test_signing_in_again_ends_the_session_the_browser_had(live_hub):
    admin, iid = install(live_hub)
    kept = replay(live_hub, admin)
    again = admin.authorize_pipedrive("/login/pipedrive", user_id=ADMIN)
    assert again.status_code == 200
    assert admin.get("/api/v1/me").status_code == 200
    assert kept.get("/api/v1/me").status_code == 401


def test_a_session_ends_when_it_expires(db_url):
    db = Database(db_url)
    migrate.upgrade(db.engine)
    clock = FakeClock()
    try:
        with db.begin() as s:
            sid = open_session(s, 1, "7", clock.now(), timedelta(days=7))
        with db.begin() as s:
            assert is_alive(s, sid, 1, "7", clock.now())
            assert not is_alive(s, sid, 2, "7", clock.now()) and not is_alive(s, sid, 1, "8", clock.now())
            assert not is_alive(s, sid + "x", 1, "7", clock.now()) and not is_alive(s, None, 1, "7", clock.now())
            assert s.get(WebSession, sid) is None  # only its digest is stored
        clock.advance(7 * 86400)
        with db.begin() as s:
            assert not is_alive(s, sid, 1, "7", clock.now())
            open_session(s, 1, "8", clock.now(), timedelta(days=7))  # a later sign-in sweeps expired rows
        with db.begin() as s:
            assert [r.crm_user_id for r in s.query(WebSession)] == ["8"]
    finally:
        db.dispose()


@pytest.mark.parametrize("base_url, secure", [("https://hub.example.com", True), ("http://127.0.0.1:8000", False)])
def test_session_cookie_flags(make_hub, base_url, secure):
    app = make_hub(base_url=base_url, sandbox=True, **{"sandbox.persist": False})
    started = app.test_client().get("/install/pipedrive")  # keeps the OAuth state in the session
    cookie = started.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert ("Secure" in cookie) is secure


def test_every_page_refuses_framing_and_sniffing(make_hub):
    app = make_hub(sandbox=True, **{"sandbox.persist": False})
    client = app.test_client()
    for path in ("/", "/healthz", "/api/v1/me", "/i/1/settings", "/no-such-page", "/sandbox/",
                 "/sandbox/pipedrive/_sandbox/ui/", "/sandbox/asana/_sandbox/ui/"):
        response = client.get(path)
        assert response.headers["X-Frame-Options"] == "DENY", path
        assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'", path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"] == "same-origin", path
    post = client.post("/oauth/pipedrive/callback", data="x")
    assert post.status_code == 400 and post.headers["X-Frame-Options"] == "DENY"
