"""The sync engine against the sandbox emulators over HTTP."""
from __future__ import annotations

from tests.sync.conftest import Setup


def test_initial_sync_creates_label_contacts_then_nothing_to_do(setup: Setup):
    result = setup.run()
    assert result["status"] == "done", result
    persons = setup.persons()
    contacts = setup.label_contacts()
    assert result["created_google"] == len(persons) == len(contacts) > 0
    again = setup.run()
    assert again["status"] == "done" and again["message"] == "nothing to do", again
