"""The run log's list of events, on SQLite and PostgreSQL: paged by id past 100 events (older and
newer, no event lost or shown twice), filtered by rule, outcome, object and time, searched by object
id and title, events no rule is about hidden unless asked for, and codes written in words."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import select, update

from hub.connectors.contract.webhooks import CrmEvent
from hub.events import record
from hub.store import HubEvent
from hub.store.models import RuleRun
from tests.rules.conftest import make_env  # noqa: F401  (fixture)

WON, OTHER_PIPELINE, UPDATES = 110, 4, 130


def _event(kind: str, object_type: str, object_id: int, current: dict, n: int, **extra) -> CrmEvent:
    return CrmEvent(kind=kind, object_type=object_type, object_id=str(object_id), event_id=f"e{n}",
                    occurred_at=datetime(2025, 3, 1) + timedelta(seconds=n), current=current, previous=None,
                    version=f"2025-03-01T00:{n // 60 % 60:02d}:{n % 60:02d}Z", occurrence=f"n{n}", **extra)


def _world(env):
    """An active rule on won deals of Sales; won deals (runs queued, never run here), a few won in
    another pipeline (the rule looks and skips them), many updates and persons no rule is about."""
    rule = env.rule(name="Hand off won deals")
    sales, other = env.pipeline("Sales"), env.pipeline("Renewals")
    services, n = env.services, 0
    with services.db.begin() as s:
        for i in range(WON):
            n += 1
            title = "Nordwind GmbH - 40 seats" if i == 7 else "Rabatt 50% deal" if i == 8 else f"Won deal {i}"
            record(services, s, env.iid, _event("deal.won", "deal", 1000 + i, {"id": 1000 + i, "title": title,
                                                                                "pipeline_id": int(sales)}, n,
                                                pipeline_id=sales), source="webhook")
        for i in range(OTHER_PIPELINE):
            n += 1
            record(services, s, env.iid, _event("deal.won", "deal", 2000 + i, {"id": 2000 + i, "title": f"Renewal {i}",
                                                                                "pipeline_id": int(other)}, n,
                                                pipeline_id=other), source="webhook")
        for i in range(UPDATES):
            n += 1
            record(services, s, env.iid, _event("deal.updated", "deal", 3000 + i, {"id": 3000 + i,
                                                                                    "title": f"Quiet deal {i}"}, n),
                   source="webhook")
        for i in range(3):
            n += 1
            record(services, s, env.iid, _event("person.created", "person", 4000 + i,
                                                {"id": 4000 + i, "name": ["Erika Muster", "Max 50_50", "Jo"][i]}, n),
                   source="webhook")
    return rule


def _api(env, path: str, **params):
    got = env.browser.get(f"/api/v1/installations/{env.iid}/{path}", params=params)
    assert got.status_code == 200, got.text[:300]
    return got.json()


def _all_pages(env, limit: int, **params) -> list[dict]:
    """Walk the older pages with `before` = `next_before` until it is null."""
    seen, before, pages = [], None, 0
    while True:
        body = _api(env, "events", limit=limit, **params, **({"before": before} if before else {}))
        seen += body["events"]
        pages += 1
        assert pages < 50
        before = body["next_before"]
        if before is None:
            return seen
        assert body["events"][-1]["id"] == before


def test_paging_hiding_and_words(make_env, db_url):
    env = make_env(db_url)
    _world(env)
    concerned = WON + OTHER_PIPELINE
    every = concerned + UPDATES + 3

    # more than 100 events a rule is about: nothing stops at 100, nothing is lost or repeated
    listed = _all_pages(env, limit=40)
    ids = [e["id"] for e in listed]
    assert len(ids) == concerned == len(set(ids)) and ids == sorted(ids, reverse=True)
    assert {e["kind"] for e in listed} == {"deal.won"}            # hidden: what no rule is about
    assert len(_all_pages(env, limit=500, all=1)) == every
    assert len(_api(env, "events")["events"]) == 100                # the default page size, with a next page
    assert _api(env, "events")["next_before"] is not None

    # back to newer pages with `after` = `newer_after`: the same pages again
    first = _api(env, "events", limit=40)
    assert first["newer_after"] is None
    second = _api(env, "events", limit=40, before=first["next_before"])
    assert second["newer_after"] == second["events"][0]["id"]
    back = _api(env, "events", limit=40, after=second["newer_after"])
    assert [e["id"] for e in back["events"]] == [e["id"] for e in first["events"]]
    assert back["newer_after"] is None and back["next_before"] == first["next_before"]

    # words next to the codes
    won = listed[OTHER_PIPELINE]            # the newest with a run (the newer ones were skipped)
    assert (won["kind"], won["label"]) == ("deal.won", "Deal won")
    assert won["outcome"] == "pending" and won["outcome_label"] == "In progress"
    assert won["rules"] == [{"rule_id": won["rules"][0]["rule_id"], "name": "Hand off won deals", "status": "queued",
                             "status_label": "Queued", "reason": ""}]
    quiet = _api(env, "events", all=1, status="none", object_type="deal", limit=1)["events"][0]
    assert (quiet["kind"], quiet["label"], quiet["outcome_label"]) == ("deal.updated", "Deal updated", "No rule")
    person = _api(env, "events", all=1, object_type="person", limit=1)["events"][0]
    assert person["label"] == "Person added" and person["title"] == "Jo"
    detail = _api(env, f"events/{won['id']}")
    steps = {(t["step"], t["label"], t["status_label"]) for t in detail["trace"]}
    assert ("normalized", "Event recorded", "OK") in steps and ("rule.matched", "Rule matched", "OK") in steps

    # the page: 50 a page, older and newer links that work, words not codes, a toggle for all
    page = env.browser.get(f"/i/{env.iid}/events")
    assert page.status_code == 200
    rows = re.findall(r'<tr class="event" data-kind="([a-z._]+)"', page.text)
    assert len(rows) == 50 and set(rows) == {"deal.won"}
    assert ">Deal won</a>" in page.text and ">deal.won<" not in page.text
    assert "Show all events" in page.text and "Quiet deal" not in page.text
    older = re.search(r'<a rel="next" href="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    page2 = env.browser.get(older)
    assert len(re.findall(r'<tr class="event"', page2.text)) == 50 and 'rel="prev"' in page2.text
    newer = re.search(r'<a rel="prev" href="([^"]+)"', page2.text).group(1).replace("&amp;", "&")
    assert env.browser.get(newer).text.count('<tr class="event"') == 50
    everything = env.browser.get(f"/i/{env.iid}/events?all=1&limit=500")
    assert "Quiet deal 0" in everything.text and ">Deal updated</a>" in everything.text


def test_filters_and_search(make_env, db_url):
    env = make_env(db_url)
    rule = _world(env)
    runs = {r.hub_event_id: r for r in env.runs()}
    failed, done = sorted(runs)[:3], sorted(runs)[3:5]
    with env.services.db.begin() as s:
        s.execute(update(RuleRun).where(RuleRun.hub_event_id.in_(failed)).values(status="failed", error="boom"))
        s.execute(update(RuleRun).where(RuleRun.hub_event_id.in_(done)).values(status="done"))
        quiet = list(s.scalars(select(HubEvent.id).where(HubEvent.kind == "deal.updated").order_by(HubEvent.id)))
        s.execute(update(HubEvent).where(HubEvent.id.in_(quiet[:10])).values(created_at=datetime(2024, 1, 1, 9)))
        s.execute(update(HubEvent).where(HubEvent.id.in_(quiet[10:14])).values(created_at=datetime(2024, 1, 1, 15)))

    def ids(**params) -> set[int]:
        return {e["id"] for e in _all_pages(env, limit=500, **params)}

    # by outcome: the worst of its rules' runs; skipped: a rule listened and did not run
    assert ids(status="failed") == set(failed)
    assert ids(status="done") == set(done)
    assert ids(status="pending") == set(runs) - set(failed) - set(done)
    skipped = _all_pages(env, limit=500, status="skipped")
    assert len(skipped) == OTHER_PIPELINE and {e["outcome"] for e in skipped} == {"skipped"}
    assert skipped[0]["rules"][0]["status"] == "skipped"
    assert len(ids(status="none")) == UPDATES + 3                  # implies all
    # by rule (a rule nothing concerns: nothing)
    by_rule = ids(rule_id=rule["id"])
    assert set(runs) <= by_rule and all(e["kind"] == "deal.won" for e in _all_pages(env, limit=500,
                                                                                    rule_id=rule["id"]))
    assert ids(rule_id=rule["id"] + 1000) == set()
    # by object type, and by time (UTC; a date alone as `until` is that whole day)
    assert {e["object_type"] for e in _all_pages(env, limit=500, all=1, object_type="person")} == {"person"}
    assert ids(all=1, since="2024-01-01", until="2024-01-01") == set(quiet[:14])
    assert ids(all=1, since="2024-01-01T12:00", until="2024-01-02") == set(quiet[10:14])
    assert ids(all=1, until="2024-01-01T12:00:00Z") == set(quiet[:10])
    assert ids(since="2024-01-01", until="2024-01-01") == set()     # no rule is about those
    # search: an object id exactly, or part of the title (any case; % and _ are plain characters)
    assert [e["object_id"] for e in _all_pages(env, limit=500, q="1007")] == ["1007"]
    assert [e["title"] for e in _all_pages(env, limit=500, q="nordWIND")] == ["Nordwind GmbH - 40 seats"]
    assert [e["title"] for e in _all_pages(env, limit=500, q="50%")] == ["Rabatt 50% deal"]
    assert [e["title"] for e in _all_pages(env, limit=500, all=1, q="50_")] == ["Max 50_50"]
    assert ids(q="Quiet deal") == set() and len(ids(all=1, q="quiet DEAL 1")) == 41   # 1, 10-19, 100-129
    # filters combine, and the page keeps them in its pager links and form
    assert ids(status="failed", q=str(runs[failed[0]].object_id)) == {failed[0]}
    page = env.browser.get(f"/i/{env.iid}/events", params={"status": "pending", "limit": 20, "q": "Won deal"})
    assert page.status_code == 200 and 'value="Won deal"' in page.text
    older = re.search(r'<a rel="next" href="([^"]+)"', page.text).group(1)
    assert "status=pending" in older and "q=Won+deal" in older and "limit=20" in older

    # bad filters: a 400 naming the parameter, never a 500
    for params, name in (({"status": "bogus"}, "status"), ({"since": "yesterday"}, "since"),
                         ({"rule_id": "abc"}, "rule_id"), ({"until": "2024-01-01", "since": "2024-02-01"}, "until"),
                         ({"q": "x" * 201}, "q"), ({"before": "0"}, "before"), ({"all": "maybe"}, "all"),
                         ({"since": "0001-01-01T00:00:00+01:00"}, "since")):
        got = env.browser.get(f"/api/v1/installations/{env.iid}/events", params=params)
        assert got.status_code == 400 and name in got.json()["fields"], (params, got.text[:200])
    assert env.browser.get(f"/i/{env.iid}/events", params={"since": "soon"}).status_code == 400
