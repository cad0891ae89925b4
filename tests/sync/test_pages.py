"""The sync pages and JSON API over HTTP: set-up with a new label, bad input, Sync now, progress,
conflicts, left-out list, run log, deletion confirmation; and the CLI."""
from __future__ import annotations

from sqlalchemy import select

from hub.store.models import ContactSync
from hub.sync import service
from tests.sync.conftest import connect_google, make_setup
from tests.web.conftest import install


def api(browser, method, path, iid, **kw):
    token = browser.csrf(f"/i/{iid}/settings")
    return browser.request(method, path, headers={"X-CSRF-Token": token}, **kw)


def test_setup_through_the_page_then_sync_now_and_progress(live_hub):
    admin, iid = install(live_hub)
    settings = admin.get(f"/i/{iid}/settings")
    assert "Contact sync" in settings.text and f"/i/{iid}/sync" in settings.text
    page = admin.get(f"/i/{iid}/sync")
    assert "Connect Google" in page.text
    account = connect_google(live_hub, admin, iid)
    page = admin.get(f"/i/{iid}/sync")
    assert "Google Contacts account" in page.text and "Create a new label" in page.text
    with live_hub.services.db.begin() as s:
        conn_id = service.store_connections(s, iid)[0].id
    form = {"store_connection_id": str(conn_id), "group": "__new__", "new_group_name": "",
            "name": "", "direction": "sideways", "persons": "all", "conflict_policy": "newest", "schedule_minutes": "15",
            "delete_percent": "20", "contact_cap": "25000", "enabled": "1",
            "map_crm": ["name", "emails"], "map_store": ["name", "phones"]}
    groups_before = len(live_hub.emulator("google").groups(account))
    bad = admin.form_post(f"/i/{iid}/sync", form)
    assert bad.status_code == 400
    for text in ("give the sync a name", "name the new label", "one of two_way", "phones takes the CRM field phones"):
        assert text in bad.text, text
    with live_hub.services.db.begin() as s:
        assert s.scalar(select(ContactSync)) is None                   # nothing half-written
    assert len(live_hub.emulator("google").groups(account)) == groups_before  # and no label created
    form.update(name="Team", new_group_name="Acme team", direction="two_way", map_store=["name", "emails"])
    created = admin.form_post(f"/i/{iid}/sync", form)
    assert created.status_code == 200 and "Sync “Team” created with label “Acme team”" in created.text
    assert live_hub.emulator("google").group_by_name(account, "Acme team")
    sync_id = int(created.url.rstrip("/").rsplit("/", 1)[1])
    ran = admin.form_post(f"/i/{iid}/sync/{sync_id}/run", {}, csrf_from=f"/i/{iid}/sync/{sync_id}")
    assert "Sync started." in ran.text
    live_hub.run_jobs()
    page = admin.get(f"/i/{iid}/sync/{sync_id}")
    assert "<b>done</b>" in page.text and "created in Google Contacts 3" in page.text
    assert '<progress max="3" value="3">' in page.text
    assert "sync.done" in page.text                                   # the run log
    status = api(admin, "GET", f"/api/v1/installations/{iid}/sync/{sync_id}", iid).json()
    assert status["linked"] == 3 and status["last_run"]["progress"]["create_store"] == {"done": 3, "total": 3}


def test_api_create_change_conflicts_left_out_and_deletion_confirmation(live_hub):
    setup = make_setup(live_hub, conflict_policy="crm", delete_share=0.1)
    admin, iid, base = setup.admin, setup.iid, f"/api/v1/installations/{setup.iid}/sync"
    bad = api(admin, "POST", base, iid, json={"name": "x", "store_connection_id": 999, "group": "nope",
                                              "field_map": [{"crm": "x", "store": "name"}], "contact_cap": 10 ** 9})
    assert bad.status_code == 400
    fields = bad.json()["fields"]
    assert set(fields) >= {"store_connection_id", "group", "field_map[0]", "contact_cap"}
    labels = api(admin, "GET", base + "/labels", iid).json()["labels"]
    assert any(l["name"] == "Acme CRM" for ls in labels.values() for l in ls)
    changed = api(admin, "PATCH", f"{base}/{setup.sync_id}", iid, json={"contact_cap": setup.google.contact_count(setup.account) + 2})
    assert changed.status_code == 200, changed.text
    assert api(admin, "POST", f"{base}/{setup.sync_id}/run", iid).json()["queued"] is True
    live_hub.run_jobs()
    left = api(admin, "GET", f"{base}/{setup.sync_id}/left-out", iid).json()["left_out"]
    assert [l["name"] for l in left] == ["Tonis Kask"] and "cap is" in left[0]["reason"]
    page = admin.get(f"/i/{iid}/sync/{setup.sync_id}")
    assert "Tonis Kask" in page.text
    assert '<option value="org_name">' in page.text and "Preferred language</option>" in page.text  # CRM fields
    # a conflict, shown on the page and in the API
    persons = setup.persons()
    aino = persons["Aino Laine"]
    from tests.sync.test_engine import link_of
    rn = link_of(setup, aino["id"]).resource_name
    setup.pipedrive.update_person(aino["id"], {"name": "Aino CRM"})
    setup.google.update_contact(setup.account, rn, {"names": [{"givenName": "Aino", "familyName": "Google"}]})
    api(admin, "POST", f"{base}/{setup.sync_id}/run", iid)
    live_hub.run_jobs()
    [conflict] = api(admin, "GET", f"{base}/{setup.sync_id}/conflicts", iid).json()["conflicts"]
    assert conflict["field"] == "name" and conflict["winner"] == "crm"
    assert "Pipedrive" in admin.get(f"/i/{iid}/sync/{setup.sync_id}").text
    # two Google deletions of two linked: held, confirmed on the page
    for c in setup.label_contacts():
        setup.google.delete_contact(setup.account, c["resourceName"])
    from hub.sync import engine as engine_mod
    original = engine_mod.SyncEngine.__init__

    def no_minimum(self, *a, **kw):
        original(self, *a, **kw)
        self.delete_pause_min = 0
    engine_mod.SyncEngine.__init__ = no_minimum
    try:
        api(admin, "POST", f"{base}/{setup.sync_id}/run", iid)
        live_hub.run_jobs()
        page = admin.get(f"/i/{iid}/sync/{setup.sync_id}")
        assert "Deletions wait for your confirmation" in page.text and "2 Pipedrive person(s)" in page.text
        assert len(setup.persons()) == 3
        nothing = api(admin, "POST", f"{base}/{setup.sync_id}/deletions", iid, json={"confirm": "yes"})
        assert nothing.status_code == 400 and "confirm" in nothing.json()["fields"]
        done = admin.form_post(f"/i/{iid}/sync/{setup.sync_id}/deletions", {"decision": "confirm"},
                               csrf_from=f"/i/{iid}/sync/{setup.sync_id}")
        assert "2 deletion(s) confirmed" in done.text
        live_hub.run_jobs()
    finally:
        engine_mod.SyncEngine.__init__ = original
    assert set(setup.persons()) == {"Tonis Kask"}
    again = api(admin, "POST", f"{base}/{setup.sync_id}/deletions", iid, json={"confirm": True})
    assert again.status_code == 400 and again.json()["fields"] == {"pending_deletes": "nothing waits for confirmation"}


def test_other_installations_cannot_see_a_sync(live_hub):
    setup = make_setup(live_hub)
    stranger = live_hub.browser()
    r = stranger.get(f"/api/v1/installations/{setup.iid}/sync/{setup.sync_id}")
    assert r.status_code == 401
    r = setup.admin.get(f"/api/v1/installations/{setup.iid}/sync/{setup.sync_id + 1}")
    assert r.status_code == 404


def test_cli_run_prints_progress(live_hub):
    setup = make_setup(live_hub)
    runner = live_hub.app.test_cli_runner()
    out = runner.invoke(args=["sync", "run", str(setup.sync_id)])
    assert out.exit_code == 0, out.output
    assert "create_store   [##############################] 3/3" in out.output
    assert "done: created in Google Contacts 3" in out.output
    missing = runner.invoke(args=["sync", "run", "999"])
    assert missing.exit_code != 0 and "no sync 999" in missing.output
