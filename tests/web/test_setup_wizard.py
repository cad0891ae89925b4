"""The setup wizard: the confirmation step starts from what the installer chose on the CRM's install
screen, each connected account leads back to where the person pressed "Connect", and the connect
step shows which account comes next."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urljoin, urlsplit

from hub.connectors.google.manifest import CONTACTS_SCOPE
from hub.oauth import early_signals
from tests.web.conftest import ADMIN, install


def checked_choice(page: str) -> str | None:
    match = re.search(r'name="visibility" value="(\w+)" checked', page)
    return match.group(1) if match else None


def install_waiting_for_the_sharing_notice(hub, visibility: str, user_ids=()):
    """The installer's consent, then the CRM's app-sharing notice reaches the hub, and only then the
    browser brings the code back (the order the sandbox, like the CRM, usually produces)."""
    admin = hub.browser()
    first = admin.get("/install/pipedrive", allow_redirects=False)
    authorize = first.headers["Location"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    consent = admin.post(authorize.split("?")[0], allow_redirects=False, data={
        "client_id": query["client_id"], "redirect_uri": query["redirect_uri"], "state": query["state"],
        "user_id": str(ADMIN), "step": "2", "decision": "allow", "visibility": visibility,
        "user_ids": [str(u) for u in user_ids]})
    assert consent.status_code == 302, consent.text[:300]
    assert hub.emulator("pipedrive").flush(10)           # the notice arrived: the company is unknown yet
    return admin, admin.get(urljoin(authorize, consent.headers["Location"]))


def test_the_confirmation_step_starts_from_the_choice_made_in_the_crm(make_live_hub):
    hub = make_live_hub()
    _, shared = install_waiting_for_the_sharing_notice(hub, "all")
    assert "Who may use Relay Hub" in shared.text and checked_choice(shared.text) == "all"

    other = make_live_hub()
    _, private = install_waiting_for_the_sharing_notice(other, "me")
    assert checked_choice(private.text) == "only_me"


def test_an_early_notice_is_kept_briefly_once_and_in_bounded_memory(monkeypatch):
    early_signals.remember("crm", "42", True)
    assert early_signals.take("crm", "42") is True and early_signals.take("crm", "42") is None
    monkeypatch.setattr(early_signals, "MAX_ENTRIES", 3)
    for company in range(5):
        early_signals.remember("crm", str(company), False)
    assert early_signals.take("crm", "0") is None and early_signals.take("crm", "4") is False
    monkeypatch.setattr(early_signals, "TTL_SECONDS", -1.0)
    early_signals.remember("crm", "7", True)
    assert early_signals.take("crm", "7") is None


def connect_from(admin, iid: int, page: str, provider: str, form: dict, **extra):
    """Press "Connect" on `page` (the browser sends the page as its Referer), allow, land on the hub."""
    start = admin.form_post(f"/i/{iid}/connect/{provider}", extra, csrf_from=page, allow_redirects=False,
                            headers={"Referer": admin.url(page)})
    assert start.status_code == 302, start.text[:300]
    authorize = start.headers["Location"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    consent = admin.post(authorize.split("?")[0], data={**query, **form}, allow_redirects=False)
    assert consent.status_code == 302, consent.text[:300]
    return admin.get(urljoin(authorize, consent.headers["Location"]))


def test_connecting_leads_back_to_the_page_it_started_from_and_on_to_the_next_step(live_hub):
    admin, iid = install(live_hub)
    wizard = f"/i/{iid}/setup/connect"
    page = admin.get(wizard).text
    assert '<li class="on" aria-current="step">3. Connect Asana</li>' in page
    dana = next(u["gid"] for u in live_hub.emulator("asana").users() if u["email"].startswith("dana"))
    landed = connect_from(admin, iid, wizard, "asana", {"decision": "allow", "user": dana}, next=wizard)
    assert landed.url.endswith(wizard) and "Asana connected." in landed.text
    assert '<li class="on done"' not in landed.text
    assert '<li class="on" aria-current="step">4. Connect Google Contacts</li>' in landed.text
    assert "Connect another Asana account" in landed.text

    # from the contact sync page (no `next` in the form: the page it was pressed on)
    account = next(a["id"] for a in live_hub.emulator("google").accounts() if a["email"] == "anna@sandbox.example")
    sync_page = f"/i/{iid}/sync"
    landed = connect_from(admin, iid, sync_page, "google",
                          {"decision": "allow", "account": account, "granted_scope": CONTACTS_SCOPE})
    assert urlsplit(landed.url).path == sync_page and "Google Contacts connected." in landed.text
    assert "Done: continue to the settings page" in admin.get(wizard).text

    # a `next` elsewhere is not followed: back to the page instead
    landed = connect_from(admin, iid, wizard, "asana", {"decision": "allow", "user": dana},
                          next="//evil.example/x")
    assert landed.url == live_hub.url + wizard
