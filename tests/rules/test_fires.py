"""A trigger that happens again to the same deal: a rule runs every time (one run per occurrence:
won, reopened and won again is two wins) or once per deal, as the rule says. End to end through
the sandbox CRM's webhooks, on SQLite and PostgreSQL."""
from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import select

from hub.rules import engine
from hub.store import RunLog
from tests.support.clock import StepClock


def test_won_reopened_and_won_again_runs_a_won_rule_twice(make_env, db_url):
    env = make_env(db_url)
    env.pd.clock = clock = StepClock()
    rule = env.rule(carry={"attachments": False})
    assert rule["fires"] == "every"                   # the default of "won": a new win is new work
    deal = env.deal("Nordwind GmbH - 40")
    env.pd.mark_won(deal["id"])
    env.settle()
    clock.tick()
    env.pd.reopen(deal["id"])
    env.settle()
    clock.tick()
    env.pd.mark_won(deal["id"])
    env.settle()
    assert [t["name"] for t in env.tasks()] == ["Onboard Nordwind GmbH - 40 seats renewal"] * 2
    runs = env.runs()
    assert [r.status for r in runs] == ["done", "done"] and len({r.effect_key for r in runs}) == 2
    assert len({env.made(r) for r in runs}) == 2


def test_the_effect_key_includes_the_occurrence():
    won = SimpleNamespace(object_type="deal", object_id="42", occurrence="deal:42:deal.won:2026-11-20T10:00:01")
    again = SimpleNamespace(object_type="deal", object_id="42", occurrence="deal:42:deal.won:2026-11-20T10:07:30")
    redelivered = SimpleNamespace(**vars(won))
    assert engine.effect_key(7, won) != engine.effect_key(7, again)          # another win: another run
    assert engine.effect_key(7, won) == engine.effect_key(7, redelivered)    # the same win: the same run
    assert engine.effect_key(7, won, "once") == engine.effect_key(7, again, "once")   # once per deal
    assert engine.effect_key(7, won) != engine.effect_key(8, won)


def test_leaving_a_stage_and_coming_back_once_or_every_time(make_env, db_url):
    env = make_env(db_url)
    env.pd.clock = clock = StepClock()
    negotiations = env.stage("Negotiations started")
    once = env.rule(name="once", trigger="deal.stage_changed", stage_id=negotiations, carry={"attachments": False},
                    name_template="Once: {{ deal.title }}")
    every = env.rule(name="every", trigger="deal.stage_changed", stage_id=negotiations, fires="every",
                     carry={"attachments": False}, name_template="Every: {{ deal.title }}")
    assert (once["fires"], every["fires"]) == ("once", "every")   # once is the default of "moved to a stage"
    lumo = env.deal("Lumo Oy - pilot")
    for stage in (negotiations, env.stage("Proposal made"), negotiations):
        clock.tick()
        env.pd.move_stage(lumo["id"], int(stage))
        env.settle()
    names = sorted(t["name"] for t in env.tasks())
    assert names == ["Every: Lumo Oy - pilot for support team"] * 2 + ["Once: Lumo Oy - pilot for support team"]
    assert [r.rule_id for r in env.runs()].count(once["id"]) == 1
    with env.services.db.begin() as s:
        said = [r.message for r in s.scalars(select(RunLog).where(RunLog.rule_id == once["id"],
                                                                  RunLog.step == "rule.once"))]
    assert len(said) == 1 and "fires once per deal" in said[0]


def test_a_rule_switched_to_once_does_not_run_again_for_a_deal_it_ran_for(make_env, db_url):
    env = make_env(db_url)
    env.pd.clock = clock = StepClock()
    negotiations = env.stage("Negotiations started")
    rule = env.rule(name="moved", trigger="deal.stage_changed", stage_id=negotiations, fires="every",
                    carry={"attachments": False}, name_template="{{ deal.title }}")
    lumo = env.deal("Lumo Oy - pilot")
    clock.tick()
    env.pd.move_stage(lumo["id"], int(negotiations))
    env.settle()
    from hub.rules import service
    assert service.update(env.services, env.iid, rule["id"], {"fires": "once"}, "12400001")["fires"] == "once"
    for stage in (env.stage("Proposal made"), negotiations):
        clock.tick()
        env.pd.move_stage(lumo["id"], int(stage))
        env.settle()
    assert len(env.tasks()) == 1 and len(env.runs()) == 1


def test_the_choice_in_the_api_and_the_editor(env):
    from tests.rules.test_api import Api, full_rule
    from tests.rules.test_pages import submit

    api = Api(env)
    won = api.call("POST", body=full_rule(env)).json()
    moved = api.call("POST", body=full_rule(env, trigger="deal.stage_changed", stage_id=env.stage("Proposal made")))
    lead = api.call("POST", body=full_rule(env, trigger="lead.added", pipeline_id=None, fires="every")).json()
    assert (won["fires"], moved.json()["fires"], lead["fires"]) == ("every", "once", "once")   # a lead is added once
    rule_id = moved.json()["id"]
    bad = api.call("PUT", f"/{rule_id}", {"fires": "sometimes"})
    assert bad.status_code == 400 and list(bad.json()["fields"]) == ["fires"]
    assert api.call("PUT", f"/{rule_id}", {"fires": "every"}).json()["fires"] == "every"
    assert api.call("PUT", f"/{rule_id}", {"name": "renamed"}).json()["fires"] == "every"   # kept when left out
    assert api.call("PUT", f"/{won['id']}", {"trigger": "deal.stage_changed", "stage_id": env.stage("Proposal made")}
                    ).json()["fires"] == "once"                  # another trigger, no choice given: its default
    schema = env.browser.get("/api/v1/openapi.json").json()["components"]["schemas"]
    assert schema["RuleIn"]["properties"]["fires"]["enum"] == ["every", "once"]

    page = env.browser.get(f"/i/{env.iid}/rules/{rule_id}").text
    assert '<select name="fires" id="fires">' in page and '<option value="every" selected>Run every time' in page
    saved = submit(env, rule_id, "save", fires="once")
    assert saved.status_code in (200, 302, 303), saved.text[:300]
    assert api.call("GET", f"/{rule_id}").json()["fires"] == "once"
    assert '<option value="once" selected>Run once per deal' in env.browser.get(f"/i/{env.iid}/rules/{rule_id}").text
