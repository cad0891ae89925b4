"""Edges of Google's listing and of the contact cap, against the sandbox People API over HTTP: empty
pages that are not the last, and the 25,000-contact cap reached at the 25,000th and 25,001st person."""
from __future__ import annotations

from sqlalchemy import select

from hub.store import RunLog
from hub.store.models import SyncLink
from tests.sync.conftest import Setup
from tests.sync.test_engine import link_of

CAP = 25000


def test_empty_non_final_pages_are_followed_not_taken_for_the_end(setup: Setup):
    setup.run()
    aino = setup.persons()["Aino Laine"]
    rn = link_of(setup, aino["id"]).resource_name
    setup.google.update_contact(setup.account, rn, {"names": [{"givenName": "Aino", "familyName": "Laine-Page"}]})
    setup.google.empty_pages = 2          # the incremental listing starts with two empty pages
    result = setup.run()
    assert setup.google.empty_pages == 0 and result["updated_crm"] == 1, result
    assert "Aino Laine-Page" in setup.persons()
    assert setup.run()["message"] == "nothing to do"   # the sync token saved is the one after the last page
    # a full listing (expired token) with an empty page in the middle: nothing is duplicated or deleted
    setup.google.expire_sync_tokens(setup.account)
    setup.google.empty_pages = 1
    result = setup.run()
    assert result["full_listing"] and result["created_store"] == 0 and result["deleted_crm"] == 0, result
    assert len(setup.label_contacts()) == 3 and len(setup.persons()) == 3


def fill_account(google, account: str, count: int) -> None:
    """Add `count` plain contacts to the account at once (the emulator's own create, without the
    per-call limit check, which would make seeding 25,000 contacts quadratic)."""
    with google.state.change():
        acct = google.account(account)
        for n in range(count):
            google._new_contact(acct, {"names": [{"givenName": f"Filler{n:05d}", "familyName": "Seed"}]})


def test_cap_reached_at_the_25000th_and_25001st_person(setup: Setup):
    google, account = setup.google, setup.account
    assert google.contact_limit == CAP
    fill_account(google, account, CAP - 2 - google.contact_count(account))  # room for 2 of the 3 persons
    assert google.contact_count(account) == CAP - 2
    result = setup.run()
    assert result["created_store"] == 2 and result["left_out"] == 1, result
    assert google.contact_count(account) == CAP                              # the 25,000th is in ...
    persons = sorted(setup.persons().values(), key=lambda p: p["id"])
    with setup.hub.services.db.begin() as s:
        [left] = s.scalars(select(SyncLink).where(SyncLink.sync_id == setup.sync_id,
                                                  SyncLink.state == "left_out")).all()
        logged = s.scalar(select(RunLog).where(RunLog.sync_id == setup.sync_id, RunLog.step == "sync.left_out"))
    assert left.crm_id == str(persons[-1]["id"])                              # ... the 25,001st is left out
    assert f"holds {CAP} contacts and the cap is {CAP}" in left.note
    assert logged is not None and logged.detail["persons"] == [{"crm_id": left.crm_id, "name": persons[-1]["name"]}]
    page = setup.admin.get(f"/i/{setup.iid}/sync/{setup.sync_id}")
    assert persons[-1]["name"] in page.text and "1 left out" in page.text

    # at the cap: updates still go through, nothing is added
    setup.pipedrive.update_person(persons[0]["id"], {"name": "First Person-Updated"})
    result = setup.run()
    assert result["updated_store"] == 1 and result["created_store"] == 0 and google.contact_count(account) == CAP

    # a cap set above Google's own limit: Google refuses the 25,001st and the person stays left out
    setup.change(contact_cap=CAP + 10)
    result = setup.run()
    assert result["created_store"] == 0 and result["left_out"] == 1, result
    assert google.contact_count(account) == CAP

    # room again (a contact deleted outside the label): the left-out person is added
    filler = next(c for c in google.contacts(account) if c["names"][0]["givenName"].startswith("Filler"))
    google.delete_contact(account, filler["resourceName"])
    setup.change(contact_cap=CAP)
    result = setup.run()
    assert result["created_store"] == 1 and result["left_out"] == 0, result
    assert google.contact_count(account) == CAP and len(setup.label_contacts()) == 3
