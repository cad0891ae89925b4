"""API v1/v2 subset: every exchange validated against the official specs, plus each error path."""
from __future__ import annotations

import re
import time

import pytest
import requests

from tests.sandbox.openapi_conformance import load_spec_dict

from .conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, authorize, code_from, exchange


def general_error(resp, status: int):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["success"] is False and isinstance(body["error"], str) and body["error"]
    assert "error_info" in body and body["data"] is None
    return body


def test_read_endpoints_conform(api, admin, emu):
    u, h = api.server.url, admin.headers
    me = api.get(f"{u}/api/v1/users/me", headers=h).json()["data"]
    assert me["id"] == emu.admin_id() and me["company_domain"] == "acme-sandbox" and me["is_you"] is True
    assert {"app": "global", "admin": True} .items() <= me["access"][0].items()
    assert len(api.get(f"{u}/api/v1/users", headers=h).json()["data"]) == 4
    api.get(f"{u}/api/v1/users/{emu.users()[1]['id']}", headers=h)
    pipes = api.get(f"{u}/api/v2/pipelines", headers=h).json()
    assert [p["name"] for p in pipes["data"]] == ["Sales", "Renewals"] and pipes["additional_data"]["next_cursor"] is None
    api.get(f"{u}/api/v2/pipelines/1", headers=h)
    stages = api.get(f"{u}/api/v2/stages", headers=h, params={"pipeline_id": 2}).json()["data"]
    assert {s["pipeline_id"] for s in stages} == {2}
    api.get(f"{u}/api/v2/stages/{stages[0]['id']}", headers=h)
    api.get(f"{u}/api/v2/organizations", headers=h)
    api.get(f"{u}/api/v2/organizations/300", headers=h)
    leads = api.get(f"{u}/api/v1/leads", headers=h).json()
    assert leads["additional_data"]["pagination"]["more_items_in_collection"] is False
    lead = api.get(f"{u}/api/v1/leads/{leads['data'][0]['id']}", headers=h).json()["data"]
    assert lead["value"] == {"amount": 9000, "currency": "EUR"}


def test_deal_custom_fields_use_hash_keys(api, admin, emu):
    u, h = api.server.url, admin.headers
    fields = api.get(f"{u}/api/v2/dealFields", headers=h).json()["data"]
    custom = {f["field_name"]: f for f in fields if f["is_custom_field"]}
    assert all(len(f["field_code"]) == 40 for f in custom.values())
    assert custom["Tier"]["field_type"] == "enum" and len(custom["Tier"]["options"]) == 3
    deal = api.get(f"{u}/api/v2/deals/100", headers=h).json()["data"]
    assert deal["custom_fields"][custom["Contract number"]["field_code"]] == "NW-2026-118"
    assert deal["custom_fields"][custom["Tier"]["field_code"]] == custom["Tier"]["options"][2]["id"]
    assert api.get(f"{u}/api/v2/personFields", headers=h).json()["data"]


def test_deals_cursor_pagination_and_updated_since(api, admin, emu):
    u, h = api.server.url, admin.headers
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = api.get(f"{u}/api/v2/deals", headers=h, params=params).json()
        seen += [d["id"] for d in body["data"]]
        cursor = body["additional_data"]["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(d["id"] for d in emu.data["pd_deals"].values())
    desc = api.get(f"{u}/api/v2/deals", headers=h, params={"sort_by": "update_time", "sort_direction": "desc",
                                                          "limit": 1}).json()
    assert desc["additional_data"]["next_cursor"]
    won = api.get(f"{u}/api/v2/deals", headers=h, params={"status": "won"}).json()["data"]
    assert [d["status"] for d in won] == ["won"]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    assert api.get(f"{u}/api/v2/deals", headers=h, params={"updated_since": stamp}).json()["data"] == []
    time.sleep(1.05)  # v2 timestamps have whole seconds; the edit must land after `stamp`
    emu.update_deal(101, {"title": "Lumo Oy - bigger pilot"})
    changed = api.get(f"{u}/api/v2/deals", headers=h, params={"updated_since": stamp}).json()["data"]
    assert [d["id"] for d in changed] == [101]


def test_patch_deal_moves_stage_and_wins(api, admin, emu):
    u, h = api.server.url, admin.headers
    resp = api.patch(f"{u}/api/v2/deals/101", headers=h, json={"stage_id": 3})
    deal = resp.json()["data"]
    assert deal["stage_id"] == 3 and deal["stage_change_time"]
    won = api.patch(f"{u}/api/v2/deals/101", headers=h, json={"status": "won"}).json()["data"]
    assert won["status"] == "won" and won["won_time"] and won["close_time"]
    tier = next(f for f in emu.fields("deal") if f["name"] == "Tier")
    cf = api.patch(f"{u}/api/v2/deals/101", headers=h,
                   json={"custom_fields": {tier["key"]: tier["options"][0]["id"]}}).json()["data"]
    assert cf["custom_fields"][tier["key"]] == tier["options"][0]["id"]


def test_persons_crud_with_several_emails_and_phones(api, admin):
    u, h = api.server.url, admin.headers
    created = api.post(f"{u}/api/v2/persons", headers=h, json={
        "name": "Mia Berg", "org_id": 300,
        "emails": [{"value": "mia@nordwind.example", "label": "work"}, {"value": "mia@home.example", "label": "home"}],
        "phones": [{"value": "+49 40 1", "label": "work"}, {"value": "+49 170 2", "label": "mobile", "primary": True}]})
    p = created.json()["data"]
    assert p["emails"][0]["primary"] is True and p["emails"][1]["primary"] is False
    assert [x["primary"] for x in p["phones"]] == [False, True]
    upd = api.patch(f"{u}/api/v2/persons/{p['id']}", headers=h, json={"emails": [{"value": "mia.berg@nordwind.example"}]})
    assert upd.json()["data"]["emails"] == [{"value": "mia.berg@nordwind.example", "primary": True, "label": "work"}]
    got = api.get(f"{u}/api/v2/persons", headers=h, params={"org_id": 300}).json()["data"]
    assert p["id"] in [x["id"] for x in got]
    assert api.delete(f"{u}/api/v2/persons/{p['id']}", headers=h).json() == {"success": True, "data": {"id": p["id"]}}
    general_error(api.get(f"{u}/api/v2/persons/{p['id']}", headers=h), 404)


def test_person_write_errors(api, admin):
    u, h = api.server.url, admin.headers
    general_error(api.post(f"{u}/api/v2/persons", headers=h, json={"emails": [{"value": "x@example.com"}]}), 400)
    two_primaries = [{"value": "a@x.example", "primary": True}, {"value": "b@x.example", "primary": True}]
    general_error(api.post(f"{u}/api/v2/persons", headers=h, json={"name": "X", "emails": two_primaries}), 400)
    general_error(api.patch(f"{u}/api/v2/persons/999999", headers=h, json={"name": "Y"}), 404)
    with api.skip_request_validation("v2 rejects plain-string emails (strict types, FACTS §1)"):
        general_error(api.post(f"{u}/api/v2/persons", headers=h, json={"name": "X", "emails": ["x@y.example"]}), 400)


def test_notes_and_files(api, admin, emu):
    u, h = api.server.url, admin.headers
    pinned = api.get(f"{u}/api/v1/notes", headers=h, params={"deal_id": 100, "pinned_to_deal_flag": 1}).json()["data"]
    assert len(pinned) == 1 and pinned[0]["pinned_to_deal_flag"] is True and pinned[0]["deal"]["title"]
    note = api.post(f"{u}/api/v1/notes", headers=h, json={"content": "<p>Hi</p>", "deal_id": 101,
                                                          "pinned_to_deal_flag": 1}).json()["data"]
    assert note["deal_id"] == 101 and note["pinned_to_deal_flag"] is True
    general_error(api.post(f"{u}/api/v1/notes", headers=h, json={"content": "", "deal_id": 101}), 400)
    files = api.get(f"{u}/api/v1/deals/100/files", headers=h).json()
    assert files["additional_data"]["pagination"]["start"] == 0
    f = files["data"][0]
    meta = api.get(f"{u}/api/v1/files/{f['id']}", headers=h).json()["data"]
    assert meta["url"].endswith(f"/api/v1/files/{f['id']}/download")
    blob = api.get(meta["url"], headers=h)
    assert blob.headers["Content-Type"] == "application/octet-stream" and blob.content.startswith(b"%PDF")
    assert len(blob.content) == meta["file_size"]
    with api.skip_request_validation("limit above the documented maximum of 100 (FACTS §12)"):
        general_error(api.get(f"{u}/api/v1/deals/100/files", headers=h, params={"limit": 101}), 400)


def test_offset_pagination_next_start(api, admin, emu):
    for i in range(3):
        emu.add_note(f"note {i}", deal_id=102)
    body = api.get(f"{api.server.url}/api/v1/notes", headers=admin.headers,
                   params={"deal_id": 102, "limit": 2}).json()
    assert body["additional_data"]["pagination"] == {"start": 0, "limit": 2, "more_items_in_collection": True,
                                                     "next_start": 2}


def test_not_found_and_bad_request_bodies(api, admin):
    u, h = api.server.url, admin.headers
    general_error(api.get(f"{u}/api/v2/deals/424242", headers=h), 404)
    lead = general_error(api.get(f"{u}/api/v1/leads/6f1d2c8e-4b7a-11f1-9c2e-3d5a7b9e0f14", headers=h), 404)
    assert lead["error"] == "requested lead not found" and lead["error_info"] == "Object was not found."
    body = general_error(api.get(f"{u}/api/v1/users/1", headers=h), 404)
    assert body["error"] == "User not found"
    general_error(api.get(f"{u}/api/v2/deals", headers=h, params={"cursor": "garbage!"}), 400)
    general_error(api.get(f"{u}/api/v2/deals", headers=h, params={"limit": 501}), 400)
    general_error(api.get(f"{u}/api/v2/deals", headers=h, params={"updated_since": "yesterday"}), 400)
    general_error(api.patch(f"{u}/api/v2/deals/100", headers=h, json={"stage_id": 999}), 400)
    with api.skip_request_validation("numbers given as strings are rejected by v2 (FACTS §1)"):
        general_error(api.patch(f"{u}/api/v2/deals/100", headers=h, json={"value": "100"}), 400)


def test_missing_token_is_401(api):
    resp = api.get(f"{api.server.url}/api/v2/deals")
    assert resp.status_code == 401
    assert resp.json()["success"] is False and resp.json()["error"] == "unauthorized access"
    assert api.get(f"{api.server.url}/api/v2/deals",
                   headers={"Authorization": "Bearer forged"}).status_code == 401


@pytest.fixture
def options(receiver):
    return {"time_scale": 0.001, "clients": [
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [REDIRECT_URI],
         "callback_url": receiver.url + "/callback"},
        {"client_id": "narrow-app", "client_secret": "narrow-secret", "redirect_uris": [REDIRECT_URI],
         "scopes": ["base", "deals:read"], "callback_url": receiver.url + "/callback"}]}


def test_scopes_are_enforced(api, server):
    code = code_from(authorize(server, client_id="narrow-app"))
    body = requests.post(f"{server.url}/oauth/token", auth=("narrow-app", "narrow-secret"), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}).json()
    assert body["scope"] == "base,deals:read"
    h = {"Authorization": f"Bearer {body['access_token']}"}
    assert api.get(f"{server.url}/api/v2/deals", headers=h).status_code == 200
    assert api.get(f"{server.url}/api/v1/users/me", headers=h).status_code == 200
    for method, path, kw in (("get", "/api/v2/persons", {}), ("get", "/api/v1/webhooks", {}),
                             ("patch", "/api/v2/deals/100", {"json": {"title": "x"}}), ("get", "/api/v1/users", {})):
        resp = getattr(api, method)(f"{server.url}{path}", headers=h, **kw)
        assert resp.status_code == 403, path
        assert resp.json()["success"] is False and resp.json()["errorCode"] == 403


def test_route_scopes_match_the_spec(app, pd_specs):
    """Each emulated operation requires exactly the OAuth scopes its spec `security` section lists."""
    specs = {"v1": load_spec_dict(pd_specs / "openapi-v1.yaml"), "v2": load_spec_dict(pd_specs / "openapi-v2.yaml")}
    checked = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        view = app.view_functions[rule.endpoint]
        version, path = rule.rule.split("/")[2], "/" + rule.rule.split("/", 3)[3]
        path = re.sub(r"<[^>]+>", "{}", path)
        spec_path = next(p for p in specs[version]["paths"] if re.sub(r"\{[^}]+\}", "{}", p) == path)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            op = specs[version]["paths"][spec_path][method.lower()]
            listed = {s for sec in op["security"] for s in sec.get("oauth2", [])}
            assert view.pd_scopes == listed, f"{method} {rule.rule}"
            checked += 1
    assert checked >= 25


def test_fault_429_with_rate_limit_headers(api, admin, faults):
    faults.update({"burst_429": 1, "retry_after": 3})
    resp = api.get(f"{api.server.url}/api/v2/deals", headers=admin.headers)
    general_error(resp, 429)
    assert resp.headers["x-ratelimit-remaining"] == "0" and resp.headers["x-ratelimit-reset"] == "3"
    assert resp.headers["x-ratelimit-limit"] == "80" and resp.headers["Retry-After"] == "3"
    ok = api.get(f"{api.server.url}/api/v2/deals", headers=admin.headers)
    assert ok.status_code == 200 and int(ok.headers["x-ratelimit-remaining"]) < 80


def test_fault_5xx_and_latency(api, admin, faults):
    faults.update({"error_rate": 1.0, "error_status": 503})
    general_error(api.get(f"{api.server.url}/api/v2/deals", headers=admin.headers), 503)
    faults.update({"error_rate": 0.0, "latency_ms": 150})
    start = time.monotonic()
    assert api.get(f"{api.server.url}/api/v2/deals", headers=admin.headers).status_code == 200
    assert time.monotonic() - start >= 0.15


def test_enforced_burst_limit_answers_429():
    from hub.sandbox.common import Faults, SandboxState
    from hub.sandbox.pipedrive import create_app
    from .conftest import live_server
    app = create_app(state=SandboxState(), faults=Faults(), options={"burst_limit": 2, "enforce_burst_limit": True})
    emu = app.extensions["sandbox"]
    grant = {"client_id": CLIENT_ID, "company_id": emu.company()["id"], "user_id": emu.admin_id(), "scopes": ["base"]}
    token = emu.tokens.issue(CLIENT_ID, grant)["access_token"]
    with live_server(app) as srv:
        h = {"Authorization": f"Bearer {token}"}
        statuses = [requests.get(f"{srv.url}/api/v1/users/me", headers=h) for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert statuses[1].headers["x-ratelimit-remaining"] == "0"
    assert int(statuses[2].headers["Retry-After"]) >= 1 and statuses[2].json()["success"] is False
