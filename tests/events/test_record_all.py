"""Several events recorded together (a webhook's change and its transition): one INSERT of their
rows, and otherwise what recording them one by one gives: the same rows, states, run log and
subscriber calls, duplicates and stale events included. On SQLite and PostgreSQL."""
from __future__ import annotations

from sqlalchemy import event as sa_event, select

from hub import events
from hub.store import HubEvent, ObjectState, RunLog
from tests.events.test_stale import T1, T2, T3, deal, event

T4 = "2026-11-20T10:00:12Z"


def _deal(object_id: str, update_time: str, **fields) -> dict:
    return {**deal(update_time, **fields), "id": int(object_id)}


def _of(object_id: str, crm_event):
    crm_event.object_id = object_id
    return crm_event


BATCHES = [
    # a new deal won: its change and its transition
    [event("deal.updated", deal(T1, status="won", won_time=T1), {"status": "open"}),
     event("deal.won", deal(T1, status="won", won_time=T1), {"status": "open"})],
    # the same delivery again: duplicates
    [event("deal.updated", deal(T1, status="won", won_time=T1), {"status": "open"}),
     event("deal.won", deal(T1, status="won", won_time=T1), {"status": "open"})],
    # a newer change, then an older move in the same batch: the move is stale
    [event("deal.updated", deal(T3, stage_id=3, stage_change_time=T3), {"stage_id": 2}),
     event("deal.stage_changed", deal(T2, stage_id=2, stage_change_time=T2), {"stage_id": 1},
           from_stage_id="1", to_stage_id="2")],
    # one occurrence twice in a batch, and a second deal
    [event("deal.updated", deal(T4, title="Nordwind GmbH"), {"title": "Nordwind"}),
     event("deal.updated", deal(T4, title="Nordwind GmbH"), {"title": "Nordwind"}),
     _of("43", event("deal.updated", _deal("43", T2), None))],
]


def _snapshot(services, installation_id: int) -> dict:
    with services.db.begin() as s:
        return {
            "events": [(e.occurrence, e.kind, e.object_id, e.source, e.data) for e in s.scalars(
                select(HubEvent).where(HubEvent.installation_id == installation_id).order_by(HubEvent.id))],
            "states": [(o.object_type, o.object_id, o.version, o.deleted, o.data) for o in s.scalars(
                select(ObjectState).where(ObjectState.installation_id == installation_id).order_by(ObjectState.id))],
            "log": [(r.step, r.status, r.message) for r in s.scalars(
                select(RunLog).where(RunLog.installation_id == installation_id).order_by(RunLog.id))],
        }


def test_events_recorded_together_are_recorded_as_one_by_one(make_hub, monkeypatch):
    services = make_hub().extensions["hub"]
    seen: list[tuple] = []
    monkeypatch.setattr(events, "_subscribers", [lambda _s, _session, e: seen.append((e.installation_id, e.kind,
                                                                                      e.object_id))])
    results = {1: [], 2: []}
    for batch in BATCHES:
        with services.db.begin() as s:                       # installation 1: together
            results[1].append([e is not None for e in events.record_all(services, s, 1, batch, source="webhook")])
        with services.db.begin() as s:                       # installation 2: one by one
            results[2].append([events.record(services, s, 2, e, source="webhook") is not None for e in batch])
    assert results[1] == results[2] == [[True, True], [False, False], [True, True], [True, False, True]]
    together, alone = _snapshot(services, 1), _snapshot(services, 2)
    assert together == alone
    assert [k for i, k, _ in seen if i == 1] == [k for i, k, _ in seen if i == 2]
    assert ("stale", "info") in [(step, status) for step, status, _ in together["log"]]


def test_a_webhooks_events_go_in_as_one_insert(make_hub):
    services = make_hub().extensions["hub"]
    inserts: list[str] = []

    def on_execute(conn, cursor, statement, params, context, executemany):
        if statement.startswith("INSERT INTO hub_events"):
            inserts.append(statement)

    sa_event.listen(services.db.engine, "before_cursor_execute", on_execute)
    try:
        with services.db.begin() as s:
            recorded = events.record_all(services, s, 1, BATCHES[0], source="webhook")
    finally:
        sa_event.remove(services.db.engine, "before_cursor_execute", on_execute)
    assert [e.kind for e in recorded] == ["deal.updated", "deal.won"] and len(inserts) == 1
