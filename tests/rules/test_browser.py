"""A person in Debian's Chromium (Playwright): create "Hand off won deals" from its template, add,
move and remove steps, pick from the dropdowns, activate, mark the deal won on the sandbox CRM
page, then see the task in the
sandbox Asana view and the run in the rule's run log. Screenshots go to test-artifacts/."""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def page(env):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        context = browser.new_context(viewport={"width": 1200, "height": 1000})
        host = urlsplit(env.hub.url).hostname
        # the admin who installed (tests/rules/conftest.py) continues in the real browser
        context.add_cookies([{"name": c.name, "value": c.value, "domain": host, "path": c.path or "/"}
                             for c in env.browser.cookies])
        tab = context.new_page()
        tab.set_default_timeout(15000)
        yield tab
        context.close()
        browser.close()


def test_hand_off_won_deals_in_a_real_browser(env, page):
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{env.hub.url}/i/{env.iid}/settings")
    page.get_by_role("link", name="Open the rules").click()
    page.get_by_role("button", name="Create: Hand off won deals").click()
    page.wait_for_url("**/rules/*")
    assert "Draft “Hand off won deals” created" in page.content()

    # the step list: add a wait and an e-mail, move the e-mail up, remove the wait
    page.get_by_label("Add a step").select_option(label="Wait")
    page.get_by_role("button", name="Add step").click()
    page.get_by_label("Add a step").select_option(label="Send an e-mail")
    page.get_by_role("button", name="Add step").click()
    kinds = lambda: [e.get_attribute("data-kind") for e in page.locator("fieldset.step").all()]   # noqa: E731
    assert kinds() == ["asana.task", "wait", "email"]
    page.get_by_role("button", name="Move step 3 up").click()
    page.get_by_role("button", name="Remove step 3").click()
    assert kinds() == ["asana.task", "email"]
    page.get_by_role("button", name="Remove step 2").click()
    assert page.locator("fieldset.step").count() == 1

    page.get_by_label("Pipeline").select_option(label="Sales")
    page.get_by_label("Workspace").select_option(label="Acme Sandbox Org")
    page.get_by_label("Project").select_option(label="Won deals – onboarding")
    page.get_by_label("Assignee").select_option(label="Luis Ortega <luis.ortega@acme.example>")
    page.get_by_role("button", name="Save and activate").click()
    page.wait_for_load_state()
    assert "Rule saved and active" in page.content()
    page.screenshot(path=str(ARTIFACTS / "rules-editor-active.png"), full_page=True)
    rule_url = page.url

    deal = env.deal("Nordwind GmbH - 40")
    page.goto(f"{env.hub.url}/sandbox/pipedrive/_sandbox/ui/deals/{deal['id']}")
    page.get_by_role("button", name="Won", exact=True).click()
    page.wait_for_load_state()
    assert "(won)" in page.content()
    env.settle()                                        # webhook -> ingest -> rule -> Asana

    page.goto(f"{env.hub.url}/sandbox/asana/_sandbox/ui/")
    page.get_by_role("link", name="Won deals – onboarding").click()
    page.get_by_role("link", name="Onboard Nordwind GmbH - 40 seats renewal").click()
    body = page.content()
    assert "18,400 EUR" in body and "Katrin Vogel" in body and "nordwind-quote.pdf" in body
    page.screenshot(path=str(ARTIFACTS / "rules-asana-task.png"), full_page=True)

    page.goto(rule_url)
    page.get_by_role("link", name="Run log").click()
    run = page.locator("tr.run").first
    assert run.get_attribute("data-status") == "done"
    assert "Onboard Nordwind GmbH - 40 seats renewal" in run.inner_text()
    page.screenshot(path=str(ARTIFACTS / "rules-run-log.png"), full_page=True)
