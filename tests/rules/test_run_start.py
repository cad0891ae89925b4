"""A run's start (`plan_run`): marked running with one more attempt exactly when it is to run; a run
that must not (finished, waiting for another wake-up, its rule or event gone, its rule deactivated
before it started) is left as it was for the caller to skip or stop. On PostgreSQL the mark goes
with the read as one statement and is undone in the cases only the read can tell."""
from __future__ import annotations

from datetime import datetime

import pytest

from hub.rules.runner import plan_run
from hub.store import HubEvent, Installation
from hub.store.models import Rule, RuleRun

BEFORE = datetime(2026, 12, 1, 9, 0)


@pytest.fixture
def world(make_hub):
    services = make_hub().extensions["hub"]
    with services.db.begin() as s:
        inst = Installation(provider="pipedrive", company_id="7", installer_user_id="1", endpoint_token="t-start")
        s.add(inst)
        s.flush()
        rules = {status: Rule(installation_id=inst.id, name=status, status=status, trigger="deal.won")
                 for status in ("active", "draft")}
        s.add_all(rules.values())
        event = HubEvent(installation_id=inst.id, occurrence="deal:42:deal.won:1", kind="deal.won",
                         object_type="deal", object_id="42", source="webhook", data={"current": {}})
        s.add(event)
        s.flush()
        ids = {"installation": inst.id, "event": event.id, **{k: r.id for k, r in rules.items()}}

    def run(rule: str = "active", event: int | None = None, **values) -> int:
        with services.db.begin() as s:
            row = RuleRun(installation_id=ids["installation"], rule_id=ids.get(rule, 999_999),
                          hub_event_id=event or ids["event"], effect_key=f"k{datetime.now().timestamp()}",
                          object_type="deal", object_id="42", detail={}, updated_at=BEFORE,
                          **{"status": "queued", "attempts": 0, **values})
            s.add(row)
            s.flush()
            return row.id

    def state(run_id: int) -> tuple:
        with services.db.begin() as s:
            row = s.get(RuleRun, run_id)
            return row.status, row.attempts, row.updated_at == BEFORE

    return services, run, state


@pytest.mark.parametrize("case, reason", [
    ({"status": "done", "attempts": 1}, "already done"),
    ({"status": "waiting", "attempts": 1, "step_uid": "s2", "wake_at": datetime(2026, 12, 9)}, "it waits until"),
    ({"rule": "gone"}, "the rule was deleted"),
    ({"event": 999_999}, "the event no longer exists"),
    ({"rule": "draft"}, "the rule was deactivated before this run started"),
])
def test_a_run_that_must_not_start_is_left_as_it_was(world, case, reason):
    services, run, state = world
    run_id = run(**case)
    before = state(run_id)
    plan, why = plan_run(services, run_id, 1, None)
    assert plan is None and why.startswith(reason)
    assert state(run_id) == before


@pytest.mark.parametrize("case", [
    {},                                                     # a new run
    {"status": "retrying", "attempts": 2},                  # its next attempt
    {"status": "running", "attempts": 1},                   # its worker died mid-run
    {"rule": "draft", "status": "retrying", "attempts": 1},  # deactivated after it started: it goes on
    {"status": "waiting", "attempts": 1, "step_uid": "s2", "wake_at": BEFORE, "wake": "s2"},   # woken for its step
])
def test_a_run_that_is_to_run_starts_with_one_more_attempt(world, case):
    services, run, state = world
    case = dict(case)
    wake = case.pop("wake", None)
    run_id = run(**case)
    attempts = case.get("attempts", 0)
    plan, why = plan_run(services, run_id, 1, wake)
    assert plan is not None and why is None and plan.run_id == run_id
    assert plan.crashed == (case.get("status") == "running")
    assert state(run_id) == ("running", attempts + 1, False)
