"""Pipedrive's CRM side of the contract: catalogs, neutral records for deals, leads, persons and
organizations (names from catalogs, custom fields by label), the preview's picker, files, fields."""
from __future__ import annotations

import pytest

from hub.connectors import connector
from hub.connectors.contract.records import Carry, SourceContext
from hub.connectors.pipedrive.catalogs import CATALOGS
from hub.errors import Fatal

ALL = Carry(contacts=True, notes=True, attachments=True)


@pytest.fixture
def loads() -> list[str]:
    return []


@pytest.fixture
def catalog(client, loads):
    cache: dict = {}

    def load(name: str):
        if name not in cache:
            loads.append(name)
            cache[name] = CATALOGS[name].load(client)
        return cache[name]
    return load


@pytest.fixture
def source(client, server, catalog):
    return connector("pipedrive").source(SourceContext(client=client, api_base=server.url, catalog=catalog))


def deal(emu, title_start: str) -> dict:
    return next(d for d in emu.data["pd_deals"].values() if d["title"].startswith(title_start))


def test_catalogs_load(catalog, emu):
    pipelines = catalog("pipelines")
    assert [p["name"] for p in pipelines] == ["Sales", "Renewals"]
    assert [s["name"] for s in pipelines[0]["stages"]] == ["Qualified", "Contact made", "Proposal made",
                                                           "Negotiations started"]
    assert all(isinstance(s["id"], str) for p in pipelines for s in p["stages"])
    stages = catalog("stages")
    assert len(stages) == 7 and stages[4] == {**stages[4], "name": "Upcoming", "pipeline": "Renewals"}
    assert {u["name"] for u in catalog("users")} == {"Ada Admin", "Ben Seller", "Cleo Closer", "Dev Ops"}
    tier = next(f for f in catalog("deal_fields") if f["label"] == "Tier")
    assert tier["custom"] and tier["type"] == "enum" and [o["label"] for o in tier["options"]] == ["Bronze", "Silver", "Gold"]
    assert len(tier["key"]) == 40
    assert [f["label"] for f in catalog("person_fields") if f["custom"]] == ["Preferred language"]


def test_a_deal_read_now_with_everything_carried(source, emu, server, loads):
    d = deal(emu, "Nordwind GmbH - 40")
    warnings: list[str] = []
    record = source.load("deal", str(d["id"]), None, ALL, warnings)
    assert warnings == []
    assert (record.kind, record.id, record.title) == ("deal", str(d["id"]), "Nordwind GmbH - 40 seats renewal")
    assert record.url == f"{server.url}/deal/{d['id']}"
    assert (record.status, record.amount) == ("open", "18,400 EUR")
    assert (record.pipeline, record.stage, record.owner) == ("Sales", "Contact made", "Ben Seller")
    assert record.person["name"] == "Katrin Vogel" and record.org["name"] == "Nordwind GmbH"
    assert [n["content"] for n in record.notes] == ["<p>Procurement wants the <b>Gold</b> tier, decision in December.</p>"]
    assert record.notes[0]["pinned"] is True
    [f] = record.files
    assert (f["name"], f["mime"]) == ("nordwind-quote.pdf", "application/pdf") and f["size"] > 0
    assert record.fields == {"Contract number": "NW-2026-118", "Tier": "Gold", "Seats": "40", "Modules": "CRM"}
    assert record.raw == record.data and record.data["id"] == d["id"]
    assert b"".join(source.file_chunks(f)).startswith(b"%PDF-1.4")
    # names come from the catalogs, each loaded once however many records are read
    source.load("deal", str(d["id"]), None, Carry(), [])
    assert sorted(loads) == ["deal_fields", "pipelines", "users"]


def test_the_events_state_is_used_as_is_and_webhook_shapes_read_the_same(source, emu):
    d = deal(emu, "Nordwind GmbH - 40")
    tier = next(f for f in emu.fields("deal") if f["name"] == "Tier")
    gold = tier["options"][2]["id"]
    current = {"id": d["id"], "title": "As the event saw it", "status": "won", "value": 100, "currency": "USD",
               "pipeline_id": d["pipeline_id"], "stage_id": d["stage_id"], "owner_id": d["owner_id"],
               "custom_fields": {tier["key"]: {"type": "enum", "id": gold}}}
    record = source.load("deal", str(d["id"]), current, Carry(), [])
    assert (record.title, record.status, record.amount) == ("As the event saw it", "won", "100 USD")
    assert record.fields == {"Tier": "Gold"} and record.person is None and record.notes == []
    assert source.value("deal", current, tier["key"]) == gold
    assert source.value("deal", {"custom_fields": {tier["key"]: gold}}, tier["key"]) == gold


def test_a_lead_a_person_and_an_organization(source, emu, server):
    lead = next(iter(emu.data["pd_leads"].values()))
    record = source.load("lead", lead["id"], None, ALL, [])
    assert (record.title, record.status, record.amount, record.owner) == (
        "Inbound: Parnu Logistics - 25 seats", "open", "9,000 EUR", "Cleo Closer")
    assert record.url == f"{server.url}/leads/inbox/{lead['id']}"
    assert record.person["name"] == "Tonis Kask" and record.org["name"] == "Parnu Logistics"
    assert record.files == []
    person = next(p for p in emu.data["pd_persons"].values() if p["name"] == "Katrin Vogel")
    p = source.load("person", str(person["id"]), None, ALL, [])
    assert (p.title, p.owner, p.url) == ("Katrin Vogel", "Ben Seller", f"{server.url}/person/{person['id']}")
    assert p.person["emails"][0]["value"] == "katrin.vogel@nordwind.example" and p.org["name"] == "Nordwind GmbH"
    assert source.value("person", p.data, "emails") == ["katrin.vogel@nordwind.example", "k.vogel@mail.example"]
    org = next(o for o in emu.data["pd_orgs"].values() if o["name"] == "Lumo Oy")
    o = source.load("organization", str(org["id"]), None, ALL, [])
    assert (o.title, o.owner, o.org["name"], o.person) == ("Lumo Oy", "Cleo Closer", "Lumo Oy", None)


def test_missing_contacts_and_names_are_warnings_not_failures(source, emu, client, monkeypatch):
    d = deal(emu, "Lumo Oy - pilot")
    emu.delete_person(d["person_id"], actor=emu.admin_id(), source="app")
    warnings: list[str] = []
    record = source.load("deal", str(d["id"]), None, Carry(contacts=True), warnings)
    assert record.person is None and record.org["name"] == "Lumo Oy"
    assert warnings == [f"person {d['person_id']} no longer exists in Pipedrive"]

    def refused(name):
        raise Fatal("pipedrive 403: Scope and URL mismatch", 403)
    source.ctx = type(source.ctx)(client=client, api_base=source.ctx.api_base, catalog=refused)
    warnings = []
    record = source.load("deal", str(d["id"]), None, Carry(), warnings)
    assert record.owner is None and record.pipeline is None and record.title.startswith("Lumo")
    assert len(warnings) == 3 and "users is unavailable: pipedrive 403" in " ".join(warnings)


def test_unknown_kinds_and_ids_are_clear_400s(source):
    with pytest.raises(Fatal) as err:
        source.load("invoice", "1", None, Carry(), [])
    assert err.value.status == 400 and "invoice" in str(err.value)
    with pytest.raises(Fatal) as err:
        source.load("deal", "abc", None, Carry(), [])
    assert err.value.status == 400
    with pytest.raises(Fatal) as err:
        source.load("deal", "999999", None, Carry(), [])
    assert err.value.status == 404


def test_recent_lists_the_latest_updated_first(source, emu, clock):
    d = deal(emu, "Parnu Logistics - fleet")
    clock.advance(60)
    emu.update_deal(d["id"], {"title": "Parnu Logistics - fleet tracking v2"}, actor=emu.admin_id(), source="app")
    recent = source.recent("deal", limit=3)
    assert len(recent) == 3 and recent[0].title == "Parnu Logistics - fleet tracking v2"
    assert recent[0].pipeline == "Sales" and recent[0].notes == []
    assert [r.title for r in source.recent("lead")] == ["Inbound: Parnu Logistics - 25 seats"]
    assert {r.title for r in source.recent("person", 10)} == {"Katrin Vogel", "Aino Laine", "Tonis Kask"}
    assert len(source.recent("organization", 2)) == 2


def test_fields_list_standard_and_custom_fields_with_types_and_options(source, catalog):
    fields = {f.label: f for f in source.fields("deal")}
    assert fields["Value"].type == "money" and fields["Value"].key == "value" and not fields["Value"].custom
    assert ("won", "Won") in fields["Status"].options
    assert [label for _, label in fields["Pipeline"].options] == ["Sales", "Renewals"]
    assert ("Sales: Qualified") in [label for _, label in fields["Stage"].options]
    assert "Ben Seller" in [label for _, label in fields["Owner"].options]
    tier, modules, seats = fields["Tier"], fields["Modules"], fields["Seats"]
    assert tier.custom and tier.type == "enum" and [label for _, label in tier.options] == ["Bronze", "Silver", "Gold"]
    assert modules.type == "set" and seats.type == "number" and fields["Contract number"].type == "text"
    assert len(tier.key) == 40
    lead = {f.label for f in source.fields("lead")}
    assert {"Title", "Value", "Tier", "Modules"} <= lead and "Pipeline" not in lead
    assert "Preferred language" in {f.label for f in source.fields("person")}
    assert {f.key for f in source.fields("organization")} == {"name", "address", "owner_id", "add_time"}
