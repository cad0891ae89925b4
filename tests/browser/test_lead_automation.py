"""An admin installs the HubSpot app from the sandbox, switches on "move a lead forward when a user
reaches out" on the hub's lead automation page, and plays the HubSpot user on the sandbox page: an
e-mail logged moves the lead; moved back by hand, it stays put; switched back on from its trace, it
moves again (Debian's Chromium through Playwright; webhooks delivered and jobs run between steps)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.store import HubEvent
from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def test_configure_lead_automation_and_play_it_on_the_sandbox(live_hub, page):
    hub = live_hub
    sb = hub.emulator("hubspot")
    portal = sb.portals()[0]["hub_id"]

    def settle():
        sb.deliver_pending(force=True)
        hub.run_jobs()
        sb.deliver_pending(force=True)
        hub.run_jobs()

    # install: HubSpot's account chooser, then the hub's "who may use it"
    page.goto(hub.url + "/install/hubspot")
    page.get_by_role("button", name="Connect app").click()
    page.wait_for_url("**/visibility?setup=1")
    page.get_by_label("Only me").check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state()
    installation = page.url.split("/i/")[1].split("/")[0]
    hub.run_jobs()

    # the lead automation page, from the settings page
    page.goto(f"{hub.url}/i/{installation}/settings")
    page.get_by_role("link", name="Lead automation").click()
    page.wait_for_url("**/automation")
    card = page.locator("section.entry", has=page.get_by_role("heading", name="Lead pipeline", exact=True))
    outreach = card.locator('[data-preset="advance-lead-on-outreach"]')
    outreach.get_by_label("Move a lead forward when a user reaches out").check()
    outreach.get_by_label("From stage").select_option(label="Attempting")
    outreach.get_by_label("To stage").select_option(label="Connected")
    outreach.get_by_label("Which activities count").select_option(label=["E-mail logged", "Call logged"])
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/automation")
    assert "Move a lead forward when a user reaches out (Lead pipeline): switched on" in page.get_by_role(
        "status").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "lead-automation-1280.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.screenshot(path=str(ARTIFACTS / "lead-automation-390.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1280, "height": 900})

    # the HubSpot user logs an e-mail to Thomas: his open lead moves from Attempting to Connected
    thomas = next(c for c in sb.records(portal, "contacts") if c["properties"]["firstname"] == "Thomas")
    (lead_id,) = sb.open_leads(portal, thomas["id"])
    stage = lambda: sb.value(portal, "leads", lead_id, "hs_pipeline_stage")   # noqa: E731
    page.goto(hub.url + "/sandbox/hubspot/_sandbox/ui/")
    row = page.locator("tr", has_text="Thomas Hardy").first
    row.get_by_label("Activity").select_option("outreach:email")
    row.get_by_role("button", name="Log").click()
    settle()
    assert stage() == "connected-stage-id"

    # a person moves it back by hand; the next e-mail leaves it where the person put it
    page.goto(hub.url + "/sandbox/hubspot/_sandbox/ui/")
    lead_row = page.locator("tr", has_text="Thomas Hardy - new business").first
    lead_row.get_by_label("Lead stage").select_option("attempting-stage-id")
    lead_row.get_by_role("button", name="Move").click()
    settle()
    page.goto(hub.url + "/sandbox/hubspot/_sandbox/ui/")
    page.locator("tr", has_text="Thomas Hardy").first.get_by_label("Activity").select_option("outreach:email")
    page.locator("tr", has_text="Thomas Hardy").first.get_by_role("button", name="Log").click()
    settle()
    assert stage() == "attempting-stage-id"

    # the admin finds the lead's trace in the run log and switches auto-advance back on
    with hub.services.db.begin() as s:
        moved = s.scalar(select(HubEvent.id).where(HubEvent.kind == "lead.stage_changed",
                                                   HubEvent.object_id == str(lead_id)).order_by(HubEvent.id.desc()))
    page.goto(f"{hub.url}/i/{installation}/events/{moved}")
    assert "a person" in page.locator("#object-flags").inner_text()
    page.get_by_role("button", name="Switch auto-advance back on").click()
    assert "Auto-advance is on for lead" in page.get_by_role("status").inner_text()
    page.goto(hub.url + "/sandbox/hubspot/_sandbox/ui/")
    page.locator("tr", has_text="Thomas Hardy").first.get_by_label("Activity").select_option("outreach:call")
    page.locator("tr", has_text="Thomas Hardy").first.get_by_role("button", name="Log").click()
    settle()
    assert stage() == "connected-stage-id"
