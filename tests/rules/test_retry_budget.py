"""One retry budget per effect, end to end: a won deal -> a rule run -> Asana failing in each way
the sandbox can fail (429 with a long Retry-After, 5xx, answers slower than the read timeout). The
requests are counted at the Asana emulator; the queue is driven by making waiting jobs due, never
by sleeping through their backoff; Retry-After is checked on the job's stored run time."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from hub.connectors import retry
from hub.rules import engine
from hub.store import Job
from tests.rules.test_execution import faults, make_due

BUDGET = 6   # calls.failed_calls_per_effect's default


def rule_job(env) -> Job:
    with env.services.db.begin() as s:
        return s.scalar(select(Job).where(Job.kind == engine.JOB_KIND))


def fail_until_given_up(env, *, retry_after: float | None = None) -> int:
    """Run the rule job until it stops coming back; each time it is queued again, check that it
    waits at least the announced Retry-After. Returns the number of job attempts."""
    env.pd.mark_won(env.deal("Nordwind GmbH - 40")["id"])
    env.settle()
    for _ in range(20):
        job = rule_job(env)
        if job.status != "queued":
            return job.attempts
        if retry_after is not None:
            assert job.run_at - job.updated_at >= timedelta(seconds=retry_after), "Retry-After not honoured"
        make_due(env)
        env.hub.run_jobs()
    raise AssertionError("the rule job never gave up")


@pytest.mark.parametrize("fault, expected", [
    ({"burst_429": 10_000, "retry_after": 120}, "asana 429: You've made too many requests"),
    ({"error_rate": 1.0, "error_status": 500}, "asana 500: Server Error (support phrase: "),
], ids=["429-long-retry-after", "5xx"])
def test_a_failing_asana_gets_at_most_six_requests_then_the_run_fails_with_its_message(make_env, db_url,
                                                                                       fault, expected):
    env = make_env(db_url)
    env.rule(carry={"attachments": False})
    faults(env, "asana", **fault)
    before = env.asana.faults.api_requests
    attempts = fail_until_given_up(env, retry_after=fault.get("retry_after"))

    assert env.asana.faults.api_requests - before == BUDGET
    [run] = env.runs()
    assert run.status == "failed" and expected in run.error and f"after {BUDGET} failed requests" in run.error
    job = rule_job(env)
    assert job.failed_calls == BUDGET and attempts == BUDGET   # one request per attempt: none retried in-call
    assert env.tasks() == []


def test_answers_slower_than_the_read_timeout_are_not_resent_in_the_call(make_env, db_url):
    env = make_env(db_url, **{"calls.read_timeout": 0.5})
    env.rule(carry={"attachments": False})
    faults(env, "asana", latency_ms=2000)            # every Asana answer comes after the client gave up
    before = env.asana.faults.api_requests
    attempts = fail_until_given_up(env)

    assert env.asana.faults.api_requests - before == BUDGET and attempts == BUDGET
    [run] = env.runs()
    assert run.status == "failed" and "asana did not answer within 0.5 s" in run.error
    faults(env, "asana", latency_ms=0)


def test_a_short_retry_after_is_waited_for_inside_the_call(make_env, db_url, monkeypatch):
    env = make_env(db_url)
    env.rule(carry={"attachments": False})
    waits: list[float] = []
    monkeypatch.setattr(retry, "pause", waits.append)  # the wait is recorded, not slept
    faults(env, "asana", burst_429=1, retry_after=1)
    before = env.asana.faults.api_requests
    env.pd.mark_won(env.deal("Nordwind GmbH - 40")["id"])
    env.settle()

    assert waits == [1.0] and env.asana.faults.api_requests - before == 2
    [run] = env.runs()
    assert run.status == "done" and run.attempts == 1       # never went back to the queue
    # the refused request counted, and Asana's answer to the retry started the count over
    assert len(env.tasks()) == 1 and rule_job(env).failed_calls == 0


def test_a_short_retry_after_that_persists_goes_to_the_queue_and_is_honoured(make_env, db_url, monkeypatch):
    env = make_env(db_url)
    env.rule(carry={"attachments": False})
    monkeypatch.setattr(retry, "pause", lambda seconds: None)
    faults(env, "asana", burst_429=3, retry_after=2)
    before = env.asana.faults.api_requests
    env.pd.mark_won(env.deal("Nordwind GmbH - 40")["id"])
    env.settle()

    job = rule_job(env)
    assert job.status == "queued" and job.failed_calls == 2 and env.asana.faults.api_requests - before == 2
    assert job.run_at - job.updated_at >= timedelta(seconds=2)
    make_due(env)
    env.hub.run_jobs()                 # the third 429, then the inline retry succeeds
    [run] = env.runs()
    assert run.status == "done" and len(env.tasks()) == 1
    assert env.asana.faults.api_requests - before == 5        # 429, 429 | 429, lookup, create
    assert rule_job(env).failed_calls == 0      # three refusals counted; Asana answering again reset them
