"""No data lost (issue 14): a delete never beats an edit made since the last run (policy "edit
wins", or "delete wins" per sync), merged CRM persons re-link or fold their contacts, in either
event order. Every test runs on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.connectors.base import CrmEvent
from hub.events import record
from hub.store.models import SyncConflict, SyncLink
from tests.sync.conftest import Setup, make_setup


@pytest.fixture
def db_setup(make_live_hub, db_url) -> Setup:
    return make_setup(make_live_hub(db_url))


def link_of(setup: Setup, crm_id) -> SyncLink | None:
    with setup.hub.services.db.begin() as s:
        return s.scalar(select(SyncLink).where(SyncLink.sync_id == setup.sync_id, SyncLink.crm_id == str(crm_id)))


def links(setup: Setup) -> list[SyncLink]:
    with setup.hub.services.db.begin() as s:
        return list(s.scalars(select(SyncLink).where(SyncLink.sync_id == setup.sync_id)))


def conflicts(setup: Setup) -> list[SyncConflict]:
    with setup.hub.services.db.begin() as s:
        return list(s.scalars(select(SyncConflict).where(SyncConflict.sync_id == setup.sync_id)
                              .order_by(SyncConflict.id)))


def delete_event(setup: Setup, person_id: int, merged_to: int | None = None) -> None:
    """What the webhook ingest records for a Pipedrive person delete (a merge names the survivor)."""
    extra = {"format": "v2", **({"merged_to_id": str(merged_to)} if merged_to else {})}
    with setup.hub.services.db.begin() as s:
        record(setup.hub.services, s, setup.iid, CrmEvent(
            kind="person.deleted", object_type="person", object_id=str(person_id), event_id=f"del-{person_id}",
            occurred_at=None, current=None, previous={"id": person_id}, extra=extra), source="webhook")


def katrin_deleted_in_crm_while_edited_in_google(setup: Setup) -> tuple[dict, str]:
    """After a first run: Katrin's person is deleted in the CRM (with its delete event) while her
    contact is renamed in Google. Returns the deleted person and the contact's resource name."""
    setup.run()
    katrin = setup.persons()["Katrin Vogel"]
    rn = link_of(setup, katrin["id"]).resource_name
    setup.pipedrive.delete_person(katrin["id"])
    delete_event(setup, katrin["id"])
    setup.google.update_contact(setup.account, rn, {"names": [{"givenName": "Katrin", "familyName": "Vogel-Neu"}]})
    return katrin, rn


def emails_of(contact: dict) -> set[str]:
    return {e["value"].lower() for e in contact.get("emailAddresses") or []}


def test_crm_delete_of_a_contact_edited_in_google_recreates_the_person(db_setup: Setup):
    setup = db_setup
    katrin, rn = katrin_deleted_in_crm_while_edited_in_google(setup)
    result = setup.run()
    assert result["deleted_store"] == 0 and result["created_crm"] == 1, result
    contact = setup.google.contact(setup.account, rn)                     # kept, with the edit
    assert contact["names"][0]["familyName"] == "Vogel-Neu"
    [person] = [p for p in setup.persons().values() if p["last_name"] == "Vogel-Neu"]
    assert person["id"] != katrin["id"]
    link = link_of(setup, person["id"])
    assert link.resource_name == rn and link.state == "linked"
    assert {c["key"]: c["value"] for c in setup.google.contact(setup.account, rn)["clientData"]} \
        == {"relayhub.crm_id": str(person["id"])}
    [conflict] = conflicts(setup)
    assert conflict.policy == "edit_wins" and conflict.winner == "store"
    assert conflict.message == (f"person {katrin['id']} deleted in the CRM while contact “Katrin Vogel-Neu” was "
                                f"edited in Google Contacts: contact kept, person re-created as {person['id']}")
    assert setup.run()["message"] == "nothing to do"
    assert len(setup.label_contacts()) == len(setup.persons()) == 3


def test_google_delete_of_a_person_edited_in_the_crm_recreates_the_contact(db_setup: Setup):
    setup = db_setup
    setup.run()
    aino = setup.persons()["Aino Laine"]
    rn = link_of(setup, aino["id"]).resource_name
    setup.google.delete_contact(setup.account, rn)
    setup.pipedrive.update_person(aino["id"], {"phones": [{"value": "+358 40 222", "label": "work", "primary": True}]})
    result = setup.run()
    assert result["deleted_crm"] == 0 and result["created_store"] == 1, result
    assert "Aino Laine" in setup.persons()
    contact = setup.by_name("Aino")
    assert contact["resourceName"] != rn and contact["phoneNumbers"][0]["value"] == "+358 40 222"
    assert link_of(setup, aino["id"]).resource_name == contact["resourceName"]
    [conflict] = conflicts(setup)
    assert conflict.winner == "crm" and conflict.message == (
        f"contact “Aino Laine” deleted in Google Contacts while person {aino['id']} was edited in the CRM: person kept, "
        f"contact re-created as {contact['resourceName']}")
    assert setup.run()["message"] == "nothing to do"
    assert len(setup.label_contacts()) == len(setup.persons()) == 3


def test_delete_wins_policy_deletes_the_edited_record_and_says_so(db_setup: Setup):
    setup = db_setup
    setup.change(delete_policy="delete_wins")
    setup.run()
    aino = setup.persons()["Aino Laine"]
    setup.google.delete_contact(setup.account, link_of(setup, aino["id"]).resource_name)
    setup.pipedrive.update_person(aino["id"], {"name": "Aino Laine-Uusi"})
    result = setup.run()
    assert result["deleted_crm"] == 1 and result["created_store"] == 0, result
    assert "Aino Laine-Uusi" not in setup.persons()
    [conflict] = conflicts(setup)
    assert conflict.policy == "delete_wins" and "delete wins, person deleted too" in conflict.message


def test_unedited_records_still_follow_their_delete_signal(db_setup: Setup):
    setup = db_setup
    setup.run()
    tonis = setup.persons()["Tonis Kask"]
    setup.pipedrive.delete_person(tonis["id"])
    delete_event(setup, tonis["id"])
    result = setup.run()
    assert result["deleted_store"] == 1 and result["conflicts"] == 0, result
    assert len(setup.label_contacts()) == 2


@pytest.mark.parametrize("order", ["survivor_change_first", "delete_first"])
def test_merged_person_folds_its_contact_into_the_survivors(db_setup: Setup, order):
    """Katrin (loser) merged into Aino (survivor): one contact remains, linked to Aino, with both
    persons' e-mails and phones; nothing is deleted blindly, whichever event the hub saw first."""
    setup = db_setup
    setup.run()
    persons = setup.persons()
    loser, survivor = persons["Katrin Vogel"], persons["Aino Laine"]
    loser_rn = link_of(setup, loser["id"]).resource_name
    survivor_rn = link_of(setup, survivor["id"]).resource_name
    before = emails_of(setup.google.contact(setup.account, loser_rn)) | emails_of(
        setup.google.contact(setup.account, survivor_rn))
    setup.google.update_contact(setup.account, loser_rn, {"phoneNumbers": [{"value": "+49 30 999", "type": "work"}]})

    def merge_in_crm():  # the survivor's change: Pipedrive keeps the survivor's values, adds the e-mails
        setup.pipedrive.update_person(survivor["id"], {"emails": survivor["emails"] + [
            dict(e, primary=False) for e in loser["emails"]]})

    if order == "survivor_change_first":
        merge_in_crm()
        setup.pipedrive.delete_person(loser["id"])
        setup.run()               # sees the survivor's change; the delete event has not arrived yet
        delete_event(setup, loser["id"], merged_to=survivor["id"])
    else:
        setup.pipedrive.delete_person(loser["id"])
        delete_event(setup, loser["id"], merged_to=survivor["id"])
        setup.run()               # the survivor's change is not visible yet
        merge_in_crm()
    setup.run()
    assert setup.run()["message"] == "nothing to do"
    contacts = setup.label_contacts()
    assert len(contacts) == len(setup.persons()) == 2
    [merged] = [c for c in contacts if c["resourceName"] == survivor_rn]
    assert before <= emails_of(merged)
    assert "+49 30 999" in {p["value"] for p in merged["phoneNumbers"]}
    assert link_of(setup, loser["id"]) is None and link_of(setup, survivor["id"]).resource_name == survivor_rn
    person = setup.pipedrive.data["pd_persons"][str(survivor["id"])]
    assert before <= {e["value"].lower() for e in person["emails"]}
    assert "+49 30 999" in {p["value"] for p in person["phones"]}
    assert any("merged into person" in c.message for c in conflicts(setup))


def test_merged_person_without_survivor_contact_relinks_its_contact(db_setup: Setup):
    setup = db_setup
    setup.run()
    loser = setup.persons()["Tonis Kask"]
    loser_rn = link_of(setup, loser["id"]).resource_name
    survivor = setup.pipedrive.create_person(first_name="Tõnis", last_name="Kask",
                                             emails=[{"value": "tonis@kask.example", "primary": True, "label": "work"}])
    setup.pipedrive.delete_person(loser["id"])
    delete_event(setup, loser["id"], merged_to=survivor["id"])
    result = setup.run()
    assert result["created_store"] == 0 and result["deleted_store"] == 0 and result["merged"] == 1, result
    link = link_of(setup, survivor["id"])
    assert link.resource_name == loser_rn and link_of(setup, loser["id"]) is None
    contact = setup.google.contact(setup.account, loser_rn)
    assert "tonis@kask.example" in emails_of(contact)
    assert {c["key"]: c["value"] for c in contact["clientData"]} == {"relayhub.crm_id": str(survivor["id"])}
    assert setup.run()["message"] == "nothing to do"
    assert len(setup.label_contacts()) == len(setup.persons()) == 3


class Killed(BaseException):
    """Stands in for kill -9: nothing after it runs, the database keeps what was committed."""


def test_restore_killed_between_write_ahead_and_create_finishes_on_resume(db_setup: Setup, monkeypatch):
    from hub.connectors.pipedrive.client import PipedriveClient

    setup = db_setup
    katrin, rn = katrin_deleted_in_crm_while_edited_in_google(setup)
    real = PipedriveClient._data

    def killed_on_create(self, method, path, *args, **kw):
        if method == "POST" and path == "/api/v2/persons":
            raise Killed()
        return real(self, method, path, *args, **kw)

    monkeypatch.setattr(PipedriveClient, "_data", killed_on_create)
    with pytest.raises(Killed):
        setup.run()
    monkeypatch.setattr(PipedriveClient, "_data", real)
    result = setup.run()
    assert result["created_crm"] == 1 and result["deleted_store"] == 0, result
    [person] = [p for p in setup.persons().values() if p["last_name"] == "Vogel-Neu"]
    assert link_of(setup, person["id"]).resource_name == rn
    assert len(links(setup)) == 3 and setup.run()["message"] == "nothing to do"
    assert len(setup.label_contacts()) == len(setup.persons()) == 3


def test_confirmed_mass_deletion_spares_what_was_edited_while_it_waited(db_setup: Setup):
    """Deletions held for confirmation are screened again when they are finally applied."""
    from hub.sync import service
    from hub.sync.engine import SyncEngine

    setup = db_setup
    setup.run()
    gone = setup.label_contacts()[:2]
    for c in gone:
        setup.google.delete_contact(setup.account, c["resourceName"])
    setup.change(delete_share=0.1)
    engine = SyncEngine(setup.hub.services, setup.sync_id)
    engine.delete_pause_min = 0
    assert engine.run()["status"] == "paused"
    edited = {c["clientData"][0]["value"] for c in gone[:1]}
    [crm_id] = edited
    setup.pipedrive.update_person(int(crm_id), {"phones": [{"value": "+1 555 0100", "label": "work", "primary": True}]})
    service.decide_deletes(setup.hub.services, setup.iid, setup.sync_id, "test", confirm=True)
    setup.hub.run_jobs()
    persons = {str(p["id"]) for p in setup.persons().values()}
    assert crm_id in persons and len(persons) == 2                  # the edited one stays, the other went
    contact = next(c for c in setup.label_contacts()
                   if {d["key"]: d["value"] for d in c["clientData"]}.get("relayhub.crm_id") == crm_id)
    assert contact["phoneNumbers"][0]["value"] == "+1 555 0100"
    assert any(c.field == "(deleted)" and c.crm_id == crm_id for c in conflicts(setup))
