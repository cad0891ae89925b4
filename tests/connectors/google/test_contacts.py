"""The mapping helpers: round trips through the emulator with several e-mails/phones, the clientData
marker, updates that keep what is not ours, and the fingerprint that tells our writes from edits."""
from __future__ import annotations

import pytest

from hub.connectors.google.contacts import (READ_FIELDS, SYNC_FIELDS, ContactMapping, fingerprint, google_to_person,
                                            is_deleted, person_to_google)

from .conftest import ANNA

CRM_PERSON = {
    "crm_id": 4711,
    "first_name": "Marta", "last_name": "Wiśniewska",
    "emails": [{"value": "marta@home.example", "label": "home", "primary": False},
               {"value": "marta.wisniewska@example.pl", "label": "work", "primary": True},
               {"value": "m.w@partner.example", "label": "", "primary": False}],
    "phones": [{"value": "+48 601 234 567", "label": "mobile", "primary": True},
               {"value": "+48 22 123 45 67", "label": "work"},
               {"value": "+48 22 765 43 21", "label": "fax"}],
    "organization": "Wiśniewska Consulting", "job_title": "Owner",
}


def _pairs(values):
    return sorted((v["value"], v["label"], v["primary"]) for v in values)


def test_person_to_google_puts_primary_first_and_marks_the_crm_id():
    body = person_to_google(CRM_PERSON)
    assert [e["value"] for e in body["emailAddresses"]] == [
        "marta.wisniewska@example.pl", "marta@home.example", "m.w@partner.example"]
    assert [e["type"] for e in body["emailAddresses"]] == ["work", "home", "other"]
    assert [p["type"] for p in body["phoneNumbers"]] == ["mobile", "work", "workFax"]
    assert body["names"] == [{"givenName": "Marta", "familyName": "Wiśniewska"}]
    assert body["organizations"] == [{"name": "Wiśniewska Consulting", "title": "Owner", "type": "work"}]
    assert body["clientData"] == [{"key": "relayhub.crm_id", "value": "4711"}]
    assert "memberships" not in body and "etag" not in body
    assert set(SYNC_FIELDS) <= set(body)


def test_round_trip_through_the_emulator(client, sandbox):
    label = client.create_group("Kunden")
    mapping = ContactMapping(groups=(label["resourceName"],))
    body = person_to_google(CRM_PERSON, mapping)
    created = client.create_contact(body, READ_FIELDS)

    back = google_to_person(created, mapping)
    assert back["crm_id"] == "4711"
    assert (back["first_name"], back["last_name"]) == ("Marta", "Wiśniewska")
    assert _pairs(back["emails"]) == _pairs([dict(e, label=e["label"] or "other") for e in CRM_PERSON["emails"]])
    phones = [dict(p, primary=p.get("primary", False)) for p in CRM_PERSON["phones"]]
    assert _pairs(back["phones"]) == _pairs(phones)
    assert back["phones"][0]["canonical"] == "+48601234567"
    assert (back["organization"], back["job_title"]) == ("Wiśniewska Consulting", "Owner")
    assert label["resourceName"] in back["groups"] and back["resource_name"] == created["resourceName"]
    assert not back["deleted"]

    # what we wrote and what Google shows hash the same: the later sync echo is recognised as ours
    assert fingerprint(body) == fingerprint(created)
    again = client.get_person(created["resourceName"], READ_FIELDS)
    assert fingerprint(again) == fingerprint(created)


def test_update_keeps_foreign_client_data_and_org_details(client, sandbox):
    created = client.create_contact({
        "names": [{"givenName": "Marta"}],
        "organizations": [{"name": "Old", "title": "Intern", "department": "Sales", "type": "work"}],
        "clientData": [{"key": "other.app", "value": "keep me"}, {"key": "relayhub.crm_id", "value": "4711"}],
    }, READ_FIELDS)
    body = person_to_google(CRM_PERSON, current=created)
    assert body["etag"] == created["etag"] and body["resourceName"] == created["resourceName"]
    updated = client.update_contact(created["resourceName"], body, SYNC_FIELDS, READ_FIELDS)
    assert updated["clientData"][0]["key"] == "other.app"
    assert [(c["key"], c["value"]) for c in updated["clientData"]] == [("other.app", "keep me"),
                                                                      ("relayhub.crm_id", "4711")]
    org = updated["organizations"][0]
    assert (org["name"], org["title"], org["department"]) == ("Wiśniewska Consulting", "Owner", "Sales")
    assert len(updated["emailAddresses"]) == 3 and fingerprint(updated) == fingerprint(body)

    # removing values in the CRM removes them in Google (the fields are replaced wholesale)
    fewer = dict(CRM_PERSON, emails=CRM_PERSON["emails"][1:2], phones=[], organization="", job_title="")
    updated = client.update_contact(created["resourceName"], person_to_google(fewer, current=updated),
                                    SYNC_FIELDS, READ_FIELDS)
    assert [e["value"] for e in updated["emailAddresses"]] == ["marta.wisniewska@example.pl"]
    assert "phoneNumbers" not in updated and "organizations" not in updated


def test_fingerprint_ignores_metadata_and_sees_user_edits(client, sandbox):
    created = client.create_contact(person_to_google(CRM_PERSON), READ_FIELDS)
    base = fingerprint(created)
    # a write with the same content: new etag and updateTime, same fingerprint
    same = client.update_contact(created["resourceName"], person_to_google(CRM_PERSON, current=created),
                                 SYNC_FIELDS, READ_FIELDS)
    assert same["etag"] != created["etag"] and fingerprint(same) == base
    assert fingerprint({**same, "etag": "x", "metadata": {}, "memberships": []}) == base
    # a user edit of a synced field changes it
    edited = sandbox.update_contact(ANNA, created["resourceName"], {"phoneNumbers": [{"value": "+48 500 000 000"}]})
    assert fingerprint(edited) != base
    # e-mail case is not an edit worth syncing back
    upper = {**same, "emailAddresses": [dict(e, value=e["value"].upper()) for e in same["emailAddresses"]]}
    assert fingerprint(upper) == base


def test_mapping_reads_googles_documented_example(google_examples):
    example = google_examples("person-with-memberships.json")["response"]["body"]
    neutral = google_to_person(example, ContactMapping(marker_key="relayhub.pipedrive_person_id"))
    assert neutral["crm_id"] == "90210"
    assert neutral["emails"][0] == {"value": "jose.nunez@acme.example", "label": "work", "primary": True}
    assert [e["primary"] for e in neutral["emails"]] == [True, False, False]
    assert [p["label"] for p in neutral["phones"]] == ["mobile", "work"]
    assert (neutral["organization"], neutral["job_title"]) == ("ACME Sp. z o.o.", "Head of Procurement")
    assert neutral["groups"] == ["contactGroups/4f1c2a9b0d7e3a55", "contactGroups/myContacts"]


def test_deleted_entries_of_an_incremental_sync(google_examples):
    page = google_examples("connections-list-last-page.json")["response"]["body"]
    gone = page["connections"][1]
    assert is_deleted(gone) and not is_deleted(page["connections"][0])
    neutral = google_to_person(gone)
    assert neutral["deleted"] and neutral["resource_name"] == "people/c8791234567890123002"
    assert neutral["emails"] == [] and neutral["crm_id"] is None


@pytest.mark.parametrize("crm", [{"name": "Only Fullname"}, {}])
def test_sparse_people_map_without_errors(crm):
    body = person_to_google(crm)
    assert body["emailAddresses"] == [] and body["clientData"] == []
    assert fingerprint(body) == fingerprint(dict(body))
