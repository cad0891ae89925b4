"""Rules end to end against the sandbox: a change in the CRM -> real webhook -> hub ingest -> rule
-> Asana, checked in the Asana emulator. Every trigger, the data toggles, task and project,
assignee, custom fields, unicode, attachments, failures and exactly-once under duplicates,
retries, crashes and replays."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from email.header import decode_header, make_header

import requests
from sqlalchemy import select, update

from hub.connectors.pipedrive.webhooks import reconcile_events
from hub.events import record
from hub.jobs import Worker
from hub.rules import connections, engine
from hub.rules.steps import make
from hub.store import Job, RunLog, utcnow
from hub.store.models import Rule, RuleRun


def notes_of(task: dict) -> str:
    ET.fromstring(task["html_notes"])   # valid XML with one <body> root, or this raises
    return task["html_notes"]


def custom_key(env, name: str) -> str:
    return next(f["key"] for f in env.pd.fields("deal") if f["name"] == name)


def steps(env, rule_id: int) -> list[str]:
    with env.services.db.begin() as s:
        return [r.step for r in s.scalars(select(RunLog).where(RunLog.rule_id == rule_id).order_by(RunLog.id))]


def faults(env, provider: str, **knobs) -> None:
    response = requests.post(f"{env.hub.url}/sandbox/{provider}/_sandbox/faults", json=knobs, timeout=5)
    assert response.status_code == 200, response.text


def make_due(env) -> None:
    """Jobs waiting for a backoff become due now (the test does not sleep through it)."""
    with env.services.db.begin() as s:
        s.execute(update(Job).where(Job.status == "queued").values(run_at=utcnow() - timedelta(seconds=1)))


def test_won_deal_becomes_exactly_one_task_with_the_right_data(make_env, db_url):
    env = make_env(db_url)
    luis = env.user("luis")
    rule = env.rule(target={"assignee_gid": luis},
                    field_mappings=[{"key": custom_key(env, "Tier")}, {"key": custom_key(env, "Contract number")},
                                    {"key": custom_key(env, "Modules")}, {"key": "expected_close_date"}])
    assert [m["label"] for m in rule["steps"][0]["field_mappings"]] == ["Tier", "Contract number", "Modules",
                                                                       "Expected close date"]
    deal = env.deal("Nordwind GmbH - 40")
    env.pd.mark_won(deal["id"])
    env.settle()

    [task] = env.tasks("Won deals – onboarding")
    assert task["name"] == "Onboard Nordwind GmbH - 40 seats renewal"
    assert task["assignee"] == luis
    html = notes_of(task)
    assert "Won by Ben Seller." in html
    assert "<strong>Value:</strong> 18,400 EUR" in html
    assert "Katrin Vogel" in html and 'href="mailto:katrin.vogel@nordwind.example"' in html and "+49 40 5550 1234" in html
    assert "<strong>Organization:</strong> Nordwind GmbH, Hafenstrasse 12, Hamburg" in html
    assert "<strong>Tier:</strong> Gold" in html and "<strong>Contract number:</strong> NW-2026-118" in html
    assert "<strong>Modules:</strong> CRM" in html and "<strong>Expected close date:</strong> 2026-12-15" in html
    assert "<h2>Pinned notes</h2>" in html and "<strong>Gold</strong> tier" in html
    assert "renewal depends on SSO" not in html                     # not pinned: not carried
    [attachment] = env.asana.attachments(task["gid"])
    assert attachment["name"] == "nordwind-quote.pdf"
    assert env.asana.attachment_bytes(attachment["gid"]) == b"%PDF-1.4\n% Acme Sandbox quote NW-2026-118\n"

    [run] = env.runs()
    assert (run.status, run.object_id, env.made(run), run.attempts) == ("done", str(deal["id"]), task["gid"], 1)
    [step] = env.step_runs()
    assert [a["status"] for a in step.detail["attachments"].values()] == ["copied"]
    [link] = env.links()
    assert (link.object_type, link.object_id, link.connector, link.made, link.external_id) == \
        ("deal", str(deal["id"]), "asana", "task", task["gid"])
    assert link.name == task["name"] and link.connection_id == env.asana_id
    assert steps(env, rule["id"]) == ["rule.matched", "asana.task", "asana.attachment", "rule.done"]

    # the same deal edited after the win: no new win, no second task
    env.pd.update_deal(deal["id"], {"value": 19000})
    env.settle()
    assert len(env.tasks("Won deals – onboarding")) == 1 and len(env.runs()) == 1


def test_every_trigger_and_the_pipeline_and_stage_filters(env):
    renewals, renewals_project = env.pipeline("Renewals"), env.project("Renewals")
    env.rule(name="lost", trigger="deal.lost", name_template="Lost: {{ deal.title }} ({{ deal.lost_reason }})",
             description_template="", carry={"attachments": False, "notes": False},
             target={"project_gid": renewals_project})
    env.rule(name="moved", trigger="deal.stage_changed", stage_id=env.stage("Negotiations started"),
             name_template="{{ deal.title }} in {{ deal.stage }} ({{ deal.pipeline }})", description_template="",
             carry={"attachments": False})
    env.rule(name="lead", trigger="lead.added", name_template="Call {{ lead.title }}",
             description_template="Owner: {{ lead.owner }}", carry={"attachments": False, "notes": False})
    won_renewals = env.rule(name="won in renewals", trigger="deal.won", pipeline_id=renewals,
                            name_template="Renewal won: {{ deal.title }}", carry={"attachments": False})

    lumo = env.deal("Lumo Oy - pilot")
    parnu = env.deal("Parnu Logistics - fleet")
    env.pd.move_stage(lumo["id"], int(env.stage("Proposal made")))         # not the rule's stage
    env.pd.move_stage(lumo["id"], int(env.stage("Negotiations started")))  # the rule's stage
    env.pd.mark_lost(parnu["id"], "No budget")
    env.pd.mark_won(lumo["id"])                                            # won in Sales: only Renewals rule exists
    lead = env.pd.add_lead("Inbound: Kask & Sons <wholesale>", person_id=next(iter(env.pd.data["pd_persons"].values()))["id"],
                           amount=5000)
    env.settle()

    names = sorted(t["name"] for t in env.tasks())
    assert names == sorted(["Lost: Parnu Logistics - fleet tracking (No budget)",
                            "Lumo Oy - pilot for support team in Negotiations started (Sales)",
                            "Call Inbound: Kask & Sons <wholesale>"])
    assert {t["name"] for t in env.tasks("Renewals")} == {"Lost: Parnu Logistics - fleet tracking (No budget)"}
    lead_task = next(t for t in env.tasks() if t["name"].startswith("Call"))
    html = notes_of(lead_task)
    assert "Owner: Ada Admin" in html and "<strong>Value:</strong> 5,000 EUR" in html
    assert "Kask &amp; Sons &lt;wholesale&gt;" in html
    assert f"/leads/inbox/{lead['id']}" in html
    assert all(r.status == "done" for r in env.runs()) and len(env.runs()) == 3
    assert not [r for r in env.runs() if r.rule_id == won_renewals["id"]]


def test_data_toggles_off_carry_only_the_title(env):
    env.rule(carry={"value": False, "contacts": False, "notes": False, "attachments": False},
             description_template="")
    deal = env.deal("Nordwind GmbH - 40")
    env.pd.mark_won(deal["id"])
    env.settle()
    [task] = env.tasks()
    html = notes_of(task)
    assert "<strong>Deal:</strong>" in html and "Nordwind GmbH - 40 seats renewal" in html
    for absent in ("Value:", "Contact:", "Organization:", "Pinned notes", "18,400"):
        assert absent not in html
    assert env.asana.attachments(task["gid"]) == []


def test_conditions_on_value_and_custom_choice(env):
    tier = custom_key(env, "Tier")
    env.rule(conditions=[{"field": "value", "op": "gte", "value": "10000"},
                         {"field": tier, "op": "eq", "value": "gold"}], carry={"attachments": False})
    small = env.pd.create_deal("Small one", pipeline_id=1, value=500)
    big = env.deal("Nordwind GmbH - 40")
    env.pd.mark_won(small["id"])
    env.pd.mark_won(big["id"])
    env.settle()
    assert [t["name"] for t in env.tasks()] == ["Onboard Nordwind GmbH - 40 seats renewal"]
    with env.services.db.begin() as s:
        stored = s.scalar(select(Rule)).conditions
    assert stored[1]["label"] == "Tier" and "Gold" in stored[1]["options"].values()


def test_project_action_in_an_organization_and_a_workspace(env):
    org_rule = env.rule(name="projects", action="asana.project", name_template="Delivery: {{ deal.title }}",
                        description_template="Kick-off for {{ deal.title }} & co",
                        target={"team_gid": env.team("Sales Ops"), "project_gid": None})
    assert org_rule["steps"][0]["carry"]["attachments"] is False
    assert any("switched off" in n for n in org_rule["notices"])
    env.rule(name="personal", action="asana.project", name_template="Personal: {{ deal.title }}",
             target={"workspace_gid": env.workspace("Personal Projects"), "project_gid": None})
    deal = env.deal("Nordwind GmbH - 40")
    env.pd.mark_won(deal["id"])
    env.settle()
    made = {p["name"]: p for p in env.asana.projects() if p["name"].startswith(("Delivery", "Personal"))}
    assert set(made) == {"Delivery: Nordwind GmbH - 40 seats renewal", "Personal: Nordwind GmbH - 40 seats renewal"}
    delivery = made["Delivery: Nordwind GmbH - 40 seats renewal"]
    assert delivery["team"] == env.team("Sales Ops") and delivery["workspace"] == env.workspace("Acme Sandbox Org")
    assert "Kick-off for Nordwind GmbH - 40 seats renewal &amp; co" in delivery["html_notes"]
    assert "<h2>" not in delivery["html_notes"]                      # projects take no headings
    ET.fromstring(delivery["html_notes"])
    assert env.asana.attachments(delivery["gid"]) == [] and env.tasks() == []
    assert sorted(link.made for link in env.links()) == ["project", "project"]


def test_unicode_and_markup_in_the_crm_data(env):
    env.rule(description_template="Für {{ person.name }}: <b>bitte</b> & danke")
    person = env.pd.create_person("Jürgen Ølstrøm <CEO>", emails=["jurgen@ølstrøm.example"])
    deal = env.pd.create_deal("Straße & Söhne – 🚀 <launch> \"quoted\"", pipeline_id=1, value=1234.5,
                              person_id=person["id"])
    # (the sandbox Pipedrive cannot serve a file name outside latin-1 in its download header)
    env.pd.attach_file(deal["id"], "Angebot Müller – ½.pdf".replace("–", "-"), "Grüße 🚀".encode())
    env.pd.mark_won(deal["id"])
    env.settle()
    [task] = env.tasks()
    assert task["name"] == "Onboard Straße & Söhne – 🚀 <launch> \"quoted\""
    html = notes_of(task)
    assert "Für Jürgen Ølstrøm &lt;CEO&gt;: <strong>bitte</strong> &amp; danke" in html
    assert "1,234.50 EUR" in html
    [attachment] = env.asana.attachments(task["gid"])
    assert attachment["name"] == "Angebot Müller - ½.pdf"
    assert env.asana.attachment_bytes(attachment["gid"]) == "Grüße 🚀".encode()


def test_attachment_over_the_limit_is_reported_not_fatal(make_env):
    env = make_env(**{"rules.attachment_max_bytes": 1000})
    env.rule()
    deal = env.deal("Nordwind GmbH - 40")
    env.pd.attach_file(deal["id"], "huge-scan.pdf", b"x" * 5000)
    env.pd.attach_file(deal["id"], "small.txt", b"fine")
    env.pd.mark_won(deal["id"])
    env.settle()
    [task] = env.tasks()
    assert sorted(a["name"] for a in env.asana.attachments(task["gid"])) == ["nordwind-quote.pdf", "small.txt"]
    [run] = env.runs()
    assert run.status == "done"
    report = {a["name"]: a for a in env.step_runs()[0].detail["attachments"].values()}
    assert report["huge-scan.pdf"]["status"] == "too_large" and "5000 bytes" in report["huge-scan.pdf"]["message"]
    assert any("huge-scan.pdf: too large" in w for w in run.detail["warnings"])


def test_duplicate_deliveries_and_replays_make_one_task(make_env, db_url):
    env = make_env(db_url)
    rule = env.rule(carry={"attachments": False})
    faults(env, "pipedrive", webhook_duplicate_rate=1.0)                 # every delivery sent twice
    deal = env.deal("Nordwind GmbH - 40")
    env.pd.mark_won(deal["id"])
    env.settle()
    assert len(env.tasks()) == 1 and len(env.runs()) == 1

    # the reconciliation poll (or an operator's replay) produces the same occurrence again
    with env.services.db.begin() as s:
        crm = connections.crm_connection(s, env.iid)
    now = connections.client(env.services, crm).deal(deal["id"])     # as the API shows it
    before = {**now, "status": "open", "won_time": None, "update_time": "2020-01-01T00:00:00Z"}
    with env.services.db.begin() as s:
        for event in reconcile_events(before, now):
            record(env.services, s, env.iid, event, source="reconcile")
    env.hub.run_jobs()
    assert len(env.tasks()) == 1 and len(env.runs()) == 1

    # the job itself delivered again after success (at least once): nothing repeated
    [run] = env.runs()
    with env.services.db.begin() as s:
        env.services.queue.enqueue(s, engine.JOB_KIND, {"run_id": run.id}, installation_id=run.installation_id)
    env.hub.run_jobs()
    assert len(env.tasks()) == 1
    assert steps(env, rule["id"])[-1] == "rule.skipped"
    assert env.runs()[0].status == "done"


def test_a_crash_after_creating_the_task_does_not_create_it_again(env, monkeypatch):
    env.rule()
    real_record = make.record_made
    crashes = {"n": 0}

    def crash_once(*args, **kwargs):
        if crashes["n"] == 0:       # the task exists in Asana, the worker dies before noting it
            crashes["n"] += 1
            raise ConnectionResetError("worker lost")
        return real_record(*args, **kwargs)

    monkeypatch.setattr(make, "record_made", crash_once)
    deal = env.deal("Nordwind GmbH - 40")
    env.pd.mark_won(deal["id"])
    env.settle()
    assert env.runs()[0].status == "retrying"
    make_due(env)
    env.hub.run_jobs()
    [task] = env.tasks()
    [run] = env.runs()
    assert (run.status, run.attempts, env.made(run)) == ("done", 2, task["gid"])
    assert len(env.asana.attachments(task["gid"])) == 1


def test_a_lost_answer_to_a_project_create_does_not_create_it_again(env, monkeypatch):
    env.rule(action="asana.project", name_template="Delivery: {{ deal.title }}",
             target={"team_gid": env.team("Sales Ops"), "project_gid": None})
    real_record = make.record_made
    crashes = {"n": 0}

    def crash_once(*args, **kwargs):
        if crashes["n"] == 0:
            crashes["n"] += 1
            raise ConnectionResetError("answer lost")
        return real_record(*args, **kwargs)

    monkeypatch.setattr(make, "record_made", crash_once)
    env.pd.mark_won(env.deal("Nordwind GmbH - 40")["id"])
    env.settle()
    make_due(env)
    env.hub.run_jobs()
    made = [p for p in env.asana.projects() if p["name"] == "Delivery: Nordwind GmbH - 40 seats renewal"]
    assert len(made) == 1
    [run] = env.runs()
    assert (run.status, env.made(run), run.attempts) == ("done", made[0]["gid"], 2)


def test_a_lost_upload_answer_does_not_upload_twice(env, monkeypatch):
    env.rule()
    real = make._upload
    lost = {"n": 0}

    def upload_then_die(*args, **kwargs):
        result = real(*args, **kwargs)
        if lost["n"] == 0:
            lost["n"] += 1
            raise TimeoutError("answer lost after the upload")
        return result

    monkeypatch.setattr(make, "_upload", upload_then_die)
    env.pd.mark_won(env.deal("Nordwind GmbH - 40")["id"])
    env.settle()
    make_due(env)
    env.hub.run_jobs()
    [task] = env.tasks()
    assert [a["name"] for a in env.asana.attachments(task["gid"])] == ["nordwind-quote.pdf"]
    assert env.runs()[0].status == "done"


def test_429_and_503_are_retried_honouring_retry_after(env):
    rule = env.rule(carry={"attachments": False})
    faults(env, "asana", burst_429=1, retry_after=45)                   # too long to sleep in a call
    env.pd.mark_won(env.deal("Nordwind GmbH - 40")["id"])
    env.settle()
    [run] = env.runs()
    assert run.status == "retrying" and "429" in run.error
    with env.services.db.begin() as s:
        job = s.scalar(select(Job).where(Job.kind == engine.JOB_KIND))
    wait = (job.run_at - utcnow()).total_seconds()
    assert 40 < wait <= 45                                              # the queue waits what Asana asked
    assert env.tasks() == []

    faults(env, "asana", error_rate=1.0, error_status=503)
    make_due(env)
    env.hub.run_jobs()
    assert env.runs()[0].status == "retrying" and "503" in env.runs()[0].error
    faults(env, "asana", error_rate=0.0)
    make_due(env)
    env.hub.run_jobs()
    [task] = env.tasks()
    [run] = env.runs()
    assert run.status == "done" and run.attempts == 3
    assert steps(env, rule["id"]).count("rule.retrying") == 2


def test_deleted_project_fails_the_run_readably_and_emails_once(env, smtp):
    rule = env.rule(carry={"attachments": False})
    project = env.project("Won deals – onboarding")
    with env.asana.state.change():
        env.asana._t("projects").pop(project)                          # someone deleted it in Asana
    env.pd.mark_won(env.deal("Nordwind GmbH - 40")["id"])
    env.pd.mark_won(env.deal("Parnu Logistics - fleet")["id"])
    env.settle()
    runs = env.runs()
    assert [r.status for r in runs] == ["failed", "failed"]
    assert "Not a recognized ID" in runs[0].error and "deleted" in runs[0].error and "pick another" in runs[0].error
    [(rcpts, message)] = smtp.wait_for(1)
    assert rcpts == ["ada.admin@acme-sandbox.example"]
    assert "Hand off won deals" in str(make_header(decode_header(message["Subject"])))
    assert "Not a recognized ID" in message.get_payload()
    env.hub.run_jobs()
    assert len(smtp.messages) == 1                                       # nobody is e-mailed twice
    with env.services.db.begin() as s:
        assert s.get(Rule, rule["id"]).last_error.startswith("asana 400")
        dead = s.scalars(select(Job).where(Job.kind == engine.JOB_KIND, Job.status != "done")).all()
    assert dead == []                                                    # failed runs, not dead jobs

    # the admin points the rule at another project and retries the failed runs
    from hub.rules import service
    step = rule["steps"][0]
    service.update(env.services, env.iid, rule["id"],
                   {"target": {"connection_id": step["connection_id"], **step["settings"],
                               "project_gid": env.project("Renewals")}}, "12400001")
    for run in runs:
        service.retry(env.services, env.iid, rule["id"], run.id, "12400001")
    env.hub.run_jobs()
    assert sorted(r.status for r in env.runs()) == ["done", "done"]
    assert len(env.tasks("Renewals")) == 2
    with env.services.db.begin() as s:
        assert s.get(Rule, rule["id"]).last_error is None


def test_missing_permission_and_disconnected_account(env, smtp):
    rule = env.rule(carry={"attachments": False}, target={"workspace_gid": env.workspace("Acme Sandbox Org")})
    dana = env.user("dana")
    with env.asana.state.change():                                        # Dana loses the organization
        env.asana._t("users")[dana]["workspaces"] = [env.workspace("Personal Projects")]
    env.pd.mark_won(env.deal("Nordwind GmbH - 40")["id"])
    env.settle()
    [run] = env.runs()
    assert run.status == "failed" and "403" in run.error and "lacks permission" in run.error
    assert len(smtp.wait_for(1)) == 1

    with env.services.db.begin() as s:
        s.execute(update(Rule).where(Rule.id == rule["id"]).values(version=Rule.version + 1))
    from hub.oauth import installs
    installs.disconnect(env.services, env.asana_id, "12400001")
    env.pd.mark_won(env.deal("Parnu Logistics - fleet")["id"])
    env.settle()
    second = env.runs()[1]
    assert second.status == "failed" and "was disconnected" in second.error
    assert len(smtp.wait_for(2)) == 2                                    # a new rule version: told again


def test_deactivated_and_draft_rules_do_nothing(env):
    rule = env.rule(carry={"attachments": False})
    from hub.rules import service
    service.set_status(env.services, env.iid, rule["id"], "draft", "12400001")
    env.pd.mark_won(env.deal("Nordwind GmbH - 40")["id"])
    env.settle()
    assert env.runs() == [] and env.tasks() == []


def test_jobs_are_ordered_per_deal(env):
    env.rule(name="moved", trigger="deal.stage_changed", stage_id=env.stage("Proposal made"),
             carry={"attachments": False}, name_template="{{ deal.title }} reached proposal")
    env.rule(carry={"attachments": False})
    lumo = env.deal("Lumo Oy - pilot")
    env.pd.move_stage(lumo["id"], int(env.stage("Proposal made")))
    env.pd.mark_won(lumo["id"])
    assert env.pd.flush(15)
    worker = Worker(env.services.queue, app=env.hub.app, worker_id="ordered")
    worker.drain()
    with env.services.db.begin() as s:
        jobs = s.scalars(select(Job).where(Job.kind == engine.JOB_KIND).order_by(Job.id)).all()
        runs = s.scalars(select(RuleRun).order_by(RuleRun.id)).all()
    assert {j.ordering_key for j in jobs} == {f"rules:{env.iid}:deal:{lumo['id']}"}
    assert [r.status for r in runs] == ["done", "done"]
    assert [t["name"] for t in env.tasks()] == ["Lumo Oy - pilot for support team reached proposal",
                                                "Onboard Lumo Oy - pilot for support team"]
