"""Bitrix24's records, catalogs and task step against the emulator's demo portal: names from the
catalogs, the deal's contact and company read in one batch, custom (UF_) fields, conditions'
values; a task linked to the deal once per effect key, control on completion, statuses."""
from __future__ import annotations

from hub.connectors.bitrix24 import CONNECTOR
from hub.connectors.bitrix24.targets import validate_task, xml_id
from hub.connectors.contract.records import Carry, SourceContext
from hub.connectors.contract.targets import TargetContext, TaskSpec

PORTAL = "demo"


def catalog_of(client):
    cache = {}

    def load(name):
        if name not in cache:
            cache[name] = CONNECTOR.catalogs[name].load(client)
        return cache[name]
    return load


def source(b24):
    return CONNECTOR.source(SourceContext(b24.client, b24.api_base, catalog_of(b24.client)))


def test_pipelines_carry_their_stages_with_semantics(b24):
    pipelines = CONNECTOR.catalogs["pipelines"].load(b24.client)
    assert [p["id"] for p in pipelines][:2] == ["0", "1"] and pipelines[1]["name"] == "Renewals"
    renewals = {s["id"]: s["semantics"] for s in pipelines[1]["stages"]}
    assert renewals == {"C1:NEW": "P", "C1:NEGOTIATION": "P", "C1:WON": "S", "C1:LOSE": "F"}
    general = {s["id"]: s["semantics"] for s in pipelines[0]["stages"]}
    assert general["WON"] == "S" and general["LOSE"] == "F" and general["NEW"] == "P"
    statuses = {s["id"]: s["semantics"] for s in CONNECTOR.catalogs["lead_statuses"].load(b24.client)}
    assert statuses["CONVERTED"] == "S" and statuses["JUNK"] == "F"
    users = CONNECTOR.catalogs["users"].load(b24.client)
    assert users[0] == {"id": "1", "name": "Anna Admin", "email": "anna@demo.test"}


def test_a_deal_reads_as_a_neutral_record_with_its_contact_and_company(b24):
    b24.emu.update_deal(PORTAL, 1, {"UF_CRM_1721244482250": "Hello world!"})
    warnings: list[str] = []
    record = source(b24).load("deal", "1", None, Carry(contacts=True), warnings)
    assert (record.kind, record.id, record.title, record.status) == ("deal", "1", "Acme rollout", "open")
    assert record.amount == "12,000 EUR" and record.pipeline == "General" and record.owner == "Bob Seller"
    assert record.stage and record.url == f"{b24.api_base[:-len('/rest')]}/crm/deal/details/1/"
    assert record.person["name"] == "Dora Buyer" and record.person["email"] == "dora@acme.test"
    assert record.org["name"] == "Acme Corp"
    assert record.fields["UF_CRM_1721244482250"] == "Hello world!" and warnings == []
    src = source(b24)
    assert src.value("deal", record.data, "OPPORTUNITY") == 12000
    assert src.value("deal", record.data, "CLOSED") is False
    assert src.value("deal", record.data, "ASSIGNED_BY_ID") == "2"
    assert src.value("deal", record.data, "LEAD_ID") is None


def test_fields_name_the_standard_and_the_companys_own(b24):
    def catalog(name):
        if name == "deal_fields":
            return [{"key": "UF_CRM_SIZE", "label": "Size", "type": "enumeration", "custom": True, "multiple": False,
                     "options": [{"id": "41", "label": "Large"}]}]
        return CONNECTOR.catalogs[name].load(b24.client)
    src = CONNECTOR.source(SourceContext(b24.client, b24.api_base, catalog))
    fields = {f.key: f for f in src.fields("deal")}
    assert fields["STAGE_ID"].type == "enum" and fields["OPPORTUNITY"].type == "money"
    assert fields["UF_CRM_SIZE"].custom and fields["UF_CRM_SIZE"].options == (("41", "Large"),)
    record = src.load("deal", "1", {"ID": "1", "TITLE": "x", "UF_CRM_SIZE": "41", "CATEGORY_ID": "0"}, Carry(), [])
    assert record.fields == {"Size": "Large"}
    assert {f.key for f in src.fields("task")} >= {"title", "status", "responsibleId", "deadline"}


def test_tasks_and_leads_read_too(b24):
    src = source(b24)
    [task] = [t for t in src.recent("task", 10) if t.title == "Send the rollout contract"]
    assert task.status == "not_viewed" and task.owner == "Bob Seller" and "/tasks/task/view/" in task.url
    lead = src.load("lead", "1", None, Carry(contacts=True), [])
    assert lead.status == "open" and lead.person["name"] == "Gavin Belson"


def target(b24):
    return CONNECTOR.targets["task"].target(TargetContext(b24.client, b24.api_base, catalog_of(b24.client)))


def test_a_task_is_made_once_per_effect_key_and_linked_to_the_deal(b24):
    record = source(b24).load("deal", "2", None, Carry(), [])
    spec = TaskSpec(name="Kick-off", notes_html="<p>Hello <b>team</b></p>", record=record,
                    settings={"deadline_hours": 24, "priority": "2", "auditors": ["3"]})
    made = target(b24).ensure(spec, "rule:1:occ:1:step:1", first_try=True)
    again = target(b24).ensure(spec, "rule:1:occ:1:step:1", first_try=False)
    other = target(b24).ensure(spec, "rule:1:occ:2:step:1", first_try=False)
    assert made.created and not again.created and again.external_id == made.external_id
    assert other.created and other.external_id != made.external_id
    task = b24.emu.task(PORTAL, made.external_id)
    assert task["ufCrmTask"] == ["D_2"] and str(task["responsibleId"]) == "2"        # the deal's responsible
    assert task["xmlId"] == xml_id("rule:1:occ:1:step:1") and task["description"] == "Hello [B]team[/B]"
    assert str(task["priority"]) == "2" and [str(a) for a in task["auditors"]] == ["3"] and task["deadline"]


def test_control_on_completion_sends_a_task_to_review_when_someone_else_created_it(b24):
    record = source(b24).load("deal", "1", None, Carry(), [])
    step = target(b24)
    reviewed = step.ensure(TaskSpec(name="Contract", record=record, settings={"control": "Y", "created_by": "3"}),
                           "k1", first_try=True)
    assert step.status(reviewed.external_id) == "not_viewed"
    assert step.complete(reviewed.external_id) == "awaiting_review"
    assert step.complete(reviewed.external_id) == "awaiting_review"          # asked again: nothing changes
    state = step.state(reviewed.external_id)
    assert state.status == "awaiting_review" and "review" in state.detail and state.responsible == "Bob Seller"
    assert state.changed_at is not None and state.changed_at.tzinfo is None
    own = step.ensure(TaskSpec(name="Own", record=record, settings={"control": "Y"}), "k2", first_try=True)
    assert step.complete(own.external_id) == "completed"                     # the creator's own completion
    b24.emu.delete_task(PORTAL, own.external_id, actor=1)
    assert step.status(own.external_id) == "gone" and step.state(own.external_id).status == "gone"


def test_settings_are_checked_against_the_portal(b24):
    catalog = catalog_of(b24.client)
    assert validate_task({"responsible_id": "2", "deadline_hours": 4, "priority": "1"}, catalog, True) == {}
    errors = validate_task({"responsible_id": "99", "deadline_hours": "soon", "priority": "7", "auditors": ["x"]},
                           catalog, True)
    assert set(errors) == {"deadline_hours", "priority", "auditors"}
    assert "responsible_id" in validate_task({"responsible_id": "99"}, catalog, True)
    assert validate_task({"responsible_id": "99"}, None, True) == {}        # lists unavailable: only the form


def test_the_lifecycle_read_back_in_neutral_words(b24):
    record = source(b24).load("deal", "1", None, Carry(), [])
    step = target(b24)
    made = step.ensure(TaskSpec(name="Lifecycle", record=record, settings={"deadline_hours": 48}), "k3", first_try=True)
    task_id, responsible = made.external_id, 2        # deal 1's responsible (Bob) works on it
    assert step.status(task_id) == "not_viewed"
    b24.emu.view_task(PORTAL, task_id, responsible)
    assert step.status(task_id) == "viewed"
    b24.emu.task_action(PORTAL, task_id, "start", actor=responsible)
    assert step.status(task_id) == "in_progress"
    b24.emu.task_action(PORTAL, task_id, "pause", actor=responsible)
    assert step.status(task_id) == "paused"
    b24.emu.task_action(PORTAL, task_id, "defer", actor=responsible)
    assert step.status(task_id) == "deferred"
    b24.clock.advance(3 * 86400)                      # the deadline passed
    b24.emu.task_action(PORTAL, task_id, "renew", actor=responsible)
    assert step.status(task_id) == "overdue"
    assert step.state(task_id).deadline is not None
