"""The dead letter is per installation, filtered in SQL: 2,000 dead junk jobs of one tenant cannot
hide another tenant's dead jobs (webhook, rule run, sync run: each kind, including those whose
payload names no installation), and no tenant lists or replays another's."""
from __future__ import annotations

import requests
from sqlalchemy import select, update

from hub.rules.engine import enqueue_run
from hub.store import Installation, Job
from hub.store.models import ContactSync, RuleRun
from hub.sync.jobs import request_run
from tests.web.conftest import install
from tests.webhooks.test_ingest import _hook, hub  # noqa: F401  (fixture)

JUNK = 2000


def _bury(services, job_ids: list[int]) -> None:
    """What the worker does to a job that fails fatally (the runs themselves are tested elsewhere)."""
    with services.db.begin() as s:
        s.execute(update(Job).where(Job.id.in_(job_ids)).values(status="dead", last_error="Fatal: test"))


def test_one_tenants_junk_cannot_hide_or_reach_anothers_dead_jobs(hub):
    admin, b = install(hub)
    hub.run_jobs()
    services = hub.services

    # B: a delivery the connector cannot read dies in the worker like any real one
    url, auth = _hook(hub)
    odd = {"meta": {"action": "change", "entity": "deal", "entity_id": "5", "id": "aaaaaaaa-2222-3333-4444-555555555555",
                    "version": "2.0"}, "data": None, "previous": None}
    assert requests.post(url, json=odd, auth=auth).status_code == 200
    hub.run_jobs()
    # B: a rule run and a sync run, enqueued by the code that enqueues them in production
    with services.db.begin() as s:
        sync = ContactSync(installation_id=b, name="Team", store_connection_id=1)
        run = RuleRun(installation_id=b, rule_id=1, hub_event_id=1, effect_key="k", object_type="deal", object_id="5")
        s.add_all([sync, run])
        s.flush()
        rule_job = enqueue_run(services, s, run)
        sync_job = request_run(services, s, sync.id, "manual")
    _bury(services, [rule_job, sync_job])
    with services.db.begin() as s:
        [webhook_job] = s.scalars(select(Job.id).where(Job.kind == "webhook.process", Job.status == "dead"))
        kinds = dict(s.execute(select(Job.id, Job.kind).where(Job.installation_id == b, Job.status == "dead")).all())
    mine = {webhook_job, rule_job, sync_job}
    assert kinds == {webhook_job: "webhook.process", rule_job: "rule.execute", sync_job: "sync.run"}

    # A: 2,000 junk deliveries, all dead, all newer than B's
    with services.db.begin() as s:
        a_row = Installation(provider="pipedrive", company_id="other", installer_user_id="1", endpoint_token="tok-a")
        s.add(a_row)
        s.flush()
        a = a_row.id
        junk = [services.queue.enqueue(s, "webhook.process", {"inbox_event_id": n, "installation_id": a},
                                       installation_id=a) for n in range(JUNK)]
    _bury(services, junk)

    listed = admin.get(f"/api/v1/installations/{b}/jobs/dead").json()
    assert {j["id"] for j in listed["jobs"]} == mine and listed["next_before"] is None
    page = admin.get(f"/i/{b}/events").text
    assert all(f"<td>{job_id}</td>" in page for job_id in mine)

    # A pages through its whole dead letter and never meets B's jobs
    seen, before = [], None
    while True:
        batch = services.queue.list_jobs(installation_id=a, status="dead", before_id=before, limit=500)
        if not batch:
            break
        seen += [j.id for j in batch]
        before = batch[-1].id
    assert sorted(seen) == sorted(junk) and not mine & set(seen)
    assert all(not services.queue.replay(job_id, installation_id=a) for job_id in mine)

    # B replays its own, never A's
    headers = {"X-CSRF-Token": admin.csrf(f"/i/{b}/events")}
    refused = admin.post(f"/api/v1/installations/{b}/jobs/{junk[0]}/replay", headers=headers)
    assert refused.status_code == 400 and refused.json()["message"].startswith("job_id:")
    for job_id in mine:
        assert admin.post(f"/api/v1/installations/{b}/jobs/{job_id}/replay", headers=headers).status_code == 200
    with services.db.begin() as s:
        assert set(s.scalars(select(Job.status).where(Job.id.in_(mine)))) == {"queued"}
        assert s.get(Job, junk[0]).status == "dead"


def test_cli_lists_and_replays_one_installation(hub):
    services = hub.services
    with services.db.begin() as s:
        ids = {iid: services.queue.enqueue(s, "test.kind", {}, installation_id=iid) for iid in (1, 2)}
        ids[None] = services.queue.enqueue(s, "hub.housekeeping", {}, installation_id=None)
    _bury(services, list(ids.values()))
    runner = hub.app.test_cli_runner()
    out = runner.invoke(args=["jobs", "list", "--status", "dead", "--installation", "2"]).output
    assert str(ids[2]) in out and str(ids[1]) not in out and str(ids[None]) not in out
    out = runner.invoke(args=["jobs", "list", "--status", "dead", "--global"]).output
    assert str(ids[None]) in out and str(ids[1]) not in out
    refused = runner.invoke(args=["jobs", "replay", str(ids[1]), "--installation", "2"])
    assert refused.exit_code != 0 and "left alone" in refused.output
    assert runner.invoke(args=["jobs", "replay", "--all-dead", "--installation", "2"]).exit_code == 0
    with services.db.begin() as s:
        assert {k: s.get(Job, v).status for k, v in ids.items()} == {1: "dead", 2: "queued", None: "dead"}
