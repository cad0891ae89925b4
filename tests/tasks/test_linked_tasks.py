"""Linked tasks' lifecycle with the Example CRM: the status mirror from the CRM's task events and
from the scheduled check (overdue as the hub's clock passes the deadline, gone when the task was
deleted), closing a deal or a lead completes its open tasks once (a task under review goes to
review), each closing setting switched off, the board's latest status, and access."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from hub.connectors.contract.webhooks import CrmEvent
from hub.events import record
from hub.oauth.web_sessions import open_session
from hub.rules import service
from hub.store import Installation, InstallationUser, RunLog, utcnow
from hub.store.models import RuleLink, TaskStatus
from hub.tasks import check
from hub.webhooks.reconcile import reconcile_installation

from .conftest import ACCOUNT, JSON


def rule_on_stage(setup, *steps) -> dict:
    """When a deal moves to the second stage, the steps run."""
    return service.create(setup.services, setup.iid, {
        "name": "Stage tasks", "trigger": "deal.stage_changed", "stage_id": str(setup.stages[1]["id"]),
        "status": "active", "steps": list(steps)}, "admin")


def move(setup, deal_id: int, **values) -> None:
    setup.crm.update_deal(ACCOUNT, deal_id, values)
    setup.deliver()


def mirror(setup) -> dict[str, TaskStatus]:
    """external id -> its status row."""
    with setup.services.db.begin() as s:
        rows = s.execute(select(RuleLink.external_id, TaskStatus).join(TaskStatus, TaskStatus.link_id == RuleLink.id))
        out = {ext: row for ext, row in rows}
        for row in out.values():
            s.expunge(row)
    return out


def traces(setup, step: str) -> list[str]:
    with setup.services.db.begin() as s:
        return list(s.scalars(select(RunLog.message).where(RunLog.installation_id == setup.iid, RunLog.step == step)
                              .order_by(RunLog.id)))


def card(setup, deal_id) -> dict:
    board = setup.api("GET", "board")
    assert board.status_code == 200, board.text
    return next(c for col in board.json()["columns"] for c in col["cards"] if c["id"] == str(deal_id))


def made_tasks(setup, deal_id) -> list[dict]:
    return [t for t in setup.crm.tasks(ACCOUNT) if t["deal_id"] == deal_id]


def test_events_and_the_check_keep_the_status_and_the_board_shows_the_latest(setup):
    step = setup.step("Call {{ deal.title }}")
    rule_on_stage(setup, {**step, "due_in_days": 1}, setup.step("Send offer"))
    deal = setup.crm.deals(ACCOUNT)[0]
    move(setup, deal["id"], stage_id=setup.stages[1]["id"])
    first, second = made_tasks(setup, deal["id"])
    rows = mirror(setup)
    assert rows[str(first["id"])].status == rows[str(second["id"])].status == "open"
    assert rows[str(first["id"])].deadline and rows[str(second["id"])].deadline == ""

    # the CRM's task event: the second task completed there
    setup.clock.advance(minutes=5)
    setup.crm.complete_task(ACCOUNT, second["id"])
    setup.deliver()
    assert mirror(setup)[str(second["id"])].status == "completed"
    shown = card(setup, deal["id"])
    assert shown["stage"] == setup.stages[1]["name"]
    assert shown["tasks"]["count"] == 2 and shown["tasks"]["latest"]["status"] == "completed"
    assert shown["tasks"]["latest"]["name"] == "Send offer"

    # two days later the check finds the first one overdue: now it is the latest change
    setup.clock.advance(days=2)
    assert card(setup, deal["id"])["tasks"]["latest"]["status"] == "overdue"   # the board knows at once
    counts = check.check_installation(setup.services, setup.iid)
    assert counts["read"] == 1 and counts["overdue"] == 1          # the completed one is not read again
    assert mirror(setup)[str(first["id"])].status == "overdue"
    shown = card(setup, deal["id"])
    assert shown["tasks"]["latest"]["status"] == "overdue" and shown["tasks"]["overdue"] == 1

    # deleted in the CRM: gone, shown so, and never read again
    setup.crm.delete_task(ACCOUNT, first["id"])
    assert check.check_installation(setup.services, setup.iid)["gone"] == 1
    assert mirror(setup)[str(first["id"])].gone
    assert check.check_installation(setup.services, setup.iid)["read"] == 0
    assert card(setup, deal["id"])["tasks"]["gone"] == 1
    page = setup.admin.get(f"/i/{setup.iid}/board")
    assert page.status_code == 200 and "Gone (deleted or no access)" in page.text and deal["title"] in page.text


def test_the_scheduled_check_runs_through_the_queue(setup):
    rule_on_stage(setup, {**setup.step("Call"), "due_in_days": 0})
    deal = setup.crm.deals(ACCOUNT)[0]
    move(setup, deal["id"], stage_id=setup.stages[1]["id"])
    setup.clock.advance(days=1, seconds=1)
    with setup.services.db.begin() as s:
        setup.services.queue.enqueue(s, "tasks.check_all", {"slot": 1}, installation_id=None)
    setup.hub.run_jobs()
    [row] = mirror(setup).values()
    assert row.status == "overdue" and row.checked_at is not None
    assert any("1 overdue" in m for m in traces(setup, "tasks.checked"))


def test_a_won_deal_completes_its_open_tasks_once_and_a_reviewed_one_goes_to_review(setup):
    rule_on_stage(setup, setup.step("Plain"), setup.step("Reviewed", review=True))
    deal = setup.crm.deals(ACCOUNT)[0]
    move(setup, deal["id"], stage_id=setup.stages[1]["id"])
    plain, reviewed = made_tasks(setup, deal["id"])

    setup.crm.update_deal(ACCOUNT, deal["id"], {"status": "won"})
    deliveries = setup.crm.deliveries()
    setup.crm.flush()
    assert setup.crm.redeliver(deliveries[-1]["id"]) == 200         # the same delivery again
    setup.hub.run_jobs()
    assert setup.crm.redeliver(deliveries[-1]["id"]) == 200         # and once more after the work was done
    setup.hub.run_jobs()
    by_id = {t["id"]: t for t in setup.crm.tasks(ACCOUNT)}
    assert by_id[plain["id"]]["status"] == "completed"
    assert by_id[reviewed["id"]]["status"] == "awaiting_review"     # under review, not completed
    assert len(traces(setup, "tasks.closed")) == 2                  # once each
    rows = mirror(setup)
    assert rows[str(reviewed["id"])].status == "awaiting_review"
    assert card(setup, deal["id"])["tasks"]["open"] == 1            # under review still counts as open

    # lost after reopening: the task under review is not sent again, nothing is completed twice
    setup.crm.update_deal(ACCOUNT, deal["id"], {"status": "open"})
    setup.crm.update_deal(ACCOUNT, deal["id"], {"status": "lost"})
    setup.deliver()
    assert len(traces(setup, "tasks.closed")) == 2
    # the reviewer approves in the CRM: its event completes the mirror
    setup.crm.approve_task(ACCOUNT, reviewed["id"])
    setup.deliver()
    assert mirror(setup)[str(reviewed["id"])].status == "completed"


def test_a_deal_won_while_its_delivery_was_lost_is_closed_by_the_reconciliation_once(setup):
    rule_on_stage(setup, setup.step("Plain"))
    deal = setup.crm.deals(ACCOUNT)[0]
    move(setup, deal["id"], stage_id=setup.stages[1]["id"])
    reconcile_installation(setup.services, setup.iid)                # the poll's baseline
    setup.crm.update_deal(ACCOUNT, deal["id"], {"status": "won"})    # the hub is down: nothing arrives
    late = setup.crm.deliveries()[-1]
    reconcile_installation(setup.services, setup.iid)                # back up: the poll finds the win
    setup.hub.run_jobs()
    assert [t["status"] for t in made_tasks(setup, deal["id"])] == ["completed"]
    setup.crm.flush()                                                # the delivery comes after all
    assert setup.crm.redeliver(late["id"]) == 200
    setup.hub.run_jobs()
    assert len(traces(setup, "tasks.closed")) == 1


def test_the_deal_setting_switched_off_leaves_the_tasks_open(setup):
    rule_on_stage(setup, setup.step("Plain"))
    deal = setup.crm.deals(ACCOUNT)[0]
    move(setup, deal["id"], stage_id=setup.stages[1]["id"])
    changed = setup.api("PATCH", "tasks/settings", json={"close_deal_tasks": False})
    assert changed.status_code == 200 and changed.json() == {"close_deal_tasks": False, "close_lead_tasks": True}
    assert setup.api("PATCH", "tasks/settings", json={"close_deal_tasks": "no"}).json()["fields"] == {
        "close_deal_tasks": "true or false"}
    assert setup.api("PATCH", "tasks/settings", json={"other": True}).status_code == 400
    move(setup, deal["id"], status="won")
    assert [t["status"] for t in made_tasks(setup, deal["id"])] == ["open"]
    assert any("turned off" in m for m in traces(setup, "tasks.close_off"))
    assert traces(setup, "tasks.closed") == []


def _lead_with_task(setup, lead_id: str) -> dict:
    """A lead's task the hub linked (the Example CRM has no leads: the link is written as a step would)."""
    task = setup.crm.create_task(ACCOUNT, {"title": f"Qualify {lead_id}"})
    with setup.services.db.begin() as s:
        s.add(RuleLink(installation_id=setup.iid, rule_id=0, run_id=-int(lead_id), step_uid="1", object_type="lead",
                       object_id=lead_id, connector="example", connection_id=setup.connection_id, made="task",
                       external_id=str(task["id"]), name=task["title"], status="open", created_at=utcnow()))
    return task


def _lead_converted(setup, lead_id: str) -> None:
    with setup.services.db.begin() as s:
        record(setup.services, s, setup.iid, CrmEvent(kind="lead.converted", object_type="lead", object_id=lead_id,
                                                      event_id=f"conv-{lead_id}", occurred_at=datetime(2026, 3, 1),
                                                      current={"id": lead_id, "status": "converted"}, previous=None),
               source="test")
    setup.hub.run_jobs()


def test_a_converted_lead_completes_its_tasks_unless_its_setting_is_off(setup):
    on = _lead_with_task(setup, "71")
    _lead_converted(setup, "71")
    _lead_converted(setup, "71")                                   # the same occurrence again: nothing more
    assert setup.crm.task(ACCOUNT, on["id"])["status"] == "completed"
    assert len(traces(setup, "tasks.closed")) == 1

    assert setup.api("PATCH", "tasks/settings", json={"close_lead_tasks": False}).status_code == 200
    off = _lead_with_task(setup, "72")
    _lead_converted(setup, "72")
    assert setup.crm.task(ACCOUNT, off["id"])["status"] == "open"
    assert len(traces(setup, "tasks.closed")) == 1
    page = setup.admin.get(f"/i/{setup.iid}/settings")
    assert 'name="close_lead_tasks" >' in page.text or 'name="close_lead_tasks">' in page.text


def test_the_settings_form_is_for_admins_and_the_board_for_members_of_the_installation(setup):
    token = setup.admin.csrf(f"/i/{setup.iid}/settings")
    saved = setup.admin.form_post(f"/i/{setup.iid}/tasks/settings", {"close_lead_tasks": "on"},
                                  csrf_from=f"/i/{setup.iid}/settings")
    assert saved.status_code == 200 and token
    assert setup.api("GET", "tasks/settings").json() == {"close_deal_tasks": False, "close_lead_tasks": True}

    services, app = setup.services, setup.hub.app
    with services.db.begin() as s:
        other = Installation(provider="example", company_id="other-co", company_name="Other", installer_user_id="9",
                             endpoint_token="other-token", visibility="only_me")
        s.add(other)
        s.flush()
        s.add(InstallationUser(installation_id=setup.iid, crm_user_id="555", name="Eve"))
        other_id = other.id

    def browser(installation_id: int, user_id: str):
        client = app.test_client()
        with services.db.begin() as s:
            sid = open_session(s, installation_id, user_id, services.queue.clock.now(), app.permanent_session_lifetime)
        with client.session_transaction() as sess:
            sess["user"] = {"installation_id": installation_id, "crm_user_id": user_id, "name": "Eve"}
            sess["sid"] = sid
        return client

    stranger = browser(other_id, "9")              # another company's installer
    for path in (f"/i/{setup.iid}/board", f"/api/v1/installations/{setup.iid}/board",
                 f"/api/v1/installations/{setup.iid}/tasks/settings"):
        answer = stranger.get(path, headers=JSON)
        assert answer.status_code == 404 and "Acme" not in answer.get_data(as_text=True)
    left_out = browser(setup.iid, "555")           # a member the installation does not admit (only me)
    assert left_out.get(f"/api/v1/installations/{setup.iid}/board", headers=JSON).status_code == 403
    assert setup.hub.browser().get(f"/api/v1/installations/{setup.iid}/board", headers=JSON).status_code == 401
