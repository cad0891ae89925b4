"""Deadlines from delays, template sets' checks, the "apply task templates" step (each task once,
through redeliveries and retries) and post-sale sets (won and lost once each; no set: the run log
says so)."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from hub.errors import Retriable
from hub.events import record
from hub.connectors.contract.webhooks import CrmEvent
from hub.rules import service
from hub.store import RunLog
from hub.store.models import HubTask, RuleLink, RuleRun, TaskTemplate, TaskTemplateSet
from hub.tasks import deadlines
from tests.rules import fake
from tests.rules.fake import WORLD
from tests.task_templates.conftest import FRIDAY_EVENING, template


# -- deadlines (pure) --------------------------------------------------------------------------------
@pytest.mark.parametrize("now, days, kind, tz, expected", [
    # Friday evening in Warsaw: 1 working day -> Monday; 1 calendar day -> Saturday
    (datetime(2026, 12, 4, 20, 0), 1, "working", "Europe/Warsaw", "2026-12-07T09:00:00+01:00"),
    (datetime(2026, 12, 4, 20, 0), 1, "calendar", "Europe/Warsaw", "2026-12-05T09:00:00+01:00"),
    # 23:30 UTC Friday is already Saturday in Warsaw: 0 working days -> Monday, 2 -> Tuesday
    (datetime(2026, 12, 4, 23, 30), 0, "working", "Europe/Warsaw", "2026-12-07T09:00:00+01:00"),
    (datetime(2026, 12, 4, 23, 30), 2, "working", "Europe/Warsaw", "2026-12-08T09:00:00+01:00"),
    (datetime(2026, 12, 6, 12, 0), 1, "working", "Europe/Warsaw", "2026-12-07T09:00:00+01:00"),    # Sunday + 1
    # ... while in New York it is still Friday afternoon: 1 working day is Monday
    (datetime(2026, 12, 4, 23, 30), 1, "working", "America/New_York", "2026-12-07T09:00:00-05:00"),
    # 5 working days from a Wednesday cross one weekend; 7 calendar days do not skip it
    (datetime(2026, 12, 2, 10, 0), 5, "working", "UTC", "2026-12-09T09:00:00+00:00"),
    (datetime(2026, 12, 2, 10, 0), 7, "calendar", "UTC", "2026-12-09T09:00:00+00:00"),
    (datetime(2026, 12, 2, 10, 0), 10, "working", "UTC", "2026-12-16T09:00:00+00:00"),
    # summer time: the same local hour, another offset
    (datetime(2026, 3, 27, 12, 0), 2, "calendar", "Europe/Warsaw", "2026-03-29T09:00:00+02:00"),
])
def test_deadline(now, days, kind, tz, expected):
    assert deadlines.deadline(now, days, kind, "09:00", tz).isoformat() == expected


def test_deadline_time_and_zone_are_checked():
    assert deadlines.deadline(datetime(2026, 12, 4, 8, tzinfo=timezone.utc), 0, "calendar", "17:45",
                              "UTC").isoformat() == "2026-12-04T17:45:00+00:00"
    with pytest.raises(ValueError):
        deadlines.deadline(datetime(2026, 12, 4), 1, "working", "24:00", "UTC")
    with pytest.raises(ValueError):
        deadlines.zone("Mars/Olympus")


# -- template sets: checked whole, refused naming the field ------------------------------------------
def _count(services, model) -> int:
    with services.db.begin() as s:
        return s.scalar(select(func.count()).select_from(model))


BAD = [
    ({"delay_days": -1}, "templates.0.delay_days"),
    ({"delay_days": "3"}, "templates.0.delay_days"),
    ({"delay_days": 100000}, "templates.0.delay_days"),
    ({"day_kind": "weekdays"}, "templates.0.day_kind"),
    ({"time_of_day": "25:00"}, "templates.0.time_of_day"),
    ({"type_id": 999999}, "templates.0.type_id"),
    ({"type_id": "Email"}, "templates.0.type_id"),
    ({"kind": "nowhere.task"}, "templates.0.kind"),
    ({"title": ""}, "templates.0.title"),
    ({"title": "{{ deal.title "}, "templates.0.title"),
    ({"settings": {"assignee_id": "nobody"}}, "templates.0.settings.assignee_id"),
]


def test_invalid_templates_are_refused_with_the_field_named_and_nothing_stored(world):
    admin = world.client("u1")
    for bad, field in BAD:
        body = {"name": "Onboarding", "templates": [template(world.team_id, **bad)]}
        answer = admin.post(f"/api/v1/installations/{world.iid}/tasks/sets", json=body)
        assert answer.status_code == 400, (bad, answer.get_json())
        assert field in answer.get_json()["fields"], (bad, answer.get_json())
    assert _count(world.services, TaskTemplateSet) == 0 and _count(world.services, TaskTemplate) == 0


def test_a_colleague_cannot_change_types_or_sets(world):
    ben = world.client("u2")
    assert ben.post(f"/api/v1/installations/{world.iid}/tasks/types", json={"name": "Call"}).status_code == 403
    assert ben.post(f"/api/v1/installations/{world.iid}/tasks/sets",
                    json={"name": "x", "templates": [template(world.team_id)]}).status_code == 403
    assert ben.get(f"/api/v1/installations/{world.iid}/tasks/options").status_code == 200


def test_types_are_editable_extendable_and_removable_when_unused(world):
    admin = world.client("u1")
    base = f"/api/v1/installations/{world.iid}/tasks"
    names = [t["name"] for t in admin.get(base + "/options").get_json()["types"]]
    assert names == ["Email", "Offer", "Project", "Meeting", "Online meeting"]
    call = admin.post(base + "/types", json={"name": "Call", "sharing": "read_only"}).get_json()
    assert admin.post(base + "/types", json={"name": "call"}).status_code == 400     # exists already
    assert admin.patch(base + f"/types/{call['id']}", json={"sharing": "full"}).get_json()["sharing"] == "full"
    made = admin.post(base + "/sets", json={"name": "S", "templates": [template(world.team_id, type_id=call["id"])]})
    assert made.status_code == 201, made.get_json()
    refused = admin.delete(base + f"/types/{call['id']}")
    assert refused.status_code == 400 and "type" in refused.get_json()["fields"]
    email = names and admin.get(base + "/options").get_json()["types"][0]["id"]
    assert admin.delete(base + f"/types/{email}").status_code == 204
    assert admin.patch(base + "/options", json={"timezone": "Nowhere/City"}).get_json()["fields"] == {
        "timezone": "an IANA time zone name such as Europe/Warsaw or UTC"}
    statuses = admin.put(base + "/statuses", json={"statuses": [{"name": "Open"}, {"name": "Done", "closes": True}]})
    assert [s["name"] for s in statuses.get_json()["statuses"]] == ["Open", "Done"]


# -- the step ------------------------------------------------------------------------------------------
def _set(world, *templates, name="Onboarding", types=None) -> dict:
    admin = world.client("u1")
    base = f"/api/v1/installations/{world.iid}/tasks"
    if types:
        known = {t["name"]: t["id"] for t in admin.get(base + "/options").get_json()["types"]}
        templates = [dict(t, type_id=known[ty]) for t, ty in zip(templates, types)]
    made = admin.post(base + "/sets", json={"name": name, "templates": list(templates)})
    assert made.status_code == 201, made.get_json()
    return made.get_json()


@pytest.fixture
def friday(monkeypatch):
    monkeypatch.setattr("hub.tasks.apply.utcnow", lambda: FRIDAY_EVENING)


def test_the_step_makes_each_task_once_with_its_deadline_type_and_owner(world, friday):
    world.client("u1").patch(f"/api/v1/installations/{world.iid}/tasks/options", json={"timezone": "Europe/Warsaw"})
    made = _set(world, template(world.team_id), template(world.team_id, "Offer for {{ deal.title }}", delay_days=3,
                                                         day_kind="calendar", time_of_day="14:30",
                                                         responsible="u2"), types=["Email", "Offer"])
    rule = service.create(world.services, world.iid, {"name": "Won", "trigger": "deal.won", "pipeline_id": "1",
                                                      "steps": [{"kind": "templates", "settings": {"set_id": made["id"]}}],
                                                      "status": "active"}, "u1")
    assert rule["steps"][0]["settings"] == {"set_id": made["id"]}
    with world.app.app_context():
        fake.won(world.services, world.iid, "42")
        fake.won(world.services, world.iid, "42")          # the webhook delivered twice
    world.drain()
    tasks = sorted(WORLD.tasks.values(), key=lambda t: t["name"])
    assert [t["name"] for t in tasks] == ["Call Deal 42", "Offer for Deal 42"]
    call, offer = tasks
    assert call["due"] == "2026-12-07T08:00:00Z"             # Monday 09:00 in Warsaw (Friday evening + 1 working day)
    assert offer["due"] == "2026-12-07T13:30:00Z"            # Friday + 3 calendar days, 14:30 Warsaw
    assert (call["assignee"], call["task_type"], call["sharing"]) == ("u1", "Email", "free_busy")
    assert offer["assignee"] == "u2" and set(call["colleagues"]) == {"u2", "u3"}
    assert len(set(WORLD.tasks)) == 2 and all(k.endswith((":t" + str(t["id"]))) for k, t in
                                              zip(sorted(WORLD.tasks), sorted(made["templates"], key=lambda t: t["id"])))
    with world.services.db.begin() as s:
        assert s.scalar(select(func.count()).select_from(RuleRun)) == 1
        links = s.scalars(select(RuleLink)).all()
        rows = s.scalars(select(HubTask).order_by(HubTask.id)).all()
    assert len(links) == 2 and {l.external_id for l in links} == set(WORLD.tasks)
    assert [(r.task_type, r.owner_email, r.due_at) for r in rows] == [
        ("Email", "olga@example.com", datetime(2026, 12, 7, 8, 0)), ("Offer", "ben@example.com", datetime(2026, 12, 7, 13, 30))]


def test_a_retried_step_does_not_make_a_task_twice(world, friday, monkeypatch):
    made = _set(world, template(world.team_id, "A"), template(world.team_id, "B"))
    service.create(world.services, world.iid, {"name": "Won", "trigger": "deal.won", "pipeline_id": "1",
                                               "steps": [{"kind": "templates", "settings": {"set_id": made["id"]}}],
                                               "status": "active"}, "u1")
    WORLD.fail = [None, Retriable("team app down")]  # the first ensure works, the second fails once

    def call(*what):
        WORLD.calls.append(what)
        if WORLD.fail:
            exc = WORLD.fail.pop(0)
            if exc is not None:
                raise exc
    monkeypatch.setattr(WORLD, "call", call)
    with world.app.app_context():
        fake.won(world.services, world.iid, "7")
    world.drain()
    with world.services.db.begin() as s:
        from hub.store import Job
        from sqlalchemy import update
        s.execute(update(Job).where(Job.status == "queued").values(run_at=datetime(2000, 1, 1)))
    world.drain()
    assert sorted(t["name"] for t in WORLD.tasks.values()) == ["A", "B"]
    ensures = [c for c in WORLD.calls if c[0] == "ensure"]
    assert [c[3] for c in ensures] == ["A", "B", "B"]            # A is not asked for again
    assert ensures[2][2] is False                               # B's retry looks before creating


# -- post-sale sets --------------------------------------------------------------------------------------
def closed(services, iid: int, deal_id: str, outcome: str, pipeline: str = "1",
           at: str = "2026-12-02T10:00:00Z") -> None:
    """A deal won or lost in a sales process, as a connector normalizes it."""
    deal = {"id": deal_id, "title": f"Deal {deal_id}", "status": outcome, "pipeline_id": pipeline, "value": 5}
    WORLD.deals[deal_id] = deal
    with services.db.begin() as s:
        record(services, s, iid, CrmEvent(f"deal.{outcome}", "deal", deal_id, f"{outcome}-{deal_id}-{at}",
                                          datetime(2026, 12, 2), deal, None, pipeline_id=pipeline, version=at),
               source="webhook")


def test_post_sale_sets_fire_once_per_won_and_lost_deal_and_say_when_there_is_none(world, friday):
    admin = world.client("u1")
    base = f"/api/v1/installations/{world.iid}/tasks"
    won_set = _set(world, template(world.team_id, "Thank {{ deal.title }}"), name="After a win")
    lost_set = _set(world, template(world.team_id, "Win back {{ deal.title }}", delay_days=30), name="After a loss")
    for outcome, chosen in (("won", won_set), ("lost", lost_set)):
        answer = admin.put(base + "/post-sale", json={"pipeline_id": "1", "outcome": outcome, "set_id": chosen["id"]})
        assert answer.status_code == 200, answer.get_json()
    assert admin.put(base + "/post-sale", json={"pipeline_id": "1", "outcome": "maybe", "set_id": 1}).get_json()[
        "fields"] == {"outcome": "won or lost"}
    with world.app.app_context():
        for _ in range(2):                                   # each webhook delivered twice
            closed(world.services, world.iid, "42", "won")
            closed(world.services, world.iid, "43", "lost")
        closed(world.services, world.iid, "44", "won", pipeline="2")   # a process with no set
    world.drain()
    assert sorted(t["name"] for t in WORLD.tasks.values()) == ["Thank Deal 42", "Win back Deal 43"]
    with world.services.db.begin() as s:
        messages = [r.message for r in s.scalars(select(RunLog).where(RunLog.step == "tasks.no_set"))]
        runs = s.scalars(select(RuleRun).order_by(RuleRun.id)).all()
    assert [r.status for r in runs] == ["done", "done", "done"]
    assert messages == ["deal 44 was won in sales process 2, which has no post-sale set for won deals: no tasks made"]


# -- applied by hand, to a record picked from a search list ----------------------------------------------
def test_a_set_is_applied_by_hand_to_a_record_picked_from_the_list_once(world, friday, monkeypatch):
    from hub.connectors.contract.records import SourceRecord

    WORLD.deals.update({"42": {"id": "42", "title": "Kask & Sons"}, "43": {"id": "43", "title": "Lumo Oy"}})
    monkeypatch.setattr(fake.Source, "recent", lambda self, kind, limit=20: [
        SourceRecord(kind, d["id"], d, title=d["title"]) for d in WORLD.deals.values()])
    made = _set(world, template(world.team_id, "Visit {{ deal.title }}"))
    ben = world.client("u2")                                 # any member may apply a set
    page = ben.get(f"/i/{world.iid}/tasks/apply?kind=deal&q=kask").get_data(as_text=True)
    assert "Kask &amp; Sons" in page and "Lumo Oy" not in page
    key = re.search(r'name="key" value="([\w-]+)"', page).group(1)
    form = {"csrf_token": "t0ken", "kind": "deal", "record": "42", "set_id": str(made["id"]), "key": key}
    assert ben.post(f"/i/{world.iid}/tasks/apply", data=form).status_code == 302
    assert ben.post(f"/i/{world.iid}/tasks/apply", data=form).status_code == 302     # a double submit
    world.drain()
    assert [t["name"] for t in WORLD.tasks.values()] == ["Visit Kask & Sons"]
    assert ben.get(f"/api/v1/installations/{world.iid}/tasks/records?kind=deal&q=lumo").get_json() == {
        "records": [{"id": "43", "title": "Lumo Oy", "kind": "deal"}], "problem": None}
    refused = ben.post(f"/api/v1/installations/{world.iid}/tasks/apply",
                       json={"set_id": made["id"], "object_type": "planet", "object_id": "42"})
    assert refused.status_code == 400 and "object_type" in refused.get_json()["fields"]
