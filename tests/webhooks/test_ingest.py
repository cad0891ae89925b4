"""Webhook ingest over real HTTP: the sandbox delivers, the hub verifies, stores, dedupes, normalizes."""
from __future__ import annotations

import json

import pytest
import requests
from sqlalchemy import func, select

from hub.store import HubEvent, InboxEvent, Job, ObjectState, RegisteredWebhook, RunLog
from tests.support.clock import StepClock
from tests.web.conftest import install

SCALE = {"sandbox.webhook_time_scale": 0.0005}


@pytest.fixture
def hub(make_live_hub):
    return make_live_hub(**SCALE)


def count(hub, model, *where) -> int:
    with hub.services.db.begin() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def events(hub, object_id=None) -> list[tuple[str, str]]:
    with hub.services.db.begin() as s:
        query = select(HubEvent.kind, HubEvent.object_id).order_by(HubEvent.id)
        if object_id is not None:
            query = query.where(HubEvent.object_id == str(object_id))
        return [tuple(r) for r in s.execute(query)]


def installed(hub) -> int:
    _, iid = install(hub)
    hub.run_jobs()  # registers the webhooks
    return iid


def deliver(hub) -> None:
    assert hub.emulator("pipedrive").flush(15), "the sandbox did not finish delivering"
    hub.run_jobs()


def stage_ids(pd, pipeline_name="Sales") -> list[int]:
    with pd.state.lock:
        pipeline = next(p for p in pd.data["pd_pipelines"].values() if p["name"] == pipeline_name)
        return [s["id"] for s in sorted(pd.data["pd_stages"].values(), key=lambda s: s["order_nr"])
                if s["pipeline_id"] == pipeline["id"]]


def test_registration_is_idempotent(hub):
    iid = installed(hub)
    pd = hub.emulator("pipedrive")
    hooks = [w for w in pd.webhooks("relay-hub-sandbox") if not w.get("is_deleted")]
    assert sorted((w["event_action"], w["event_object"]) for w in hooks) == [
        ("*", "deal"), ("*", "person"), ("change", "activity"), ("create", "lead")]
    assert all(w["http_auth_user"] == f"relayhub-{iid}" for w in hooks)
    install(hub)  # reinstall: registration runs again
    hub.run_jobs()
    again = [w for w in pd.webhooks("relay-hub-sandbox") if not w.get("is_deleted")]
    assert sorted(w["id"] for w in again) == sorted(w["id"] for w in hooks)
    assert count(hub, RegisteredWebhook) == 4


def test_every_event_type_arrives_normalized(hub):
    installed(hub)
    pd = hub.emulator("pipedrive")
    stages = stage_ids(pd)
    deal = pd.create_deal("Nordwind renewal", stage_id=stages[0], value=1200)
    deal_id = deal["id"]
    pd.move_stage(deal_id, stages[1])
    pd.update_deal(deal_id, {"title": "Nordwind renewal (40 seats)"})
    pd.mark_won(deal_id)
    lost = pd.create_deal("Ostwind", stage_id=stages[0])
    pd.mark_lost(lost["id"], "price")
    pd.add_lead("Südwind inbound", person_id=pd.create_person("Lead Person")["id"])
    person = pd.create_person("Erika Muster", emails=["erika@example.com", "e.muster@example.org"])
    pd.update_person(person["id"], {"name": "Erika Mustermann"})
    pd.delete_person(person["id"])
    deliver(hub)
    kinds = events(hub)
    got = {(k, o) for k, o in kinds}
    d, l, p = str(deal_id), str(lost["id"]), str(person["id"])
    for expected in [("deal.created", d), ("deal.stage_changed", d), ("deal.updated", d), ("deal.won", d),
                     ("deal.created", l), ("deal.lost", l), ("person.created", p), ("person.updated", p),
                     ("person.deleted", p)]:
        assert expected in got, (expected, kinds)
    assert any(k == "lead.added" for k, _ in kinds)
    assert [k for k, o in kinds if o == d].count("deal.won") == 1  # the title edit was not a win
    with hub.services.db.begin() as s:
        moved = s.scalar(select(HubEvent).where(HubEvent.kind == "deal.stage_changed", HubEvent.object_id == d))
        assert (moved.data["from_stage_id"], moved.data["to_stage_id"]) == (str(stages[0]), str(stages[1]))
        assert moved.data["pipeline_id"]
        assert s.scalar(select(func.count()).select_from(InboxEvent).where(InboxEvent.status != "processed",
                                                                          InboxEvent.status != "ignored")) == 0
        steps = {r.step for r in s.scalars(select(RunLog))}
        assert "normalized" in steps
        assert s.scalar(select(func.count()).select_from(InboxEvent)) >= len(kinds) - 2  # each stored on receipt


def test_duplicates_and_retries_share_the_event_id_and_store_once(hub):
    installed(hub)
    pd = hub.emulator("pipedrive")
    requests.post(f"{hub.url}/sandbox/pipedrive/_sandbox/faults", json={"webhook_duplicate_rate": 1.0})
    deal = pd.create_deal("Twice told", stage_id=stage_ids(pd)[0])
    pd.mark_won(deal["id"])
    deliver(hub)
    sent = [d for d in pd.deliveries if d.get("ok")]
    ids = [d["event_id"] for d in sent if "event_id" in d] or [d.get("meta_id") for d in sent]
    assert len(sent) >= 4  # every event went out twice
    assert count(hub, InboxEvent) == 2
    assert events(hub, deal["id"]).count(("deal.won", str(deal["id"]))) == 1


def test_out_of_order_delivery_is_stale_and_does_not_roll_state_back(make_live_hub, db_url):
    hub = make_live_hub(db_url, **SCALE)
    admin, iid = install(hub)
    hub.run_jobs()
    pd = hub.emulator("pipedrive")
    pd.clock = clock = StepClock()
    stages = stage_ids(pd)
    deal = pd.create_deal("Shuffled", stage_id=stages[0])
    deliver(hub)
    faults = f"{hub.url}/sandbox/pipedrive/_sandbox/faults"
    requests.post(faults, json={"webhooks_paused": True, "webhook_reorder_rate": 1.0})
    clock.tick()
    pd.move_stage(deal["id"], stages[1])     # held back by the sandbox ...
    clock.tick()
    pd.move_stage(deal["id"], stages[2])     # ... until this newer change has been delivered
    requests.post(faults, json={"webhooks_paused": False})
    deliver(hub)
    requests.post(faults, json={"webhook_reorder_rate": 0.0})

    with hub.services.db.begin() as s:
        received = [json.loads(i.body)["data"]["stage_id"] for i in s.scalars(
            select(InboxEvent).where(InboxEvent.body.contains('"change"')).order_by(InboxEvent.id))]
        assert received == [stages[2], stages[1]]          # the hub really got the newer state first
        state = s.scalar(select(ObjectState).where(ObjectState.object_id == str(deal["id"])))
        assert state.data["stage_id"] == stages[2]         # the late, older change did not roll it back
        moves = {e.data["to_stage_id"]: e for e in s.scalars(select(HubEvent).where(
            HubEvent.kind == "deal.stage_changed", HubEvent.object_id == str(deal["id"])))}
        assert set(moves) == {str(stages[1]), str(stages[2])}    # both are stored
        late = moves[str(stages[1])]
        assert late.data["stale"] == {"version": late.data["stale"]["version"], "known_version": state.version,
                                      "acted": False}
        assert late.data["stale"]["version"] < state.version
        traces = [r.message for r in s.scalars(select(RunLog).where(RunLog.step == "stale", RunLog.hub_event_id == late.id))]
        assert len(traces) == 1 and "older than what we know: no transition" in traces[0]
        assert late.data["stale"]["version"] in traces[0] and state.version in traces[0]
        assert "stale" not in moves[str(stages[2])].data
    # the run log shows it: the event's trace in the JSON API, and a badge on the page
    shown = admin.get(f"/api/v1/installations/{iid}/events/{late.id}").json()
    assert shown["stale"]["acted"] is False
    assert any(t["step"] == "stale" and "no transition" in t["message"] for t in shown["trace"])
    assert "stale: no transition" in admin.get(f"/i/{iid}/events").text


def _hook(hub) -> tuple[str, tuple[str, str]]:
    with hub.services.db.begin() as s:
        hook = s.scalar(select(RegisteredWebhook))
        from hub.webhooks.credentials import webhook_credentials
        return hook.url, webhook_credentials(hub.services, s, hook.installation_id)


def test_rejections_store_nothing(hub):
    installed(hub)
    url, auth = _hook(hub)
    example = {"meta": {"action": "create", "entity": "deal", "entity_id": "9", "id": "0d7c1e1a-aaaa-bbbb-cccc-1234567890ab",
                        "timestamp": "2026-11-20T14:03:11.562Z", "version": "2.0"},
               "data": {"id": 9, "title": "x", "status": "open", "update_time": "2026-11-20T14:03:11Z"}, "previous": None}
    before = (count(hub, InboxEvent), count(hub, Job))
    assert requests.post(url, json=example, auth=(auth[0], "wrong")).status_code == 401
    assert requests.post(url, json=example).status_code == 401
    bad_token = url.rsplit("/", 1)[0] + "/not-a-token"
    unknown = requests.post(bad_token, json=example, auth=auth)
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    assert requests.post(url.replace("/pipedrive/", "/nosuchcrm/"), json=example, auth=auth).status_code == 404
    malformed = requests.post(url, data=b"{not json", auth=auth, headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and "body" in malformed.json()["message"]
    wrong_shape = requests.post(url, json={"hello": "world"}, auth=auth)
    assert wrong_shape.status_code == 400 and "meta" in wrong_shape.json()["message"]
    huge = requests.post(url, data=b"{" + b" " * 300_000 + b"}", auth=auth, headers={"Content-Type": "application/json"})
    assert huge.status_code == 413
    assert (count(hub, InboxEvent), count(hub, Job)) == before
    ok = requests.post(url, json=example, auth=auth)
    assert ok.status_code == 200 and ok.json() == {"ok": True}
    again = requests.post(url, json=example, auth=auth)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert count(hub, InboxEvent) == before[0] + 1


def test_unreadable_event_fails_visibly_in_the_dead_letter(hub):
    installed(hub)
    url, auth = _hook(hub)
    # a well-formed envelope (it has an id, so ingest stores it) whose change carries no deal
    odd = {"meta": {"action": "change", "entity": "deal", "entity_id": "5", "id": "11111111-2222-3333-4444-555555555555",
                    "version": "2.0"}, "data": None, "previous": None}
    assert requests.post(url, json=odd, auth=auth).status_code == 200
    hub.run_jobs()
    with hub.services.db.begin() as s:
        inbox = s.scalar(select(InboxEvent).where(InboxEvent.event_key == odd["meta"]["id"]))
        assert inbox.status == "failed" and "malformed" in inbox.error
        dead = s.scalar(select(Job).where(Job.kind == "webhook.process", Job.status == "dead"))
        assert dead is not None and dead.attempts == 1 and "malformed" in dead.last_error
        assert s.scalar(select(RunLog).where(RunLog.inbox_event_id == inbox.id, RunLog.status == "error")) is not None


def test_an_activity_marked_done_arrives_as_task_completed(hub):
    """The sandbox keeps no activities, so the delivery is posted as Pipedrive documents it (FACTS §7)."""
    installed(hub)
    url, auth = _hook(hub)
    done = {"meta": {"action": "change", "entity": "activity", "entity_id": "881", "id": "7c0e2a4d-1111-4b6f-9a3e-5d2c8f1b0e77",
                     "timestamp": "2026-11-24T09:30:00.412Z", "version": "2.0"},
            "data": {"id": 881, "subject": "Send the contract", "done": True, "deal_id": 4211,
                     "marked_as_done_time": "2026-11-24T09:30:00Z", "update_time": "2026-11-24T09:30:00Z"},
            "previous": {"done": False, "marked_as_done_time": None}}
    assert requests.post(url, json=done, auth=auth).json() == {"ok": True}
    retry = {**done, "meta": {**done["meta"], "id": "7c0e2a4d-2222-4b6f-9a3e-5d2c8f1b0e77"}}   # same change, told twice
    assert requests.post(url, json=retry, auth=auth).json() == {"ok": True}
    hub.run_jobs()
    assert events(hub) == [("task.completed", "881")]
    with hub.services.db.begin() as s:
        [event] = s.scalars(select(HubEvent)).all()
        assert event.object_type == "task" and event.data["current"]["deal_id"] == 4211
