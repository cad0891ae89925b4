"""PipedriveClient against the live emulator: every method, paging, filters, custom fields, files."""
from __future__ import annotations

import os
import re
from datetime import datetime, timezone

import pytest

from hub.connectors.pipedrive import resources
from hub.connectors.pipedrive.client import PipedriveClient
from hub.errors import Fatal

HASH = re.compile(r"^[0-9a-f]{40}$")


class CountingSession:
    """Wraps the client's session to count requests per path (to prove paging really happened)."""

    def __init__(self, http):
        self.http, self.calls = http, []
        self._request = http.request

        def request(method, url, **kw):
            self.calls.append((method, url, dict(kw.get("params") or {})))
            return self._request(method, url, **kw)
        http.request = request


def test_me_and_users(client, emu):
    me = client.me()
    assert me["id"] == emu.admin_id() and me["company_id"] == emu.company()["id"]
    assert {"app": "global", "admin": True}.items() <= me["access"][0].items()
    assert [u["id"] for u in client.users()] == [u["id"] for u in emu.users()]


def test_pipelines_and_stages(client, emu):
    pipelines = client.pipelines()
    assert [p["name"] for p in pipelines] == ["Sales", "Renewals"]
    sales = pipelines[0]["id"]
    stages = client.stages(pipeline_id=sales)
    assert stages and all(s["pipeline_id"] == sales for s in stages)
    assert len(client.stages()) == len(emu.data["pd_stages"])


def test_iter_deals_follows_cursors_across_pages(server, tokens, emu):
    for n in range(11):
        emu.create_deal(f"Paged deal {n}", stage_id=1, value=100 + n)
    client = PipedriveClient(server.url, tokens, page_size=4, rate_limit=None)
    counter = CountingSession(client.http)
    deals = client.iter_deals()
    assert counter.calls == []                      # a generator: nothing fetched until iterated
    got = list(deals)
    expected = {d["id"] for d in emu.data["pd_deals"].values() if not d["is_deleted"]}
    assert len(got) == len(expected) and {d["id"] for d in got} == expected
    pages = [c for c in counter.calls if c[1].endswith("/api/v2/deals")]
    assert len(pages) == -(-len(expected) // 4) >= 4
    assert "cursor" not in pages[0][2] and all("cursor" in p[2] for p in pages[1:])
    assert all(p[2]["limit"] == 4 for p in pages)


def test_iter_deals_and_persons_updated_since(client, emu, clock):
    before = list(client.iter_deals())
    clock.advance(120)
    since = datetime.fromtimestamp(clock.now - 1, tz=timezone.utc)
    moved = emu.move_stage(before[0]["id"], 3)
    fresh = emu.create_deal("Fresh deal", stage_id=2)
    person = emu.create_person("Later Person", emails=["later@example.com"])
    deals = list(client.iter_deals(updated_since=since))
    assert [d["id"] for d in deals] == [moved["id"], fresh["id"]]     # (update_time, id) ascending
    assert [p["id"] for p in client.iter_persons(updated_since=since)] == [person["id"]]
    assert [d["id"] for d in client.iter_deals(updated_since=since, stage_id=3)] == [moved["id"]]
    won = [d["status"] for d in client.iter_deals(status=["won", "lost"])]
    assert sorted(won) == ["lost", "won"]


def test_deal_custom_fields_and_update(client, emu):
    fields = {f["field_name"]: f for f in client.deal_fields()}
    tier, seats = fields["Tier"], fields["Seats"]
    assert HASH.match(tier["field_code"]) and tier["is_custom_field"] and tier["field_type"] == "enum"
    assert [o["label"] for o in tier["options"]] == ["Bronze", "Silver", "Gold"]
    assert fields["Title"]["field_code"] == "title" and not fields["Title"]["is_custom_field"]
    deal = next(d for d in client.iter_deals() if d["title"].startswith("Nordwind GmbH - 40"))
    assert set(deal["custom_fields"]) == {f["field_code"] for f in fields.values() if f["is_custom_field"]}
    assert deal["custom_fields"][tier["field_code"]] == tier["options"][2]["id"]
    silver = tier["options"][1]["id"]
    updated = client.update_deal(deal["id"], value=21000, custom_fields={tier["field_code"]: silver,
                                                                         seats["field_code"]: 45})
    assert updated["value"] == 21000 and updated["custom_fields"][tier["field_code"]] == silver
    again = client.deal(deal["id"], include_fields=["first_won_time"])
    assert again["custom_fields"][seats["field_code"]] == 45 and "first_won_time" in again
    person_fields = client.person_fields()
    assert any(f["is_custom_field"] and HASH.match(f["field_code"]) for f in person_fields)


def test_person_lifecycle_and_organization(client, emu):
    org = client.organization(next(iter(emu.data["pd_orgs"].values()))["id"])
    assert org["name"] == "Nordwind GmbH"
    created = client.create_person("Mia Muster", emails=["mia@example.com", "m@home.example"],
                                   phones=[{"value": "+49 1", "label": "mobile", "primary": True}], org_id=org["id"])
    assert created["emails"][0] == {"value": "mia@example.com", "primary": True, "label": "work"}
    assert created["emails"][1]["primary"] is False and created["org_id"] == org["id"]
    updated = client.update_person(created["id"], name="Mia Muster-Berg", emails=["mia.berg@example.com"])
    assert updated["last_name"] == "Muster-Berg" and [e["value"] for e in updated["emails"]] == ["mia.berg@example.com"]
    assert client.person(created["id"])["name"] == "Mia Muster-Berg"
    assert client.delete_person(created["id"]) == created["id"]
    with pytest.raises(Fatal) as gone:
        client.person(created["id"])
    assert gone.value.status == 404 and "Person not found" in str(gone.value)
    assert created["id"] not in [p["id"] for p in client.iter_persons()]


def test_leads_offset_paging(server, tokens, emu):
    person = next(iter(emu.data["pd_persons"].values()))["id"]
    for n in range(5):
        emu.add_lead(f"Lead {n}", person_id=person, amount=100 * n)
    client = PipedriveClient(server.url, tokens, page_size=2, rate_limit=None)
    counter = CountingSession(client.http)
    leads = list(client.iter_leads())
    assert len(leads) == 6 and len({l["id"] for l in leads}) == 6
    assert [c[2]["start"] for c in counter.calls] == [0, 2, 4]
    one = client.lead(leads[-1]["id"])
    assert one["title"] == "Lead 4" and one["value"] == {"amount": 400, "currency": "EUR"}
    with pytest.raises(Fatal) as missing:
        client.lead("00000000-0000-4000-8000-000000000000")
    assert missing.value.status == 404 and "requested lead not found" in str(missing.value)


def test_notes_files_and_streamed_download(client, emu):
    deal = next(d for d in emu.data["pd_deals"].values() if d["title"].startswith("Nordwind GmbH - 40"))
    pinned = client.deal_notes(deal["id"])
    assert len(pinned) == 1 and pinned[0]["pinned_to_deal_flag"] is True and "<b>Gold</b>" in pinned[0]["content"]
    assert len(client.deal_notes(deal["id"], pinned_only=False)) == 2
    content = os.urandom(300 * 1024)
    emu.attach_file(deal["id"], "contract.bin", content)
    files = client.deal_files(deal["id"])
    assert [f["file_name"] for f in files] == ["nordwind-quote.pdf", "contract.bin"]
    chunks = list(client.download_file(files[1]["id"], chunk_size=64 * 1024))
    assert len(chunks) >= 5 and max(map(len, chunks)) <= 64 * 1024 and b"".join(chunks) == content


def test_webhook_create_list_delete(client, receiver):
    hook = client.create_webhook(receiver.url + "/hooks/pd", "*", "deal", "relay-hub", "pw", "Relay Hub deals")
    assert hook["type"] == "application" and hook["version"] == "2.0" and hook["http_auth_user"] == "relay-hub"
    assert [w["id"] for w in client.webhooks()] == [hook["id"]]
    client.delete_webhook(hook["id"])
    assert client.webhooks() == []
    with pytest.raises(Fatal) as again:
        client.delete_webhook(hook["id"])
    assert again.value.status == 404 and "id: not found" in str(again.value)
    with pytest.raises(Fatal) as bad:
        client.create_webhook("ftp://nowhere", "change", "deal", "u", "p", "bad")
    assert bad.value.status == 400 and "subscription_url" in str(bad.value)


def test_resources_for_dropdowns(client, emu):
    pipelines = resources.pipelines_with_stages(client)
    assert [p["name"] for p in pipelines] == ["Sales", "Renewals"]
    assert [s["name"] for s in pipelines[0]["stages"]] == ["Qualified", "Contact made", "Proposal made",
                                                           "Negotiations started"]
    deal_fields = {f["label"]: f for f in resources.deal_field_catalog(client)}
    assert deal_fields["Tier"]["custom"] and HASH.match(deal_fields["Tier"]["key"])
    assert [o["label"] for o in deal_fields["Tier"]["options"]] == ["Bronze", "Silver", "Gold"]
    assert deal_fields["Title"] == {"key": "title", "label": "Title", "type": "varchar", "options": [], "custom": False}
    people = {f["label"]: f for f in resources.person_field_catalog(client)}
    assert people["Preferred language"]["custom"] and people["Preferred language"]["type"] == "varchar"
    # cached: a second look costs no API call, refresh=True does
    counter = CountingSession(client.http)
    resources.deal_field_catalog(client)[0]["label"] = "mutated copy"
    assert resources.deal_field_catalog(client)[0]["label"] != "mutated copy" and counter.calls == []
    resources.pipelines_with_stages(client, refresh=True)
    assert len(counter.calls) == 2
