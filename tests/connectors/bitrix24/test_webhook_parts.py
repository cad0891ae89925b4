"""Bitrix24's deliveries as the docs show them (form bodies in fixtures/): routing by member_id,
verification by the application token, splitting without the tokens, normalizing to a read of the
object, and the transitions `changes` finds between the known state and the state now."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.connectors.bitrix24 import CONNECTOR
from hub.connectors.bitrix24 import subscriptions
from hub.connectors.bitrix24.webhooks import changes, snapshot
from hub.connectors.contract.webhooks import (Credentials, CrmEvent, MalformedPayload, RawRequest, Refused, Secrets,
                                              Snapshot)

FIXTURES = Path(__file__).parent / "fixtures"
HOOKS = CONNECTOR.webhooks
MEMBER = "a223c6b3710f85df22e9377d6c4f7553"
APP_TOKEN = "51856fefc120afa4b628cc82d3935cce"


def raw(name: str | None = None, body: bytes | None = None, content_type="application/x-www-form-urlencoded"):
    data = (FIXTURES / name).read_bytes() if name else body
    return RawRequest("POST", "https://hub.test/hooks/bitrix24", {"content-type": content_type}, data, content_type)


def test_routing_names_the_portal_by_member_id():
    assert HOOKS.routing == "account"
    assert HOOKS.account_key(raw("events/deal_update.txt")) == MEMBER


def test_the_application_token_kept_at_install_is_what_verifies():
    HOOKS.verify(raw("events/deal_update.txt"), Secrets(token=APP_TOKEN))
    with pytest.raises(Refused, match="does not match"):
        HOOKS.verify(raw("events/deal_update.txt"), Secrets(token="another-portals-token"))
    with pytest.raises(Refused, match="no token"):
        HOOKS.verify(raw("events/deal_update.txt"), Secrets())
    forged = (FIXTURES / "events/deal_update.txt").read_bytes().replace(APP_TOKEN.encode(), b"0" * 32)
    with pytest.raises(Refused):
        HOOKS.verify(raw(body=forged), Secrets(token=APP_TOKEN))


def test_install_event_offers_its_token_with_the_access_token_as_proof():
    claim = HOOKS.claim(raw("events/app_install.txt"))
    assert claim.token == APP_TOKEN and claim.replaces
    assert claim.proof["access_token"] == "s6p6eclrvim6da22ft9ch94ekreb52lv" and claim.proof["member_id"] == MEMBER
    ordinary = HOOKS.claim(raw("events/deal_update.txt"))
    assert ordinary.token == APP_TOKEN and not ordinary.replaces
    assert HOOKS.claim(raw("events/app_uninstall.txt")) is None       # no tokens: nothing to prove with
    assert HOOKS.ends_installation(raw("events/app_uninstall.txt"))
    assert not HOOKS.ends_installation(raw("events/app_install.txt"))


def test_split_keeps_ids_and_drops_every_token():
    [delivery] = HOOKS.split(raw("events/deal_update.txt"))
    assert delivery.key.startswith("ONCRMDEALUPDATE:759:1736405807:") and delivery.ordering == "deal:759"
    assert HOOKS.split(raw("events/deal_update.txt"))[0].key != delivery.key   # two changes in one second
    kept = json.loads(delivery.body)
    assert kept["data"] == {"FIELDS": {"ID": "759"}} and kept["auth"] == {"member_id": MEMBER,
                                                                        "domain": "some-domain.bitrix24.com"}
    for secret in ("s6p6eclrvim6da22ft9ch94ekreb52lv", "4s386p3q0tr8dy89xvmt96234v3dljg8", APP_TOKEN):
        assert secret not in delivery.body
    [task] = HOOKS.split(raw("events/task_add.txt"))
    assert task.ordering == "task:123"
    [gone] = HOOKS.split(raw("task_delete.txt"))       # only the before side names the task
    assert gone.ordering == "task:123"


@pytest.mark.parametrize("body, field", [
    (b"event=ONCRMDEALUPDATE&data%5BFIELDS%5D%5BID%5D=7", "auth[member_id]"),
    (b"data%5BFIELDS%5D%5BID%5D=7&auth%5Bmember_id%5D=x", "event"),
    (b"event=ONCRMDEALUPDATE&data%5BFIELDS%5D%5BID%5D=abc&auth%5Bmember_id%5D=x", "data[FIELDS][ID]"),
    (b"event=ONTASKUPDATE&data%5BFIELDS_AFTER%5D=undefined&auth%5Bmember_id%5D=x", "data[FIELDS_AFTER][ID]"),
    (b"\xff\xfe", "body"),
])
def test_what_is_not_bitrix24s_form_names_the_field(body, field):
    with pytest.raises(MalformedPayload) as caught:
        HOOKS.split(raw(body=body))
    assert caught.value.field == field


def test_a_json_body_is_not_a_delivery():
    with pytest.raises(MalformedPayload) as caught:
        HOOKS.account_key(raw(body=b'{"event": "ONCRMDEALUPDATE"}', content_type="application/json"))
    assert caught.value.field == "body"


class Reads:
    """What normalize may read: the objects by id (None: gone)."""

    def __init__(self, **objects):
        self.objects = objects
        self.calls: list[tuple[str, str]] = []

    def _get(self, kind, ident):
        self.calls.append((kind, ident))
        return self.objects.get(f"{kind}{ident}")

    def deal(self, ident):
        return self._get("deal", ident)

    def lead(self, ident):
        return self._get("lead", ident)

    def task(self, ident):
        return self._get("task", ident)


DEAL = {"ID": "759", "TITLE": "Fit-out", "CATEGORY_ID": "0", "STAGE_ID": "PREPARATION", "STAGE_SEMANTIC_ID": "P",
        "DATE_MODIFY": "2025-01-09T10:00:00+03:00", "MOVED_TIME": "2025-01-09T10:00:00+03:00", "OPPORTUNITY": "100.00"}


def test_an_update_is_read_and_handed_back_as_a_snapshot():
    [delivery] = HOOKS.split(raw("events/deal_update.txt"))
    reads = Reads(deal759=DEAL)
    [snap] = HOOKS.normalize(delivery, reads)
    assert isinstance(snap, Snapshot) and (snap.object_type, snap.object_id) == ("deal", "759")
    assert snap.version == "2025-01-09T07:00:00" and reads.calls == [("deal", "759")]
    assert HOOKS.normalize(delivery, Reads()) == []          # deleted before we read it: nothing to say


def test_deletions_need_no_read():
    [deal] = HOOKS.split(raw("deal_delete.txt"))
    [event] = HOOKS.normalize(deal, None)
    assert (event.kind, event.object_id, event.occurrence) == ("deal.deleted", "759", "once")
    [task] = HOOKS.split(raw("task_delete.txt"))
    [event] = HOOKS.normalize(task, None)
    assert (event.kind, event.extra["status"]) == ("task.status_changed", "gone")


def test_app_events_carry_no_crm_event():
    for name in ("events/app_install.txt", "events/app_uninstall.txt"):
        [delivery] = HOOKS.split(raw(name))
        assert HOOKS.normalize(delivery, None) == []


def kinds(events: list[CrmEvent]) -> list[str]:
    return [e.kind for e in events]


def test_deal_transitions_by_stage_and_semantics():
    created = changes(None, snapshot("deal", DEAL))
    assert kinds(created) == ["deal.created"] and created[0].occurrence == "once"
    moved = {**DEAL, "STAGE_ID": "EXECUTING", "DATE_MODIFY": "2025-01-10T10:00:00+03:00",
             "MOVED_TIME": "2025-01-10T10:00:00+03:00"}
    events = changes(DEAL, snapshot("deal", moved))
    assert kinds(events) == ["deal.updated", "deal.stage_changed"]
    assert (events[1].from_stage_id, events[1].to_stage_id, events[1].pipeline_id) == ("PREPARATION", "EXECUTING", "0")
    won = {**moved, "STAGE_ID": "WON", "STAGE_SEMANTIC_ID": "S", "DATE_MODIFY": "2025-01-11T10:00:00+03:00",
           "MOVED_TIME": "2025-01-11T10:00:00+03:00"}
    events = changes(moved, snapshot("deal", won))
    assert kinds(events) == ["deal.updated", "deal.stage_changed", "deal.won"]
    assert events[2].occurrence == "WON@2025-01-11T07:00:00"
    edited = {**won, "TITLE": "Fit-out (signed)", "DATE_MODIFY": "2025-01-12T10:00:00+03:00"}
    assert kinds(changes(won, snapshot("deal", edited))) == ["deal.updated"]     # still won: no second win
    assert changes(won, snapshot("deal", won)) == []                              # nothing moved
    lost = {**DEAL, "CATEGORY_ID": "2", "STAGE_ID": "C2:LOSE", "STAGE_SEMANTIC_ID": "F",
            "DATE_MODIFY": "2025-01-13T10:00:00+03:00", "MOVED_TIME": "2025-01-13T10:00:00+03:00"}
    events = changes(DEAL, snapshot("deal", lost))
    assert kinds(events)[-1] == "deal.lost" and events[-1].pipeline_id == "2"
    assert kinds(changes(None, snapshot("deal", won))) == ["deal.created", "deal.won"]   # created as won


def test_the_same_win_seen_by_a_webhook_and_a_poll_is_one_occurrence():
    won = {**DEAL, "STAGE_ID": "WON", "STAGE_SEMANTIC_ID": "S", "DATE_MODIFY": "2025-01-11T10:00:00+03:00",
           "MOVED_TIME": "2025-01-11T10:00:00+03:00"}
    by_webhook = changes(DEAL, snapshot("deal", won))[-1]
    later = {**won, "TITLE": "renamed", "DATE_MODIFY": "2025-01-12T10:00:00+03:00"}
    by_poll = changes(DEAL, snapshot("deal", later))[-1]        # the webhook was lost; polled a day later
    assert by_webhook.kind == by_poll.kind == "deal.won" and by_webhook.occurrence == by_poll.occurrence


LEAD = {"ID": "301", "TITLE": "Inbound", "STATUS_ID": "NEW", "STATUS_SEMANTIC_ID": "P",
        "DATE_MODIFY": "2025-01-09T10:00:00+00:00", "MOVED_TIME": "2025-01-09T10:00:00+00:00"}


def test_lead_added_converted_closed():
    assert kinds(changes(None, snapshot("lead", LEAD))) == ["lead.added"]
    converted = {**LEAD, "STATUS_ID": "CONVERTED", "STATUS_SEMANTIC_ID": "S", "DATE_MODIFY": "2025-01-10T10:00:00+00:00",
                 "MOVED_TIME": "2025-01-10T10:00:00+00:00"}
    assert kinds(changes(LEAD, snapshot("lead", converted))) == ["lead.stage_changed", "lead.converted"]
    junk = {**LEAD, "STATUS_ID": "JUNK", "STATUS_SEMANTIC_ID": "F", "DATE_MODIFY": "2025-01-10T10:00:00+00:00",
            "MOVED_TIME": "2025-01-10T10:00:00+00:00"}
    assert kinds(changes(LEAD, snapshot("lead", junk))) == ["lead.stage_changed", "lead.closed"]


TASK = {"id": "123", "title": "Contract", "status": "2", "subStatus": "-2", "notViewed": "Y", "responsibleId": "3",
        "createdBy": "1", "changedBy": "1", "changedDate": "2025-01-09T10:00:00+00:00",
        "createdDate": "2025-01-09T10:00:00+00:00", "deadline": "2025-01-12T18:00:00+00:00", "taskControl": "Y",
        "ufCrmTask": ["D_759", "C_4"]}


def test_task_lifecycle_in_neutral_words_with_its_links():
    [created] = changes(None, snapshot("task", TASK))
    assert created.kind == "task.created" and created.extra == {
        "status": "not_viewed", "deal_id": "759", "contact_id": "4", "deadline": "2025-01-12T18:00:00+00:00",
        "responsible": "3"}
    viewed = {**TASK, "subStatus": "2", "notViewed": "N", "changedDate": "2025-01-09T11:00:00+00:00"}
    [event] = changes(TASK, snapshot("task", viewed))
    assert (event.kind, event.extra["status"]) == ("task.status_changed", "viewed")
    started = {**viewed, "status": "3", "subStatus": "3", "dateStart": "2025-01-09T12:00:00+00:00",
               "changedDate": "2025-01-09T12:00:00+00:00", "statusChangedDate": "2025-01-09T12:00:00+00:00"}
    assert changes(viewed, snapshot("task", started))[0].extra["status"] == "in_progress"
    paused = {**started, "status": "2", "subStatus": "2", "changedDate": "2025-01-09T13:00:00+00:00"}
    assert changes(started, snapshot("task", paused))[0].extra["status"] == "paused"
    moved = {**paused, "deadline": "2025-01-20T18:00:00+00:00", "changedDate": "2025-01-09T14:00:00+00:00"}
    assert changes(paused, snapshot("task", moved))[0].extra["status"] == "deadline_changed"
    review = {**moved, "status": "4", "subStatus": "4", "changedDate": "2025-01-09T15:00:00+00:00"}
    assert [(e.kind, e.extra["status"]) for e in changes(moved, snapshot("task", review))] == [
        ("task.status_changed", "awaiting_review")]
    done = {**review, "status": "5", "subStatus": "5", "closedDate": "2025-01-09T16:00:00+00:00",
            "changedDate": "2025-01-09T16:00:00+00:00"}
    events = changes(review, snapshot("task", done))
    assert kinds(events) == ["task.status_changed", "task.completed"] and events[1].extra["deal_id"] == "759"
    late = {**TASK, "subStatus": "-1", "notViewed": "N", "changedDate": "2025-01-13T10:00:00+00:00"}
    assert changes(TASK, snapshot("task", late))[0].extra["status"] == "overdue"


class Bindings:
    def __init__(self, bound):
        self.bound = [dict(b) for b in bound]
        self.log: list[tuple] = []

    def bound_events(self):
        return [dict(b) for b in self.bound]

    def bind(self, event, handler):
        self.log.append(("bind", event, handler))
        self.bound.append({"event": event, "handler": handler, "auth_type": "0", "offline": 0})

    def unbind(self, event, handler):
        self.log.append(("unbind", event, handler))
        self.bound = [b for b in self.bound if not (b["event"] == event and b["handler"] == handler)]
        return 1


def test_subscribe_binds_each_event_once_and_removes_our_stale_handlers():
    url, ours = "https://hub.test/hooks/bitrix24", "https://hub.test/hooks/bitrix24/"
    other = {"event": "ONCRMDEALUPDATE", "handler": "https://someone-else.example/h", "auth_type": "0", "offline": 0}
    old = {"event": "ONCRMDEALUPDATE", "handler": "https://hub.test/hooks/bitrix24/old-token", "offline": 0}
    client = Bindings([other, old])
    first = HOOKS.subscribe(client, url, Credentials("u", "p"), ours)
    assert len(first.created) == len(subscriptions.EVENTS) and first.deleted == 1
    assert ("unbind", "ONCRMDEALUPDATE", old["handler"]) in client.log
    assert other in client.bound                                  # not ours: untouched
    again = HOOKS.subscribe(client, url, Credentials("u", "p"), ours)
    assert (len(again.kept), len(again.created), again.deleted) == (len(subscriptions.EVENTS), 0, 0)
    hook = again.kept[0]
    HOOKS.unsubscribe(client, hook.remote_id)
    assert client.log[-1] == ("unbind", hook.action, url)
