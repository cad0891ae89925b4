"""verify() and normalize() on the provider's examples, our fixtures and edited variants of them;
reconcile_events() on deal snapshots."""
from __future__ import annotations

import base64
import copy
import json
from datetime import datetime, timezone

import pytest

from hub.connectors.pipedrive.webhooks import DISPATCH, canonical_version, normalize, reconcile_events, verify

from .conftest import fixture

# What each provider example must turn into: [(kind, pipeline, from stage, to stage)].
EXPECTED = {
    "webhook-v2-deal-create.json": [("deal.created", "1", None, None)],
    "webhook-v2-deal-change-stage.json": [("deal.updated", "1", None, None), ("deal.stage_changed", "1", "2", "3")],
    "webhook-v2-deal-change-won.json": [("deal.updated", "1", None, None), ("deal.won", "1", None, None)],
    "webhook-v2-deal-change-lost.json": [("deal.updated", "1", None, None), ("deal.lost", "1", None, None)],
    "webhook-v2-lead-create.json": [("lead.added", None, None, None)],
    "webhook-v2-person-change.json": [("person.updated", None, None, None)],
    "webhook-v2-person-delete.json": [("person.deleted", None, None, None)],
}


def examples(provider_specs):
    return sorted((provider_specs / "pipedrive" / "examples").glob("webhook-*.json"))


def test_every_provider_example_is_expected_and_copied(provider_specs):
    names = [p.name for p in examples(provider_specs)]
    assert sorted(names) == sorted(EXPECTED), "a new provider example needs an expectation here"
    for path in examples(provider_specs):       # fixtures are copies; say so when the examples move on
        assert json.loads(path.read_text()) == fixture(path.name), f"fixtures/{path.name} is stale"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_normalize_examples(provider_specs, name):
    payload = json.loads((provider_specs / "pipedrive" / "examples" / name).read_text())
    events = normalize(payload)
    assert [(e.kind, e.pipeline_id, e.from_stage_id, e.to_stage_id) for e in events] == EXPECTED[name]
    meta = payload["meta"]
    first, *rest = events
    assert first.event_id == meta["id"] and [e.event_id for e in rest] == [f"{meta['id']}:{e.kind}" for e in rest]
    state = payload["data"] or payload["previous"]
    for e in events:
        assert e.object_type == meta["entity"] and e.object_id == meta["entity_id"] == str(state["id"])
        assert e.occurred_at == datetime.fromisoformat(meta["timestamp"].replace("Z", "+00:00"))
        assert e.version == canonical_version(state["update_time"])
        assert e.current == payload["data"] and e.previous == payload["previous"]
        assert e.extra["company_id"] == "13370042" and e.extra["attempt"] == 1 and e.extra["format"] == "v2"


def test_versions_order_the_story_of_deal_4211():
    story = ["webhook-v2-deal-create.json", "webhook-v2-deal-change-stage.json", "webhook-v2-deal-change-won.json"]
    versions = [normalize(fixture(n))[0].version for n in story]
    assert versions == sorted(versions) and len(set(versions)) == 3
    lead = normalize(fixture("webhook-v2-lead-create.json"))[0]
    assert lead.version == "2026-11-21T08:30:15.204000Z"      # ms precision kept, still comparable


# -- transitions: edited copies of the fixtures ----------------------------------------------------

def kinds(payload) -> list[str]:
    return [e.kind for e in normalize(payload)]


def test_update_of_a_won_deal_is_not_a_new_win():
    p = fixture("webhook-v2-deal-change-won.json")
    p["previous"] = {"value": 19200, "update_time": p["data"]["update_time"]}
    p["data"]["value"] = 20000
    assert kinds(p) == ["deal.updated"]
    p["previous"]["status"] = "won"              # won -> won
    assert kinds(p) == ["deal.updated"]


def test_stage_change_needs_a_different_stage_in_previous():
    p = fixture("webhook-v2-deal-change-stage.json")
    p["previous"]["stage_id"] = p["data"]["stage_id"]
    assert kinds(p) == ["deal.updated"]
    del p["previous"]["stage_id"]
    assert kinds(p) == ["deal.updated"]


def test_move_to_another_pipeline_names_both_pipelines():
    p = fixture("webhook-v2-deal-change-stage.json")
    p["data"].update(pipeline_id=2, stage_id=6)
    p["previous"].update(pipeline_id=1, stage_id=3)
    move = normalize(p)[1]
    assert (move.kind, move.pipeline_id, move.from_stage_id, move.to_stage_id) == ("deal.stage_changed", "2", "3", "6")
    assert move.extra["from_pipeline_id"] == "1"


def test_stage_move_and_win_in_one_edit():
    p = fixture("webhook-v2-deal-change-won.json")
    p["previous"]["stage_id"] = 2
    events = normalize(p)
    assert [e.kind for e in events] == ["deal.updated", "deal.stage_changed", "deal.won"]
    assert len({e.event_id for e in events}) == 3


def test_deal_created_as_won_is_created_then_won():
    p = fixture("webhook-v2-deal-create.json")
    p["data"].update(status="won", won_time=p["data"]["add_time"], close_time=p["data"]["add_time"])
    events = normalize(p)
    assert [e.kind for e in events] == ["deal.created", "deal.won"]
    assert events[1].event_id == p["meta"]["id"] + ":deal.won" and events[1].pipeline_id == "1"
    p["data"]["status"] = "lost"
    assert kinds(p) == ["deal.created", "deal.lost"]


def test_reopen_and_delete():
    p = fixture("webhook-v2-deal-change-won.json")
    p["data"]["status"], p["previous"]["status"] = "open", "won"
    assert kinds(p) == ["deal.updated"]
    d = fixture("webhook-v2-deal-change-lost.json")
    d["meta"]["action"], d["previous"], d["data"] = "delete", d["data"], None
    [deleted] = normalize(d)
    assert (deleted.kind, deleted.object_id, deleted.pipeline_id) == ("deal.deleted", "4215", "1")
    assert deleted.current is None and deleted.previous["status"] == "lost"


def test_unknown_entities_and_actions_are_ignored():
    p = fixture("webhook-v2-deal-create.json")
    for entity, action in (("activity", "create"), ("product", "change"), ("lead", "change"), ("deal", "archive")):
        q = copy.deepcopy(p)
        q["meta"].update(entity=entity, action=action)
        assert normalize(q) == []
    assert ("lead", "change") in DISPATCH       # known, deliberately without a hub kind


@pytest.mark.parametrize("mutate, message", [
    (lambda p: [], "expected a JSON object"),
    (lambda p: {"data": p["data"]}, "missing 'meta'"),
    (lambda p: {**p, "meta": {**p["meta"], "action": None}}, "meta.action"),
    (lambda p: {**p, "meta": {**p["meta"], "id": ""}}, "meta.id"),
    (lambda p: {**p, "data": "oops"}, "data must be an object"),
    (lambda p: {**p, "data": None}, "data must be an object"),
    (lambda p: {**p, "data": {k: v for k, v in p["data"].items() if k != "id"}}, "data.id is missing"),
    (lambda p: {**p, "meta": {**p["meta"], "action": "delete"}, "previous": None, "data": None}, "a delete needs"),
    (lambda p: {**p, "meta": {**p["meta"], "entity_id": None}, "data": {**p["data"], "id": None}}, "entity_id"),
])
def test_malformed_payloads_raise_value_error(mutate, message):
    payload = mutate(fixture("webhook-v2-deal-change-won.json"))
    with pytest.raises(ValueError, match=message):
        normalize(payload)


# -- the v1 legacy shape ---------------------------------------------------------------------------

def test_v1_deal_won_uses_the_full_previous_to_find_the_transition():
    p = fixture("webhook-v1-deal-updated-won.json")
    events = normalize(p)
    assert [e.kind for e in events] == ["deal.updated", "deal.won"]
    first = events[0]
    assert first.object_id == "4211" and first.pipeline_id == "1" and first.extra["format"] == "v1"
    assert first.previous == {"status": "open", "update_time": "2026-11-20 14:01:47", "close_time": None,
                              "won_time": None, "first_won_time": None, "active": True}
    assert first.version == "2026-11-20T14:03:11.000000Z"
    assert first.occurred_at == datetime(2026, 11, 20, 14, 3, 11, tzinfo=timezone.utc)
    # the same event as the v2 example: versions agree across formats
    assert first.version == normalize(fixture("webhook-v2-deal-change-won.json"))[0].version
    retry = copy.deepcopy(p)
    retry["retry"] = 2
    again = normalize(retry)
    assert [e.event_id for e in again] == [e.event_id for e in events] and again[0].extra["attempt"] == 3


def test_v1_plain_update_and_event_name_fallback():
    p = fixture("webhook-v1-deal-updated-won.json")
    p["previous"] = dict(p["current"], value=100, update_time="2026-11-20 14:00:00")
    p["meta"].pop("action"), p["meta"].pop("object")          # only `event` names it
    assert kinds(p) == ["deal.updated"]
    p["previous"]["stage_id"] = 2
    assert kinds(p) == ["deal.updated", "deal.stage_changed"]


def test_v1_person_deleted_and_added_and_merged():
    p = fixture("webhook-v1-person-deleted.json")
    [deleted] = normalize(p)
    assert (deleted.kind, deleted.object_id, deleted.current) == ("person.deleted", "7309", None)
    assert deleted.previous["name"] == "Tõnis Kask" and deleted.version == "2026-11-21T11:18:09.000000Z"
    added = copy.deepcopy(p)
    added["meta"]["action"], added["event"] = "added", "added.person"
    added["current"], added["previous"] = p["previous"], None
    assert kinds(added) == ["person.created"]
    assert normalize(added)[0].event_id != deleted.event_id
    merged = copy.deepcopy(added)
    merged["meta"]["action"], merged["event"] = "merged", "merged.person"
    assert normalize(merged) == []


# -- verify ----------------------------------------------------------------------------------------

def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_verify_basic_credentials():
    assert verify({"Authorization": basic("relay-hub", "s3cr:et")}, "relay-hub", "s3cr:et")
    assert verify({"authorization": basic("relay-hub", "s3cr:et")}, "relay-hub", "s3cr:et")
    assert not verify({"Authorization": basic("relay-hub", "wrong")}, "relay-hub", "s3cr:et")
    assert not verify({"Authorization": basic("someone", "s3cr:et")}, "relay-hub", "s3cr:et")
    assert not verify({}, "relay-hub", "s3cr:et")
    assert not verify({"Authorization": "Bearer abc"}, "relay-hub", "s3cr:et")
    assert not verify({"Authorization": "Basic !!!not-base64"}, "relay-hub", "s3cr:et")
    assert not verify({"Authorization": "Basic " + base64.b64encode(b"relay-hub").decode()}, "relay-hub", "")
    assert not verify({"Authorization": basic("", "")}, "", "")      # no credentials configured: never trusted


# -- reconcile -------------------------------------------------------------------------------------

def api_deal(**over) -> dict:
    deal = {"id": 4211, "title": "Nordwind", "status": "open", "pipeline_id": 1, "stage_id": 2, "value": 100,
            "owner_id": 7, "update_time": "2026-11-18T09:12:04Z", "won_time": None, "lost_time": None,
            "is_deleted": False, "custom_fields": {"a" * 40: 31}, "visible_to": 3}
    deal.update(over)
    return deal


def rkinds(before, now) -> list[str]:
    return [e.kind for e in reconcile_events(before, now)]


def test_reconcile_transitions():
    before = api_deal()
    won = api_deal(status="won", won_time="2026-11-20T14:03:11Z", update_time="2026-11-20T14:03:11Z")
    assert rkinds(before, won) == ["deal.updated", "deal.won"]
    assert rkinds(before, api_deal(stage_id=3, update_time="2026-11-19T15:40:22Z")) == \
        ["deal.updated", "deal.stage_changed"]
    assert rkinds(before, api_deal(status="lost", lost_time="2026-11-20T16:27:57Z",
                                   update_time="2026-11-20T16:27:57Z")) == ["deal.updated", "deal.lost"]
    edited = dict(won, value=500, update_time="2026-11-21T10:00:00Z")
    assert rkinds(won, edited) == ["deal.updated"]                               # won -> won, same win
    rewon = dict(won, won_time="2026-11-22T08:00:00Z", update_time="2026-11-22T08:00:00Z")
    assert rkinds(won, rewon) == ["deal.updated", "deal.won"]                     # reopened and won again
    # same update_time (one-second resolution) but a transition field moved: it still happened
    assert rkinds(before, api_deal(status="won", update_time="2026-11-18T09:12:04Z")) == ["deal.updated", "deal.won"]
    # same update_time and only a form difference (custom field spelling): nothing happened
    assert rkinds(before, dict(before, custom_fields={"x": {"value": 1}})) == []
    assert rkinds(before, api_deal(is_deleted=True, update_time="2026-11-23T00:00:00Z")) == ["deal.deleted"]
    assert rkinds(None, won) == ["deal.created", "deal.won"]
    assert rkinds(None, before) == ["deal.created"]


def test_reconcile_ignores_form_differences_between_webhook_and_api():
    from_webhook = api_deal(custom_fields={"a" * 40: {"type": "enum", "id": 31}}, visible_to="3")
    assert rkinds(from_webhook, api_deal()) == []


def test_reconcile_ids_are_deterministic_and_distinct():
    before = api_deal()
    now = api_deal(status="won", stage_id=4, won_time="2026-11-20T14:03:11Z", update_time="2026-11-20T14:03:11Z")
    first, second = reconcile_events(before, now), reconcile_events(copy.deepcopy(before), copy.deepcopy(now))
    assert [e.event_id for e in first] == [e.event_id for e in second]
    assert len({e.event_id for e in first}) == 3
    assert first[-1].event_id == "pipedrive:reconcile:deal:4211:deal.won:2026-11-20T14:03:11.000000Z"
    moved = first[1]
    assert (moved.from_stage_id, moved.to_stage_id, moved.pipeline_id) == ("2", "4", "1")
    assert first[0].previous == {"status": "open", "stage_id": 2, "won_time": None,
                                 "update_time": "2026-11-18T09:12:04Z"}



def test_v2_person_delete_caused_by_a_merge_names_the_survivor():
    """FACTS §7: a merge is a delete of the merged person with meta.merged_to_id and a change of the
    survivor with meta.merged_from_id; both reach the event as strings, whatever JSON type they had."""
    payload = fixture("webhook-v2-person-delete.json")
    payload["meta"]["merged_to_id"] = 7400
    [deleted] = normalize(payload)
    assert (deleted.kind, deleted.object_id, deleted.extra["merged_to_id"]) == ("person.deleted", "7309", "7400")
    survivor = fixture("webhook-v2-person-change.json")
    survivor["meta"]["merged_from_id"] = "7309"
    [changed] = normalize(survivor)
    assert changed.kind == "person.updated" and changed.extra["merged_from_id"] == "7309"
    plain = fixture("webhook-v2-person-delete.json")
    plain["meta"]["merged_to_id"] = None
    assert "merged_to_id" not in normalize(plain)[0].extra
