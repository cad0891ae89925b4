"""The rules JSON API: everything the page does, checked against its own OpenAPI document (every
response validated with openapi-core), bad input answered with field errors and never a 500."""
from __future__ import annotations

import copy

import pytest
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_spec_validator import validate as validate_spec

from hub.rules.schemas import RuleIn
from hub.store.models import Rule, RuleStep
from tests.web.conftest import BEN, CLEO


class Api:
    """The admin's browser session speaking JSON; every answer is checked against the document."""

    def __init__(self, env):
        self.env = env
        self.browser = env.browser
        self.token = self.browser.csrf(f"/i/{env.iid}/settings")
        doc = self.browser.get("/api/v1/openapi.json").json()
        validate_spec(doc)
        doc = copy.deepcopy(doc)
        doc["servers"] = [{"url": env.hub.url}]
        self.openapi = OpenAPI.from_dict(doc)
        self.base = f"/api/v1/installations/{env.iid}/rules"
        self.checked = 0

    def call(self, method: str, path: str = "", body=None, *, raw: str | None = None, **params):
        headers = {"X-CSRF-Token": self.token, "Accept": "application/json"}
        kwargs = {"params": params or None, "headers": headers}
        if raw is not None:
            kwargs["data"] = raw
            headers["Content-Type"] = "application/json"
        elif body is not None:
            kwargs["json"] = body
        response = self.browser.request(method, self.base + path, **kwargs)
        assert response.status_code < 500, (method, path, response.status_code, response.text[:500])
        self.openapi.validate_response(RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response))
        self.checked += 1
        return response


@pytest.fixture
def api(env):
    return Api(env)


def full_rule(env, **extra) -> dict:
    body = {"name": "API rule", "trigger": "deal.won", "pipeline_id": env.pipeline("Sales"), "action": "asana.task",
            "name_template": "Won: {{ deal.title }}", "description_template": "",
            "carry": {"value": True, "contacts": False, "notes": False, "attachments": False},
            "target": {"connection_id": env.asana_id, "workspace_gid": env.workspace("Acme Sandbox Org"),
                       "project_gid": env.project("Won deals – onboarding")}}
    body.update(extra)
    return body


def test_crud_activate_preview_runs_and_retry(env, api):
    assert api.call("GET").json() == {"rules": []}
    presets = api.call("GET", "/presets").json()["presets"]
    # the CRM's and Asana's, then other task targets' for its triggers (another CRM's task on a won deal)
    assert [p["key"] for p in presets][:4] == ["stage_tasks", "won_handoff", "lost_followup", "lead_nurture"]
    assert all(p["trigger"] == "deal.won" and not p["steps"][0].startswith(("pipedrive.", "asana."))
               for p in presets[4:])

    draft = api.call("POST", body={"preset": "won_handoff"})
    assert draft.status_code == 201
    rule = draft.json()
    [step] = rule["steps"]
    assert (rule["status"], rule["trigger"], rule["pipeline_id"], step["kind"], step["connection_id"]) == \
        ("draft", "deal.won", env.pipeline("Sales"), "asana.task", env.asana_id)
    refused = api.call("POST", f"/{rule['id']}/activate")
    assert refused.status_code == 400
    assert refused.json()["fields"]["steps.0.settings.workspace_gid"].startswith("pick the Asana workspace")

    tier = next(f["key"] for f in env.pd.fields("deal") if f["name"] == "Tier")
    changed = api.call("PUT", f"/{rule['id']}", {"target": full_rule(env)["target"],
                                                 "field_mappings": [{"key": tier}],
                                                 "conditions": [{"field": tier, "op": "eq", "value": "Gold"}]})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["version"] == 2 and body["steps"][0]["field_mappings"] == [{"source": "deal", "key": tier,
                                                                            "label": "Tier", "type": "enum"}]
    assert body["steps"][0]["templates"] == step["templates"]             # left out: kept
    assert body["steps"][0]["id"] == step["id"]                           # the step is the same step
    active = api.call("POST", f"/{rule['id']}/activate").json()
    assert active["status"] == "active" and active["activated_at"]

    preview = api.call("POST", "/preview", {"rule": {k: v for k, v in body.items() if k in RuleIn().fields},
                                            "object_id": env.deal("Nordwind GmbH - 40")["id"]})
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert shown["name"] == "Onboard Nordwind GmbH - 40 seats renewal" and shown["matches"] is True
    assert "<strong>Tier:</strong> Gold" in shown["html_notes"]
    assert [f["name"] for f in shown["files"]] == ["nordwind-quote.pdf"]
    other = api.call("POST", "/preview", {"rule": {k: v for k, v in body.items() if k in RuleIn().fields},
                                          "object_id": env.deal("Nordwind GmbH - support")["id"]}).json()
    assert other["matches"] is False and "pipeline" in other["mismatch"]   # a Renewals deal, no Tier
    assert env.tasks() == []                                             # a preview creates nothing

    env.pd.mark_won(env.deal("Nordwind GmbH - 40")["id"])
    env.settle()
    runs = api.call("GET", f"/{rule['id']}/runs").json()
    [run] = runs["runs"]
    assert run["status"] == "done" and run["links"][0]["name"] == "Onboard Nordwind GmbH - 40 seats renewal"
    assert [(s["step_id"], s["status"]) for s in run["steps"]] == [(step["id"], "done")]
    assert [t["step"] for t in runs["trace"]][-1] == "rule.matched"
    not_failed = api.call("POST", f"/{rule['id']}/runs/{run['id']}/retry")
    assert not_failed.status_code == 400 and "only failed runs" in not_failed.json()["message"]

    assert api.call("POST", f"/{rule['id']}/deactivate").json()["status"] == "draft"
    assert api.call("DELETE", f"/{rule['id']}").json() == {"ok": True}
    assert api.call("GET", f"/{rule['id']}").status_code == 404
    assert env.count(RuleStep) == 0 and env.count(Rule) == 0
    assert len(env.links()) == 1                                         # the record of the task stays


def test_catalog_and_refresh(env, api):
    cat = api.call("GET", "/catalog").json()
    assert [p["name"] for p in cat["pipelines"]] == ["Sales", "Renewals"]
    assert [s["name"] for s in cat["pipelines"][0]["stages"]][:2] == ["Qualified", "Contact made"]
    tier = next(f for f in cat["fields"]["deal"] if f["label"] == "Tier")
    assert tier["custom"] and len(tier["key"]) == 40 and [o["label"] for o in tier["options"]] == ["Bronze", "Silver", "Gold"]
    assert {"asana.task", "asana.project", "email", "wait", "branch", "complete_linked"} <= {k["kind"] for k in cat["kinds"]}
    assert "deal.won" in {t["kind"] for t in cat["triggers"]}

    def workspaces(catalog):
        [asana] = [c for c in catalog["connections"] if c["connector"] == "asana"]
        return asana["catalogs"]["workspaces"]
    org = next(w for w in workspaces(cat) if w["is_organization"])
    assert {t["name"] for t in org["teams"]} == {"Sales Ops", "Customer Success"}
    assert "Q1 pipeline review" not in {p["name"] for p in org["projects"]}   # archived projects are not offered
    env.asana.add_project(org["gid"], "Fresh project", team=env.team("Sales Ops"))
    cached = api.call("GET", "/catalog").json()
    assert "Fresh project" not in {p["name"] for w in workspaces(cached) for p in w["projects"]}
    fresh = api.call("GET", "/catalog", refresh="1").json()
    assert "Fresh project" in {p["name"] for w in workspaces(fresh) for p in w["projects"]}
    assert api.call("GET", "/catalog", connection_id="x").status_code == 400
    assert api.call("GET", "/catalog", connection_id="999").status_code == 400


BAD_VALUES = [None, 123, "", "x" * 300, [], {}, True, -1]


def test_bad_input_is_refused_with_field_errors_never_a_500(env, api):
    good = full_rule(env)
    assert api.call("POST", body=good).status_code == 201
    refusals = 0
    for key in list(good) + ["status", "conditions", "field_mappings"]:
        for value in BAD_VALUES:
            response = api.call("POST", body={**good, key: value})
            if response.status_code == 400:
                refusals += 1
                body = response.json()
                assert body["error"] == "invalid" and body["fields"] and body["message"]
                assert any(f == key or f.startswith(key + ".") or f == "body" for f in body["fields"]), body
            else:
                assert response.status_code == 201, response.text
    assert refusals >= 40
    for raw in ("not json", "[]", "null", "{\"name\": "):
        assert api.call("POST", raw=raw).status_code == 400
    cases = [
        ({"conditions": [{"field": "value", "op": "gte"}]}, "conditions.0.value"),
        ({"conditions": [{"field": "nope", "op": "eq", "value": "1"}]}, "conditions.0.field"),
        ({"conditions": [{"field": "value", "op": "between", "value": "1"}]}, "conditions.0.op"),
        ({"field_mappings": [{"key": "no-such-field"}]}, "field_mappings.0.key"),
        ({"pipeline_id": "999"}, "pipeline_id"),
        ({"trigger": "deal.stage_changed", "stage_id": env.stage("Upcoming"), "status": "active"}, "stage_id"),
        ({"trigger": "deal.stage_changed", "status": "active"}, "stage_id"),
        ({"pipeline_id": None, "status": "active"}, "pipeline_id"),
        ({"name_template": "{{ ''.__class__ }}"}, "name_template"),
        ({"description_template": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"},
         "description_template"),
        ({"target": {**good["target"], "project_gid": "123"}, "status": "active"}, "target.project_gid"),
        ({"target": {**good["target"], "assignee_gid": "123"}}, "target.assignee_gid"),
        ({"target": {**good["target"], "connection_id": 999}}, "target.connection_id"),
        ({"action": "asana.project", "status": "active"}, "target.team_gid"),
        ({"carry": {"title": False}}, "carry.title"),
        ({"preset": "nope"}, "preset"),
    ]
    for change, field_name in cases:
        response = api.call("POST", body={**good, **change})
        assert response.status_code == 400, (change, response.text)
        assert field_name in response.json()["fields"], (change, response.json())
    preview = api.call("POST", "/preview", {"rule": good, "object_id": "999999"})
    assert preview.status_code == 400 and "object_id" in preview.json()["fields"]
    assert api.call("POST", "/preview", {"rule": good}).status_code == 400
    assert api.call("POST", "/preview", {"rule": {**good, "trigger": "x"}, "object_id": "1"}).status_code == 400
    assert api.call("PUT", "/999", {"name": "x"}).status_code == 404
    assert api.call("POST", "/999/runs/1/retry").status_code == 404
    assert api.checked > 100


def test_api_needs_the_csrf_token_and_access(env, api):
    rules = f"/api/v1/installations/{env.iid}/rules"
    no_token = env.browser.post(rules, json=full_rule(env))
    assert no_token.status_code == 400 and no_token.json()["error"] == "csrf"
    stranger = env.hub.browser()
    assert stranger.get(rules).status_code == 401
    assert env.count(Rule) == 0


def test_only_allowed_users_see_the_rules(make_env):
    env = make_env(install_kwargs={"visibility_in_crm": "all", "hub_visibility": "specific", "hub_users": [BEN]})
    ben = env.hub.browser()
    assert ben.authorize_pipedrive("/login/pipedrive", user_id=BEN).status_code == 200
    assert ben.get(f"/api/v1/installations/{env.iid}/rules").status_code == 200
    assert ben.get(f"/i/{env.iid}/rules").status_code == 200
    cleo = env.hub.browser()
    assert cleo.authorize_pipedrive("/login/pipedrive", user_id=CLEO).status_code == 403
    assert cleo.get(f"/api/v1/installations/{env.iid}/rules").status_code == 401


def test_a_hostile_template_gets_the_same_refusal_at_save_and_in_the_preview(env, api):
    hostile = "{{ '%*d' % (1000000000, 1) }}"
    saved = api.call("POST", body=full_rule(env, description_template=hostile))
    assert saved.status_code == 400
    message = saved.json()["fields"]["description_template"]
    assert message == "the formatted text would be larger than the limit of 262144 characters"
    preview = api.call("POST", "/preview", {"rule": full_rule(env, description_template=hostile),
                                            "object_id": env.deal("Nordwind GmbH - 40")["id"]})
    assert preview.status_code == 400 and preview.json()["fields"]["description_template"] == message
    assert env.count(Rule) == 0
