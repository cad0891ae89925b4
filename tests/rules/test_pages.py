"""The settings pages for rules, driven like a person with a browser: create from a ready
automation, pick from live dropdowns, see field errors next to the fields, preview, save as draft,
activate, see the run and its Asana task in the run log, deactivate, delete."""
from __future__ import annotations

import re

from hub.store.models import Rule
from tests.rules.test_api import full_rule


# the editor's names for the one-step shorthand the tests speak (the first step's fields)
FIRST = {"connection_id": "step_0_connection_id", "name_template": "step_0_tpl_name",
         "description_template": "step_0_tpl_description", "map_deal": "step_0_map"}


def form_of(env, rule_id: int, **changes) -> dict:
    """The editor's form fields as a browser would send them, from the rule's JSON."""
    from hub.rules.editor import delay_parts

    r = env.browser.get(f"/api/v1/installations/{env.iid}/rules/{rule_id}").json()
    form = {"name": r["name"], "trigger": r["trigger"], "pipeline_id": r["pipeline_id"] or "",
            "stage_id": r["stage_id"] or "", "fires": r["fires"], "condition_rows": str(len(r["conditions"]) + 1),
            "step_count": str(len(r["steps"]))}
    for n, c in enumerate(r["conditions"]):
        form.update({f"cond_field_{n}": c["field"], f"cond_op_{n}": c["op"], f"cond_value_{n}": c["value"]})
    for n, st in enumerate(r["steps"]):
        p = f"step_{n}_"
        form.update({p + "id": st["id"], p + "kind": st["kind"], p + "connection_id": str(st["connection_id"] or "")})
        form.update({p + "setting_" + k: v for k, v in st["settings"].items()})
        form.update({p + "tpl_" + k: v for k, v in st["templates"].items()})
        form.update({f"{p}carry_{k}": "1" for k, on in st["carry"].items() if on and k != "title"})
        form[p + "map"] = [f"{m['source']}:{m['key']}" for m in st["field_mappings"]]
        amount, unit = delay_parts(st["delay_seconds"])
        form.update({p + "delay_amount": str(amount), p + "delay_unit": unit})
        if st["condition"]:
            c = st["condition"]
            form.update({p + "cond_field": c["field"], p + "cond_op": c["op"], p + "cond_value": c["value"]})
    for key, value in changes.items():
        if key in FIRST:
            key, value = FIRST[key], ([f"deal:{v}" for v in value] if key == "map_deal" else value)
        elif key.endswith("_gid"):
            key = f"step_0_setting_{key}"
        form[key] = value
    return form


def submit(env, rule_id: int, do: str, **changes):
    path = f"/i/{env.iid}/rules/{rule_id}"
    return env.browser.form_post(path, {**form_of(env, rule_id, **changes), "do": do}, csrf_from=path)


def error_after(html: str, field_marker: str, error_id: str) -> str:
    """The error text, asserting it sits right after the field it is about."""
    field_at = html.index(field_marker)
    match = re.search(rf'<p class="error" id="{re.escape(error_id)}">([^<]*)</p>', html)
    assert match, f"no {error_id} on the page"
    assert field_at < match.start(), "the error must come after its field"
    between = html[field_at:match.start()]
    assert between.count("<label") == 0, "the error must be next to its field, not under another one"
    return match.group(1)


def test_hand_off_won_deals_from_the_template_to_a_task(env):
    b, iid = env.browser, env.iid
    listing = b.get(f"/i/{iid}/rules")
    assert listing.status_code == 200
    for title in ("Add tasks when deals move to a stage", "Hand off won deals", "Handle lost deals", "Nurture new leads"):
        assert title in listing.text
    settings = b.get(f"/i/{iid}/settings")
    assert f"/i/{iid}/rules" in settings.text                              # the settings page links here

    page = b.form_post(f"/i/{iid}/rules/new", {"preset": "won_handoff"}, csrf_from=f"/i/{iid}/rules")
    assert page.status_code == 200 and "/rules/" in page.url
    rule_id = int(page.url.rsplit("/", 1)[1])
    assert "Draft “Hand off won deals” created" in page.text
    # live dropdowns: pipelines and stages from Pipedrive, workspaces/projects/users/teams from Asana
    for shown in ("Sales", "Renewals", "Negotiations started", "Acme Sandbox Org", "Personal Projects",
                  "Won deals – onboarding", "Luis Ortega", "Dana Whitfield", "Tier", "custom"):
        assert shown in page.text, shown
    assert "Q1 pipeline review" not in page.text                          # archived project not offered

    refused = submit(env, rule_id, "activate")
    assert refused.status_code == 400
    assert "pick the Asana workspace" in error_after(refused.text, 'name="step_0_setting_workspace_gid"',
                                                     "steps-0-settings-workspace_gid-error")
    assert env.count(Rule, Rule.status == "active") == 0

    tier = next(f["key"] for f in env.pd.fields("deal") if f["name"] == "Tier")
    done = submit(env, rule_id, "activate", workspace_gid=env.workspace("Acme Sandbox Org"),
                  project_gid=env.project("Won deals – onboarding"), assignee_gid=env.user("luis"), map_deal=[tier])
    assert done.status_code == 200 and "Rule saved and active" in done.text
    with env.services.db.begin() as s:
        rule = s.get(Rule, rule_id)
        assert rule.status == "active"
    assert env.browser.get(f"/api/v1/installations/{iid}/rules/{rule_id}").json()["steps"][0]["settings"][
        "assignee_gid"] == env.user("luis")

    deal = env.deal("Nordwind GmbH - 40")
    ui = env.hub.browser()                                               # the CRM user marks it won in the sandbox
    won = ui.post(f"/sandbox/pipedrive/_sandbox/ui/deals/{deal['id']}/status", data={"status": "won"})
    assert won.status_code in (200, 302, 303)
    env.settle()
    [task] = env.tasks("Won deals – onboarding")
    assert task["name"] == "Onboard Nordwind GmbH - 40 seats renewal" and task["assignee"] == env.user("luis")
    asana_view = env.hub.browser().get(f"/sandbox/asana/_sandbox/ui/tasks/{task['gid']}")
    assert asana_view.status_code == 200 and "Onboard Nordwind GmbH - 40 seats renewal" in asana_view.text

    runs = b.get(f"/i/{iid}/rules/{rule_id}/runs")
    assert runs.status_code == 200
    assert 'data-status="done"' in runs.text and "task: Onboard Nordwind GmbH - 40 seats renewal" in runs.text
    assert "nordwind-quote.pdf: copied" in runs.text and "rule.done" in runs.text
    listing = b.get(f"/i/{iid}/rules")
    assert ">done<" in listing.text and 'badge ok">active' in listing.text

    off = b.form_post(f"/i/{iid}/rules/{rule_id}/deactivate", csrf_from=f"/i/{iid}/rules")
    assert off.status_code == 200 and "is deactivated" in off.text
    assert env.count(Rule, Rule.status == "draft") == 1
    on = b.form_post(f"/i/{iid}/rules/{rule_id}/activate", csrf_from=f"/i/{iid}/rules")
    assert on.status_code == 200 and "is active" in on.text
    gone = b.form_post(f"/i/{iid}/rules/{rule_id}/delete", csrf_from=f"/i/{iid}/rules")
    assert gone.status_code == 200 and "was deleted" in gone.text and env.count(Rule) == 0
    assert b.get(f"/i/{iid}/rules/{rule_id}").status_code == 404


def test_each_template_makes_an_editable_draft(env):
    b, iid = env.browser, env.iid
    made = {}
    for key in ("stage_tasks", "lost_followup", "lead_nurture"):
        page = b.form_post(f"/i/{iid}/rules/new", {"preset": key}, csrf_from=f"/i/{iid}/rules")
        made[key] = int(page.url.rsplit("/", 1)[1])
    rules = {r["preset"]: r for r in b.get(f"/api/v1/installations/{iid}/rules").json()["rules"]}
    assert rules["stage_tasks"]["trigger"] == "deal.stage_changed" and rules["stage_tasks"]["stage_id"]
    assert rules["lost_followup"]["trigger"] == "deal.lost" and rules["lost_followup"]["steps"][0]["carry"]["notes"]
    assert rules["lead_nurture"]["trigger"] == "lead.added" and rules["lead_nurture"]["pipeline_id"] is None
    assert all(r["status"] == "draft" for r in rules.values())
    # change the condition of "stage" to "status changed to won", save as draft
    saved = submit(env, made["stage_tasks"], "save", trigger="deal.won", name="Won instead")
    assert saved.status_code == 200 and "saved as a draft" in saved.text
    r = b.get(f"/api/v1/installations/{iid}/rules/{made['stage_tasks']}").json()
    assert (r["trigger"], r["stage_id"], r["name"], r["status"]) == ("deal.won", None, "Won instead", "draft")


def test_field_errors_sit_next_to_their_fields(env):
    rule = env.rule(status="draft")
    bad = submit(env, rule["id"], "save", name_template="{{ ''.__class__ }}", trigger="deal.stage_changed",
                 stage_id=env.stage("Upcoming"), cond_field_0="value", cond_op_0="gte", cond_value_0="",
                 condition_rows="2")
    assert bad.status_code == 400
    html = bad.text
    assert "not allowed" in error_after(html, 'name="step_0_tpl_name"', "steps-0-templates-name-error")
    assert "not in the pipeline Sales" in error_after(html, 'name="stage_id"', "stage_id-error")
    assert "give a value" in error_after(html, 'name="cond_value_0"', "conditions-0-value-error")
    assert 'value="{{ &#39;&#39;.__class__ }}"' in html                   # what was typed is kept
    saved = env.browser.get(f"/api/v1/installations/{env.iid}/rules/{rule['id']}").json()
    assert saved["steps"][0]["templates"]["name"] == "Onboard {{ deal.title }}"   # nothing half-written


def test_preview_on_the_page_creates_nothing(env):
    rule = env.rule(status="draft")
    path = f"/i/{env.iid}/rules/{rule['id']}"
    deal = env.deal("Nordwind GmbH - 40")
    shown = submit(env, rule["id"], "preview", preview_object_id=str(deal["id"]),
                   description_template="Hello <b>{{ person.name }}</b> & team")
    assert shown.status_code == 200
    assert 'id="preview-result"' in shown.text and "Onboard Nordwind GmbH - 40 seats renewal" in shown.text
    assert "Hello <strong>Katrin Vogel</strong> &amp; team" in shown.text
    assert "nordwind-quote.pdf" in shown.text
    missing = submit(env, rule["id"], "preview", preview_object_id="424242")
    assert missing.status_code == 400
    assert "no deal 424242" in error_after(missing.text, 'name="preview_object_id"', "object_id-error")
    assert env.tasks() == [] and env.asana.projects() and env.browser.get(path).status_code == 200


def test_refresh_lists_reloads_the_dropdowns(env):
    rule = env.rule(status="draft")
    path = f"/i/{env.iid}/rules/{rule['id']}"
    assert "Brand-new project" not in env.browser.get(path).text
    env.asana.add_project(env.workspace("Acme Sandbox Org"), "Brand-new project", team=env.team("Sales Ops"))
    assert "Brand-new project" not in env.browser.get(path).text       # cached
    refreshed = submit(env, rule["id"], "refresh", name="Typed but not saved")
    assert refreshed.status_code == 200 and "Brand-new project" in refreshed.text
    assert 'value="Typed but not saved"' in refreshed.text


def test_every_rules_route_answers_without_a_server_error(env):
    rule = env.rule(status="draft")
    b = env.browser
    token = b.csrf(f"/i/{env.iid}/settings")
    routes = [r for r in env.hub.app.url_map.iter_rules() if r.endpoint.startswith("rules.")]
    assert len(routes) >= 20
    for r in routes:
        path = r.rule
        for name in r.arguments:
            value = env.iid if name == "installation_id" else rule["id"] if name == "rule_id" else 1
            path = path.replace(f"<int:{name}>", str(value))
        for method in sorted(r.methods - {"HEAD", "OPTIONS"}):
            if r.endpoint in ("rules.delete_page", "rules.api_delete"):
                continue
            response = b.request(method, path, json=full_rule(env) if path.startswith("/api/") else None,
                                 data=None if path.startswith("/api/") else {"csrf_token": token},
                                 headers={"X-CSRF-Token": token}, allow_redirects=False)
            assert response.status_code < 500, (method, path, response.status_code, response.text[:300])


def test_activate_returns_only_to_a_page_of_the_hub(env):
    """The activate form's `next` field goes through the one return-target check."""
    rule_id = env.rule(status="draft")["id"]
    listing = f"/i/{env.iid}/rules"
    for nxt, expected in [("/\t/evil.example/phish", listing), ("https://evil.example/", listing),
                          (f"/i/{env.iid}/rules/{rule_id}", f"/i/{env.iid}/rules/{rule_id}")]:
        sent = env.browser.form_post(f"/i/{env.iid}/rules/{rule_id}/activate", {"next": nxt}, csrf_from=listing,
                                     allow_redirects=False)
        assert sent.status_code == 302 and sent.headers["Location"] == expected, (nxt, sent.headers)
