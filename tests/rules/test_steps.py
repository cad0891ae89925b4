"""Rules with steps, against a fake CRM and a fake task app registered as connectors (the engine
reaches them only through the contract): steps in order, each exactly once through retries,
replays and crashes; waits that survive as jobs and honour edits and deactivation; branches;
conditions; complete linked tasks; e-mail; and the API's checks of steps."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from hub.connectors.contract.webhooks import CrmEvent
from hub.errors import Fatal, Retriable
from hub.events import record
from hub.jobs import handler
from hub.rules import engine, service
from hub.rules.catalogs import CACHE
from hub.store import Job, RunLog, utcnow
from hub.store.models import Rule, RuleLink, RuleRun, RuleStepRun
from tests.rules import fake
from tests.rules.fake import WORLD


@pytest.fixture
def world(make_hub):
    fake.register()
    CACHE.clear()
    WORLD.__init__()
    app = make_hub()
    services = app.extensions["hub"]
    iid, tasks_id = fake.install(services)
    yield app, services, iid, tasks_id
    fake.unregister()
    CACHE.clear()


def task_step(tasks_id: int, name: str = "Onboard {{ deal.title }}", **extra) -> dict:
    return {"kind": "faketasks.task", "connection_id": tasks_id, "settings": {"list": "L1"},
            "templates": {"name": name, "description": "Worth {{ deal.value }}"}, **extra}


def make_rule(services, iid: int, steps: list[dict], **extra) -> dict:
    body = {"name": "Steps", "trigger": "deal.won", "pipeline_id": "1", "steps": steps, "status": "active", **extra}
    return service.create(services, iid, body, "u1")


def runs(services) -> list[RuleRun]:
    with services.db.begin() as s:
        return list(s.scalars(select(RuleRun).order_by(RuleRun.id)))


def step_runs(services) -> list[RuleStepRun]:
    with services.db.begin() as s:
        return list(s.scalars(select(RuleStepRun).order_by(RuleStepRun.id)))


def log(services, rule_id: int) -> list[str]:
    with services.db.begin() as s:
        return [r.step for r in s.scalars(select(RunLog).where(RunLog.rule_id == rule_id).order_by(RunLog.id))]


def make_due(services) -> None:
    with services.db.begin() as s:
        s.execute(update(Job).where(Job.status == "queued").values(run_at=utcnow() - timedelta(seconds=1)))


def mails(services) -> list[dict]:
    with services.db.begin() as s:
        return [j.payload for j in s.scalars(select(Job).where(Job.kind == "mail.send").order_by(Job.id))]


def test_steps_run_in_order_once_each_with_their_own_effect_keys(world):
    app, services, iid, tasks_id = world
    rule = make_rule(services, iid, [task_step(tasks_id), task_step(tasks_id, "Kick-off {{ deal.title }}",
                                                                     due_in_days=3),
                                     {"kind": "email", "templates": {"to": "{{ person.email }}, ops@example.com",
                                                                     "subject": "Won: {{ deal.title }}",
                                                                     "body": "Owner {{ deal.owner }}"}}])
    assert [s["kind"] for s in rule["steps"]] == ["faketasks.task", "faketasks.task", "email"]
    fake.won(services, iid, "42")
    fake.drain(app)
    assert sorted(t["name"] for t in WORLD.tasks.values()) == ["Kick-off Deal 42", "Onboard Deal 42"]
    keys = list(WORLD.tasks)
    assert len(set(keys)) == 2 and all(k.startswith("relayhub:fakecrm:c1:r") for k in keys)
    due = [t["due"] for t in WORLD.tasks.values()]
    assert due[0] is None and due[1] == (utcnow() + timedelta(days=3)).date().isoformat()
    assert "Worth 100 EUR" in WORLD.tasks[keys[0]]["notes"] and WORLD.tasks[keys[0]]["settings"] == {"list": "L1"}
    assert [(m["to"], m["subject"]) for m in mails(services)] == [("pia@example.com", "Won: Deal 42"),
                                                                  ("ops@example.com", "Won: Deal 42")]
    [run] = runs(services)
    assert run.status == "done"
    assert [(s.status, s.kind) for s in step_runs(services)] == [("done", "faketasks.task"), ("done", "faketasks.task"),
                                                                 ("done", "email")]
    with services.db.begin() as s:
        links = s.scalars(select(RuleLink).order_by(RuleLink.id)).all()
    assert [(link.connector, link.made, link.connection_id) for link in links] == [("faketasks", "task", tasks_id)] * 2
    assert log(services, rule["id"]) == ["rule.matched", "faketasks.task", "faketasks.task", "rule.email", "rule.done"]
    assert [c[2] for c in WORLD.calls if c[0] == "ensure"] == [True, True]     # first tries: no look-up needed

    # the job delivered again, the event recorded again: nothing is repeated
    with services.db.begin() as s:
        services.queue.enqueue(s, engine.JOB_KIND, {"run_id": run.id}, installation_id=iid)
    fake.won(services, iid, "42")
    fake.drain(app)
    assert WORLD.count("ensure") == 2 and len(mails(services)) == 2 and len(runs(services)) == 1


def test_a_retry_never_repeats_a_completed_step(world):
    app, services, iid, tasks_id = world
    make_rule(services, iid, [task_step(tasks_id), task_step(tasks_id, "Second")])
    real_call = WORLD.call
    calls = {"n": 0}

    def flaky(*what):                                       # step 1 fine, step 2's first call fails
        calls["n"] += 1
        if calls["n"] == 2:
            WORLD.calls.append(what)
            raise Retriable("503 from the task app")
        return real_call(*what)

    WORLD.call = flaky
    fake.won(services, iid, "7")
    fake.drain(app)
    assert runs(services)[0].status == "retrying"
    done, second = step_runs(services)
    assert done.status == "done"                                          # saved before step 2 called anyone
    assert (second.status, second.detail) == ("pending", {"sent": True})  # step 2's mark, saved on the way out
    make_due(services)
    fake.drain(app)
    del WORLD.call
    assert runs(services)[0].status == "done"
    assert [s.status for s in step_runs(services)] == ["done", "done"]    # step 2 done over its mark
    ensures = [(c[1][-10:], c[2]) for c in WORLD.calls if c[0] == "ensure"]
    assert len(ensures) == 3 and ensures[0][0] != ensures[1][0] and ensures[1][0] == ensures[2][0]
    assert ensures[2][1] is False                   # the retried step looks first: its object may exist
    assert len(WORLD.tasks) == 2


def test_a_crash_after_the_target_made_the_object_finds_it_again(world, monkeypatch):
    app, services, iid, tasks_id = world
    make_rule(services, iid, [task_step(tasks_id)])
    from hub.rules.steps import make
    real = make.record_made
    crashes = {"n": 0}

    def crash_once(*args, **kwargs):
        if crashes["n"] == 0:
            crashes["n"] += 1
            raise ConnectionResetError("worker lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(make, "record_made", crash_once)
    fake.won(services, iid, "9")
    fake.drain(app)
    make_due(services)
    fake.drain(app)
    [run] = runs(services)
    assert (run.status, run.attempts) == ("done", 2) and len(WORLD.tasks) == 1
    assert [c[2] for c in WORLD.calls if c[0] == "ensure"] == [True, False]
    [state] = step_runs(services)
    assert state.external_id == next(iter(WORLD.tasks))


class WorkerDied(BaseException):
    """The worker process dies mid-call: nothing after this point is written."""


def test_a_try_that_died_after_its_create_leaves_no_mark_and_the_next_try_looks_first(world):
    app, services, iid, tasks_id = world
    make_rule(services, iid, [task_step(tasks_id), task_step(tasks_id, "Second {{ deal.title }}")])
    real_call = WORLD.call

    def dies_after_second_create(*what):
        real_call(*what)
        if what[0] == "ensure" and what[3].startswith("Second"):
            WORLD.tasks[what[1]] = {"name": what[3], "url": "https://t/x", "status": "open", "files": []}
            raise WorkerDied()     # the create landed; the worker is gone before it writes anything

    WORLD.call = dies_after_second_create
    fake.won(services, iid, "11")
    with pytest.raises(WorkerDied):
        fake.drain(app)
    del WORLD.call
    [run] = runs(services)
    assert run.status == "running"                              # nobody wrote an outcome
    assert [s.status for s in step_runs(services)] == ["done"]  # step 1 saved before step 2 called: no mark for 2
    with services.db.begin() as s:                              # its worker's lease ran out
        s.execute(update(Job).where(Job.status == "running").values(lease_until=utcnow() - timedelta(seconds=1)))
    fake.drain(app)
    assert runs(services)[0].status == "done" and len(WORLD.tasks) == 2
    ensures = [c[2] for c in WORLD.calls if c[0] == "ensure"]
    assert ensures == [True, True, False]        # the died try's step is looked up before any create


def test_a_wait_is_a_job_for_later_and_the_run_continues_with_the_rule_as_it_is_then(world):
    app, services, iid, tasks_id = world
    rule = make_rule(services, iid, [task_step(tasks_id), {"kind": "wait", "delay_seconds": 2 * 86400},
                                     task_step(tasks_id, "Follow up {{ deal.title }} ({{ deal.status }})")])
    fake.won(services, iid, "5")
    fake.drain(app)
    [run] = runs(services)
    assert run.status == "waiting" and [t["name"] for t in WORLD.tasks.values()] == ["Onboard Deal 5"]
    with services.db.begin() as s:
        wake = s.scalar(select(Job).where(Job.kind == engine.JOB_KIND, Job.status == "queued"))
    assert timedelta(days=2) - timedelta(minutes=1) < wake.run_at - utcnow() <= timedelta(days=2)
    assert wake.ordering_key == f"rules:run:{run.id}"            # other rules of the deal are not held back
    assert fake.drain(app) == 0                                   # not due: nothing runs

    # meanwhile the rule is edited: the last step's template changes and a step is added
    steps = [dict(service.step_input(s)) for s in rule["steps"]]
    steps[2]["templates"]["name"] = "Check in on {{ deal.title }} ({{ deal.status }})"
    steps.append({"kind": "email", "templates": {"to": "ops@example.com", "subject": "Checked", "body": ""}})
    service.update(services, iid, rule["id"], {"steps": steps}, "u1")
    WORLD.deals["5"]["status"] = "paid"                            # the deal changed while the run waited
    make_due(services)
    fake.drain(app)
    assert [t["name"] for t in WORLD.tasks.values()] == ["Onboard Deal 5", "Check in on Deal 5 (paid)"]
    assert [m["to"] for m in mails(services)] == ["ops@example.com"]
    assert runs(services)[0].status == "done"
    assert ("load", "deal", "5", True) in WORLD.calls               # after the wait the deal is read again
    assert "rule.waiting" in log(services, rule["id"])


def test_a_rule_deactivated_while_a_run_waits_stops_it_with_a_log_entry(world):
    app, services, iid, tasks_id = world
    rule = make_rule(services, iid, [{"kind": "wait", "delay_seconds": 3600}, task_step(tasks_id)])
    fake.won(services, iid, "6")
    fake.drain(app)
    assert runs(services)[0].status == "waiting" and WORLD.tasks == {}
    service.set_status(services, iid, rule["id"], "draft", "u1")
    make_due(services)
    fake.drain(app)
    [run] = runs(services)
    assert run.status == "stopped" and "deactivated while the run waited" in run.error
    assert WORLD.tasks == {} and log(services, rule["id"])[-1] == "rule.stopped"
    # a duplicate of the original job meanwhile does nothing
    with services.db.begin() as s:
        services.queue.enqueue(s, engine.JOB_KIND, {"run_id": run.id}, installation_id=iid)
    fake.drain(app)
    assert runs(services)[0].status == "stopped" and WORLD.tasks == {}


def test_a_step_delay_and_a_step_condition(world):
    app, services, iid, tasks_id = world
    make_rule(services, iid, [task_step(tasks_id, condition={"field": "value", "op": "gt", "value": "500"}),
                              task_step(tasks_id, "Later", delay_seconds=600)])
    fake.won(services, iid, "8", value=100)
    fake.drain(app)
    states = step_runs(services)
    assert [(s.status, s.wake_at is not None) for s in states] == [("skipped", False), ("waiting", True)]
    assert "does not hold" in states[0].detail["reason"] and WORLD.tasks == {}
    make_due(services)
    fake.drain(app)
    assert [t["name"] for t in WORLD.tasks.values()] == ["Later"]


def test_branches_skip_to_a_later_step_or_stop(world):
    app, services, iid, tasks_id = world
    steps = [{"id": "b1", "kind": "branch", "condition": {"field": "value", "op": "gte", "value": "1000"},
              "settings": {"if_true": "big", "if_false": "next"}},
             {"id": "small", **task_step(tasks_id, "Small {{ deal.title }}")},
             {"id": "b2", "kind": "branch", "settings": {"if_true": "stop"}},
             {"id": "big", **task_step(tasks_id, "Big {{ deal.title }}")}]
    rule = make_rule(services, iid, steps)
    fake.won(services, iid, "1", value=5000)
    fake.won(services, iid, "2", value=10)
    fake.drain(app)
    assert sorted(t["name"] for t in WORLD.tasks.values()) == ["Big Deal 1", "Small Deal 2"]
    assert all(r.status == "done" for r in runs(services))
    assert log(services, rule["id"]).count("rule.branch") == 3


def test_complete_linked_completes_what_earlier_runs_made_for_the_record(world):
    app, services, iid, tasks_id = world
    make_rule(services, iid, [task_step(tasks_id)])
    make_rule(services, iid, [{"kind": "complete_linked", "settings": {"scope": "record"}}], trigger="deal.lost")
    fake.won(services, iid, "3")
    fake.drain(app)
    [task] = WORLD.tasks.values()
    deal = {**WORLD.deals["3"], "status": "lost"}
    from datetime import datetime

    from hub.connectors.contract.webhooks import CrmEvent
    from hub.events import record
    with services.db.begin() as s:
        record(services, s, iid, CrmEvent("deal.lost", "deal", "3", "lost-3", datetime(2026, 12, 2), deal, None,
                                          pipeline_id="1", version="2026-12-02T00:00:00Z"), source="webhook")
    fake.drain(app)
    assert task["status"] == "completed" and WORLD.count("complete") == 1
    with services.db.begin() as s:
        assert s.scalar(select(RuleLink.status)) == "completed"


def test_attachments_are_copied_once_even_when_an_upload_answer_is_lost(world, monkeypatch):
    app, services, iid, tasks_id = world
    WORLD.files = {"quote.pdf": b"%PDF", "notes.txt": b"hello", "scan.tif": b"x" * 5000}
    make_rule(services, iid, [task_step(tasks_id, carry={"attachments": True})])
    real = fake.Target.attach
    lost = {"n": 0}

    def attach_then_lose(self, *args, **kwargs):
        result = real(self, *args, **kwargs)
        if lost["n"] == 0:
            lost["n"] += 1
            raise TimeoutError("answer lost after the upload")
        return result

    monkeypatch.setattr(fake.Target, "attach", attach_then_lose)
    fake.won(services, iid, "4")
    fake.drain(app)
    make_due(services)
    fake.drain(app)
    [task] = WORLD.tasks.values()
    assert sorted(name for name, _ in task["files"]) == ["notes.txt", "quote.pdf"]
    [run] = runs(services)
    assert run.status == "done" and WORLD.count("ensure") == 1
    assert [c[3] for c in WORLD.calls if c[0] == "attach"] == [False, True, False, False]   # looked after the loss
    assert "scan.tif: too large" in run.detail["warnings"]
    report = {a["name"]: a for a in step_runs(services)[0].detail["attachments"].values()}
    assert report["scan.tif"]["status"] == "too_large" and "5000 bytes" in report["scan.tif"]["message"]


def test_a_fatal_step_fails_the_run_once_per_rule_version_and_its_retry_continues(world):
    app, services, iid, tasks_id = world
    rule = make_rule(services, iid, [task_step(tasks_id), task_step(tasks_id, "Second")])
    calls = {"n": 0}
    real_call = WORLD.call

    def refuse_second(*what):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Fatal("faketasks 404: list not found", 404)
        return real_call(*what)

    WORLD.call = refuse_second
    fake.won(services, iid, "11")
    fake.won(services, iid, "12")
    fake.drain(app)
    del WORLD.call
    first = runs(services)[0]
    assert first.status == "failed" and first.error.startswith("step 2 (Create a fake task): faketasks 404")
    assert "edit the rule and pick another" in first.error
    failure_mails = [m for m in mails(services) if "failed" in m["subject"]]
    assert len(failure_mails) == 1 and failure_mails[0]["to"] == "ada@example.com"
    service.retry(services, iid, rule["id"], first.id, "u1")
    fake.drain(app)
    assert runs(services)[0].status == "done" and len(WORLD.tasks) == 4


def test_the_api_checks_steps(world):
    app, services, iid, tasks_id = world
    cases = [
        ([{"kind": "nope.task"}], "steps.0.kind"),
        ([{"kind": "wait"}], "steps.0.delay_seconds"),
        ([{"kind": "branch", "settings": {"if_true": "zzz"}}], "steps.0.settings.if_true"),
        ([task_step(tasks_id, settings={"list": "L9"})], "steps.0.settings.list"),
        ([task_step(tasks_id, connection_id=999)], "steps.0.connection_id"),
        ([task_step(tasks_id, name="{{ ''.__class__ }}")], "steps.0.templates.name"),
        ([{"kind": "email", "templates": {"to": "", "subject": "x"}}], "steps.0.templates.to"),
        ([task_step(tasks_id, condition={"field": "nope", "op": "eq", "value": "1"})], "steps.0.condition.field"),
        ([], "steps"),
    ]
    for steps, field_name in cases:
        with pytest.raises(service.Invalid) as exc:
            make_rule(services, iid, steps)
        assert field_name in exc.value.errors, (steps, exc.value.errors)
    with pytest.raises(service.Invalid) as exc:
        make_rule(services, iid, [task_step(tasks_id)], trigger="person.created")
    assert "trigger" in exc.value.errors
    # the one-step shorthand of rules made before steps, with its errors named its way
    made = service.create(services, iid, {"name": "Old style", "trigger": "deal.won", "pipeline_id": "1",
                                          "action": "faketasks.task", "name_template": "X {{ deal.title }}",
                                          "target": {"connection_id": tasks_id, "list": "L2"}}, "u1")
    [step] = made["steps"]
    assert (step["kind"], step["settings"], step["templates"]["name"]) == ("faketasks.task", {"list": "L2"},
                                                                           "X {{ deal.title }}")
    with pytest.raises(service.Invalid) as exc:
        service.update(services, iid, made["id"], {"target": {"connection_id": tasks_id, "list": "L9"}}, "u1")
    assert "target.list" in exc.value.errors
    changed = service.update(services, iid, made["id"], {"name_template": "Y"}, "u1")
    assert changed["steps"][0]["templates"]["name"] == "Y" and changed["steps"][0]["id"] == step["id"]
    # presets come from the connectors; `*.task` becomes the connected app's task step
    draft = service.create(services, iid, {"preset": "fake_handoff"}, "u1")
    assert draft["pipeline_id"] == "1" and draft["steps"][0]["kind"] == "faketasks.task"
    assert draft["steps"][0]["templates"] == {"name": "Onboard {{ deal.title }}", "description": "Won"}
    assert draft["steps"][0]["connection_id"] == tasks_id
    with services.db.begin() as s:
        assert s.scalar(select(Rule.preset).where(Rule.id == draft["id"])) == "fake_handoff"


@handler("test.webhook_won")
def _webhook_won(ctx):
    """An event recorded by a job, as `webhook.process` records it: its rule runs' jobs are taken
    over by that job's completion."""
    services = ctx.app.extensions["hub"]
    deal_id = ctx.payload["deal"]
    deal = {"id": deal_id, "title": f"Deal {deal_id}", "status": "won", "pipeline_id": "1", "value": 100,
            "won_time": "2026-12-01T10:00:00Z"}
    WORLD.deals[deal_id] = deal
    record(services, ctx.session, ctx.payload["iid"], CrmEvent(
        "deal.won", "deal", deal_id, f"e-{deal_id}", datetime(2026, 12, 1), deal, None, pipeline_id="1",
        version="2026-12-01T10:00:00Z"), source="webhook")


def test_a_run_taken_over_by_its_events_job_is_planned_in_that_jobs_transaction(world, monkeypatch):
    app, services, iid, tasks_id = world
    rule = make_rule(services, iid, [task_step(tasks_id)])
    from hub.rules import runner

    def no_own_transaction(*args, **kwargs):
        raise AssertionError("the run read its plan in a transaction of its own")

    monkeypatch.setattr(runner, "plan_run", no_own_transaction)
    with services.db.begin() as s:
        services.queue.enqueue(s, "test.webhook_won", {"deal": "77", "iid": iid}, installation_id=iid)
    fake.drain(app)
    [run] = runs(services)
    assert (run.status, run.attempts) == ("done", 1)
    assert [t["name"] for t in WORLD.tasks.values()] == ["Onboard Deal 77"]
    assert log(services, rule["id"]) == ["rule.matched", "faketasks.task", "rule.done"]


def test_a_run_no_attempt_has_started_reads_no_step_progress(world):
    """Only an attempt writes step progress, after its start: the first attempt does not look for it."""
    from sqlalchemy import event

    app, services, iid, tasks_id = world
    make_rule(services, iid, [task_step(tasks_id)])
    seen: list[str] = []

    def record_statement(conn, cursor, statement, *args):
        seen.append(" ".join(statement.split()))
    event.listen(services.db.engine, "before_cursor_execute", record_statement)
    try:
        with services.db.begin() as s:
            services.queue.enqueue(s, "test.webhook_won", {"deal": "78", "iid": iid}, installation_id=iid)
        fake.drain(app)
    finally:
        event.remove(services.db.engine, "before_cursor_execute", record_statement)
    [run] = runs(services)
    assert (run.status, run.attempts) == ("done", 1)
    assert any("INSERT INTO rule_step_runs" in s for s in seen)     # on PostgreSQL inside the completion (a CTE)
    assert [s for s in seen if s.startswith("SELECT") and "FROM rule_step_runs" in s] == []


def test_a_versions_steps_are_read_once_and_an_edit_is_used_by_the_next_run(world):
    """Steps are kept per rule version (runner._saved_steps): every save raises the version."""
    from sqlalchemy import event

    app, services, iid, tasks_id = world
    rule = make_rule(services, iid, [task_step(tasks_id, name="First {{ deal.title }}")])
    seen: list[str] = []

    def record_statement(conn, cursor, statement, *args):
        seen.append(" ".join(statement.split()))

    def won(deal: str) -> None:
        with services.db.begin() as s:
            services.queue.enqueue(s, "test.webhook_won", {"deal": deal, "iid": iid}, installation_id=iid)
        fake.drain(app)

    event.listen(services.db.engine, "before_cursor_execute", record_statement)
    try:
        won("81")
        won("82")
        reads = len([s for s in seen if s.startswith("SELECT") and "FROM rule_steps" in s])
        service.update(services, iid, rule["id"], {"steps": [task_step(tasks_id, name="Second {{ deal.title }}")]}, "u1")
        won("83")
    finally:
        event.remove(services.db.engine, "before_cursor_execute", record_statement)
    assert reads == 1
    assert sorted(t["name"] for t in WORLD.tasks.values()) == ["First Deal 81", "First Deal 82", "Second Deal 83"]
