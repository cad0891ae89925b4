"""The HubSpot emulator's OAuth and CRM API, driven as a client would (Flask test client, no network)."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from hub.sandbox.common import Faults, SandboxState
from hub.sandbox.hubspot import create_app

CLIENT_ID, SECRET, REDIRECT = "hub-client", "hub-secret", "https://hub.example/oauth/hubspot/callback"
SCOPES = "oauth crm.objects.contacts.read crm.objects.contacts.write crm.objects.leads.read crm.objects.leads.write " \
         "crm.objects.deals.read crm.objects.deals.write crm.objects.companies.read crm.objects.owners.read"


class Clock:
    def __init__(self):
        self.now = 1_790_000_000.0

    def __call__(self):
        return self.now


def make(**options):
    clock = Clock()
    opts = {"clients": [{"client_id": CLIENT_ID, "client_secret": SECRET, "redirect_uris": [REDIRECT],
                         "name": "Relay Hub"}],
            "clock": clock, "deliver_in_background": False, "transport": lambda url, h, b: (200, {})}
    opts.update(options)
    app = create_app(state=SandboxState(), faults=Faults(seed=1), options=opts)
    return app, app.extensions["sandbox"], clock


def authorize(client, sb, *, portal=0, user=0, scope=SCOPES):
    hub = sb.portals()[portal]["hub_id"]
    uid = sb.users(hub)[user]["id"]
    resp = client.post("/oauth/authorize", data={"client_id": CLIENT_ID, "redirect_uri": REDIRECT, "scope": scope,
                                                 "state": "xyz", "account": f"{hub}:{uid}", "decision": "allow"})
    assert resp.status_code == 302, resp.data
    query = parse_qs(urlparse(resp.headers["Location"]).query)
    assert query["state"] == ["xyz"]
    return query["code"][0], hub, uid


def exchange(client, code):
    return client.post("/oauth/v1/token", data={"grant_type": "authorization_code", "client_id": CLIENT_ID,
                                                "client_secret": SECRET, "redirect_uri": REDIRECT, "code": code})


@pytest.fixture
def env():
    app, sb, clock = make()
    client = app.test_client()
    code, hub, uid = authorize(client, sb)
    token = exchange(client, code).get_json()
    return client, sb, clock, hub, {"Authorization": f"Bearer {token['access_token']}"}


def test_authorize_page_lists_accounts_and_scopes():
    app, sb, _ = make()
    page = app.test_client().get("/oauth/authorize", query_string={"client_id": CLIENT_ID, "redirect_uri": REDIRECT,
                                                                   "scope": "oauth crm.objects.leads.read"})
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Northwind Demo" in text and "Contoso Sandbox" in text
    assert "crm.objects.leads.read" in text
    bad = app.test_client().get("/oauth/authorize", query_string={"client_id": CLIENT_ID, "redirect_uri": REDIRECT,
                                                                  "scope": "oauth tickets"})
    assert bad.status_code == 400 and "tickets" in bad.get_data(as_text=True)
    wrong = app.test_client().get("/oauth/authorize", query_string={"client_id": CLIENT_ID, "scope": "oauth",
                                                                    "redirect_uri": "https://evil.example/cb"})
    assert wrong.status_code == 400


def test_code_exchange_metadata_refresh_and_delete():
    app, sb, clock = make()
    client = app.test_client()
    code, hub, uid = authorize(client, sb)
    no_secret = client.post("/oauth/v1/token", data={"grant_type": "authorization_code", "client_id": CLIENT_ID,
                                                     "redirect_uri": REDIRECT, "code": code})
    assert no_secret.status_code == 400 and no_secret.get_json()["status"] == "BAD_CLIENT_SECRET"
    in_query = client.post("/oauth/v1/token", query_string={"grant_type": "authorization_code", "client_id": CLIENT_ID,
                                                            "client_secret": SECRET, "redirect_uri": REDIRECT,
                                                            "code": code})
    assert in_query.status_code == 400
    first = exchange(client, code)
    body = first.get_json()
    assert first.status_code == 200 and body["expires_in"] == 1800 and body["token_type"] == "bearer"
    again = exchange(client, code)                                   # single use
    assert again.status_code == 400 and again.get_json()["status"] == "BAD_AUTH_CODE"

    meta = client.get(f"/oauth/v1/access-tokens/{body['access_token']}").get_json()
    assert meta["hub_id"] == hub and meta["user_id"] == uid and meta["user"] == "ada@northwind-demo.com"
    assert meta["hub_domain"] == "northwind-demo.com" and "crm.objects.leads.read" in meta["scopes"]
    assert meta["expires_in"] == 1800

    clock.now += 1801                                                # 30 minutes later the token is dead
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    expired = client.get("/crm/v3/objects/contacts", headers=headers)
    assert expired.status_code == 401 and expired.get_json()["category"] == "EXPIRED_AUTHENTICATION"
    refreshed = client.post("/oauth/v1/token", data={"grant_type": "refresh_token", "client_id": CLIENT_ID,
                                                     "client_secret": SECRET, "refresh_token": body["refresh_token"]})
    pair = refreshed.get_json()
    assert refreshed.status_code == 200 and pair["refresh_token"] == body["refresh_token"] and pair["access_token"]
    no_secret = client.post("/oauth/v1/token", data={"grant_type": "refresh_token", "client_id": CLIENT_ID,
                                                     "refresh_token": body["refresh_token"]})
    assert no_secret.status_code == 400
    assert client.get("/crm/v3/objects/contacts", headers={"Authorization": f"Bearer {pair['access_token']}"}
                      ).status_code == 200

    assert client.delete(f"/oauth/v1/refresh-tokens/{body['refresh_token']}").status_code == 204
    gone = client.post("/oauth/v1/token", data={"grant_type": "refresh_token", "client_id": CLIENT_ID,
                                                "client_secret": SECRET, "refresh_token": body["refresh_token"]})
    assert gone.status_code == 400 and gone.get_json()["status"] == "BAD_REFRESH_TOKEN"
    # the access token minted before the delete still works (FACTS §1)
    assert client.get("/crm/v3/objects/contacts", headers={"Authorization": f"Bearer {pair['access_token']}"}
                      ).status_code == 200


def test_unauthenticated_and_missing_scope(env):
    client, sb, clock, hub, headers = env
    resp = client.get("/crm/v3/objects/contacts")
    assert resp.status_code == 401 and resp.get_json()["category"] == "INVALID_AUTHENTICATION"
    assert resp.get_json()["status"] == "error" and resp.get_json()["correlationId"]
    app_client = client
    code, _, _ = authorize(app_client, sb, scope="oauth crm.objects.contacts.read")
    narrow = {"Authorization": f"Bearer {exchange(app_client, code).get_json()['access_token']}"}
    denied = client.get("/crm/v3/objects/leads", headers=narrow)
    assert denied.status_code == 403 and denied.get_json()["category"] == "MISSING_SCOPES"
    assert denied.get_json()["errors"][0]["context"]["requiredGranularScopes"]


def test_contacts_properties_history_and_paging(env):
    client, sb, clock, hub, headers = env
    created = client.post("/crm/v3/objects/contacts", headers=headers, json={
        "properties": {"email": "new@example.com", "firstname": "New", "lifecyclestage": "lead"}})
    assert created.status_code == 201
    cid = created.get_json()["id"]
    assert created.get_json()["properties"]["lifecyclestage"] == "lead"
    clock.now += 60
    patched = client.patch(f"/crm/v3/objects/contacts/{cid}", headers=headers,
                           json={"properties": {"lifecyclestage": "marketingqualifiedlead"}})
    assert patched.status_code == 200
    got = client.get(f"/crm/v3/objects/contacts/{cid}", headers=headers,
                     query_string={"properties": "lifecyclestage,email", "propertiesWithHistory": "lifecyclestage"})
    body = got.get_json()
    assert body["properties"]["lifecyclestage"] == "marketingqualifiedlead" and body["properties"]["email"]
    history = body["propertiesWithHistory"]["lifecyclestage"]
    assert [h["value"] for h in history] == ["marketingqualifiedlead", "lead"]
    assert history[0]["sourceType"] == "INTEGRATION" and history[0]["sourceId"] == str(sb.client_options[CLIENT_ID]["app_id"])
    dup = client.post("/crm/v3/objects/contacts", headers=headers, json={"properties": {"email": "NEW@example.com"}})
    assert dup.status_code == 409 and dup.get_json()["category"] == "CONFLICT" and cid in dup.get_json()["message"]

    page1 = client.get("/crm/v3/objects/contacts", headers=headers, query_string={"limit": 4}).get_json()
    assert len(page1["results"]) == 4
    page2 = client.get("/crm/v3/objects/contacts", headers=headers,
                       query_string={"limit": 4, "after": page1["paging"]["next"]["after"]}).get_json()
    ids = [r["id"] for r in page1["results"] + page2["results"]]
    assert len(ids) == len(set(ids)) == 6 and "paging" not in page2

    assert client.delete(f"/crm/v3/objects/contacts/{cid}", headers=headers).status_code == 204
    assert client.get(f"/crm/v3/objects/contacts/{cid}", headers=headers).status_code == 404
    assert client.get(f"/crm/v3/objects/contacts/{cid}", headers=headers,
                      query_string={"archived": "true"}).get_json()["archived"] is True


def test_validation_errors_name_the_property(env):
    client, sb, clock, hub, headers = env
    resp = client.post("/crm/v3/objects/contacts", headers=headers,
                       json={"properties": {"lifecyclestage": "bogus", "nope": "x"}})
    body = resp.get_json()
    assert resp.status_code == 400 and body["category"] == "VALIDATION_ERROR"
    assert body["message"].startswith("Property values were not valid")
    codes = {e["context"]["propertyName"][0]: e["code"] for e in body["errors"]}
    assert codes == {"lifecyclestage": "INVALID_OPTION", "nope": "PROPERTY_DOESNT_EXIST"}
    task = client.post("/crm/v3/objects/tasks", headers=headers, json={"properties": {"hs_task_subject": "x"}})
    assert task.status_code == 400 and task.get_json()["errors"][0]["context"]["propertyName"] == ["hs_timestamp"]
    assert client.post("/crm/v3/objects/contacts", headers=headers, data="[1,", content_type="application/json"
                       ).status_code == 400
    before = len(sb.records(hub, "tasks"))
    bad_owner = client.post("/crm/v3/objects/tasks", headers=headers, json={"properties": {
        "hs_timestamp": "2026-01-01T10:00:00Z", "hubspot_owner_id": "42"}})
    assert bad_owner.status_code == 400 and len(sb.records(hub, "tasks")) == before     # nothing half-written


def test_leads_need_a_name_and_a_primary_contact(env):
    client, sb, clock, hub, headers = env
    contact = sb.records(hub, "contacts")[0]
    primary = [{"to": {"id": contact["id"]}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                        "associationTypeId": 578}]}]
    no_name = client.post("/crm/v3/objects/leads", headers=headers, json={"properties": {}, "associations": primary})
    assert no_name.status_code == 400 and "hs_lead_name" in no_name.get_json()["message"]
    no_contact = client.post("/crm/v3/objects/leads", headers=headers, json={"properties": {"hs_lead_name": "L"}})
    assert no_contact.status_code == 400 and "primary contact" in no_contact.get_json()["message"]
    ghost = [{"to": {"id": "999"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 578}]}]
    assert client.post("/crm/v3/objects/leads", headers=headers,
                       json={"properties": {"hs_lead_name": "L"}, "associations": ghost}).status_code == 400
    wrong_stage = client.post("/crm/v3/objects/leads", headers=headers, json={
        "properties": {"hs_lead_name": "L", "hs_pipeline": "lead-pipeline-id", "hs_pipeline_stage": "2002"},
        "associations": primary})
    assert wrong_stage.status_code == 400
    made = client.post("/crm/v3/objects/leads", headers=headers,
                       json={"properties": {"hs_lead_name": "Maria - inbound"}, "associations": primary})
    assert made.status_code == 201
    lead = client.get(f"/crm/v3/objects/leads/{made.get_json()['id']}", headers=headers, query_string={
        "properties": "hs_pipeline,hs_pipeline_stage,hs_lead_name", "associations": "contacts"}).get_json()
    assert lead["properties"]["hs_pipeline"] == "lead-pipeline-id"
    assert lead["properties"]["hs_pipeline_stage"] == "new-stage-id"
    assert {"id": contact["id"], "type": "lead_to_contact"} in lead["associations"]["contacts"]["results"]
    disq = client.patch(f"/crm/v3/objects/leads/{lead['id']}", headers=headers, json={"properties": {
        "hs_pipeline_stage": "unqualified-stage-id", "hs_lead_disqualification_reason": "NOT_A_GOOD_FIT"}})
    assert disq.status_code == 200
    assert sb.value(hub, "leads", lead["id"], "hs_lead_is_open") == "false"
    labels = client.get("/crm/v4/associations/leads/contacts/labels", headers=headers).get_json()["results"]
    assert {"category": "HUBSPOT_DEFINED", "typeId": 578, "label": "Primary"} in labels
    v4 = client.get(f"/crm/v4/objects/contacts/{contact['id']}/associations/leads", headers=headers).get_json()
    assert int(lead["id"]) in [r["toObjectId"] for r in v4["results"]]


def test_deals_pipelines_properties_owners(env):
    client, sb, clock, hub, headers = env
    pipes = client.get("/crm/v3/pipelines/deals", headers=headers).get_json()["results"]
    won = next(st for st in pipes[0]["stages"] if st["id"] == "closedwon")
    assert won["metadata"] == {"isClosed": "true", "probability": "1.0"} and won["displayOrder"] == 5
    leads = client.get("/crm/v3/pipelines/leads", headers=headers).get_json()["results"]
    assert [st["id"] for st in leads[0]["stages"]] == ["new-stage-id", "attempting-stage-id", "connected-stage-id",
                                                       "qualified-stage-id", "unqualified-stage-id"]
    stage = client.get("/crm/v3/properties/contacts/lifecyclestage", headers=headers).get_json()
    values = [o["value"] for o in stage["options"]]
    assert values[:2] == ["subscriber", "lead"] and "1083247613" in values and "customer" in values
    reasons = client.get("/crm/v3/properties/leads/hs_lead_disqualification_reason", headers=headers).get_json()
    assert "NOT_A_GOOD_FIT" in [o["value"] for o in reasons["options"]]
    assert client.get("/crm/v3/properties/contacts/nope", headers=headers).status_code == 404
    owners = client.get("/crm/v3/owners", headers=headers).get_json()["results"]
    assert [o["email"] for o in owners] == ["ada@northwind-demo.com", "sam@northwind-demo.com"]
    assert owners[0]["userId"] and owners[0]["id"] != str(owners[0]["userId"])

    deal = client.post("/crm/v3/objects/deals", headers=headers, json={"properties": {
        "dealname": "Big one", "amount": "100", "hubspot_owner_id": owners[1]["id"]}}).get_json()
    assert deal["properties"]["dealstage"] == "appointmentscheduled"       # the default pipeline's first stage
    closed = client.patch(f"/crm/v3/objects/deals/{deal['id']}", headers=headers,
                          json={"properties": {"dealstage": "closedwon"}})
    assert closed.status_code == 200
    assert sb.value(hub, "deals", deal["id"], "hs_is_closed_won") == "true"
    wrong = client.patch(f"/crm/v3/objects/deals/{deal['id']}", headers=headers,
                         json={"properties": {"pipeline": "95001", "dealstage": "closedwon"}})
    assert wrong.status_code == 400

    found = client.post("/crm/v3/objects/deals/search", headers=headers, json={
        "filterGroups": [{"filters": [{"propertyName": "amount", "operator": "GTE", "value": "1500"}]}],
        "sorts": [{"propertyName": "amount", "direction": "DESCENDING"}], "properties": ["dealname", "amount"],
        "limit": 2}).get_json()
    assert found["total"] == 3 and [r["properties"]["amount"] for r in found["results"]] == ["12000", "4800"]
    assert found["paging"]["next"]["after"] == "2"
    too_many = client.post("/crm/v3/objects/deals/search", headers=headers, json={
        "filterGroups": [{"filters": [{"propertyName": "amount", "operator": "WHATEVER"}]}]})
    assert too_many.status_code == 400
    batch = client.post("/crm/v3/objects/deals/batch/read", headers=headers, json={
        "inputs": [{"id": deal["id"]}, {"id": "404404"}], "properties": ["dealstage"]})
    assert batch.status_code == 207 and batch.get_json()["errors"][0]["context"]["ids"] == ["404404"]
    assert batch.get_json()["results"][0]["properties"]["dealstage"] == "closedwon"


def test_rate_limit_rolling_ten_seconds():
    app, sb, clock = make(enforce_rate_limit=True, rate_limit=3)
    client = app.test_client()
    code, hub, uid = authorize(client, sb)
    headers = {"Authorization": f"Bearer {exchange(client, code).get_json()['access_token']}"}
    seen = [client.get("/crm/v3/owners", headers=headers) for _ in range(3)]
    assert [r.headers["X-HubSpot-RateLimit-Remaining"] for r in seen] == ["2", "1", "0"]
    assert seen[0].headers["X-HubSpot-RateLimit-Max"] == "3"
    assert seen[0].headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    limited = client.get("/crm/v3/owners", headers=headers)
    body = limited.get_json()
    assert limited.status_code == 429 and body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["errorType"] == "RATE_LIMIT" and "ten_secondly_rolling" in body["message"]
    clock.now += 10.01                                               # the window rolls on
    assert client.get("/crm/v3/owners", headers=headers).status_code == 200


def test_search_has_its_own_lower_limit():
    app, sb, clock = make(enforce_rate_limit=True, rate_limit=100, search_rate_limit=2)
    client = app.test_client()
    code, hub, uid = authorize(client, sb)
    headers = {"Authorization": f"Bearer {exchange(client, code).get_json()['access_token']}"}
    codes = [client.post("/crm/v3/objects/contacts/search", headers=headers, json={}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert client.get("/crm/v3/objects/contacts", headers=headers).status_code == 200
    clock.now += 1.01
    assert client.post("/crm/v3/objects/contacts/search", headers=headers, json={}).status_code == 200


def test_introspect_and_revoke_on_the_newer_paths():
    app, sb, clock = make()
    client = app.test_client()
    code, hub, uid = authorize(client, sb)
    pair = client.post("/oauth/2026-03/token", data={"grant_type": "authorization_code", "client_id": CLIENT_ID,
                                                     "client_secret": SECRET, "redirect_uri": REDIRECT,
                                                     "code": code}).get_json()
    creds = {"client_id": CLIENT_ID, "client_secret": SECRET}
    info = client.post("/oauth/2026-03/token/introspect", data={**creds, "token": pair["access_token"]}).get_json()
    assert info["active"] is True and info["hub_id"] == hub and info["user_id"] == uid
    assert client.post("/oauth/2026-03/token/introspect", data={"client_id": CLIENT_ID, "token": pair["access_token"]}
                       ).status_code == 400
    assert client.post("/oauth/2026-03/token/revoke", data={**creds, "token": pair["refresh_token"]}).status_code == 200
    assert client.post("/oauth/2026-03/token/introspect", data={**creds, "token": pair["refresh_token"]}
                       ).get_json() == {"active": False}
    assert hub in sb.installed_portals(CLIENT_ID)                   # revoking is not uninstalling
