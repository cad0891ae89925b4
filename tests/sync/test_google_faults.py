"""The sync against each Google fault knob (knobs.py), set at runtime as an operator would: after
the faulty run(s) both sides hold the same persons, with no duplicates, no deletions and nothing
left unsynced. Every test runs on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
import requests

from hub.connectors.google.client import PeopleClient
from hub.errors import Defer, Retriable
from hub.sync.engine import SyncEngine
from tests.sync.conftest import Setup, make_setup
from tests.sync.test_engine import google_store


@pytest.fixture
def db_setup(make_live_hub, db_url) -> Setup:
    setup = make_setup(make_live_hub(db_url))
    setup.run()
    assert setup.run()["message"] == "nothing to do"   # the first run's echoes are read
    return setup


class SmallPages(PeopleClient):
    """Listings of two contacts a page, so a listing has a middle."""

    def iter_connections(self, person_fields, **kw):
        kw.setdefault("page_size", 2)
        return super().iter_connections(person_fields, **kw)


def knobs(setup: Setup, **values) -> dict:
    """Through the control API, as the sandbox page and `flask sandbox faults google` do."""
    resp = requests.post(f"{setup.hub.url}/sandbox/google/_sandbox/faults", json=values, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def run_through(setup: Setup, **kw) -> dict:
    """One run, resumed after interruptions as the job queue would resume it."""
    for _ in range(5):
        try:
            return SyncEngine(setup.hub.services, setup.sync_id, **kw).run()
        except (Retriable, Defer):
            continue
    raise AssertionError("the run never finished")


def settle(setup: Setup, **kw) -> list[dict]:
    results = [run_through(setup, **kw)]
    while results[-1]["message"] != "nothing to do":
        assert len(results) < 5, results
        results.append(run_through(setup, **kw))
    return results


def edit_both_sides(setup: Setup, *, crm_updates: bool = True) -> None:
    pd, g = setup.pipedrive, setup.google
    pd.create_person(first_name="Lena", last_name="Berg",
                     emails=[{"value": "lena@berg.example", "primary": True, "label": "work"}])
    pd.create_person(first_name="Olli", last_name="Paju")
    if crm_updates:
        katrin = setup.persons()["Katrin Vogel"]
        pd.update_person(katrin["id"], {"phones": [{"value": "+49 40 555", "label": "work", "primary": True}]})
    g.create_contact(setup.account, {
        "names": [{"givenName": "Mira", "familyName": "Holm"}],
        "emailAddresses": [{"value": "mira@holm.example", "type": "work"}],
        "memberships": [{"contactGroupMembership": {"contactGroupResourceName": setup.label}}]})
    aino = setup.by_name("Aino")
    g.update_contact(setup.account, aino["resourceName"], {"names": [{"givenName": "Aino", "familyName": "Laine-Holm"}]})


def assert_converged(setup: Setup, expected: set[str]) -> None:
    persons = setup.persons()
    contacts = setup.label_contacts()
    markers = [{c["key"]: c["value"] for c in x.get("clientData") or []}.get("relayhub.crm_id") for x in contacts]
    assert sorted(markers) == sorted(str(p["id"]) for p in persons.values()), "duplicates or unlinked contacts"
    assert set(persons) == expected, "a person was lost or added"
    by_marker = dict(zip(markers, contacts))
    for person in persons.values():
        contact = by_marker[str(person["id"])]
        name = contact["names"][0]
        assert (name.get("givenName"), name.get("familyName")) == (person["first_name"], person["last_name"])
        assert {e["value"].lower() for e in contact.get("emailAddresses") or []} \
            == {e["value"].lower() for e in person.get("emails") or [] if e.get("value")}
        assert {p["value"] for p in contact.get("phoneNumbers") or []} \
            == {p["value"] for p in person.get("phones") or [] if p.get("value")}


EXPECTED = {"Katrin Vogel", "Aino Laine-Holm", "Tonis Kask", "Lena Berg", "Olli Paju", "Mira Holm"}


def test_empty_pages_that_are_not_the_last(db_setup: Setup):
    edit_both_sides(db_setup)
    assert knobs(db_setup, empty_pages=3)["empty_pages"] == 3
    settle(db_setup)
    assert db_setup.google.empty_pages == 0
    assert_converged(db_setup, EXPECTED)


def test_sync_token_expiring_in_the_middle_of_a_listing(db_setup: Setup):
    """The deletion read on the first page still counts after the token died on the second."""
    setup = db_setup
    tonis = setup.by_name("Tonis")
    setup.google.delete_contact(setup.account, tonis["resourceName"])  # first in the change listing
    edit_both_sides(setup)
    knobs(setup, expire_sync_token_mid_run=1)
    store = google_store(setup, SmallPages)
    first = run_through(setup, store=store)
    assert first["full_listing"] and first["deleted_crm"] == 1, first
    settle(setup, store=store)
    assert setup.google.faults.knob("expire_sync_token_mid_run") == 0
    assert_converged(setup, EXPECTED - {"Tonis Kask"})


def test_batch_that_times_out_after_it_was_applied(db_setup: Setup):
    edit_both_sides(db_setup)
    knobs(db_setup, batch_timeout_after_apply=3)
    settle(db_setup)
    assert db_setup.google.faults.knob("batch_timeout_after_apply") == 0
    assert_converged(db_setup, EXPECTED)


def test_partial_batch_rejection(db_setup: Setup):
    edit_both_sides(db_setup, crm_updates=False)
    knobs(db_setup, batch_partial_reject=1)
    first = run_through(db_setup)
    assert first["left_out"] == 1 and first["created_store"] == 1, first   # Olli written, Lena refused
    settle(db_setup)
    assert_converged(db_setup, EXPECTED)


def test_person_whose_resource_name_changes(db_setup: Setup):
    edit_both_sides(db_setup)
    knobs(db_setup, rename_on_update=5)
    settle(db_setup)
    assert db_setup.google.faults.knob("rename_on_update") < 5
    assert_converged(db_setup, EXPECTED)
    katrin = db_setup.persons()["Katrin Vogel"]
    db_setup.pipedrive.update_person(katrin["id"], {"name": "Katrin Kern"})
    settle(db_setup)
    assert_converged(db_setup, EXPECTED - {"Katrin Vogel"} | {"Katrin Kern"})


def test_late_echoes_of_our_own_writes(db_setup: Setup):
    edit_both_sides(db_setup)
    knobs(db_setup, late_echoes=20)
    results = settle(db_setup)
    assert_converged(db_setup, EXPECTED)
    assert all(r["conflicts"] == 0 for r in results), results
    assert db_setup.run()["message"] == "nothing to do"
