"""HubSpot contacts as the contact sync's source, against the emulator: changes oldest first from
a cursor, written values read back unchanged, deletions, the catalog of fields."""
from __future__ import annotations

import itertools

import pytest

from hub.connectors.contract.contacts import EMAILS, NAME, ORGANIZATION, PHONES, Contact, ContactsContext
from hub.connectors.hubspot import CONNECTOR

from .harness import live

FIELDS = (NAME, EMAILS, PHONES, ORGANIZATION)


def side(hs, page_size=2):
    return CONNECTOR.contacts(ContactsContext(api_base=hs.api_base, client=hs.client), page_size=page_size)


@pytest.fixture
def ticking(tmp_path):
    """The emulator on a clock that moves a second per reading: every change has its own time (on
    the wall clock, a fast machine seeds every contact within one millisecond)."""
    start = itertools.count()
    with live(tmp_path, clock=lambda: 1_780_000_000.0 + next(start)) as running:
        yield running


def test_changes_are_paged_oldest_first_and_resume_from_the_cursor(ticking):
    hs = ticking
    contacts = side(hs)
    pages = list(contacts.changes(None, fields=FIELDS, filters={}))
    people = [c for p in pages for c in p.contacts]
    assert len(people) == len(hs.emu.records(hs.hub_id, "contacts")) and all(len(p.contacts) <= 2 for p in pages)
    assert [c.updated for c in people] == sorted(c.updated for c in people)
    maria = next(c for c in people if c.given_name == "Maria")
    assert maria.emails[0] == {"value": "maria.anders@example.com", "label": "work", "primary": True}
    cursor = pages[-1].cursor
    hs.emu.update(hs.hub_id, "contacts", maria.id, {"jobtitle": "Buyer"}, source=hs.emu.ui_source(hs.hub_id))
    later = [c for p in contacts.changes(cursor, fields=FIELDS, filters={}) for c in p.contacts]
    assert maria.id in {c.id for c in later} and len(later) < len(people)


def test_a_written_contact_reads_back_unchanged_and_can_be_deleted(hs):
    # HubSpot accounts have `mobilephone` by default; the emulator's property list lacks it
    props = hs.emu.properties(hs.hub_id, "contacts")
    if not any(p["name"] == "mobilephone" for p in props):
        phone = next(p for p in props if p["name"] == "phone")
        props.append({**phone, "name": "mobilephone", "label": "Mobile phone number"})
    contacts = side(hs)
    wanted = Contact(name="Ines Costa", emails=[{"value": "ines@example.com", "label": "work", "primary": True}],
                     phones=[{"value": "+351 21 000 0000", "label": "work", "primary": True},
                             {"value": "+351 91 000 0000", "label": "mobile", "primary": False}],
                     organization="Costa Lda")
    made = contacts.create(wanted, fields=FIELDS)
    again = contacts.get(made.id, fields=FIELDS)
    assert (again.given_name, again.family_name, again.organization) == ("Ines", "Costa", "Costa Lda")
    assert [e["value"] for e in again.emails] == ["ines@example.com"]
    assert [(p["value"], p["label"]) for p in again.phones] == [("+351 21 000 0000", "work"), ("+351 91 000 0000", "mobile")]
    wanted.organization = "Costa & Filhos"
    assert contacts.update(made.id, wanted, fields=(ORGANIZATION,)).organization == "Costa & Filhos"
    assert contacts.delete(made.id) is True and contacts.delete(made.id) is False
    assert contacts.get(made.id, fields=FIELDS) is None and contacts.update(made.id, wanted, fields=FIELDS) is None


def test_an_events_flat_state_is_a_contact_without_a_call(hs):
    person = CONNECTOR.contacts.contact_of({"id": "7", "firstname": "Liu", "lastname": "Wong", "email": "liu@x.io",
                                            "lastmodifieddate": "2026-12-05T02:00:00Z"})
    assert (person.id, person.name, person.emails[0]["value"], person.updated) == ("7", "Liu Wong", "liu@x.io",
                                                                                   "2026-12-05T02:00:00Z")
    assert {f.key for f in side(hs).field_catalog()} >= set(FIELDS)
