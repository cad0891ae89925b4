"""The sandbox CRM page: forms go through the emulator methods, so webhooks fire as for API edits."""
from __future__ import annotations

import io

import pytest


@pytest.fixture
def client(app):
    return app.test_client()


def test_pages_render(client):
    for path in ("/", "/deals/100", "/persons", "/leads", "/webhooks", "/installs", "/faults"):
        resp = client.get("/_sandbox/ui" + path)
        assert resp.status_code == 200, path
        assert b"Acme Sandbox" in resp.data


def test_ui_deal_changes_fire_webhooks(client, emu, api, admin, receiver):
    api.post(f"{api.server.url}/api/v1/webhooks", headers=admin.headers, json={
        "subscription_url": receiver.url + "/hooks", "event_action": "*", "event_object": "*", "name": "all"})
    ben = emu.users()[1]["id"]
    client.post("/_sandbox/ui/actor", data={"actor": str(ben)})
    resp = client.post("/_sandbox/ui/deals", data={"title": "From the UI", "stage_id": "1", "value": "1200",
                                                   "currency": "EUR", "org_id": "300"})
    assert resp.status_code == 302
    deal = max(emu.data["pd_deals"].values(), key=lambda d: d["id"])
    client.post(f"/_sandbox/ui/deals/{deal['id']}/stage", data={"stage_id": "2"})
    client.post(f"/_sandbox/ui/deals/{deal['id']}/status", data={"status": "lost", "lost_reason": "Budget"})
    client.post("/_sandbox/ui/leads", data={"title": "UI lead", "person_id": "500"})
    reqs = receiver.wait_for(lambda rs: len(rs) >= 4, path="/hooks")
    metas = [(r["json"]["meta"]["entity"], r["json"]["meta"]["action"]) for r in reqs]
    assert metas == [("deal", "create"), ("deal", "change"), ("deal", "change"), ("lead", "create")]
    assert all(r["json"]["meta"]["change_source"] == "app" and r["json"]["meta"]["user_id"] == str(ben) for r in reqs)
    assert reqs[2]["json"]["data"]["lost_reason"] == "Budget"


def test_ui_person_notes_files_and_faults(client, emu, faults):
    resp = client.post("/_sandbox/ui/persons", data={"name": "Lea Kurg", "emails": "work: lea@x.example\nhome: lea@y.example*",
                                                     "phones": "+372 555 1\nmobile: +372 555 2"})
    assert resp.status_code == 302
    lea = next(p for p in emu.data["pd_persons"].values() if p["name"] == "Lea Kurg")
    assert [(e["label"], e["primary"]) for e in lea["emails"]] == [("work", False), ("home", True)]
    assert [e["label"] for e in lea["phones"]] == ["work", "mobile"]
    client.post("/_sandbox/ui/deals/101/notes", data={"content": "Pin me"})
    note = max(emu.data["pd_notes"].values(), key=lambda n: n["id"])
    client.post(f"/_sandbox/ui/notes/{note['id']}/pin", data={"pinned": "1"})
    assert emu.data["pd_notes"][str(note["id"])]["pinned_to_deal_flag"] is True
    client.post("/_sandbox/ui/deals/101/files", data={"file": (io.BytesIO(b"hello"), "hello.txt")},
                content_type="multipart/form-data")
    stored = max(emu.data["pd_files"].values(), key=lambda f: f["id"])
    assert emu.file_content(stored["id"])[1] == b"hello" and stored["deal_id"] == 101
    client.post("/_sandbox/ui/faults", data={"burst_429": "2", "webhooks_paused": "1", "latency_ms": "0"})
    assert faults.settings.burst_429 == 2 and faults.settings.webhooks_paused is True
    bad = client.post("/_sandbox/ui/deals", data={"title": "", "stage_id": "1"})
    assert bad.status_code == 400 and b"title is required" in bad.data


def test_every_dropdown_lists_what_the_account_has(client, emu):
    """The forms' selects (stage, person, organization, owner) come from the account, so a deal can be
    moved and a lead added by clicking alone."""
    import re

    def options(path: str, name: str) -> set[str]:
        page = client.get("/_sandbox/ui" + path).get_data(as_text=True)
        select = re.search(rf'<select name="{name}">(.*?)</select>', page, re.S)
        assert select, (path, name)
        return set(re.findall(r'<option value="([^"]+)"', select.group(1)))

    stages = {str(s["id"]) for s in emu.data["pd_stages"].values()}
    persons = {str(p["id"]) for p in emu.data["pd_persons"].values() if not p.get("is_deleted")}
    orgs = {str(o["id"]) for o in emu.data["pd_orgs"].values()}
    users = {str(u["id"]) for u in emu.users()}
    assert stages and persons and orgs and users
    assert options("/", "stage_id") == stages
    assert options("/", "person_id") == persons and options("/", "org_id") == orgs
    assert options("/", "owner_id") == users
    assert options("/deals/100", "stage_id") == stages
    assert options("/leads", "person_id") == persons and options("/leads", "organization_id") == orgs


def test_saving_a_person_as_the_form_shows_it_keeps_the_organization(client, emu):
    """The edit form must show (and so send back) every field it can change: before, its empty
    organization select erased the person's organization on every save."""
    import re

    person = next(p for p in emu.data["pd_persons"].values() if p.get("org_id") and not p.get("is_deleted"))
    page = client.get("/_sandbox/ui/persons").get_data(as_text=True)
    form = re.search(rf'action="[^"]*/persons/{person["id"]}">(.*?)</form>', page, re.S).group(1)
    chosen = re.search(r'<select name="org_id">.*?<option value="([^"]*)" selected', form, re.S)
    assert chosen and chosen.group(1) == str(person["org_id"])
    sent = {"name": person["name"], "emails": "", "phones": "", "org_id": chosen.group(1)}
    assert client.post(f"/_sandbox/ui/persons/{person['id']}", data=sent).status_code in (200, 302)
    saved = next(p for p in emu.data["pd_persons"].values() if p["id"] == person["id"])
    assert saved["org_id"] == person["org_id"]
