"""Replaying any recorded event (not only failed work), on SQLite and PostgreSQL: matching runs again
(a rule made since gets its run), the event's runs go again, and nothing is done twice: a run that
already made its task makes no second one, however often the event is replayed."""
from __future__ import annotations

import re

import requests
from sqlalchemy import select, update

from hub.rules import service
from hub.store import HubEvent, Job, RunLog
from hub.store.models import RuleRun
from tests.rules.conftest import make_env  # noqa: F401  (fixture)
from tests.web.conftest import ADMIN


def _won_event(env, deal_id) -> int:
    with env.services.db.begin() as s:
        return s.scalar(select(HubEvent.id).where(HubEvent.installation_id == env.iid, HubEvent.kind == "deal.won",
                                                  HubEvent.object_id == str(deal_id)))


def _replay(env, event_id: int) -> dict:
    got = env.browser.post(f"/api/v1/installations/{env.iid}/events/{event_id}/replay",
                           headers={"X-CSRF-Token": env.browser.csrf(f"/i/{env.iid}/events")})
    assert got.status_code == 200, got.text[:300]
    return got.json()


def test_replay_runs_again_and_does_nothing_twice(make_env, db_url):
    env = make_env(db_url)
    first = env.rule(name="Hand off won deals")
    deal = env.deal("Nordwind GmbH - 40")
    env.pd.mark_won(deal["id"])
    env.settle()
    [run] = env.runs()
    assert run.status == "done" and len(env.tasks("Won deals – onboarding")) == 1
    event_id = _won_event(env, deal["id"])

    # a done run goes again and finds its task: still one task
    replayed = _replay(env, event_id)
    assert replayed == {"ok": True, "requeued": [run.id], "new_runs": [], "matched_again": True}
    with env.services.db.begin() as s:
        jobs = list(s.scalars(select(Job).where(Job.kind == "rule.execute").order_by(Job.id)))
        assert len(jobs) == 2 and jobs[1].status == "queued"
        assert jobs[1].ordering_key == jobs[0].ordering_key   # never overtakes the object's other runs
    env.settle()
    assert [r.status for r in env.runs()] == ["done"] and len(env.tasks("Won deals – onboarding")) == 1

    # a run that made its task and then failed (a crash, a later step): replayed, still one task
    with env.services.db.begin() as s:
        s.execute(update(RuleRun).where(RuleRun.id == run.id).values(status="failed", error="a later step failed"))
    assert _replay(env, event_id)["requeued"] == [run.id]
    env.settle()
    assert [r.status for r in env.runs()] == ["done"] and len(env.tasks("Won deals – onboarding")) == 1

    # a rule made after the event: matching again gives it a run, which makes its task, once
    second = env.rule(name="Renewal prep", target={"project_gid": env.project("Renewals")})
    replayed = _replay(env, event_id)
    assert replayed["requeued"] == [run.id] and len(replayed["new_runs"]) == 1
    env.settle()
    assert {r.rule_id: r.status for r in env.runs()} == {first["id"]: "done", second["id"]: "done"}
    assert len(env.tasks("Renewals")) == 1
    for _ in range(2):
        assert _replay(env, event_id)["new_runs"] == []
        env.settle()
    assert len(env.tasks("Won deals – onboarding")) == 1 and len(env.tasks("Renewals")) == 1
    assert len(env.runs()) == 2

    # the log says so, in words
    detail = env.browser.get(f"/api/v1/installations/{env.iid}/events/{event_id}").json()
    labels = [t["label"] for t in detail["trace"]]
    assert labels.count("Replayed") == 5 and "Run queued again" in labels
    assert {link["made"] for link in detail["links"]} == {"task"} and len(detail["links"]) == 2
    assert detail["outcome"] == "done" and {r["name"] for r in detail["rules"]} == {"Hand off won deals",
                                                                                     "Renewal prep"}


def test_replay_from_the_event_page(make_env):
    env = make_env()
    rule = env.rule(name="Hand off won deals")
    deal = env.deal("Nordwind GmbH - 40")
    env.pd.mark_won(deal["id"])
    env.settle()
    event_id = _won_event(env, deal["id"])
    page = env.browser.get(f"/i/{env.iid}/events/{event_id}")
    assert "Replay this event" in page.text and "Hand off won deals" in page.text
    task = env.tasks("Won deals – onboarding")[0]
    # in sandbox mode the links open the sandbox's pages: the task the rule made, and the deal
    # its description links to (not the real providers' sites, not a 404)
    link = re.search(r'<a href="([^"]+)"[^>]*>' + re.escape(task["name"]) + "</a>", page.text).group(1)
    assert link.startswith(f"{env.hub.url}/sandbox/asana/")
    opened = requests.get(link)
    assert opened.status_code == 200 and "/_sandbox/ui/tasks/" in opened.url and task["name"] in opened.text
    html = env.asana.get("tasks", task["gid"])
    deal_link = re.search(r'<a href="([^"]+)">' + re.escape(deal["title"]), html.get("html_notes") or html["notes"])
    assert deal_link and deal_link.group(1).startswith(f"{env.hub.url}/sandbox/pipedrive/")
    opened = requests.get(deal_link.group(1))
    assert opened.status_code == 200 and opened.url.endswith(f"/_sandbox/ui/deals/{deal['id']}")
    assert deal["title"] in opened.text
    done = env.browser.form_post(f"/i/{env.iid}/events/{event_id}/replay", {}, csrf_from=f"/i/{env.iid}/events")
    assert done.status_code == 200 and f"Event {event_id} replayed" in done.text
    env.settle()
    assert len(env.tasks("Won deals – onboarding")) == 1
    with env.services.db.begin() as s:
        assert s.scalar(select(RunLog.message).where(RunLog.step == "replayed")).startswith("replayed by ")

    # a rule no longer active: matching leaves it out, and its run does not go again either
    service.set_status(env.services, env.iid, rule["id"], "draft", str(ADMIN))
    assert _replay(env, event_id)["requeued"] == []
    env.settle()
    with env.services.db.begin() as s:
        assert s.scalar(select(RunLog.message).where(RunLog.step == "rule.not_requeued")).endswith(
            "does not run again: its rule is not active")
    assert [r.status for r in env.runs()] == ["done"] and len(env.tasks("Won deals – onboarding")) == 1

    # another installation's event, or none: 404, nothing replayed
    headers = {"X-CSRF-Token": env.browser.csrf(f"/i/{env.iid}/events")}
    missing = env.browser.post(f"/api/v1/installations/{env.iid}/events/999999/replay", headers=headers)
    assert missing.status_code == 404 and missing.json()["message"].startswith("event_id:")
    with env.services.db.begin() as s:
        s.execute(update(HubEvent).where(HubEvent.id == event_id).values(installation_id=env.iid + 1))
    assert env.browser.post(f"/api/v1/installations/{env.iid}/events/{event_id}/replay",
                            headers=headers).status_code == 404
