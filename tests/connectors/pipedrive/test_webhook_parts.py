"""Pipedrive's `WEBHOOKS` part of the connector contract: occurrence markers (the same the hub has
always stored), `task.completed` from activities marked done, verify/split/normalize on a raw
request, subscribe/unsubscribe against a fake client, poll + changes."""
from __future__ import annotations

import base64
import copy
import json
from datetime import datetime, timezone

import pytest

from hub.connectors import connector
from hub.connectors.contract.webhooks import (KINDS, Credentials, Delivery, MalformedPayload, RawRequest, Refused,
                                              Secrets, Snapshot, canonical_time)
from hub.connectors.pipedrive.webhooks import WEBHOOKS, normalize, reconcile_events

from .conftest import fixture

T = "2026-11-24T09:30:00Z"


def legacy_occurrence(event) -> str:
    """The marker the hub's event log computed itself before connectors set it (stored rows use it)."""
    cur = event.current or {}
    if event.kind == "deal.won":
        marker = canonical_time(cur.get("won_time")) or event.version
    elif event.kind == "deal.lost":
        marker = canonical_time(cur.get("lost_time")) or event.version
    elif event.kind == "deal.stage_changed":
        marker = f"{event.to_stage_id}@{canonical_time(cur.get('stage_change_time')) or event.version}"
    elif event.kind in ("deal.created", "lead.added", "person.created", "deal.deleted", "person.deleted"):
        marker = "once"
    else:
        marker = canonical_time(event.version) if event.version else event.event_id
    return marker


def every_event() -> list:
    events = []
    for name in ("webhook-v2-deal-create.json", "webhook-v2-deal-change-stage.json", "webhook-v2-deal-change-won.json",
                 "webhook-v2-deal-change-lost.json", "webhook-v2-lead-create.json", "webhook-v2-person-change.json",
                 "webhook-v2-person-delete.json"):
        events += normalize(fixture(name))
    created_won = fixture("webhook-v2-deal-create.json")
    created_won["data"].update(status="won", won_time=None)      # no won_time: the version marks it
    events += normalize(created_won)
    before = {"id": 1, "status": "open", "stage_id": 2, "pipeline_id": 1, "update_time": "2026-11-18T09:12:04Z"}
    events += reconcile_events(before, dict(before, status="won", stage_id=3, won_time=T, stage_change_time=T,
                                            update_time=T))
    events += reconcile_events(None, dict(before, status="lost", lost_time=T))
    return events


def test_occurrence_markers_are_the_ones_already_stored():
    events = every_event()
    assert {e.kind for e in events} >= {"deal.created", "deal.updated", "deal.won", "deal.lost", "deal.stage_changed",
                                        "lead.added", "person.updated", "person.deleted"}
    for e in events:
        assert e.occurrence == legacy_occurrence(e), e.kind


def test_transitions_say_what_they_leave_in_the_state():
    [_, moved, won] = reconcile_events({"id": 1, "status": "open", "stage_id": 2, "update_time": "2026-11-18T09:12:04Z"},
                                       {"id": 1, "status": "won", "stage_id": 3, "won_time": T, "stage_change_time": T,
                                        "update_time": T})
    assert won.shows == {"status": "won", "won_time": T} and moved.shows == {"stage_id": "3", "stage_change_time": T}
    [created] = normalize(fixture("webhook-v2-deal-create.json"))
    [updated, _] = normalize(fixture("webhook-v2-deal-change-stage.json"))
    [deleted] = normalize(fixture("webhook-v2-person-delete.json"))
    assert (created.shows, updated.shows, deleted.shows) == ({}, None, None)


def test_the_connector_emits_only_neutral_kinds():
    assert WEBHOOKS.kinds <= KINDS and "task.completed" in WEBHOOKS.kinds
    assert connector("pipedrive").webhooks is WEBHOOKS
    assert {e.kind for e in every_event()} <= WEBHOOKS.kinds


# -- activities: task.completed --------------------------------------------------------------------

def activity(done_before, done_now, **data) -> dict:
    """A v2 activity change, shaped as FACTS §7 and the v2 activity object (openapi-v2 GetActivities)."""
    return {"meta": {"action": "change", "entity": "activity", "entity_id": "881", "id": "7c0e2a4d-1111-4b6f-9a3e-5d2c8f1b0e77",
                     "company_id": "13370042", "timestamp": "2026-11-24T09:30:00.412Z", "version": "2.0", "attempt": 1},
            "data": {"id": 881, "subject": "Send the contract", "type": "task", "owner_id": 9911007, "deal_id": 4211,
                     "person_id": 7301, "org_id": 5120, "done": done_now, "marked_as_done_time": T if done_now else None,
                     "due_date": "2026-11-24", "add_time": "2026-11-20T08:00:00Z", "update_time": T, **data},
            "previous": {"done": done_before, "marked_as_done_time": None, "update_time": "2026-11-20T08:00:00Z"}}


def test_an_activity_marked_done_is_a_task_completed():
    [done] = normalize(activity(False, True))
    assert (done.kind, done.object_type, done.object_id) == ("task.completed", "task", "881")
    assert done.event_id == "7c0e2a4d-1111-4b6f-9a3e-5d2c8f1b0e77" and done.current["deal_id"] == 4211
    assert done.occurrence == canonical_time(T) and done.shows == {"done": True, "marked_as_done_time": T}
    assert done.version == "2026-11-24T09:30:00.000000Z"


def test_other_activity_changes_are_no_completion():
    assert normalize(activity(True, False)) == []                      # reopened
    edited = activity(False, False)
    assert normalize(edited) == []                                     # still open
    renamed = activity(True, True)
    renamed["previous"] = {"subject": "Send it", "update_time": "2026-11-20T08:00:00Z"}
    assert normalize(renamed) == []                                    # a done task edited
    created = activity(None, True)
    created["meta"]["action"], created["previous"] = "create", None
    assert normalize(created) == []                                    # logged as done: past work


def test_a_v1_activity_marked_done_is_a_task_completed_too():
    v2 = activity(False, True)
    v1 = {"v": 1, "event": "updated.activity", "retry": 0,
          "meta": {"v": 1, "action": "updated", "object": "activity", "id": 881, "company_id": 13370042,
                   "timestamp": 1795000000, "timestamp_micro": 1795000000123456},
          "current": {**v2["data"], "marked_as_done_time": "2026-11-24 09:30:00", "update_time": "2026-11-24 09:30:00"},
          "previous": {**v2["data"], "done": False, "marked_as_done_time": None, "update_time": "2026-11-20 08:00:00"}}
    [done] = normalize(v1)
    assert (done.kind, done.object_id, done.occurrence) == ("task.completed", "881", canonical_time(T))
    again = copy.deepcopy(v1)
    again["current"]["done"] = False
    assert normalize(again) == []


def test_an_activity_change_without_data_is_malformed():
    odd = activity(False, True)
    odd["data"] = None
    with pytest.raises(MalformedPayload) as refused:
        normalize(odd)
    assert refused.value.field == "data"


# -- verify, split, normalize on the raw request ------------------------------------------------------

def raw(payload, user="relayhub-1", password="s3cret") -> RawRequest:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return RawRequest("POST", "https://hub.example.com/hooks/pipedrive/tok", {"authorization": f"Basic {token}"},
                      json.dumps(payload).encode(), "application/json")


def test_verify_split_and_normalize_a_raw_delivery():
    payload = fixture("webhook-v2-deal-change-won.json")
    secrets = Secrets("relayhub-1", "s3cret")
    WEBHOOKS.verify(raw(payload), secrets)
    for wrong in (raw(payload, password="guess"), raw(payload, user="relayhub-2"),
                  RawRequest("POST", "https://hub.example.com/hooks/pipedrive/tok", {}, b"{}")):
        with pytest.raises(Refused):
            WEBHOOKS.verify(wrong, secrets)
    [delivery] = WEBHOOKS.split(raw(payload))
    assert (delivery.key, delivery.ordering) == (payload["meta"]["id"], "deal:4211")
    assert json.loads(delivery.body) == payload                       # stored as received
    events = WEBHOOKS.normalize(Delivery(delivery.key, delivery.body), None)   # the delivery is enough: no client
    assert [e.kind for e in events] == ["deal.updated", "deal.won"]


def test_split_refuses_what_is_not_a_delivery_naming_the_field():
    for body, field in ((b"[1, 2]", "body"), (b'{"meta": {"action": "change"}}', "meta.entity"),
                        (b'{"meta": {}', "body")):
        with pytest.raises(ValueError) as refused:
            WEBHOOKS.split(RawRequest("POST", "u", {}, body))
        fields = getattr(refused.value, "fields", None) or {getattr(refused.value, "field", None): 1}
        assert field in fields, (body, refused.value)


# -- subscribe / unsubscribe ----------------------------------------------------------------------------

class FakeApi:
    def __init__(self, hooks: list[dict]):
        self.hooks, self.deleted, self.next_id = hooks, [], 100

    def webhooks(self):
        return copy.deepcopy(self.hooks)

    def create_webhook(self, url, action, obj, user, password, name):
        self.next_id += 1
        hook = {"id": self.next_id, "subscription_url": url, "event_action": action, "event_object": obj,
                "http_auth_user": user, "is_active": True, "version": "2.0"}
        self.hooks.append(hook)
        return hook

    def delete_webhook(self, hook_id):
        self.deleted.append(hook_id)
        self.hooks = [h for h in self.hooks if h["id"] != hook_id]


def test_subscribe_keeps_good_hooks_replaces_stale_ones_and_leaves_others_alone():
    ours, url = "https://hub.example.com/hooks/pipedrive/", "https://hub.example.com/hooks/pipedrive/new-token"
    good = {"id": 1, "subscription_url": url, "event_action": "*", "event_object": "deal", "http_auth_user": "relayhub-1",
            "is_active": True, "version": "2.0"}
    old_url = dict(good, id=2, subscription_url=ours + "old-token", event_object="person")
    banned = dict(good, id=3, event_action="create", event_object="lead", is_active=False)
    not_ours = dict(good, id=4, subscription_url="https://elsewhere.example.com/hook")
    api = FakeApi([good, old_url, banned, not_ours])
    done = WEBHOOKS.subscribe(api, url, Credentials("relayhub-1", "pw"), ours)
    assert [h.remote_id for h in done.kept] == ["1"] and done.deleted == 2 and sorted(api.deleted) == [2, 3]
    assert sorted((h.action, h.object) for h in done.hooks) == [("*", "deal"), ("*", "person"), ("change", "activity"),
                                                                 ("create", "lead")]
    again = WEBHOOKS.subscribe(api, url, Credentials("relayhub-1", "pw"), ours)
    assert (len(again.kept), again.created, again.deleted) == (4, [], 0)     # idempotent
    assert any(h["id"] == 4 for h in api.hooks)                             # another app's hook is not ours
    WEBHOOKS.unsubscribe(api, "1")
    assert api.deleted[-1] == 1


# -- poll + changes ---------------------------------------------------------------------------------

def test_poll_gives_snapshots_and_changes_compares_them_with_the_known_state():
    class Deals:
        since = "unset"

        def iter_deals(self, updated_since=None):
            Deals.since = updated_since
            yield {"id": 7, "status": "won", "stage_id": 2, "won_time": T, "update_time": T, "is_deleted": False}
            yield {"id": 8, "status": "open", "stage_id": 1, "update_time": T, "is_deleted": True}

    since = datetime(2026, 11, 24, tzinfo=timezone.utc)
    snaps = list(WEBHOOKS.poll(Deals(), since))
    assert Deals.since == since
    assert snaps[0] == Snapshot("deal", "7", T, False, snaps[0].data) and snaps[1].deleted is True
    known = {"id": 7, "status": "open", "stage_id": 2, "update_time": "2026-11-20T08:00:00Z"}
    assert [e.kind for e in WEBHOOKS.changes(known, snaps[0])] == ["deal.updated", "deal.won"]
    assert WEBHOOKS.changes(snaps[0].data, snaps[0]) == []
