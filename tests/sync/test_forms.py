"""The sync settings form (new sync and a sync's page): every field is checked, a refused form comes
back with what was typed and each message next to its field, in the unit the field shows (minutes,
%, contacts), never the unit stored (seconds, a share between 0 and 1). Nothing is stored."""
from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select

from hub.store.models import ContactSync
from hub.sync import service
from tests.sync.conftest import make_setup

FIELD = re.compile(r'<div class="field">(.*?)</div>', re.S)
STORED_UNITS = ("second", "604800", "between 0 and 1", "share")


def field(page: str, name: str) -> tuple[str, str | None]:
    """(the value an input shows, the message next to it) for the `.field` box holding the input."""
    for box in FIELD.findall(page):
        match = re.search(rf'<input name="{name}"[^>]*value="([^"]*)"', box)
        if match:
            error = re.search(r'<p class="error" id="([^"]+)">([^<]*)</p>', box)
            if error:
                assert f'aria-describedby="{error.group(1)}"' in box, box   # the input names its message
            return html.unescape(match.group(1)), html.unescape(error.group(2)) if error else None
    raise AssertionError(f"no field {name} on the page")


@pytest.fixture
def team(live_hub):
    setup = make_setup(live_hub)
    with live_hub.services.db.begin() as s:
        setup.connection_id = service.store_connections(s, setup.iid)[0].id
    return setup


def new_form(team, **values) -> dict:
    form = {"store_connection_id": str(team.connection_id), "group": "__new__", "new_group_name": "Second label",
            "name": "Second", "direction": "two_way", "persons": "all", "conflict_policy": "newest",
            "delete_policy": "edit_wins", "schedule_minutes": "15", "delete_percent": "20", "contact_cap": "25000",
            "enabled": "1", "map_crm": ["name", "emails", ""], "map_store": ["name", "emails", ""]}
    form.update(values)
    return form


def syncs(team) -> list[tuple]:
    with team.hub.services.db.begin() as s:
        return [(x.id, x.name, x.schedule_seconds, x.delete_share, x.contact_cap, dict(x.person_filter or {}))
                for x in s.scalars(select(ContactSync).order_by(ContactSync.id))]


BAD = [   # (field, typed, the input's name, message in the field's unit)
    ("schedule_minutes", "abc", "expected a whole number of minutes from 1 to 10080 (a week), or 0 to run only on demand"),
    ("schedule_minutes", "-5", "expected a whole number of minutes from 1 to 10080 (a week), or 0 to run only on demand"),
    ("schedule_minutes", "0.5", "expected a whole number of minutes from 1 to 10080 (a week), or 0 to run only on demand"),
    ("schedule_minutes", "10081", "expected a whole number of minutes from 1 to 10080 (a week), or 0 to run only on demand"),
    ("schedule_minutes", "", "expected a whole number of minutes from 1 to 10080 (a week), or 0 to run only on demand"),
    ("delete_percent", "twenty", "expected a percentage from 0 to 100 (0 asks before any deletion)"),
    ("delete_percent", "150", "expected a percentage from 0 to 100 (0 asks before any deletion)"),
    ("delete_percent", "-1", "expected a percentage from 0 to 100 (0 asks before any deletion)"),
    ("contact_cap", "lots", "expected a whole number of contacts from 1 to 25000"),
    ("contact_cap", "0", "expected a whole number of contacts from 1 to 25000"),
]


@pytest.mark.parametrize("page", ["new", "edit"])
def test_bad_numbers_come_back_typed_with_a_message_in_the_fields_unit(team, page):
    url = f"/i/{team.iid}/sync" if page == "new" else f"/i/{team.iid}/sync/{team.sync_id}"
    before = syncs(team)
    for name, typed, message in BAD:
        refused = team.admin.form_post(url, new_form(team, **{name: typed}))
        assert refused.status_code == 400, (name, typed, refused.status_code, refused.text[:300])
        assert refused.headers["Content-Type"].startswith("text/html")
        assert field(refused.text, name) == (typed, message), (name, typed)
        errors = " ".join(re.findall(r'<p class="error"[^>]*>([^<]*)</p>', refused.text))
        assert not any(unit in errors for unit in STORED_UNITS), errors
        assert field(refused.text, "name")[0] == "Second"                 # the other fields as typed too
    assert syncs(team) == before                                          # nothing stored


def test_every_problem_is_shown_at_once_and_a_half_filled_mapping_row_is_named(team):
    form = new_form(team, name="", schedule_minutes="often", delete_percent="101",
                    map_crm=["name", "", "emails"], map_store=["name", "", ""], persons="filter",
                    filter_owner_id="", filter_org_id="")
    refused = team.admin.form_post(f"/i/{team.iid}/sync", form)
    assert refused.status_code == 400
    text = html.unescape(refused.text)
    assert field(text, "name") == ("", "give the sync a name")
    assert field(text, "schedule_minutes")[1].startswith("expected a whole number of minutes")
    assert field(text, "delete_percent")[1].startswith("expected a percentage")
    assert "give an owner id, an organization id or both (or choose all persons)" in text
    # the third row of the page was half filled (the blank second row is not counted by the service)
    assert '<p class="error" id="error-field-map-3">Row 3: fill in both fields of the row, or neither</p>' in text
    assert re.search(r'<input name="map_crm" value="emails"[^>]* aria-label="[^"]*row 3"[^>]* aria-invalid="true"', text)
    assert len(syncs(team)) == 1


def test_good_values_are_stored_in_the_services_units(team):
    created = team.admin.form_post(f"/i/{team.iid}/sync", new_form(team, schedule_minutes="15",
                                                                   delete_percent="12.5", contact_cap="900"))
    assert created.status_code == 200 and "Sync “Second” created" in created.text
    sync_id = int(created.url.rstrip("/").rsplit("/", 1)[1])
    [row] = [s for s in syncs(team) if s[0] == sync_id]
    assert row[2:5] == (900, 0.125, 900)
    assert field(created.text, "schedule_minutes") == ("15", None)
    assert field(created.text, "delete_percent") == ("12.5", None)
    saved = team.admin.form_post(f"/i/{team.iid}/sync/{sync_id}",
                                 new_form(team, schedule_minutes="0", delete_percent="0", persons="filter",
                                          filter_owner_id="12400001", filter_org_id=""))
    assert saved.status_code == 200 and "Sync settings saved." in saved.text
    [row] = [s for s in syncs(team) if s[0] == sync_id]
    assert row[2:4] == (0, 0.0) and row[5] == {"owner_id": 12400001}


def test_a_bad_filter_id_is_named_next_to_the_filter(team):
    refused = team.admin.form_post(f"/i/{team.iid}/sync/{team.sync_id}",
                                   new_form(team, persons="filter", filter_owner_id="Ada", filter_org_id=""))
    assert refused.status_code == 400
    assert re.search(r'<input name="filter_owner_id" size="8" inputmode="numeric" value="Ada" aria-invalid="true"',
                     refused.text)
    assert 'id="error-person_filter-owner_id"' in refused.text
    with team.hub.services.db.begin() as s:
        assert s.scalar(select(func.count()).select_from(ContactSync)) == 1
