"""The run log page and API: an event's path, and replay of failed webhooks and dead jobs."""
from __future__ import annotations

import requests
from sqlalchemy import select

from hub.store import HubEvent, InboxEvent, Job
from tests.webhooks.test_ingest import _hook, deliver, hub, installed, stage_ids  # noqa: F401  (fixture)
from tests.web.conftest import install


def test_event_path_is_shown_and_failed_work_can_be_replayed(hub):
    admin, iid = install(hub)
    hub.run_jobs()
    pd = hub.emulator("pipedrive")
    deal = pd.create_deal("Traced deal", stage_id=stage_ids(pd)[0])
    pd.mark_won(deal["id"])
    deliver(hub)
    page = admin.get(f"/i/{iid}/events?all=1")    # no rule is about it: shown when all are asked for
    assert page.status_code == 200 and "Deal won" in page.text
    with hub.services.db.begin() as s:
        won = s.scalar(select(HubEvent).where(HubEvent.kind == "deal.won"))
    detail = admin.get(f"/api/v1/installations/{iid}/events/{won.id}").json()
    steps = [t["step"] for t in detail["trace"]]
    assert steps[0] == "received" and "normalized" in steps
    assert detail["data"]["current"]["status"] == "won"
    assert f"deal {deal['id']}" in admin.get(f"/i/{iid}/events/{won.id}").text

    url, auth = _hook(hub)
    odd = {"meta": {"action": "change", "entity": "deal", "entity_id": "5", "id": "aaaaaaaa-2222-3333-4444-555555555555",
                    "version": "2.0"}, "data": None, "previous": None}
    requests.post(url, json=odd, auth=auth)
    hub.run_jobs()
    token = admin.csrf(f"/i/{iid}/events")
    headers = {"X-CSRF-Token": token}
    failed = admin.get(f"/api/v1/installations/{iid}/inbox?status=failed").json()["inbox"]
    assert len(failed) == 1 and "malformed" in failed[0]["error"]
    dead = admin.get(f"/api/v1/installations/{iid}/jobs/dead").json()["jobs"]
    assert len(dead) == 1 and dead[0]["kind"] == "webhook.process"
    assert "Dead jobs" in admin.get(f"/i/{iid}/events").text

    replayed = admin.post(f"/api/v1/installations/{iid}/inbox/{failed[0]['id']}/replay", headers=headers)
    assert replayed.status_code == 200
    with hub.services.db.begin() as s:
        assert s.get(InboxEvent, failed[0]["id"]).status == "received"
    assert admin.post(f"/api/v1/installations/{iid}/jobs/{dead[0]['id']}/replay", headers=headers).status_code == 200
    with hub.services.db.begin() as s:
        assert s.get(Job, dead[0]["id"]).status == "queued"
    hub.run_jobs()  # still unreadable: both runs end in the dead letter again, nothing else happens
    with hub.services.db.begin() as s:
        assert s.get(InboxEvent, failed[0]["id"]).status == "failed"
    wrong = admin.post(f"/api/v1/installations/{iid}/jobs/999999/replay", headers=headers)
    assert wrong.status_code == 400 and wrong.json()["message"].startswith("job_id:")
    processed = admin.get(f"/api/v1/installations/{iid}/inbox?status=processed").json()["inbox"][0]
    refused = admin.post(f"/api/v1/installations/{iid}/inbox/{processed['id']}/replay", headers=headers)
    assert refused.status_code == 400  # a processed webhook is never run twice
