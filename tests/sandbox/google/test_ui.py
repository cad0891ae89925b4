"""The sandbox pages, emulator helpers, persistence and thread safety."""
import threading

from hub.sandbox.common import SandboxState
from hub.sandbox.google import create_app

from .conftest import ANNA, BEN, new_person


def test_pages_show_accounts_labels_and_contacts(app, sandbox):
    client = app.test_client()
    index = client.get("/_sandbox/ui/")
    assert index.status_code == 200 and ANNA in index.text and BEN in index.text and "Kunden" in index.text
    aid = sandbox.accounts()[0]["id"]
    page = client.get(f"/_sandbox/ui/accounts/{aid}").text
    for text in ("Kunden", "José Ñúñez-Łęcki", "jose.nunez@acme.example", "+48 601 234 567", "My Contacts"):
        assert text in page
    assert client.get("/_sandbox/ui/accounts/nope").status_code == 404


def test_create_edit_delete_by_hand(app, sandbox):
    client = app.test_client()
    aid = sandbox.accounts()[1]["id"]
    partners = sandbox.group_by_name(BEN, "Partners")["resourceName"]
    resp = client.post(f"/_sandbox/ui/accounts/{aid}/contacts", data={
        "given_name": "Hand", "family_name": "Made", "emails": "hand@made.example", "phones": "+1 555 0100",
        "organization": "Crafts", "label": [partners]})
    assert resp.status_code == 302
    made = next(c for c in sandbox.contacts(BEN) if c["names"][0]["givenName"] == "Hand")
    assert {m["contactGroupMembership"]["contactGroupResourceName"] for m in made["memberships"]} == \
        {partners, "contactGroups/myContacts"}
    pid = made["resourceName"].split("/")[1]
    assert "hand@made.example" in client.get(f"/_sandbox/ui/accounts/{aid}/contacts/{pid}").text
    bad = client.post(f"/_sandbox/ui/accounts/{aid}/contacts/{pid}", data={"given_name": "Hand", "emails": "nope",
                                                                         "label": [partners]})
    assert "error=" in bad.headers["Location"]
    client.post(f"/_sandbox/ui/accounts/{aid}/contacts/{pid}/delete")
    assert made["resourceName"] not in {c["resourceName"] for c in sandbox.contacts(BEN)}


def test_labels_and_knobs_by_hand(app, sandbox, faults):
    client = app.test_client()
    aid = sandbox.accounts()[0]["id"]
    client.post(f"/_sandbox/ui/accounts/{aid}/labels", data={"name": "VIP"})
    vip = sandbox.group_by_name(ANNA, "VIP")
    assert vip is not None
    client.post(f"/_sandbox/ui/accounts/{aid}/labels/{vip['resourceName'].split('/')[1]}/delete")
    assert sandbox.group_by_name(ANNA, "VIP") is None
    client.post("/_sandbox/ui/faults", data={"latency_ms": "5", "burst_429": "3", "strict_refresh": "true"})
    assert faults.settings.burst_429 == 3 and faults.settings.strict_refresh is True
    assert "Next N API writes show up in sync listings one listing late" in client.get("/_sandbox/ui/").text
    client.post("/_sandbox/ui/faults", data={"late_echoes": "2", "rename_on_update": "1"})
    assert faults.knob("late_echoes") == 2 and faults.knob("rename_on_update") == 1
    assert client.post("/_sandbox/ui/sync-tokens/expire").status_code == 302


def test_state_survives_restart(tmp_path):
    path = tmp_path / "google.json"
    state = SandboxState(path)
    sb = create_app(state=state).extensions["sandbox"]
    rn = sb.create_contact(ANNA, new_person("Persisted"))["resourceName"]
    state.close()
    again = create_app(state=SandboxState(path)).extensions["sandbox"]
    assert again.contact(ANNA, rn)["names"][0]["givenName"] == "Persisted"
    assert again.contact_count(ANNA) == 6  # not re-seeded


def test_no_seed_option():
    sb = create_app(options={"seed": False, "accounts": [{"email": "c@x.example", "name": "C"}]}).extensions["sandbox"]
    assert [a["email"] for a in sb.accounts()] == ["c@x.example"]
    assert sb.contacts("c@x.example") == [] and sb.groups("c@x.example") == []


def test_concurrent_creates_over_http(anna, sandbox):
    errors = []

    def worker(n):
        for i in range(5):
            resp = anna.post("/v1/people:createContact", json=new_person(f"T{n}-{i}"))
            if resp.status_code != 200:
                errors.append(resp.text)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not errors
    contacts = sandbox.contacts(ANNA)
    assert len(contacts) == 35 and len({c["resourceName"] for c in contacts}) == 35
