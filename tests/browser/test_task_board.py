"""A person in Debian's Chromium (Playwright) with Pipedrive and Asana in the sandbox: a rule makes
an Asana task and a Pipedrive activity when a deal reaches "Proposal made"; the board shows the deal
in that stage with its tasks' latest status (the pipeline switcher too); the deal is won on the
sandbox CRM page, and the hub completes both tasks; the board says so. Screenshots at 1280 and
390 px go to test-artifacts/."""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from hub.rules import service
from hub.store import Connection, RunLog
from hub.webhooks.reconcile import reconcile_installation
from tests.rules.conftest import make_env  # noqa: F401  (the installed hub with Asana connected)
from tests.web.conftest import ADMIN

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def env(make_env):  # noqa: F811
    return make_env()


@pytest.fixture
def browser(env):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        contexts = []

        def open_tab(width: int):
            context = chromium.new_context(viewport={"width": width, "height": 900})
            host = urlsplit(env.hub.url).hostname
            context.add_cookies([{"name": c.name, "value": c.value, "domain": host, "path": c.path or "/"}
                                 for c in env.browser.cookies])
            contexts.append(context)
            tab = context.new_page()
            tab.set_default_timeout(15000)
            return tab
        yield open_tab
        for context in contexts:
            context.close()
        chromium.close()


def test_the_board_and_a_deal_closing(env, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    with env.services.db.begin() as s:
        crm_id = s.scalar(select(Connection.id).where(Connection.installation_id == env.iid,
                                                      Connection.role == "crm"))
    service.create(env.services, env.iid, {
        "name": "Proposal follow-up", "trigger": "deal.stage_changed", "pipeline_id": env.pipeline("Sales"),
        "stage_id": env.stage("Proposal made"), "status": "active",
        "steps": [{"kind": "asana.task", "connection_id": env.asana_id, "due_in_days": 3,
                   "settings": {"workspace_gid": env.workspace("Acme Sandbox Org"),
                                "project_gid": env.project("Won deals – onboarding")},
                   "templates": {"name": "Prepare the proposal call: {{ deal.title }}"}},
                  {"kind": "pipedrive.task", "connection_id": crm_id, "settings": {"type": "call"},
                   "templates": {"name": "Call about the proposal"}}]}, str(ADMIN))
    reconcile_installation(env.services, env.iid)        # the hub's baseline of every deal (the scheduled poll)
    deal = env.deal("Nordwind GmbH - 40")
    env.pd.move_stage(deal["id"], int(env.stage("Proposal made")), actor=ADMIN)
    env.settle()                                          # webhook -> rule -> Asana task + Pipedrive activity
    [task] = [t for t in env.tasks("Won deals – onboarding") if t["name"].startswith("Prepare the proposal")]

    page = browser(1280)
    page.goto(f"{env.hub.url}/i/{env.iid}/settings")
    assert page.get_by_label("When a deal is won or lost, complete its open linked tasks").is_checked()
    page.locator("#tasks").screenshot(path=str(ARTIFACTS / "task-settings-1280.png"))
    page.get_by_role("link", name="Open the board").click()
    page.wait_for_url("**/board")
    column = page.locator("section.col", has=page.get_by_role("heading", name="Proposal made"))
    card = column.locator("article.deal", has_text="Nordwind GmbH - 40 seats renewal")
    assert card.locator(".st").inner_text() == "Open"
    assert "+1 more" in card.inner_text()                 # two linked tasks: the latest shown, a count beside
    assert page.locator("section.col", has_text="Qualified").count() == 1
    page.screenshot(path=str(ARTIFACTS / "task-board-1280.png"), full_page=True)

    page.get_by_role("link", name="Renewals").click()      # the pipeline switcher
    assert page.locator("section.col h2").first.inner_text().startswith("Upcoming")
    assert "Nordwind GmbH - 40 seats renewal" not in page.locator("#board").inner_text()
    page.get_by_role("link", name="Sales").click()

    # the deal is won on the CRM's own page: the hub completes both tasks
    page.goto(f"{env.hub.url}/sandbox/pipedrive/_sandbox/ui/deals/{deal['id']}")
    page.get_by_role("button", name="Won", exact=True).click()
    page.wait_for_load_state()
    env.settle()
    env.settle()                                          # the closing job, and the activity's own echo
    assert next(t for t in env.tasks("Won deals – onboarding") if t["gid"] == task["gid"])["completed"] is True
    activities = [a for a in env.pd.data["pd_activities"].values() if a.get("deal_id") == deal["id"]
                  and a["subject"] == "Call about the proposal"]
    assert [a["done"] for a in activities] == [True]

    page.goto(f"{env.hub.url}/i/{env.iid}/board")
    card = page.locator("article.deal", has_text="Nordwind GmbH - 40 seats renewal")
    assert card.locator(".st").inner_text() == "Completed" and "won" in card.inner_text()
    with env.services.db.begin() as s:                    # the run log says what closing the deal did
        closed = list(s.scalars(select(RunLog.message).where(RunLog.step == "tasks.closed")))
    assert len(closed) == 2 and all(m.startswith(f"deal.won deal {deal['id']}:") for m in closed)

    phone = browser(390)
    phone.goto(f"{env.hub.url}/i/{env.iid}/board")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390   # nothing scrolls sideways
    phone.screenshot(path=str(ARTIFACTS / "task-board-390.png"), full_page=True)
    phone.goto(f"{env.hub.url}/i/{env.iid}/settings")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.locator("#tasks").screenshot(path=str(ARTIFACTS / "task-settings-390.png"))
