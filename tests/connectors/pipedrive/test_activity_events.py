"""Activities marked as done, as the emulator delivers them, become `task.completed` events of
object type `task`, which the source reads back as a neutral record."""
from __future__ import annotations

from hub.connectors import connector
from hub.connectors.contract.records import Carry, SourceContext
from hub.connectors.pipedrive.catalogs import CATALOGS
from hub.connectors.pipedrive.webhooks import SUBSCRIPTIONS, normalize

from .conftest import HOOK_PASSWORD, HOOK_USER


def test_an_activity_marked_done_is_a_task_completed(client, emu, receiver, server):
    assert ("change", "activity") in SUBSCRIPTIONS
    client.create_webhook(receiver.url + "/hooks/pipedrive/1", "change", "activity", HOOK_USER, HOOK_PASSWORD,
                          "Relay Hub")
    deal = next(iter(emu.data["pd_deals"].values()))
    a = emu.create_activity({"subject": "Kick-off call", "type": "call", "deal_id": deal["id"],
                             "person_id": deal["person_id"]})
    emu.update_activity(a["id"], {"subject": "Kick-off call (moved)"})   # an edit: no completion
    emu.complete_activity(a["id"])                                         # done
    emu.update_activity(a["id"], {"note": "went well"})                    # a done activity edited
    emu.update_activity(a["id"], {"done": False})                          # undone: no completion
    assert emu.flush(5)
    events = [normalize(r["json"]) for r in receiver.wait_for(4)]
    assert [[(e.kind, e.object_type, e.object_id) for e in evts] for evts in events] == [
        [], [("task.completed", "task", str(a["id"]))], [], []]
    completed = events[1][0]
    assert completed.current["done"] is True and completed.previous["done"] is False and completed.version

    source = connector("pipedrive").source(SourceContext(
        client=client, api_base=server.url, catalog=lambda name: CATALOGS[name].load(client)))
    record = source.load("task", completed.object_id, completed.current, Carry(contacts=True, notes=True), [])
    assert (record.kind, record.title, record.status) == ("task", "Kick-off call (moved)", "completed")
    assert record.url == f"{server.url}/deal/{deal['id']}" and record.owner == "Ada Admin"
    assert record.person["id"] == deal["person_id"] and record.notes == []
    read = source.load("task", str(a["id"]), None, Carry(), [])
    assert read.status == "open" and read.data["note"] == "went well"
    assert [r.id for r in source.recent("task")] == [str(a["id"])]
    assert {"subject", "type", "done", "owner_id"} <= {f.key for f in source.fields("task")}
    types = dict(next(f for f in source.fields("task") if f.key == "type").options)
    assert types["call"] == "Call"


def test_triggers_list_what_normalize_emits():
    kinds = {t.kind for t in connector("pipedrive").triggers}
    assert kinds == {"deal.created", "deal.won", "deal.lost", "deal.stage_changed", "deal.updated", "lead.added",
                     "person.created", "person.updated", "task.completed"}
    stage = next(t for t in connector("pipedrive").triggers if t.kind == "deal.stage_changed")
    assert stage.params == ("pipeline_id", "to_stage_id") and dict(stage.choices)["to_stage_id"] == "stages"
    assert all(set(dict(t.choices)) <= set(t.params) for t in connector("pipedrive").triggers)
    catalogs = connector("pipedrive").catalogs
    assert all(name in catalogs for t in connector("pipedrive").triggers for _, name in t.choices)
