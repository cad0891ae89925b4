"""Google Contacts as the sync's ContactStore, against the emulator over HTTP: neutral fields in and
out, the marker and the label, changes with tombstones, updates that keep what the sync does not
map, and Google's refusals as the contract's outcomes."""
from __future__ import annotations

import pytest

from hub.connectors import connector
from hub.connectors.contract.contacts import (BatchRefused, ChangesExpired, Contact, ContactsContext, GroupNameTaken,
                                              StoreFull, VersionConflict)
from hub.connectors.google.store import GoogleContacts, read_mask

from .conftest import ANNA

FIELDS = ("name", "emails", "phones", "organization", "custom:Language", "notes")


@pytest.fixture
def store(client) -> GoogleContacts:
    return connector("google").contacts(ContactsContext("", client=client))


def new(given: str, crm_id: str, **values) -> Contact:
    return Contact(given_name=given, family_name="Laine", marker=crm_id,
                   emails=[{"value": f"{given.lower()}@x.example", "label": "work", "primary": True}], **values)


def test_the_connector_offers_its_store_by_role():
    google = connector("google")
    assert google.has("contact_store") and google.contacts is GoogleContacts


def test_create_in_the_label_with_the_marker_then_read_the_neutral_contact(store, sandbox):
    label = store.create_group("Kunden")
    assert label.ours and store.create_group("Kunden").id == label.id          # a retried create adopts it
    created = store.create([new("Aino", "1", organization="Laine Oy", title="CEO", notes="met at the fair",
                                custom={"Language": "fi"})], fields=FIELDS + ("title",), group=label.id)
    [c] = created
    assert c.id.startswith("people/") and c.marker == "1" and label.id in c.groups and c.etag
    assert (c.given_name, c.family_name, c.organization, c.title, c.notes) == ("Aino", "Laine", "Laine Oy", "CEO",
                                                                               "met at the fair")
    assert c.emails[0]["value"] == "aino@x.example" and c.custom == {"Language": "fi"} and c.updated
    raw = sandbox.contact(ANNA, c.id)
    assert {d["key"]: d["value"] for d in raw["clientData"]} == {"relayhub.crm_id": "1"}
    assert store.get([c.id], fields=FIELDS)[c.id].marker == "1"
    assert store.find(["1", "2"], fields=FIELDS)["1"].id == c.id
    assert [g.name for g in store.groups()] == ["Kunden"] and store.groups()[0].members == 1


def test_an_update_replaces_mapped_fields_and_keeps_the_rest(store, sandbox):
    [c] = store.create([new("Aino", "1", organization="Laine Oy", title="CEO")],
                       fields=("name", "emails", "organization", "title"), group="")
    sandbox.update_contact(ANNA, c.id, {"userDefined": [{"key": "Theirs", "value": "x"}],
                                        "clientData": [{"key": "relayhub.crm_id", "value": "1"},
                                                       {"key": "other.app", "value": "y"}]})
    current = store.get([c.id], fields=("name", "organization", "custom:Language"))[c.id]
    wanted = Contact(given_name="Aino", family_name="Uusi", organization="Uusi Oy", marker="1",
                     custom={"Language": "fi"})
    done = store.update({c.id: wanted}, {c.id: current}, fields=("name", "organization", "custom:Language"))
    assert done[c.id].family_name == "Uusi" and done[c.id].organization == "Uusi Oy"
    raw = sandbox.contact(ANNA, c.id)
    assert raw["organizations"][0]["title"] == "CEO"                            # title not mapped: kept
    assert {u["key"]: u["value"] for u in raw["userDefined"]} == {"Theirs": "x", "Language": "fi"}
    assert {d["key"] for d in raw["clientData"]} == {"relayhub.crm_id", "other.app"}
    assert raw["emailAddresses"][0]["value"] == "aino@x.example"                 # e-mails not mapped: kept


def test_changes_list_everything_then_changes_with_tombstones(store, sandbox):
    created = store.create([new("Aino", "1"), new("Tonis", "2")], fields=FIELDS, group="")
    [full] = list(store.changes(None, fields=FIELDS))
    assert not full.incremental and full.first and full.last and full.total == 2 and full.next_token
    assert store.count() == 2
    sandbox.delete_contact(ANNA, created[1].id)
    [page] = list(store.changes(full.next_token, fields=FIELDS))
    assert page.incremental and [(c.id, c.deleted) for c in page.contacts] == [(created[1].id, True)]
    sandbox.expire_sync_tokens(ANNA)
    with pytest.raises(ChangesExpired):
        list(store.changes(page.next_token, fields=FIELDS))


def test_the_mask_is_stable_for_the_same_fields():
    assert read_mask(("phones", "name")) == read_mask(("name", "phones"))
    assert read_mask(("custom:a", "custom:b", "title", "organization")) == \
        ["clientData", "memberships", "metadata", "names", "organizations", "userDefined"]


def test_refusals_become_the_contracts_outcomes(store, sandbox):
    [c] = store.create([new("Aino", "1")], fields=FIELDS, group="")
    current = store.get([c.id], fields=FIELDS)[c.id]
    sandbox.update_contact(ANNA, c.id, {"names": [{"givenName": "Hand edit"}]})
    with pytest.raises(VersionConflict) as stale:
        store.update({c.id: new("Aino", "1")}, {c.id: current}, fields=FIELDS)
    assert stale.value.ids == [c.id]
    fresh = store.get([c.id], fields=FIELDS)[c.id]
    bad = Contact(given_name="Aino", marker="1", emails=[{"value": "not-an-email", "label": "work"}])
    with pytest.raises(BatchRefused) as refused:
        store.update({c.id: bad}, {c.id: fresh}, fields=("name", "emails"))
    assert refused.value.refused == {c.id} and refused.value.reason
    store.create_group("Kunden")
    with pytest.raises(GroupNameTaken):
        store.create_group("Kunden", adopt_existing=False)
    assert store.group("contactGroups/myContacts") is None                     # a system group holds no sync


@pytest.mark.parametrize("options", [{"contact_limit": 1}], indirect=True)
def test_a_full_account_is_store_full(store):
    store.create([new("Aino", "1")], fields=FIELDS, group="")
    with pytest.raises(StoreFull):
        store.create([new("Tonis", "2")], fields=FIELDS, group="")
