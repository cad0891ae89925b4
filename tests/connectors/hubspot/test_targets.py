"""HubSpot as a rule's target, against the emulator: tasks, leads and lead moves, each once per
effect key however often a step is retried; settings checked against the account's catalogs."""
from __future__ import annotations

import uuid

import pytest

from hub.connectors.contract.records import Carry, SourceContext
from hub.connectors.contract.targets import TargetContext, TaskSpec
from hub.connectors.hubspot import CONNECTOR
from hub.errors import Fatal


def catalog(client):
    cache = {}

    def load(name):
        if name not in cache:
            cache[name] = CONNECTOR.catalogs[name].load(client)
        return cache[name]
    return load


def context(hs):
    return TargetContext(hs.client, hs.api_base, catalog(hs.client))


def record(hs, kind, object_id):
    source = CONNECTOR.source(SourceContext(hs.client, hs.api_base, catalog(hs.client)))
    return source.load(kind, str(object_id), None, Carry(), [])


def first(hs, kind, **props):
    return next(r for r in hs.emu.records(hs.hub_id, kind) if all(r["properties"].get(k) == v for k, v in props.items()))


def key() -> str:
    return f"test:hubspot:{uuid.uuid4().hex}"


def test_a_task_on_a_deal_once_per_effect_key(hs):
    deal = first(hs, "deals", dealname="Northwind web shop")
    target = CONNECTOR.targets["task"].target(context(hs))
    spec = TaskSpec(name="Kick-off: Northwind web shop", notes_html="<p>Call them</p>", due="2026-12-24",
                    settings=hs.step_settings("task"), record=record(hs, "deal", deal["id"]))
    effect = key()
    before = hs.count("task")
    made = target.ensure(spec, effect, first_try=True)
    again = target.ensure(spec, effect, first_try=False)
    assert made.created and not again.created and again.external_id == made.external_id
    assert hs.count("task") == before + 1
    task = hs.emu.record(hs.hub_id, "tasks", made.external_id)
    props = task["properties"]
    assert (props["hs_task_subject"], props["hs_task_priority"], props["hs_task_type"]) == \
        ("Kick-off: Northwind web shop", "HIGH", "TODO")
    assert props["hs_timestamp"] in ("1766534400000", "2026-12-24T00:00:00.000Z")
    assert str(deal["id"]) in hs.emu.associated_ids(hs.hub_id, "tasks", made.external_id, "deals")
    contacts = hs.emu.associated_ids(hs.hub_id, "deals", deal["id"], "contacts")
    assert set(contacts) <= set(hs.emu.associated_ids(hs.hub_id, "tasks", made.external_id, "contacts"))
    other = target.ensure(spec, key(), first_try=False)        # another effect: another task
    assert other.created and hs.count("task") == before + 2
    assert target.status(made.external_id) == "open"
    assert target.complete(made.external_id) == "completed" == target.status(made.external_id)


def test_a_lead_for_the_contact_once_owned_by_the_contacts_owner(hs):
    thomas = first(hs, "contacts", firstname="Maria")
    target = CONNECTOR.targets["lead"].target(context(hs))
    spec = TaskSpec(name="Maria Anders - MQL", settings={"pipeline_id": "lead-pipeline-id"},
                    record=record(hs, "person", thomas["id"]))
    effect = key()
    before = hs.count("lead")
    made = target.ensure(spec, effect, first_try=True)
    again = target.ensure(spec, effect, first_try=False)
    assert made.created and not again.created and again.external_id == made.external_id
    assert hs.count("lead") == before + 1
    lead = hs.emu.record(hs.hub_id, "leads", made.external_id)["properties"]
    assert (lead["hs_lead_name"], lead["hs_pipeline"], lead["hs_pipeline_stage"]) == \
        ("Maria Anders - MQL", "lead-pipeline-id", "new-stage-id")
    assert lead["hubspot_owner_id"] == thomas["properties"]["hubspot_owner_id"]
    assert str(made.external_id) in hs.emu.associated_ids(hs.hub_id, "contacts", thomas["id"], "leads")


def test_a_lead_the_hub_cannot_create_fails_with_a_reason(hs):
    target = CONNECTOR.targets["lead"].target(context(hs))
    deal = first(hs, "tasks")
    with pytest.raises(Fatal, match="no longer exists"):
        target.ensure(TaskSpec(name="x", settings={"pipeline_id": "gone-pipeline"},
                               record=record(hs, "task", deal["id"])), key(), first_try=True)


def test_a_lead_moved_only_from_the_stage_the_step_names(hs):
    lead = first(hs, "leads")
    target = CONNECTOR.targets["lead_stage"].target(context(hs))
    wrong = target.ensure(TaskSpec(name="", settings={"to_stage_id": "connected-stage-id",
                                                      "from_stage_id": "new-stage-id"},
                                   record=record(hs, "lead", lead["id"])), key(), first_try=True)
    assert not wrong.created and "not moved" in wrong.name
    assert hs.emu.record(hs.hub_id, "leads", lead["id"])["properties"]["hs_pipeline_stage"] == "attempting-stage-id"
    moved = target.ensure(TaskSpec(name="", settings={"to_stage_id": "connected-stage-id",
                                                      "from_stage_id": "attempting-stage-id"},
                                   record=record(hs, "lead", lead["id"])), key(), first_try=True)
    assert moved.created
    assert hs.emu.record(hs.hub_id, "leads", lead["id"])["properties"]["hs_pipeline_stage"] == "connected-stage-id"


def test_settings_are_checked_against_the_accounts_catalogs(hs):
    load = catalog(hs.client)
    assert CONNECTOR.targets["task"].validate({"type": "FAX", "priority": "urgent", "owner_id": "1"}, load, True) == {
        "type": "'FAX' is not a task type of this HubSpot account", "priority": "priority is LOW, MEDIUM or HIGH",
        "owner_id": "this owner is not an active owner of the HubSpot account"}
    assert CONNECTOR.targets["lead"].validate({}, load, True) == {"pipeline_id": "pick the lead pipeline the lead starts in"}
    assert "stage_id" in CONNECTOR.targets["lead"].validate({"pipeline_id": "lead-pipeline-id", "stage_id": "2001"},
                                                             load, True)
    assert CONNECTOR.targets["lead_stage"].validate({"to_stage_id": "nope"}, load, True) == {
        "to_stage_id": "this lead stage does not exist in HubSpot"}
    assert CONNECTOR.targets["lead_stage"].validate({}, None, False) == {}


def test_catalogs_read_the_account(hs):
    load = catalog(hs.client)
    stages = {s["id"]: s for s in load("lead_stages")}
    assert stages["unqualified-stage-id"]["state"] == "disqualified"
    assert [s["order"] for p in load("lead_pipelines") for s in p["stages"]][:3] == [0, 1, 2]
    assert {s["outcome"] for s in load("deal_stages")} >= {"won", "lost", None}
    assert "marketingqualifiedlead" in {s["id"] for s in load("lifecycle_stages")}
    owners = load("owners")
    assert owners and all(o["id"] and o["name"] for o in owners)


def test_records_read_with_custom_fields_and_names(hs):
    deal = first(hs, "deals", dealname="Northwind web shop")
    source = CONNECTOR.source(SourceContext(hs.client, hs.api_base, catalog(hs.client)))
    rec = source.load("deal", str(deal["id"]), None, Carry(contacts=True), [])
    assert (rec.title, rec.pipeline, rec.status) == ("Northwind web shop", "Sales Pipeline", "open")
    assert rec.amount == "4,800" and rec.owner and rec.person and rec.org["name"] == "Northwind Traders"
    assert rec.url.endswith(f"/record/0-3/{deal['id']}")
    fields = {f.key: f for f in source.fields("deal")}
    assert fields["dealstage"].options and fields["hubspot_owner_id"].options
    assert source.value("deal", rec.data, "amount") == 4800.0
    assert source.value("deal", {"x": "a;b"}, "x") == ["a", "b"] and source.value("deal", {"x": ""}, "x") is None
