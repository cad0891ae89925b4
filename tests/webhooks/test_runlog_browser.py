"""The run log in Debian's Chromium at phone width (390 px) and desktop width: nothing of the log
spills out of its cards (wide tables scroll inside their box), the filters fit, and an admin
filters, opens an event and replays it by clicking. Screenshots go to test-artifacts/."""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.rules.conftest import make_env  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# every element of the run log that sticks out of the viewport (a table inside a scrolling box
# may be wider than the box: that is what the box is for)
SPILLS = """() => [...document.querySelectorAll('.runlog *')].filter(el => {
    if (el.closest('.scroll') && el.closest('.scroll') !== el) return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && (r.right > window.innerWidth + 0.5 || r.left < -0.5);
}).map(el => el.tagName + '.' + el.className + ': ' + (el.textContent || '').trim().slice(0, 40))"""


@pytest.fixture
def tabs(make_env):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    env = make_env()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        host = urlsplit(env.hub.url).hostname
        cookies = [{"name": c.name, "value": c.value, "domain": host, "path": c.path or "/"} for c in env.browser.cookies]
        pages = {}
        for width, height in ((390, 844), (1280, 900)):
            context = browser.new_context(viewport={"width": width, "height": height})
            context.add_cookies(cookies)
            pages[width] = context.new_page()
            pages[width].set_default_timeout(15000)
        yield env, pages
        browser.close()


def test_run_log_at_phone_width(tabs):
    env, pages = tabs
    ARTIFACTS.mkdir(exist_ok=True)
    env.rule(name="Hand off won deals to the onboarding team")
    deal = env.deal("Nordwind GmbH - 40")
    env.pd.mark_won(deal["id"])
    env.settle()

    for width, page in pages.items():
        page.goto(f"{env.hub.url}/i/{env.iid}/events")
        assert page.evaluate(SPILLS) == [], width
        page.screenshot(path=str(ARTIFACTS / f"runlog-{width}.png"), full_page=True)
    phone = pages[390]
    box = phone.locator("#events .scroll")
    assert box.evaluate("el => getComputedStyle(el).overflowX") == "auto"
    assert box.evaluate("el => el.scrollWidth > el.clientWidth")     # the table scrolls inside its box

    # filter by clicking: search, outcome; then open the event and replay it
    phone.get_by_label("Object id or title").fill("nordwind")
    phone.get_by_label("Outcome").select_option(label="Done")
    phone.get_by_role("button", name="Show").click()
    phone.wait_for_load_state()
    assert phone.locator("tr.event").count() == 1
    phone.get_by_role("link", name="Deal won").click()
    phone.wait_for_url("**/events/*")
    assert phone.evaluate(SPILLS) == []
    phone.screenshot(path=str(ARTIFACTS / "runlog-event-390.png"), full_page=True)
    phone.get_by_role("button", name="Replay this event").click()
    phone.wait_for_load_state()
    assert "replayed" in phone.get_by_role("status").inner_text()
    env.settle()
    assert len(env.tasks("Won deals – onboarding")) == 1
