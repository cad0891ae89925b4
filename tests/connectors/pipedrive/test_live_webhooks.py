"""What the emulator really delivers, normalized: a webhook registered through the client points at
a local receiver; the test drives the CRM (as a user in the app and through the API) and checks the
hub events every delivery stands for."""
from __future__ import annotations

from hub.connectors.pipedrive.webhooks import normalize, reconcile_events, verify

from .conftest import HOOK_PASSWORD, HOOK_USER


def summary(events) -> list[tuple]:
    return [(e.kind, e.object_id, e.pipeline_id, e.from_stage_id, e.to_stage_id) for e in events]


def test_sandbox_deliveries_normalize_to_hub_events(client, emu, receiver):
    hook = client.create_webhook(receiver.url + "/hooks/pipedrive/install-1", "*", "*", HOOK_USER, HOOK_PASSWORD,
                                 "Relay Hub")
    sales = {s["name"]: s["id"] for s in client.stages(pipeline_id=1)}
    renewals = client.stages(pipeline_id=2)
    person_id = next(iter(emu.data["pd_persons"].values()))["id"]

    deal = emu.create_deal("Live deal", stage_id=sales["Qualified"], value=500, person_id=person_id)
    d = str(deal["id"])
    emu.move_stage(deal["id"], sales["Contact made"])                      # stage move
    emu.update_deal(deal["id"], {"title": "Live deal (edited)"})            # plain update
    emu.mark_won(deal["id"])                                                # won
    emu.update_deal(deal["id"], {"value": 900})                             # a won deal edited: no new win
    other = emu.create_deal("Live loser", stage_id=sales["Qualified"], person_id=person_id)
    o = str(other["id"])
    client.update_deal(other["id"], stage_id=renewals[0]["id"])             # to another pipeline, via the API
    emu.mark_lost(other["id"], "Too expensive")                             # lost
    lead = emu.add_lead("Live lead", person_id=person_id, amount=1200)      # lead added
    person = client.create_person("Live Person", emails=["live@example.com"])
    p = str(person["id"])
    client.update_person(person["id"], phones=["+1 555 0100"])
    client.delete_person(person["id"])
    emu.delete_deal(other["id"])

    assert emu.flush(5)
    deliveries = receiver.wait_for(13)
    assert len(deliveries) == 13
    assert all(r["path"] == "/hooks/pipedrive/install-1" for r in deliveries)
    assert all(verify(r["headers"], HOOK_USER, HOOK_PASSWORD) for r in deliveries)
    assert not verify(deliveries[0]["headers"], HOOK_USER, "not-the-password")

    normalized = [normalize(r["json"]) for r in deliveries]
    assert [summary(evts) for evts in normalized] == [
        [("deal.created", d, "1", None, None)],
        [("deal.updated", d, "1", None, None), ("deal.stage_changed", d, "1", str(sales["Qualified"]),
                                                str(sales["Contact made"]))],
        [("deal.updated", d, "1", None, None)],
        [("deal.updated", d, "1", None, None), ("deal.won", d, "1", None, None)],
        [("deal.updated", d, "1", None, None)],
        [("deal.created", o, "1", None, None)],
        [("deal.updated", o, "2", None, None), ("deal.stage_changed", o, "2", str(sales["Qualified"]),
                                                str(renewals[0]["id"]))],
        [("deal.updated", o, "2", None, None), ("deal.lost", o, "2", None, None)],
        [("lead.added", lead["id"], None, None, None)],
        [("person.created", p, None, None, None)],
        [("person.updated", p, None, None, None)],
        [("person.deleted", p, None, None, None)],
        [("deal.deleted", o, "2", None, None)],
    ]
    flat = [e for evts in normalized for e in evts]
    assert len({e.event_id for e in flat}) == len(flat)                     # one dedupe key per event
    move = normalized[6][1]
    assert move.extra["from_pipeline_id"] == "1" and move.extra["change_source"] == "api"
    assert normalized[3][1].current["status"] == "won" and normalized[3][1].previous["status"] == "open"
    assert all(e.extra["webhook_id"] == str(hook["id"]) for e in flat)
    versions = [evts[0].version for evts in normalized[:5]]                 # one deal's events, in order
    assert versions == sorted(versions)


def test_redeliveries_keep_their_event_ids(client, emu, receiver, faults):
    client.create_webhook(receiver.url + "/hooks", "change", "deal", HOOK_USER, HOOK_PASSWORD, "Relay Hub")
    deal = next(d for d in emu.data["pd_deals"].values() if d["status"] == "open")
    receiver.fail_next = 1                                                  # the first attempt fails
    emu.mark_won(deal["id"])
    assert emu.flush(5)
    first, retry = receiver.wait_for(2)
    assert (first["json"]["meta"]["attempt"], retry["json"]["meta"]["attempt"]) == (1, 2)
    a, b = normalize(first["json"]), normalize(retry["json"])
    assert [e.kind for e in a] == ["deal.updated", "deal.won"]
    assert [e.event_id for e in a] == [e.event_id for e in b] and b[0].extra["attempt"] == 2

    faults.update({"webhook_duplicate_rate": 1.0})                          # chaos: the same event twice
    emu.update_deal(deal["id"], {"value": 1})
    assert emu.flush(5)
    dup1, dup2 = receiver.wait_for(4)[2:]
    assert [e.event_id for e in normalize(dup1["json"])] == [e.event_id for e in normalize(dup2["json"])]
    assert [e.kind for e in normalize(dup1["json"])] == ["deal.updated"]


def test_reconcile_finds_what_lost_webhooks_missed(client, emu, clock):
    """No webhook at all: the poll compares its last known state with the API and still sees the win."""
    known = next(d for d in client.iter_deals(status="open", pipeline_id=1) if d["stage_id"] < 4)
    clock.advance(60)
    emu.move_stage(known["id"], known["stage_id"] + 1)
    clock.advance(60)
    emu.mark_won(known["id"])
    now = client.deal(known["id"])
    events = reconcile_events(known, now)
    assert [e.kind for e in events] == ["deal.updated", "deal.stage_changed", "deal.won"]
    assert (events[1].from_stage_id, events[1].to_stage_id) == (str(known["stage_id"]), str(known["stage_id"] + 1))
    assert [e.event_id for e in reconcile_events(known, client.deal(known["id"]))] == [e.event_id for e in events]
    assert reconcile_events(now, client.deal(known["id"])) == []
