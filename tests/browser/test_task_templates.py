"""Task templates by clicking, in Debian's Chromium (Playwright): the admin installs, gives the type
Meeting read-only sharing, defines a template set of two tasks (a Meeting made 2 working days after,
an Email the next day: the default sharing, free/busy), makes it the post-sale set of the Sales
process for won deals, and wins a deal on the sandbox CRM's page. A colleague then looks at the
team calendar: the Meeting with its title, read-only; the Email only as "Busy". Both at 1280 and
390 px (no page scrolls sideways; screenshots in test-artifacts/tasks-<width>-<step>.png)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from hub.rules.catalogs import CACHE
from hub.store.models import HubTask
from tests.rules.conftest import SCALE
from tests.support.hubs import BEN

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def chromium():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


def shot(page, width: int, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"tasks-{width}-{name}.png"), full_page=True)
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= width, f"{name}: {page.url} is {wide} px wide at {width} px"


def settle(hub) -> None:
    for _ in range(3):
        assert hub.emulator("pipedrive").flush(15), "the sandbox did not finish delivering"
        if not hub.run_jobs():
            return


@pytest.mark.parametrize("width", [1280, 390], ids=["desktop", "phone"])
def test_a_post_sale_set_wins_a_deal_and_a_colleague_sees_the_calendar(make_live_hub, chromium, width):
    CACHE.clear()
    hub = make_live_hub(**SCALE)
    context = chromium.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)

    # the admin installs for all users
    page.goto(hub.url + "/")
    page.get_by_role("link", name="Install from the Pipedrive Marketplace").click()
    page.get_by_label("All users (you + all users, also users who join later)").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Allow and install").click()
    page.wait_for_url("**/visibility?setup=1")
    iid = int(re.search(r"/i/(\d+)/", page.url).group(1))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/setup/connect")
    settle(hub)

    # task settings: Meeting tasks are shared read-only
    page.goto(f"{hub.url}/i/{iid}/settings")
    page.get_by_role("link", name="Task settings and templates").click()
    page.get_by_label("Sharing of Meeting").select_option("read_only")
    page.locator("form", has=page.get_by_label("Name of type Meeting")).get_by_role("button", name="Save").click()
    assert "Saved." in page.get_by_role("status").inner_text()
    shot(page, width, "01-task-settings")

    # a template set of two tasks, one row at a time
    page.get_by_role("link", name="New template set").click()
    page.get_by_label("Set name").fill("After the win")
    page.get_by_label("Task 1 title").fill("Kick-off call {{ deal.title }}")
    page.get_by_label("Task 1 type").select_option(label="Meeting")
    page.get_by_label("Task 1 delay in days").fill("2")
    page.get_by_label("Task 1 time of day").fill("10:00")
    page.get_by_label("Task 1 made in").select_option(index=0)
    page.get_by_role("button", name="Save set").click()
    assert "Template set “After the win” saved." in page.get_by_role("status").inner_text()
    page.get_by_label("Task 2 title").fill("Thank-you e-mail to {{ person.name }}")
    page.get_by_label("Task 2 type").select_option(label="Email")
    page.get_by_label("Task 2 delay in days").fill("1")
    page.get_by_label("Task 2 day kind").select_option("calendar")
    page.get_by_label("Task 2 time of day").fill("16:00")
    page.get_by_role("button", name="Save set").click()
    assert page.get_by_label("Task 2 title").input_value() == "Thank-you e-mail to {{ person.name }}"
    # a bad delay is refused, naming the field; nothing changes
    page.get_by_label("Task 3 title").fill("Broken")
    page.get_by_label("Task 3 delay in days").fill("-4")
    page.get_by_role("button", name="Save set").click()
    assert "templates.2.delay_days" in page.get_by_role("alert").inner_text()
    shot(page, width, "02-template-set")

    # the set fires when a deal of Sales is won
    page.get_by_role("link", name="Task settings").click()
    page.get_by_label("Sales: set when won").select_option(label="After the win")
    page.get_by_role("button", name="Save post-sale sets").click()
    assert "Saved." in page.get_by_role("status").inner_text()

    # the CRM user wins a deal on the sandbox page
    page.get_by_role("link", name="Sandbox").first.click()
    page.get_by_role("link", name="Pipedrive").first.click()
    page.get_by_label("Title").fill("Kask & Sons - warehouse")
    page.get_by_label("Stage").select_option(label="Sales › Qualified")
    page.get_by_label("Person").select_option(label="Tonis Kask")
    page.get_by_role("button", name="Add deal").click()
    page.get_by_role("button", name="Won", exact=True).click()
    assert "(won)" in " ".join(page.locator("h2").first.inner_text().split())
    settle(hub)
    with hub.services.db.begin() as s:
        tasks = {t.title: t for t in s.scalars(select(HubTask))}
    assert sorted(tasks) == ["Kick-off call Kask & Sons - warehouse", "Thank-you e-mail to Tonis Kask"]
    meeting = tasks["Kick-off call Kask & Sons - warehouse"]
    assert meeting.due_at.weekday() < 5 and meeting.due_at.strftime("%H:%M") == "10:00"   # UTC is the zone

    # a colleague signs in and looks at the calendar of the week of the kick-off call
    colleague = hub.browser()
    landed = colleague.authorize_pipedrive("/login/pipedrive", user_id=BEN)
    assert landed.status_code == 200, landed.text[:300]
    ben = chromium.new_context(viewport={"width": width, "height": 900})
    ben.add_cookies([{"name": c.name, "value": c.value, "url": hub.url} for c in colleague.cookies])
    tab = ben.new_page()
    year, week, _ = meeting.due_at.isocalendar()
    tab.goto(f"{hub.url}/i/{iid}/tasks/calendar?week={year}-W{week:02d}")
    calendar = " ".join(tab.locator("main").inner_text().split())
    assert "Kick-off call Kask & Sons - warehouse" in calendar and "read-only" in calendar
    assert "Thank-you e-mail" not in calendar
    email = tasks["Thank-you e-mail to Tonis Kask"]
    if email.due_at.isocalendar()[:2] == (year, week):
        assert "Busy" in calendar
    assert tab.locator("input[name=due]").count() == 0          # nothing to edit for a read-only colleague
    shot(tab, width, "03-colleague-calendar")
    ben.close()
    context.close()
    CACHE.clear()
