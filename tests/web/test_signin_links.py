"""Hub accounts for a CRM without OAuth: members the admin shares the hub with get an e-mailed
invitation that signs them in once; later they ask for a one-time link on the sign-in page. Mail
goes through a real SMTP server (aiosmtpd); the CRM is the API-key TinyCRM of test_api_key.py."""
from __future__ import annotations

import re
from datetime import datetime

import pytest
import responses
from sqlalchemy import func, select

from hub import connectors
from hub.jobs import Worker
from hub.store import FakeClock, SignInLink
from tests.web.test_api_key import CRM, TASKS, Provider, csrf, install, installation_id

LINK = re.compile(r"(http://[^\s]+/login/link/[A-Za-z0-9_-]+)")


@pytest.fixture
def hub(make_hub, smtp):
    connectors.register(CRM)
    connectors.register(TASKS)
    clock = FakeClock(datetime(2026, 12, 5, 9, 0))
    try:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            Provider(mock)
            app = make_hub(clock=clock, **{"mail.backend": "smtp", "mail.smtp_port": smtp.port})
            yield app, clock, smtp
    finally:
        connectors.unregister(CRM.name)
        connectors.unregister(TASKS.name)


def deliver(app, smtp, count: int) -> list:
    Worker(app.extensions["hub"].queue, app=app, worker_id="mail").drain()
    return smtp.wait_for(count)


def link_in(message) -> str:
    body = message.get_payload(decode=True).decode()
    return LINK.search(body).group(1).split("http://localhost", 1)[-1].split("/login/", 1)[-1]


def share_with_ben(app, admin, iid, visibility="specific"):
    data = {"csrf_token": csrf(admin, f"/i/{iid}/visibility"), "visibility": visibility, "notify": "1"}
    if visibility == "specific":
        data["users"] = ["u2"]
    assert admin.post(f"/i/{iid}/visibility", data=data).status_code == 302


def test_an_invited_colleague_signs_in_once_with_the_e_mailed_link(hub):
    app, _, smtp = hub
    admin, answer = install(app)
    iid = installation_id(answer)
    share_with_ben(app, admin, iid)
    (to, message), = deliver(app, smtp, 1)
    assert to == ["ben@acme.example"]
    body = message.get_payload(decode=True).decode()
    assert "/login/link/" in body and "works once" in body and "/login/tinycrm" in body
    path = "/login/" + link_in(message)
    ben = app.test_client()
    shown = ben.get(path)                       # a mail scanner's fetch uses nothing
    assert shown.status_code == 200 and "Ben Seller" in shown.text and "Acme Inc" in shown.text
    assert ben.get(path).status_code == 200
    used = ben.post(path, data={"csrf_token": csrf(ben, path)})
    assert used.status_code == 302 and used.headers["Location"].endswith(f"/i/{iid}/settings")
    assert ben.get("/api/v1/me").json["crm_user_id"] == "u2"
    other = app.test_client()
    again = other.post(path, data={"csrf_token": csrf(other, "/login/tinycrm")})
    assert again.status_code == 410 and "already used" in again.text
    assert other.get("/api/v1/me").status_code == 401


def test_asking_for_a_link_mails_members_only_and_says_the_same_to_everyone(hub):
    app, clock, smtp = hub
    admin, answer = install(app)
    iid = installation_id(answer)
    share_with_ben(app, admin, iid)
    deliver(app, smtp, 1)                      # the invitation
    visitor = app.test_client()
    answers = []
    for email in ("Ben@Acme.example ", "nobody@acme.example"):
        page = visitor.post("/login/tinycrm/link", data={"csrf_token": csrf(visitor, "/login/tinycrm"), "email": email})
        assert page.status_code == 200
        answers.append(re.search(r'id="link-sent">([^<]+)<', page.text).group(1))
    assert answers[0] == answers[1]             # no telling who has an account
    messages = deliver(app, smtp, 2)
    assert [to for to, _ in messages] == [["ben@acme.example"], ["ben@acme.example"]]
    path = "/login/" + link_in(messages[1][1])
    clock.advance(16 * 60)        # login links live 15 minutes
    late = visitor.post(path, data={"csrf_token": csrf(visitor, "/login/tinycrm")})
    assert late.status_code == 410 and "expired" in late.text


def test_a_link_signs_nobody_in_once_the_admin_took_access_away(hub):
    app, _, smtp = hub
    admin, answer = install(app)
    iid = installation_id(answer)
    share_with_ben(app, admin, iid)
    (_, message), = deliver(app, smtp, 1)
    data = {"csrf_token": csrf(admin, f"/i/{iid}/visibility"), "visibility": "only_me"}
    assert admin.post(f"/i/{iid}/visibility", data=data).status_code == 302
    ben = app.test_client()
    path = "/login/" + link_in(message)
    refused = ben.post(path, data={"csrf_token": csrf(ben, "/login/tinycrm")})
    assert refused.status_code == 410 and "no longer" in refused.text
    assert ben.get("/api/v1/me").status_code == 401


def test_everyone_shared_with_all_can_ask_for_a_link(hub):
    app, _, smtp = hub
    admin, answer = install(app)
    iid = installation_id(answer)
    share_with_ben(app, admin, iid, visibility="all")
    deliver(app, smtp, 1)
    ben = app.test_client()
    ben.post("/login/tinycrm/link", data={"csrf_token": csrf(ben, "/login/tinycrm"), "email": "ben@acme.example"})
    (_, message) = deliver(app, smtp, 2)[1]
    path = "/login/" + link_in(message)
    assert ben.post(path, data={"csrf_token": csrf(ben, path)}).status_code == 302
    assert ben.get("/api/v1/me").json["crm_user_id"] == "u2"


def test_bad_input_is_named_and_links_are_rationed(hub):
    app, _, smtp = hub
    install(app)
    visitor = app.test_client()
    for email, named in (("", "enter your e-mail"), ("not-an-address", "not an e-mail"), ("a@b" + "c" * 300, "not an e-mail"),
                         ("ada@acme.example\r\nBcc: x@evil.example", "not an e-mail")):
        page = visitor.post("/login/tinycrm/link", data={"csrf_token": csrf(visitor, "/login/tinycrm"), "email": email})
        assert page.status_code == 400 and 'id="email-error"' in page.text and named in page.text, email
    for _ in range(7):
        visitor.post("/login/tinycrm/link", data={"csrf_token": csrf(visitor, "/login/tinycrm"), "email": "ada@acme.example"})
    with app.extensions["hub"].db.begin() as s:
        assert s.scalar(select(func.count()).select_from(SignInLink)) == 5
        hashes = s.scalars(select(SignInLink.token_hash)).all()
    assert all(len(h) == 64 for h in hashes)
    for token in ("x" * 500, "nope", "%00"):
        assert visitor.get(f"/login/link/{token}").status_code == 404
    assert app.test_client().post("/login/tinycrm/link", data={"email": "ada@acme.example"}).status_code == 400  # no CSRF


def test_the_link_form_is_on_the_sign_in_page_only(hub):
    app, _, _ = hub
    page = app.test_client().get("/login/tinycrm")
    assert 'id="email-link"' in page.text
    assert app.test_client().get("/install/tinycrm").text.count('id="email-link"') == 0
