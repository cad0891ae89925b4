"""A matched rule's run and its job (engine.match_rules): on PostgreSQL one statement
(`_insert_run_and_job`), whose rows, answers and queue bookkeeping must be those of the run's
`insert_ignore` and then `enqueue_run`, as SQLite still does them."""
from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from hub.jobs.queue import _NEW_JOBS, _NOTIFY_PENDING
from hub.rules.engine import _insert_run_and_job, enqueue_run
from hub.store import FakeClock, HubEvent, Installation, Job
from hub.store.models import Rule, RuleRun
from hub.store.sql import insert_ignore

AT = datetime(2026, 12, 5, 9, 30)


@pytest.fixture
def world(make_hub, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("one statement on PostgreSQL only; SQLite keeps the two")
    services = make_hub(clock=FakeClock(AT)).extensions["hub"]
    with services.db.begin() as s:
        inst = Installation(provider="pipedrive", company_id="7", installer_user_id="1", endpoint_token="t-run-job")
        s.add(inst)
        s.flush()
        rule = Rule(installation_id=inst.id, name="r", status="active", trigger="deal.won")
        s.add(rule)
        s.flush()
        events = []
        for n in range(3):
            event = HubEvent(installation_id=inst.id, occurrence=f"deal:42:deal.won:{n}", kind="deal.won",
                             object_type="deal", object_id="42", source="webhook", data={})
            s.add(event)
            s.flush()
            events.append(event.id)
    return services, inst.id, rule.id, events


def _values(iid: int, rule_id: int, event_id: int, key: str) -> dict:
    return {"installation_id": iid, "rule_id": rule_id, "hub_event_id": event_id, "effect_key": key,
            "object_type": "deal", "object_id": "42", "status": "queued", "attempts": 0, "detail": {},
            "created_at": AT, "updated_at": AT}


def _two_statements(services, session, values: dict) -> tuple:
    run_id = insert_ignore(session, RuleRun, values, ["installation_id", "effect_key"])
    if run_id is None:
        return None, None
    run = SimpleNamespace(id=run_id, **{k: values[k] for k in ("installation_id", "rule_id", "hub_event_id",
                                                                 "object_type", "object_id")})
    return run_id, enqueue_run(services, session, run)


def _rows(services) -> list[tuple]:
    with services.db.begin() as s:
        runs = {r.id: r.effect_key for r in s.scalars(select(RuleRun))}
        jobs = s.scalars(select(Job).order_by(Job.dedupe_key)).all()
        return ([(runs[j.payload["run_id"]], j.kind, j.installation_id, j.status, j.attempts, j.max_attempts,
                  j.failed_calls, j.run_at, j.ordering_key, j.dedupe_key, j.created_at, j.updated_at, j.locked_by)
                 for j in jobs],
                sorted((r.effect_key, r.hub_event_id, r.status, r.attempts, r.detail, r.created_at)
                       for r in s.scalars(select(RuleRun))))


def test_one_statement_writes_and_answers_what_the_two_did(world):
    services, iid, rule_id, events = world
    outcomes = {}
    for label, write in (("two", _two_statements), ("one", lambda sv, s, v: _insert_run_and_job(sv, s, v))):
        seen = []
        with services.db.begin() as s:
            # a new run and job; the same run again; another event's
            new = write(services, s, _values(iid, rule_id, events[0], f"{label}-a"))
            again = write(services, s, _values(iid, rule_id, events[0], f"{label}-a"))
            seen.append((new[0] is not None, new[1] is not None, again))
            other = write(services, s, _values(iid, rule_id, events[2], f"{label}-b"))
            seen.append((other[0] is not None, other[1] is not None))
            # the queue's bookkeeping: announced at the commit, the new job may be taken over
            seen.append(([kind for _, kind in s.info.get(_NEW_JOBS, [])], bool(s.info.get(_NOTIFY_PENDING))))
            assert [job_id for job_id, _ in s.info[_NEW_JOBS]][0] == new[1]
        outcomes[label] = seen
        jobs, runs = _rows(services)
        outcomes[label + "-rows"] = ([j for j in jobs if j[0].startswith(label)],
                                     [r[1:] for r in runs if r[0].startswith(label)])
        with services.db.begin() as s:       # the next way starts from the same tables
            for job in s.scalars(select(Job)):
                s.delete(job)
            s.flush()
            for run in s.scalars(select(RuleRun)):
                s.delete(run)
    assert outcomes["one"] == outcomes["two"] == [(True, True, (None, None)), (True, True),
                                                  (["rule.execute", "rule.execute"], True)]
    one_jobs, one_runs = outcomes["one-rows"]
    two_jobs, two_runs = outcomes["two-rows"]
    assert [j[1:] for j in one_jobs] == [j[1:] for j in two_jobs] and len(one_jobs) == 2
    assert [j[0][4:] for j in one_jobs] == [j[0][4:] for j in two_jobs]      # each job names its own run
    assert one_runs == two_runs and len(one_runs) == 2


def test_a_job_whose_dedupe_key_exists_is_not_written_again(world):
    """As `enqueue`: the run is new, its job's key is not: the run id and no job."""
    services, iid, rule_id, events = world
    with services.db.begin() as s:
        services.queue.enqueue(s, "rule.execute", {"run_id": 0}, installation_id=iid,
                               dedupe_key=f"rule.execute:{rule_id}:{events[0]}")
    with services.db.begin() as s:
        run_id, job_id = _insert_run_and_job(services, s, _values(iid, rule_id, events[0], "k"))
        assert run_id is not None and job_id is None and _NEW_JOBS not in s.info
    with services.db.begin() as s:
        assert s.scalar(select(Job.payload)) == {"run_id": 0}
        assert [r.id for r in s.scalars(select(RuleRun))] == [run_id]
