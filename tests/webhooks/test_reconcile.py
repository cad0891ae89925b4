"""The hub is down while the sandbox delivers; Pipedrive bans the endpoint and drops events; when
the hub is back, reconciliation recovers every missed won/lost/stage event exactly once."""
from __future__ import annotations

from sqlalchemy import func, select

from hub.store import HubEvent
from hub.webhooks.reconcile import reconcile_installation
from tests.webhooks.test_ingest import deliver, installed, stage_ids

# retries after 0.03/0.3/1.5 s, and a ban of 18 s: it outlasts the test


class Outage:
    """Answers 503 on /hooks/ while `down`, like a hub whose web processes are gone."""

    def __init__(self, app):
        self.app = app
        self.down = False

    def __call__(self, environ, start_response):
        if self.down and environ.get("PATH_INFO", "").startswith("/hooks/"):
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"down"]
        return self.app(environ, start_response)


def occurrences(hub, kind: str, object_id) -> int:
    with hub.services.db.begin() as s:
        return s.scalar(select(func.count()).select_from(HubEvent).where(
            HubEvent.kind == kind, HubEvent.object_id == str(object_id)))


def test_ban_then_reconciliation_recovers_missed_events_exactly_once(make_live_hub):
    hub = make_live_hub(**{"sandbox.webhook_time_scale": 0.01})
    outage = Outage(hub.app)
    hub.server.app = outage
    iid = installed(hub)
    pd = hub.emulator("pipedrive")
    stages = stage_ids(pd)
    before = [pd.create_deal(f"Known {n}", stage_id=stages[0]) for n in range(3)]
    deliver(hub)
    assert reconcile_installation(hub.services, iid)["events"] == 0  # first poll: baseline only

    outage.down = True
    won = [pd.create_deal(f"Won while down {n}", stage_id=stages[0]) for n in range(6)]
    for deal in won:
        pd.mark_won(deal["id"])
    pd.mark_lost(before[0]["id"], "budget")
    pd.move_stage(before[1]["id"], stages[2])
    pd.mark_won(before[2]["id"])
    assert pd.flush(15)
    hooks = [w for w in pd.webhooks("relay-hub-sandbox") if w["event_object"] == "deal"]
    assert any(w.get("remove_reason") == "banned" for w in hooks), hooks  # Pipedrive gave up on us
    pd.mark_won(before[1]["id"])  # while banned, Pipedrive does not even try
    assert pd.flush(15)
    assert any(d.get("reason") == "lost: webhook banned" for d in pd.deliveries)
    assert occurrences(hub, "deal.lost", before[0]["id"]) == 0

    outage.down = False
    with hub.services.db.begin() as s:  # the scheduled poll, as the leader would fire it
        hub.services.queue.enqueue(s, "webhooks.reconcile", {"installation_id": iid}, installation_id=iid)
    hub.run_jobs()
    for deal in won:
        assert occurrences(hub, "deal.won", deal["id"]) == 1
        assert occurrences(hub, "deal.created", deal["id"]) == 1
    assert occurrences(hub, "deal.lost", before[0]["id"]) == 1
    assert occurrences(hub, "deal.stage_changed", before[1]["id"]) == 1
    assert occurrences(hub, "deal.won", before[1]["id"]) == 1
    assert occurrences(hub, "deal.won", before[2]["id"]) == 1
    active = [w for w in pd.webhooks("relay-hub-sandbox") if w.get("is_active") and not w.get("is_deleted")]
    assert len(active) == 4  # the banned webhook was replaced

    with hub.services.db.begin() as s:
        total = s.scalar(select(func.count()).select_from(HubEvent))
    assert reconcile_installation(hub.services, iid)["events"] == 0  # a second poll changes nothing
    pd.mark_lost(won[0]["id"], "changed their mind")  # live delivery works again
    deliver(hub)
    assert occurrences(hub, "deal.lost", won[0]["id"]) == 1
    with hub.services.db.begin() as s:
        assert s.scalar(select(func.count()).select_from(HubEvent)) > total


def test_a_poll_still_pending_gets_no_second_one(make_live_hub):
    from hub.jobs import Worker
    from hub.store import Job
    hub = make_live_hub()
    iid = installed(hub)
    services = hub.services
    only_fan_out = Worker(services.queue, app=hub.app, worker_id="w", kinds=["webhooks.reconcile_all"])
    for slot in (1, 2):  # two firings of the schedule while the first poll has not run yet
        with services.db.begin() as s:
            services.queue.enqueue(s, "webhooks.reconcile_all", {"slot": slot}, installation_id=None)
        assert only_fan_out.run_once() == 1
    with services.db.begin() as s:
        polls = s.scalars(select(Job).where(Job.kind == "webhooks.reconcile")).all()
    assert [p.payload["installation_id"] for p in polls] == [iid]
