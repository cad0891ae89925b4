"""The delete policy on the JSON API and the sync page, and conflict entries in words."""
from __future__ import annotations

import html

from tests.sync.conftest import make_setup
from tests.sync.test_pages import api
from tests.sync.test_safety import link_of


def test_delete_policy_is_edited_and_shown_and_conflicts_say_what_happened(live_hub):
    setup = make_setup(live_hub)
    admin, iid = setup.admin, setup.iid
    url = f"/api/v1/installations/{iid}/sync/{setup.sync_id}"
    assert api(admin, "GET", url, iid).json()["delete_policy"] == "edit_wins"
    bad = api(admin, "PATCH", url, iid, json={"delete_policy": "sometimes"})
    assert bad.status_code == 400 and bad.json()["fields"] == {"delete_policy": "one of edit_wins, delete_wins"}
    changed = api(admin, "PATCH", url, iid, json={"delete_policy": "delete_wins"})
    assert changed.status_code == 200 and changed.json()["delete_policy"] == "delete_wins"
    page = admin.get(f"/i/{iid}/sync/{setup.sync_id}")
    assert "A delete wins, even over an edit made since the last run" in page.text
    assert '<option value="delete_wins" selected>' in page.text
    values = api(admin, "GET", url, iid).json()
    form = {"name": values["name"], "direction": values["direction"], "persons": "all",
            "conflict_policy": values["conflict_policy"], "delete_policy": "edit_wins", "schedule_minutes": "0",
            "delete_percent": "20", "contact_cap": str(values["contact_cap"]), "enabled": "1",
            "map_crm": [r["crm"] for r in values["field_map"]], "map_store": [r["store"] for r in values["field_map"]]}
    saved = admin.form_post(f"/i/{iid}/sync/{setup.sync_id}", form)
    assert saved.status_code == 200 and "Sync settings saved." in saved.text
    assert api(admin, "GET", url, iid).json()["delete_policy"] == "edit_wins"

    setup.run()
    aino = setup.persons()["Aino Laine"]
    setup.google.delete_contact(setup.account, link_of(setup, aino["id"]).resource_name)
    setup.pipedrive.update_person(aino["id"], {"name": "Aino Laine-Uusi"})
    setup.run()
    [conflict] = api(admin, "GET", f"{url}/conflicts", iid).json()["conflicts"]
    assert conflict["message"].startswith(f"contact “Aino Laine” deleted in Google Contacts while person {aino['id']} was "
                                          "edited in the CRM: person kept, contact re-created as people/")
    assert html.escape(conflict["message"], quote=False) in admin.get(f"/i/{iid}/sync/{setup.sync_id}").text
