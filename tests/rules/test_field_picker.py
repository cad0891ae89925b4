"""The editor's field picker (next to each template field: the fields of the chosen trigger's
object, inserted at the cursor) and the preview's recent-record picker (typed id as a fallback)."""
from __future__ import annotations

import html as htmllib
import os
import re
from urllib.parse import urlsplit

import pytest

from hub.rules.web import picker_fields
from tests.rules.test_pages import form_of
from tests.rules.test_browser import CHROMIUM, FLAGS


def pickers(page_html: str) -> dict[str, list[str]]:
    """{template field: the values its picker inserts}."""
    out = {}
    for into, body in re.findall(r'<select class="field-picker" data-into="([^"]+)"[^>]*>(.*?)</select>', page_html, re.S):
        out[into] = [htmllib.unescape(v) for v in re.findall(r'<option value="([^"]*)"', body) if v]
    return out


def test_picker_offers_the_trigger_objects_fields_under_its_name():
    catalog = {"fields": {"lead": [{"key": "title", "label": "Title"}, {"key": "9f3a", "label": "Tier"}]}}
    items = picker_fields(catalog)["lead"]
    assert items[:2] == [{"insert": "{{ lead.title }}", "label": "Title"}, {"insert": "{{ lead['9f3a'] }}", "label": "Tier"}]
    assert {"insert": "{{ person.email }}", "label": "Person: email"} in items
    assert not any("deal." in i["insert"] for i in items)


def test_each_template_field_has_a_picker_for_the_trigger(env):
    deal_rule = env.rule(status="draft")
    page = env.browser.get(f"/i/{env.iid}/rules/{deal_rule['id']}").text
    found = pickers(page)
    assert set(found) == {"step_0_tpl_name", "step_0_tpl_description"}
    assert "{{ deal.title }}" in found["step_0_tpl_name"] and "{{ deal.stage }}" in found["step_0_tpl_name"]
    assert any(v.startswith("{{ deal['") or v.startswith("{{ deal.") for v in found["step_0_tpl_name"])

    lead_rule = env.rule(status="draft", trigger="lead.added", pipeline_id=None, name_template="{{ lead.title }}")
    lead_page = env.browser.get(f"/i/{env.iid}/rules/{lead_rule['id']}").text
    lead_found = pickers(lead_page)["step_0_tpl_name"]
    assert "{{ lead.title }}" in lead_found and not any(v.startswith("{{ deal") for v in lead_found)


def test_preview_picks_a_recent_record_from_a_list(env):
    rule = env.rule(status="draft")
    path = f"/i/{env.iid}/rules/{rule['id']}"
    page = env.browser.get(path).text
    listed = re.search(r'<select name="preview_pick"[^>]*>(.*?)</select>', page, re.S)
    assert listed, "no recent-record list"
    deal = env.deal("Nordwind GmbH - 40")
    assert f'value="{deal["id"]}"' in listed.group(1) and htmllib.escape(deal["title"]) in listed.group(1)
    form = {**form_of(env, rule["id"]), "do": "preview", "preview_pick": str(deal["id"]), "preview_object_id": ""}
    shown = env.browser.form_post(path, form, csrf_from=path)
    assert shown.status_code == 200
    assert "Onboard Nordwind GmbH - 40 seats renewal" in shown.text
    other = env.deal("Nordwind GmbH - support")                     # the typed id wins over the list
    typed = env.browser.form_post(path, {**form, "preview_object_id": str(other["id"])}, csrf_from=path)
    assert f"Onboard {htmllib.escape(other['title'])}" in typed.text


@pytest.mark.browser
def test_the_picker_inserts_at_the_cursor_in_a_real_browser(env):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    rule = env.rule(status="draft", name_template="Call  now")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        context = browser.new_context()
        host = urlsplit(env.hub.url).hostname
        context.add_cookies([{"name": c.name, "value": c.value, "domain": host, "path": c.path or "/"}
                             for c in env.browser.cookies])
        tab = context.new_page()
        tab.set_default_timeout(15000)
        tab.goto(f"{env.hub.url}/i/{env.iid}/rules/{rule['id']}")
        name = tab.locator("#step_0_tpl_name")
        name.evaluate("e => e.setSelectionRange(5, 5)")
        tab.get_by_label("Insert a field into step 1 name template").select_option(label="Title")
        assert name.input_value() == "Call {{ deal.title }} now"
        tab.locator("#trigger").select_option("lead.added")          # the list follows the chosen trigger
        values = tab.get_by_label("Insert a field into step 1 name template").locator("option").evaluate_all(
            "os => os.map(o => o.value)")
        assert "{{ lead.title }}" in values and "{{ deal.title }}" not in values
        context.close()
        browser.close()
