"""A person clicks through the marketplace install in Debian's Chromium: install -> specific users
-> connect Asana -> settings page (Playwright drives the browser; no downloaded browser)."""
from __future__ import annotations

import pytest

from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.browser
VIEWPORT = (1200, 900)


def test_install_specific_users_connect_asana_settings(live_hub, page):
    page.goto(live_hub.url + "/")
    page.get_by_role("link", name="Install from the Pipedrive Marketplace").click()

    # the provider's step 1: who may use the app
    page.get_by_label("Specific users (you +):").check()
    page.get_by_label("Ben Seller").check()
    page.get_by_label("Notify users via email").check()
    page.get_by_role("button", name="Continue").click()
    # step 2: the scopes
    page.get_by_role("button", name="Allow and install").click()

    # the hub: confirm who may use it (seeded from the provider's sharing signal)
    page.wait_for_url("**/visibility?setup=1")
    assert "Who may use Relay Hub at Acme Sandbox?" in page.content()
    page.get_by_label("Specific users").check()
    page.get_by_label("Ben Seller").check()
    page.get_by_role("button", name="Continue").click()

    # connect the target account
    page.wait_for_url("**/setup/connect")
    page.get_by_role("button", name="Connect Asana").click()
    page.get_by_label("Signed in as").select_option(label="Dana Whitfield <dana.whitfield@acme.example>")
    page.get_by_role("button", name="Allow").click()

    # back in the wizard, which goes on to the next account; skipped here
    page.wait_for_url("**/setup/connect")
    assert page.get_by_role("status").inner_text() == "Asana connected."
    page.get_by_role("link", name="Skip for now: go to the settings page").click()
    page.wait_for_url("**/settings")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "settings-after-install.png"), full_page=True)
    assert "Asana · Dana Whitfield" in page.locator("#connections").inner_text()
    assert " ".join(page.locator("#access p").inner_text().split()) == "Ada Admin and these users: Ben Seller."
