"""Events older than the state the hub holds: recorded and traced, never rolling the state back;
their transition counts only while the newer state still shows it (what the connector says the
transition leaves behind, `CrmEvent.shows`). On SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from hub import events
from hub.connectors.base import CrmEvent
from hub.connectors.pipedrive.webhooks import reconcile_events
from hub.store import HubEvent, ObjectState, RunLog

T1, T2, T3 = "2026-11-20T10:00:01Z", "2026-11-20T10:00:05Z", "2026-11-20T10:00:09Z"


def deal(update_time: str, **fields) -> dict:
    return {"id": 42, "title": "Nordwind", "status": "open", "stage_id": 1, "pipeline_id": 1,
            "won_time": None, "stage_change_time": None, "update_time": update_time, **fields}


def event(kind: str, current: dict, previous: dict | None = None, **kw) -> CrmEvent:
    """As a connector emits it: the occurrence marker, and what a transition leaves in the state."""
    occurrence, shows = {
        "deal.won": (current.get("won_time"), {"status": "won", "won_time": current.get("won_time")}),
        "deal.stage_changed": (f"{kw.get('to_stage_id')}@{current.get('stage_change_time')}",
                               {"stage_id": kw.get("to_stage_id"), "stage_change_time": current.get("stage_change_time")}),
    }.get(kind, (None, None))
    return CrmEvent(kind=kind, object_type="deal", object_id="42", event_id=f"{kind}:{current['update_time']}",
                    occurred_at=None, current=current, previous=previous, pipeline_id="1",
                    version=current["update_time"], occurrence=occurrence, shows=shows, **kw)


@pytest.fixture
def hub(make_hub, monkeypatch):
    app = make_hub()
    seen: list[str] = []
    monkeypatch.setattr(events, "_subscribers", [lambda services, session, e: seen.append(e.kind)])
    services = app.extensions["hub"]

    def record(*crm_events: CrmEvent, source: str = "webhook") -> None:
        with services.db.begin() as s:
            for e in crm_events:
                events.record(services, s, 1, e, source=source)

    def state() -> ObjectState:
        with services.db.begin() as s:
            return s.scalar(select(ObjectState).where(ObjectState.object_id == "42"))

    def stale_traces() -> list[str]:
        with services.db.begin() as s:
            return [r.message for r in s.scalars(select(RunLog).where(RunLog.step == "stale").order_by(RunLog.id))]

    def stored(kind: str) -> list[HubEvent]:
        with services.db.begin() as s:
            return list(s.scalars(select(HubEvent).where(HubEvent.kind == kind).order_by(HubEvent.id)))

    return type("Hub", (), {"record": staticmethod(record), "state": staticmethod(state), "seen": seen,
                            "stale_traces": staticmethod(stale_traces), "stored": staticmethod(stored)})


def test_a_superseded_move_is_stored_as_stale_with_no_transition(hub, db_url):
    in_b = deal(T1, stage_id=2, stage_change_time=T1)
    in_c = deal(T2, stage_id=3, stage_change_time=T2)
    hub.record(event("deal.stage_changed", in_c, {"stage_id": 2}, from_stage_id="2", to_stage_id="3"))
    hub.record(event("deal.updated", in_b, {"stage_id": 1}),
               event("deal.stage_changed", in_b, {"stage_id": 1}, from_stage_id="1", to_stage_id="2"))
    assert hub.seen == ["deal.stage_changed"]              # only the move to C reached the subscribers
    state = hub.state()
    assert (state.data["stage_id"], state.version) == (3, events.canonical_time(T2))
    [_, late] = hub.stored("deal.stage_changed")
    assert late.data["stale"] == {"version": events.canonical_time(T1), "known_version": state.version, "acted": False}
    traces = hub.stale_traces()
    assert len(traces) == 2 and all("older than what we know: no transition" in t for t in traces)
    assert all(events.canonical_time(T1) in t and events.canonical_time(T2) in t for t in traces)


def test_a_late_win_the_newer_state_still_shows_is_acted_on(hub, db_url):
    """Won at T1, renamed at T2, the rename delivered first: it carries no transition, and the
    reconciliation poll compares with it, so dropping the late win would lose it for good."""
    won = deal(T1, status="won", won_time=T1)
    renamed = deal(T2, status="won", won_time=T1, title="Nordwind (40 seats)")
    hub.record(event("deal.updated", renamed, {"title": "Nordwind"}))
    hub.record(event("deal.updated", won, {"status": "open"}), event("deal.won", won, {"status": "open"}))
    assert hub.seen == ["deal.updated", "deal.won"]         # the stale update: nothing; the win: acted on
    assert hub.state().data["title"] == "Nordwind (40 seats)"
    [win] = hub.stored("deal.won")
    assert win.data["stale"]["acted"] is True
    assert any("older than what we know, which still shows it: acted on" in t for t in hub.stale_traces())


def test_a_late_win_after_a_reopen_is_no_transition(hub, db_url):
    won = deal(T1, status="won", won_time=T1)
    reopened = deal(T2, status="open", won_time=None)
    hub.record(event("deal.updated", reopened, {"status": "won"}))
    hub.record(event("deal.won", won, {"status": "open"}))
    assert hub.seen == ["deal.updated"]
    assert hub.state().data["status"] == "open"
    assert "older than what we know: no transition" in hub.stale_traces()[-1]


def test_reconcile_events_older_than_the_state_held_are_stale(hub, db_url):
    """The poll read the deal from the API, then a newer webhook was recorded before the poll compared:
    the poll's view is older, and its 'transition' back to the older stage is no transition."""
    in_c = deal(T3, stage_id=3, stage_change_time=T3)
    hub.record(event("deal.stage_changed", in_c, {"stage_id": 2}, from_stage_id="2", to_stage_id="3"))
    api_view = deal(T2, stage_id=2, stage_change_time=T2)      # what the poll read a moment before
    hub.record(*reconcile_events(hub.state().data, api_view), source="reconcile")
    assert hub.seen == ["deal.stage_changed"]
    assert hub.state().data["stage_id"] == 3
    back = [e for e in hub.stored("deal.stage_changed") if e.source == "reconcile"]
    assert len(back) == 1 and back[0].data["stale"]["acted"] is False


def test_equal_or_unknown_versions_are_not_stale(hub, db_url):
    first = deal(T1, title="one")
    hub.record(event("deal.updated", first))
    hub.record(event("deal.updated", deal(T1, title="two"), {"title": "one"}, ))
    assert hub.state().data["title"] == "two" and hub.stale_traces() == []


def test_a_late_transition_is_judged_by_instants_not_spellings(hub, db_url):
    """Won at T1 then reopened and won again at T2 (delivered first): the late win at T1 is
    contradicted by the newer won time. A late win at T2 written another way (space, no zone; an
    API and a webhook spell times differently) is the win the newer state shows: acted on."""
    hub.record(event("deal.updated", deal(T3, status="won", won_time=T2, title="renamed"), {"title": "Nordwind"}))
    hub.record(event("deal.won", deal(T1, status="won", won_time=T1), {"status": "open"}))
    assert hub.seen == ["deal.updated"]
    hub.record(event("deal.won", deal(T2, status="won", won_time=T2.replace("T", " ").rstrip("Z")), {"status": "open"}))
    assert hub.seen == ["deal.updated", "deal.won"]
    assert [w.data["stale"]["acted"] for w in hub.stored("deal.won")] == [False, True]


def test_an_event_that_shows_nothing_is_no_late_transition(hub, db_url):
    """A connector that says nothing about what a transition leaves (`shows` None) never has a late
    delivery of it acted on; {} (a creation) always is."""
    hub.record(event("deal.updated", deal(T2, title="renamed")))
    quiet = CrmEvent(kind="deal.won", object_type="deal", object_id="42", event_id="w1", occurred_at=None,
                     current=deal(T1, status="won"), previous=None, version=T1)
    created = CrmEvent(kind="deal.created", object_type="deal", object_id="42", event_id="c1", occurred_at=None,
                       current=deal(T1), previous=None, version=T1, shows={})
    hub.record(quiet, created)
    assert hub.seen == ["deal.updated", "deal.created"]


def test_the_occurrence_is_the_connectors_marker(hub, db_url):
    """Two deliveries the connector marks as one occurrence are one row, whatever their ids."""
    first = event("deal.stage_changed", deal(T1, stage_id=2, stage_change_time=T1), {"stage_id": 1},
                  from_stage_id="1", to_stage_id="2")
    again = event("deal.stage_changed", deal(T1, stage_id=2, stage_change_time=T1), {"stage_id": 1},
                  from_stage_id="1", to_stage_id="2")
    again.event_id = "another delivery"
    hub.record(first, again)
    [stored] = hub.stored("deal.stage_changed")
    assert stored.occurrence == f"deal:42:deal.stage_changed:2@{T1}" and hub.seen == ["deal.stage_changed"]
    unmarked = CrmEvent(kind="person.updated", object_type="person", object_id="7", event_id="e1", occurred_at=None,
                        current={"id": 7}, previous=None, version=T2)
    hub.record(unmarked)
    assert hub.stored("person.updated")[0].occurrence == f"person:7:person.updated:{events.canonical_time(T2)}"


def test_one_transactions_events_of_one_object_lock_and_write_its_state_once_each(hub, db_url):
    """A webhook that gives several events of one object: the state row is inserted or locked by
    the first, and written again only when an event changes it; later events compare with the
    state as this transaction left it."""
    from sqlalchemy import event as sa_event
    from sqlalchemy.engine import Engine
    statements: list[str] = []

    def on_execute(conn, cursor, statement, params, context, executemany):
        if "object_states" in statement:
            statements.append(statement.split()[0])

    sa_event.listen(Engine, "before_cursor_execute", on_execute)
    try:
        first = deal(T2, status="won", won_time=T2)
        hub.record(event("deal.updated", first), event("deal.won", first))
        assert statements == ["INSERT"]                       # the new object's row, holding this state
        statements.clear()
        later = deal(T3, status="won", won_time=T2, title="Nordwind GmbH")
        hub.record(event("deal.updated", later), event("deal.updated", deal(T1)), event("deal.updated", later))
        assert statements == ["INSERT", "SELECT", "UPDATE"]   # insert-or-lock, one write, the older one stale
    finally:
        sa_event.remove(Engine, "before_cursor_execute", on_execute)
    assert (hub.state().version, hub.state().data["title"]) == (T3.rstrip("Z"), "Nordwind GmbH")
    assert len(hub.stale_traces()) == 1
