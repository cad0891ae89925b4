"""Deals, persons, companies and tasks read as neutral records; Polish decimals as numbers; the
catalogs rules pick from (sales processes with stages, users, task types)."""
from __future__ import annotations

import pytest

from hub.connectors.contract.records import Carry, SourceContext
from hub.connectors.livespace import CONNECTOR
from hub.connectors.livespace.records import decimal_of
from hub.errors import Fatal

from .test_targets import catalog_of


@pytest.fixture
def source(client, emulator):
    return CONNECTOR.source(SourceContext(client, emulator[0], catalog_of(client)))


def test_a_deal_reads_with_its_process_stage_owner_and_parties(source, crm):
    deal = next(d for d in crm.deals() if d["name"].endswith("Acme"))
    crm.move_stage(deal["id"], crm.processes()[0]["stages"][2]["id"])
    warnings: list[str] = []
    record = source.load("deal", deal["id"], None, Carry(contacts=True), warnings)
    assert (record.title, record.status, record.pipeline, record.stage) == (deal["name"], "open", "Sprzedaż B2B", "Negocjacje")
    assert record.amount == "12,500 PLN" and record.owner == "Bartek Sprzedawca"
    assert record.org == {"name": "Acme Sp. z o.o."} and warnings == []
    assert record.url.endswith(f"/deal/{deal['id']}")
    assert source.value("deal", record.data, "deal.value") == 12500.0
    assert source.value("deal", record.data, "deal.stage_id") == record.data["stage_id"]


def test_persons_companies_and_tasks_read_too(source, crm):
    person = source.recent("person", 5)[0]
    assert person.title == "Jan Kowalski" and person.person["email"] == "jan@acme.test"
    assert source.recent("company", 5)[0].title == "Acme Sp. z o.o."
    todo = crm.add_todo({"title": "Call back"}, crm.admin())
    crm.complete_todo(todo["id"], crm.admin()["id"])
    task = source.load("task", todo["id"], None, Carry(), [])
    assert (task.title, task.status) == ("Call back", "completed")
    assert source.value("task", task.data, "task.is_completed") is True
    with pytest.raises(Fatal, match="no lead objects"):
        source.load("lead", "x", None, Carry(), [])


def test_fields_offer_processes_stages_and_types(source, crm):
    keys = {f.key: f for f in source.fields("deal")}
    assert {o[1] for o in keys["deal.process_id"].options} == {"Sprzedaż B2B", "Odnowienia"}
    assert "Sprzedaż B2B: Umowa" in {o[1] for o in keys["deal.stage_id"].options}
    types = {f.key: f for f in source.fields("task")}["task.type_id"].options
    assert [t[1] for t in types] == ["Email", "Offer", "Project", "Meeting", "Online meeting"]


@pytest.mark.parametrize("text, number", [("1 234,50", "1234.50"), ("12 500,00", "12500.00"), ("0,5", "0.5"),
                                          ("1.234,5", "1234.5"), (99, "99"), ("abc", None), ("", None)])
def test_polish_decimals(text, number):
    value = decimal_of(text)
    assert (str(value) if value is not None else None) == number


def test_catalogs(client):
    pipelines = CONNECTOR.catalogs["pipelines"].load(client)
    assert [s["name"] for s in pipelines[0]["stages"]] == ["Kontakt", "Oferta", "Negocjacje", "Umowa"]
    stages = CONNECTOR.catalogs["stages"].load(client)
    assert {s["pipeline"] for s in stages} == {"Sprzedaż B2B", "Odnowienia"}
    assert [u["email"] for u in CONNECTOR.catalogs["users"].load(client)][0] == "anna@demo.test"
