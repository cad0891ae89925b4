"""The Example CRM through the whole hub, which knows it only through `hub.connectors`: installed
with an API key on the generic key form, its webhooks registered by the generic registration, a
signed delivery taken in, a rule with two steps and a wait between them run, and in the CRM two
tasks, each exactly once, however often the delivery comes and the run's job is replayed."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from hub.rules import engine, service
from hub.store import InboxEvent, Installation, Job, utcnow
from hub.store.models import Connection, RuleRun

from .emulator import DEMO_ACCOUNT

ACCOUNT, KEY, SECRET = DEMO_ACCOUNT["id"], DEMO_ACCOUNT["api_key"], DEMO_ACCOUNT["api_secret"]
DAY = 86400


def make_due(services) -> None:
    """Time passes: every queued job (the wait's) is due now."""
    with services.db.begin() as s:
        s.execute(update(Job).where(Job.status == "queued").values(run_at=utcnow() - timedelta(seconds=1)))


def install(hub):
    """The admin pastes the account's key and secret into the hub's install form."""
    admin = hub.browser()
    landed = admin.form_post("/install/example", {"key": KEY, "secret": SECRET}, csrf_from="/install/example")
    assert landed.status_code == 200, landed.text[:500]
    iid = int(re.search(r"/i/(\d+)/", landed.url).group(1))
    done = admin.form_post(f"/i/{iid}/visibility", {"visibility": "only_me", "setup": "1"},
                           csrf_from=f"/i/{iid}/visibility?setup=1")
    assert done.status_code == 200, done.text[:500]
    return admin, iid


@pytest.fixture
def installed(registered, make_live_hub):
    hub = make_live_hub()
    admin, iid = install(hub)
    hub.run_jobs()                                         # the generic registration subscribes at the CRM
    return hub, iid


def test_a_wrong_key_is_refused_on_the_form(registered, make_live_hub):
    hub = make_live_hub()
    answer = hub.browser().form_post("/install/example", {"key": KEY, "secret": "not-the-secret"},
                                     csrf_from="/install/example")
    assert answer.status_code in (400, 401, 403) and "not-the-secret" not in answer.text
    with hub.services.db.begin() as s:
        assert s.scalar(select(Installation.id)) is None


def test_a_won_deal_runs_two_steps_with_a_wait_each_exactly_once(installed):
    hub, iid = installed
    services, crm = hub.services, hub.emulator("example")
    [webhook] = crm.webhooks(ACCOUNT)
    assert webhook["url"].startswith(f"{services.base_url}/hooks/example/")
    with services.db.begin() as s:
        installation = s.get(Installation, iid)
        assert (installation.provider, installation.company_id) == ("example", ACCOUNT)
        connection_id = s.scalar(select(Connection.id).where(Connection.installation_id == iid,
                                                             Connection.provider == "example"))
    owner = str(crm.users(ACCOUNT)[0]["id"])
    step = {"kind": "example.task", "connection_id": connection_id,
            "settings": {"assignee_id": owner, "link_deal": True}}
    rule = service.create(services, iid, {
        "name": "Kick off won deals", "trigger": "deal.won", "status": "active",
        "steps": [{**step, "templates": {"name": "Kick-off call: {{ deal.title }}"}},
                  {"kind": "wait", "delay_seconds": 2 * DAY},
                  {**step, "templates": {"name": "Check in: {{ deal.title }} ({{ deal.stage }})"}}]}, "admin")
    assert [s["kind"] for s in rule["steps"]] == ["example.task", "wait", "example.task"]

    deal = crm.deals(ACCOUNT)[0]
    crm.update_deal(ACCOUNT, deal["id"], {"status": "won"})
    [delivery] = crm.deliveries()
    assert crm.flush() == [200]                                  # signed: taken in
    assert crm.redeliver(delivery["id"]) == 200                  # delivered twice: a duplicate, stored once
    assert hub.browser().post(delivery["url"], data=delivery["body"].replace("won", "lost"),
                              headers=delivery["headers"]).status_code == 401   # altered body, same signature
    with services.db.begin() as s:
        assert len(s.scalars(select(InboxEvent)).all()) == 1
    hub.run_jobs()
    assert [t["title"] for t in crm.tasks(ACCOUNT)] == [f"Kick-off call: {deal['title']}"]
    [run] = runs(services)
    assert run.status == "waiting"

    make_due(services)                                           # two days later
    hub.run_jobs()
    tasks = crm.tasks(ACCOUNT)
    assert [t["title"] for t in tasks] == [f"Kick-off call: {deal['title']}", f"Check in: {deal['title']} (Lead in)"]
    assert all(t["deal_id"] == deal["id"] and str(t["assignee_id"]) == owner for t in tasks)
    assert len({t["external_id"] for t in tasks}) == 2
    assert runs(services)[0].status == "done"

    # the run's job replayed, the delivery sent once more: nothing is made again
    with services.db.begin() as s:
        services.queue.enqueue(s, engine.JOB_KIND, {"run_id": run.id}, installation_id=iid)
    assert crm.redeliver(delivery["id"]) == 200
    hub.run_jobs()
    make_due(services)
    hub.run_jobs()
    assert [t["id"] for t in crm.tasks(ACCOUNT)] == [t["id"] for t in tasks]
    assert len(runs(services)) == 1


def runs(services) -> list[RuleRun]:
    with services.db.begin() as s:
        return list(s.scalars(select(RuleRun).order_by(RuleRun.id)))


def test_the_preset_becomes_a_draft_with_its_steps(installed):
    hub, iid = installed
    rule = service.create(hub.services, iid, {"preset": "won-kickoff"}, "admin")
    assert (rule["trigger"], rule["status"]) == ("deal.won", "draft")
    assert [s["kind"] for s in rule["steps"]] == ["example.task", "wait", "example.task"]
