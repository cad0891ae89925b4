"""Sharing a sync's label with a colleague's own Google account, both modes, over HTTP: the colleague
connects their account themselves, the admin shares on the page, the colleague is e-mailed, the
label is fanned out; a can-edit colleague's edits reach the CRM and the admin's label, a read-only
colleague's edits, additions and deletions are reverted on the next run and reported."""
from __future__ import annotations

from sqlalchemy import select

from hub.store import Connection, RunLog
from hub.store.models import ContactSync
from hub.sync import service
from tests.sync.conftest import Setup, connect_google
from tests.web.conftest import BEN, install

ANNA, BENS = "anna@sandbox.example", "ben@sandbox.example"


def api(browser, method, path, iid, **kw):
    token = browser.csrf(f"/i/{iid}/settings")
    return browser.request(method, path, headers={"X-CSRF-Token": token}, **kw)


def shared_setup(hub):
    """Admin installs (Ben may use the hub), connects Anna's Google account and sets up a sync; Ben
    signs in himself and connects his own Google account."""
    admin, iid = install(hub, visibility_in_crm="all", hub_visibility="specific", hub_users=[BEN])
    anna = connect_google(hub, admin, iid, ANNA)
    ben = hub.browser()
    signed_in = ben.authorize_pipedrive("/login/pipedrive", user_id=BEN)
    assert signed_in.status_code == 200, signed_in.text[:300]
    ben_account = connect_google(hub, ben, iid, BENS)
    with hub.services.db.begin() as s:
        conns = {c.account_email: c for c in service.store_connections(s, iid)}
        for c in conns.values():
            s.expunge(c)
    sync = service.create(hub.services, iid, "test", {"name": "Team contacts", "group": "__new__",
                                                      "store_connection_id": conns[ANNA].id,
                                                      "new_group_name": "Acme CRM", "schedule_seconds": 0})
    setup = Setup(hub, admin, iid, anna, sync.id, sync.group_resource_name)
    assert setup.run()["created_store"] == 3
    hub.run_jobs()
    return setup, ben, ben_account, conns


def ben_label(setup: Setup, ben_account: str, share_id: int) -> list[dict]:
    with setup.hub.services.db.begin() as s:
        label = s.get(ContactSync, share_id).group_resource_name
    return [c for c in setup.google.contacts(ben_account)
            if any((m.get("contactGroupMembership") or {}).get("contactGroupResourceName") == label
                   for m in c.get("memberships") or [])]


def by_given(contacts: list[dict], given: str) -> dict:
    [c] = [c for c in contacts if (c.get("names") or [{}])[0].get("givenName") == given]
    return c


def sync_round(setup: Setup) -> None:
    """What the schedule does: a run of the shared sync, then the runs it fans out to (and back)."""
    service.run_now(setup.hub.services, setup.iid, setup.sync_id, "test")
    setup.hub.run_jobs()


def test_each_google_account_is_its_own_connection(live_hub):
    setup, ben, ben_account, conns = shared_setup(live_hub)
    assert set(conns) == {ANNA, BENS}
    assert conns[ANNA].account_id == setup.account and conns[BENS].account_id == ben_account
    assert conns[BENS].connected_by.endswith(f"({BEN})") and not conns[ANNA].connected_by.endswith(f"({BEN})")
    # connecting again (a new consent) updates the same connection instead of adding one
    connect_google(live_hub, ben, setup.iid, BENS)
    with live_hub.services.db.begin() as s:
        assert len(service.store_connections(s, setup.iid)) == 2


def test_can_edit_share_fans_out_and_edits_flow_back_to_everyone(live_hub, smtp):
    setup, ben, ben_account, conns = shared_setup(live_hub)
    iid, sid = setup.iid, setup.sync_id
    page = setup.admin.get(f"/i/{iid}/sync/{sid}")
    assert "Sharing" in page.text and BENS in page.text
    own = setup.admin.form_post(f"/i/{iid}/sync/{sid}/shares", {"connection_id": str(conns[ANNA].id), "mode": "edit"},
                                csrf_from=f"/i/{iid}/sync/{sid}")
    assert own.status_code == 400 and "choose a Google Contacts account a colleague connected" in own.text
    bad = api(setup.admin, "POST", f"/api/v1/installations/{iid}/sync/{sid}/shares", iid,
              json={"connection_id": conns[BENS].id, "mode": "write"})
    assert bad.status_code == 400 and set(bad.json()["fields"]) == {"mode"}
    with live_hub.services.db.begin() as s:
        assert s.scalar(select(ContactSync).where(ContactSync.parent_id == sid)) is None   # nothing half-written
    done = setup.admin.form_post(f"/i/{iid}/sync/{sid}/shares", {"connection_id": str(conns[BENS].id), "mode": "edit"},
                                 csrf_from=f"/i/{iid}/sync/{sid}")
    assert done.status_code == 200 and "Label shared (can edit)" in done.text
    live_hub.run_jobs()
    [(to, mail)] = [m for m in smtp.wait_for(1) if "shared the contact label" in m[1]["Subject"]]
    assert to == ["ben.seller@acme-sandbox.example"] and "can edit" in mail.get_payload()
    [share] = api(setup.admin, "GET", f"/api/v1/installations/{iid}/sync/{sid}/shares", iid).json()["shares"]
    assert share["mode"] == "edit" and share["linked"] == 3 and share["label"]["name"] == "Acme CRM"
    contacts = ben_label(setup, ben_account, share["id"])
    assert sorted(c["names"][0]["givenName"] for c in contacts) == ["Aino", "Katrin", "Tonis"]

    # Ben edits a contact and adds one in his label: the CRM and Anna's label get both
    katrin = by_given(contacts, "Katrin")
    setup.google.update_contact(ben_account, katrin["resourceName"],
                                {"names": [{"givenName": "Katrin", "familyName": "Vogel-Ben"}]})
    setup.google.create_contact(ben_account, {
        "names": [{"givenName": "Nadia", "familyName": "Sahin"}],
        "memberships": [{"contactGroupMembership": {"contactGroupResourceName": share["label"]["resource_name"]}}]})
    sync_round(setup)
    assert {"Katrin Vogel-Ben", "Nadia Sahin"} <= set(setup.persons())
    assert setup.by_name("Katrin")["names"][0]["familyName"] == "Vogel-Ben"
    assert setup.by_name("Nadia")                                         # reached Anna's label
    assert len(setup.label_contacts()) == 4 and len(ben_label(setup, ben_account, share["id"])) == 4
    sync_round(setup)                                                     # settled: nothing echoes back
    with live_hub.services.db.begin() as s:
        share_row = s.get(ContactSync, share["id"])
        assert "nothing to do" in share_row.status_message


def test_read_only_share_reverts_the_colleagues_changes_and_reports_them(live_hub):
    setup, ben, ben_account, conns = shared_setup(live_hub)
    iid, sid = setup.iid, setup.sync_id
    created = api(setup.admin, "POST", f"/api/v1/installations/{iid}/sync/{sid}/shares", iid,
                  json={"connection_id": conns[BENS].id, "mode": "read"})
    assert created.status_code == 201, created.text
    share_id = created.json()["id"]
    live_hub.run_jobs()
    contacts = ben_label(setup, ben_account, share_id)
    assert len(contacts) == 3
    persons_before = {k: (v["name"], v["update_time"]) for k, v in setup.persons().items()}

    aino, tonis = by_given(contacts, "Aino"), by_given(contacts, "Tonis")
    setup.google.update_contact(ben_account, aino["resourceName"],
                                {"names": [{"givenName": "Aino", "familyName": "Ben-Edit"}]})
    setup.google.delete_contact(ben_account, tonis["resourceName"])
    label = created.json()["label"]["resource_name"]
    stranger = setup.google.create_contact(ben_account, {
        "names": [{"givenName": "Private", "familyName": "Contact"}],
        "memberships": [{"contactGroupMembership": {"contactGroupResourceName": label}}]})
    sync_round(setup)

    after = ben_label(setup, ben_account, share_id)
    assert by_given(after, "Aino")["names"][0]["familyName"] == "Laine"         # edit undone
    assert by_given(after, "Tonis")                                             # deletion undone
    assert "Private" not in {c["names"][0]["givenName"] for c in after}         # addition undone ...
    assert setup.google.contact(ben_account, stranger["resourceName"])          # ... but his contact stays his
    assert {k: (v["name"], v["update_time"]) for k, v in setup.persons().items()} == persons_before  # CRM untouched
    assert len(setup.label_contacts()) == 3
    with live_hub.services.db.begin() as s:
        share = s.get(ContactSync, share_id)
        assert "reverted 3" in share.status_message, share.status_message
        [entry] = s.scalars(select(RunLog).where(RunLog.sync_id == share_id, RunLog.step == "sync.reverted")).all()
    assert "Aino Laine: edited" in entry.message and "deleted" in entry.message and "added to the label" in entry.message
    page = setup.admin.get(f"/i/{iid}/sync/{share_id}")
    assert "sync.reverted" in page.text and "A share" in page.text
    sync_round(setup)                                                           # and then it stays quiet
    with live_hub.services.db.begin() as s:
        assert s.get(ContactSync, share_id).status_message == "nothing to do"

    # read -> edit on the page; then stop sharing through the API: Ben keeps his contacts
    changed = setup.admin.form_post(f"/i/{iid}/sync/{sid}/shares/{share_id}", {"mode": "edit"},
                                    csrf_from=f"/i/{iid}/sync/{sid}")
    assert "The share is now can edit" in changed.text
    gone = api(setup.admin, "DELETE", f"/api/v1/installations/{iid}/sync/{sid}/shares/{share_id}", iid)
    assert gone.status_code == 204
    live_hub.run_jobs()
    assert api(setup.admin, "GET", f"/api/v1/installations/{iid}/sync/{sid}/shares", iid).json()["shares"] == []
    assert len(setup.google.contacts(ben_account)) >= 3
