"""The README, step by step, by a person in Debian's Chromium (Playwright; no downloaded browser):

1. install from the marketplace (the sandbox CRM's two screens, then the hub's confirmation),
2. connect Asana and Google Contacts, set up the contact sync and run it,
3. play the CRM user on the sandbox Pipedrive page, by clicking only: create a deal, move it, win
   it, lose another, add a lead, edit a person; then find what landed on the sandbox Asana and
   Google pages, and the events in the hub's run log.

Rules are the one thing not clicked here (their editor is tested in tests/rules/test_browser.py):
the admin's four rules are made with the same helper the rule tests use. The walk runs at a desktop
width (1280 px) and a phone's (390 px); no page may scroll sideways at either. Screenshots of every
step go to test-artifacts/readme-<width>-<step>.png."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from hub.rules.catalogs import CACHE
from hub.store import Connection
from tests.rules.conftest import SCALE, Env

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


class Walk:
    """One person's browser tab, with the hub behind it."""

    def __init__(self, hub, page, width: int):
        self.hub, self.page, self.width = hub, page, width
        self.shots: list[str] = []

    def shot(self, name: str) -> None:
        """A screenshot of the page, which must not scroll sideways at this width (its tables may,
        inside their box)."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"readme-{self.width}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path.name)
        wide = self.page.evaluate("document.documentElement.scrollWidth")
        assert wide <= self.width, f"{name}: {self.page.url} is {wide} px wide at {self.width} px"

    def settle(self) -> None:
        """What the CRM sent is delivered and every job due has run (webhooks, rules, syncs)."""
        for _ in range(3):
            assert self.hub.emulator("pipedrive").flush(15), "the sandbox did not finish delivering"
            if not self.hub.run_jobs():
                return

    def text(self, selector: str = "body") -> str:
        return " ".join(self.page.locator(selector).first.inner_text().split())


@pytest.fixture(params=[1280, 390], ids=["desktop", "phone"])
def walk(request, make_live_hub, browser):
    CACHE.clear()
    hub = make_live_hub(**SCALE)
    context = browser.new_context(viewport={"width": request.param, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield Walk(hub, page, request.param)
    context.close()
    CACHE.clear()


def test_the_readme_by_clicking(walk):
    page, hub = walk.page, walk.hub

    # 1. install from the marketplace
    page.goto(hub.url + "/")
    walk.shot("01-home")
    page.get_by_role("link", name="Install from the Pipedrive Marketplace").click()
    page.get_by_label("All users (you + all users, also users who join later)").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Allow and install").click()
    page.wait_for_url("**/visibility?setup=1")
    iid = int(re.search(r"/i/(\d+)/", page.url).group(1))
    walk.shot("02-who-may-use-it")
    assert page.get_by_label("All users of the company").is_checked()    # as chosen on the CRM's screen
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/setup/connect")
    walk.settle()                                       # the hub registers its webhooks at the CRM

    # 2. connect Asana and Google Contacts
    walk.shot("03-connect")
    page.get_by_role("button", name="Connect Asana").click()
    page.get_by_label("Signed in as").select_option(label="Dana Whitfield <dana.whitfield@acme.example>")
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url("**/setup/connect")                # the wizard goes on to the next account
    assert walk.text("[role=status]") == "Asana connected."
    assert walk.text("[aria-current=step]") == "4. Connect Google Contacts"
    page.get_by_role("button", name="Connect Google Contacts").click()
    page.get_by_label("Anna Schmidt <anna@sandbox.example>").check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/setup/connect")
    walk.shot("04-connected")
    page.get_by_role("link", name="Done: continue to the settings page").click()
    walk.shot("05-settings")
    connections = walk.text("#connections")
    assert "Asana · Dana Whitfield" in connections and "anna@sandbox.example" in connections

    # the admin's rules (made in the rule editor in real life; see the module's docstring)
    with hub.services.db.begin() as s:
        asana_id = s.scalar(select(Connection.id).where(Connection.installation_id == iid,
                                                        Connection.provider == "asana"))
    env = Env(hub, None, iid, asana_id)
    env.rule(name="Hand off won deals")
    env.rule(name="Negotiations", trigger="deal.stage_changed", stage_id=env.stage("Negotiations started"),
             name_template="Negotiate {{ deal.title }}", description_template="", carry={"attachments": False})
    env.rule(name="Lost deals", trigger="deal.lost", name_template="Lost: {{ deal.title }} ({{ deal.lost_reason }})",
             description_template="", carry={"attachments": False, "notes": False})
    env.rule(name="New leads", trigger="lead.added", name_template="Call {{ lead.title }}",
             description_template="", carry={"attachments": False, "notes": False})

    # the contact sync, set up on its page and run once
    page.get_by_role("link", name="Set up contact sync").click()
    page.get_by_label("Name", exact=True).fill("Team contacts")
    page.get_by_label("New label's name").fill("Acme CRM")
    walk.shot("06-new-sync")
    page.get_by_role("button", name="Create sync").click()
    assert "Sync “Team contacts” created with label “Acme CRM”" in walk.text("[role=status]")
    page.get_by_role("button", name="Sync now").click()
    assert "A run is waiting to start" in walk.text("#run")
    walk.settle()                                       # the worker runs it; the page follows, no reload
    page.locator("#run-progress b", has_text="done").wait_for()
    progress = walk.text("#run-progress")
    assert "Run 1 (started by hand): done · created in Google Contacts 3" in progress
    assert ("Reading Pipedrive persons 3/3 Reading the label in Google Contacts 5/5 "
            "Creating contacts in Google Contacts 3/3") in progress
    assert page.locator("#run-finished").is_visible() and not page.locator("#run-waiting").is_visible()
    walk.shot("07-sync-done")

    # 3. play the CRM user on the sandbox's Pipedrive page
    page.goto(f"{hub.url}/i/{iid}/settings")
    page.get_by_role("link", name="Sandbox").first.click()
    walk.shot("07b-sandbox")
    page.get_by_role("link", name="Pipedrive").first.click()
    walk.shot("08-crm-deals")
    page.get_by_label("Title").fill("Kask & Sons - warehouse")
    page.get_by_label("Stage").select_option(label="Sales › Qualified")
    page.get_by_label("Value").fill("4200")
    page.get_by_label("Person").select_option(label="Tonis Kask")
    page.get_by_label("Organization").select_option(label="Parnu Logistics")
    page.get_by_role("button", name="Add deal").click()
    assert "Deal created" in walk.text(".msg")
    page.get_by_label("Move to stage").select_option(label="Sales › Negotiations started")
    page.get_by_role("button", name="Move").click()
    assert "Stage changed" in walk.text(".msg")
    page.get_by_role("button", name="Won", exact=True).click()
    assert "(won)" in walk.text("h2")
    walk.shot("09-crm-deal-won")

    page.get_by_role("link", name="Deals").click()
    page.get_by_role("link", name="Parnu Logistics - fleet tracking").click()
    page.get_by_placeholder("Lost reason").fill("No budget")
    page.get_by_role("button", name="Lost", exact=True).click()
    assert "(lost)" in walk.text("h2")

    page.get_by_role("link", name="Leads").click()
    page.get_by_label("Title").fill("Inbound: Lumo support desk")
    page.get_by_role("button", name="Add lead").click()             # forgot whose lead it is
    assert "choose one of them" in walk.text("[role=alert]")
    page.get_by_role("link", name="Back to the form").click()
    page.get_by_label("Title").fill("Inbound: Lumo support desk")
    page.get_by_label("Person").select_option(label="Aino Laine")
    page.get_by_label("Value").fill("1500")
    page.get_by_role("button", name="Add lead").click()
    assert "Lead added" in walk.text(".msg")
    walk.shot("10-crm-lead")

    page.get_by_role("link", name="Persons").click()
    aino = page.locator("form", has=page.locator("input[name=name][value='Aino Laine']"))
    aino.locator("textarea[name=phones]").fill("work: +358 40 555 0101*\nmobile: +358 50 555 0199")
    aino.get_by_role("button", name="Save").click()
    assert "Person saved" in walk.text(".msg")
    walk.shot("11-crm-person")
    walk.settle()

    # what landed in Asana
    page.get_by_role("link", name="Asana").first.click()
    page.get_by_role("link", name="Won deals – onboarding").click()
    walk.shot("12-asana-project")
    tasks = walk.text("table")
    for name in ("Onboard Kask & Sons - warehouse", "Negotiate Kask & Sons - warehouse",
                 "Lost: Parnu Logistics - fleet tracking (No budget)", "Call Inbound: Lumo support desk"):
        assert name in tasks, name
    page.get_by_role("link", name="Onboard Kask & Sons - warehouse").click()
    assert "4,200 EUR" in walk.text(".notes") and "Tonis Kask" in walk.text(".notes")
    walk.shot("13-asana-task")

    # and in Google Contacts: the new phone, the organization kept
    page.get_by_role("link", name="Google Contacts").first.click()
    page.get_by_role("link", name="Anna Schmidt").click()
    row = page.locator("tr", has=page.get_by_role("link", name="Aino Laine"))
    assert "+358 50 555 0199" in " ".join(row.inner_text().split()) and "Lumo Oy" in row.inner_text()
    walk.shot("14-google-contacts")

    # the hub's run log shows the events
    page.get_by_role("link", name="Relay Hub").first.click()
    page.get_by_role("link", name="Open the run log").click()
    walk.shot("15-run-log")
    log = walk.text("main")
    for kind in ("Deal won", "Deal lost", "Lead added"):       # the events the rules are about, in words
        assert kind in log, kind
    assert "Person updated" not in log                          # no rule is about it: hidden until asked
    page.get_by_role("link", name="Show all events").first.click()
    walk.shot("16-run-log-all")
    assert "Person updated" in walk.text("main")
