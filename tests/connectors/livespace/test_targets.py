"""Todos made once per effect key, even when Livespace applied a create whose answer was lost; the
record linked, the type and responsible set, private when colleagues may not read the task."""
from __future__ import annotations

import pytest

from hub.connectors.contract.records import SourceRecord
from hub.connectors.contract.targets import TargetContext, TaskSpec
from hub.connectors.livespace import CONNECTOR
from hub.connectors.livespace.targets import marker, validate_task
from hub.errors import Fatal, Retriable


def catalog_of(client):
    cache = {}

    def load(name):
        if name not in cache:
            cache[name] = CONNECTOR.catalogs[name].load(client)
        return cache[name]
    return load


@pytest.fixture
def target(client, emulator):
    return CONNECTOR.targets["task"].target(TargetContext(client, emulator[0], catalog_of(client)))


def deal_record(crm) -> SourceRecord:
    deal = crm.deals()[0]
    return SourceRecord(kind="deal", id=deal["id"], data=deal, title=deal["name"])


def test_a_todo_is_made_with_what_the_step_says(target, crm):
    seller = crm.user_by_email("bartek@demo.test")
    record = deal_record(crm)
    spec = TaskSpec(name="Kick-off", notes_html="<p>Agenda:</p><ul><li>scope</li></ul>", due="2026-03-02",
                    settings={"owner_id": seller["id"]}, record=record, task_type="meeting")   # a template's type, by name
    made = target.ensure(spec, "rule:1:occ:1:step:0", first_try=True)
    todo = crm.todo(made.external_id)
    assert made.created and made.name == "Kick-off" and made.url.endswith(f"/todo/{todo['id']}")
    assert (todo["type_name"], todo["owner_id"], todo["date_from"]) == ("Meeting", seller["id"], "2026-03-02")
    assert todo["objects"] == [{"object_type": "deal", "object_id": record.id, "object_name": record.title}]
    assert todo["description"].startswith("Agenda:\n- scope") and todo["description"].endswith(marker("rule:1:occ:1:step:0"))
    assert todo["is_private"] == "0"


@pytest.mark.parametrize("sharing, private", [("none", "1"), ("free_busy", "1"), ("read_only", "0"), ("full", "0")])
def test_a_task_colleagues_may_not_read_is_private(target, crm, sharing, private):
    spec = TaskSpec(name=f"Shared {sharing}", settings={}, sharing=sharing)
    made = target.ensure(spec, f"k:{sharing}", first_try=True)
    assert crm.todo(made.external_id)["is_private"] == private
    by_setting = target.ensure(TaskSpec(name="By setting", settings={"sharing": sharing}), f"s:{sharing}", first_try=True)
    assert crm.todo(by_setting.external_id)["is_private"] == private


def test_a_create_whose_answer_was_lost_is_found_not_made_again(target, crm):
    crm.faults.update({"lose_write_answers": 1})
    spec = TaskSpec(name="Exactly once", record=deal_record(crm))
    with pytest.raises(Retriable):
        target.ensure(spec, "lost:1", first_try=True)
    made = target.ensure(spec, "lost:1", first_try=False)        # the job's next try
    again = target.ensure(spec, "lost:1", first_try=False)
    assert not made.created and again.external_id == made.external_id
    assert [t["title"] for t in crm.todos()].count("Exactly once") == 1


def test_a_retry_after_success_finds_the_todo_without_a_link(target, crm):
    made = target.ensure(TaskSpec(name="Unlinked"), "unlinked:1", first_try=True)
    assert target.ensure(TaskSpec(name="Unlinked"), "unlinked:1", first_try=False).external_id == made.external_id
    assert len([t for t in crm.todos() if t["title"] == "Unlinked"]) == 1


def test_complete_and_status_read_what_livespace_kept(target, crm):
    made = target.ensure(TaskSpec(name="To finish"), "done:1", first_try=True)
    assert target.status(made.external_id) == "open"
    assert target.complete(made.external_id) == "completed"
    assert target.status(made.external_id) == "completed" and crm.todo(made.external_id)["is_completed"] == "1"


def test_a_hub_type_livespace_lacks_heads_the_description(target, crm):
    made = target.ensure(TaskSpec(name="x", notes_html="<p>Bring cake</p>", task_type="Carrier pigeon"), "t:1",
                         first_try=True)
    todo = crm.todo(made.external_id)
    assert todo["type_id"] is None and todo["description"].startswith("Type: Carrier pigeon\n\nBring cake")


def test_a_bad_date_is_refused_naming_it(target):
    with pytest.raises(Fatal, match="due"):
        target.ensure(TaskSpec(name="x", due="next tuesday"), "bad:2", first_try=True)


def test_settings_are_checked_against_the_account(client, crm):
    catalog = catalog_of(client)
    good = {"type_id": crm.todo_types()[0]["id"], "owner_id": crm.admin()["id"], "link_record": True}
    assert validate_task(good, catalog, True) == {}
    bad = {"type_id": "nope", "owner_id": 7, "link_record": "yes", "sharing": "everyone"}
    assert set(validate_task(bad, catalog, True)) == {"type_id", "owner_id", "link_record", "sharing"}
    assert validate_task({"type_id": "anything"}, None, True) == {}     # lists unavailable: shape only


def test_the_editors_yes_no_choices_are_read_as_such(target, crm):
    record = deal_record(crm)
    made = target.ensure(TaskSpec(name="Editor", settings={"link_record": "false", "private": "true"}, record=record),
                         "editor:1", first_try=True)
    todo = crm.todo(made.external_id)
    assert todo["objects"] == [] and todo["is_private"] == "1"


def test_state_tells_open_done_and_gone(target, crm):
    made = target.ensure(TaskSpec(name="Stateful", due="2026-03-02 09:30:00"), "state:1", first_try=True)
    state = target.state(made.external_id)
    assert (state.status, str(state.deadline)) == ("open", "2026-03-02 09:30:00")
    crm.complete_todo(made.external_id, crm.admin()["id"])
    assert target.state(made.external_id).status == "completed"
    with crm.state.change():
        del crm.table("todos")[made.external_id]               # deleted in Livespace
    assert target.state(made.external_id).status == "gone"
