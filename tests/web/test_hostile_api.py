"""Hostile input to the JSON API, the forms and the OAuth callbacks: a 4xx naming the field, never
a 5xx, and nothing stored. Each case here answered 500 (or silently took a wrong value) before
hub.inputs; `snapshot` counts every table's rows, so "nothing stored" covers the whole schema."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from hub.rules import service as rules
from hub.store.models import Base
from hub.store.models import Rule
from tests.sync.conftest import make_setup

RULE = {"name": "Hand off", "trigger": "deal.won", "action": "asana.task", "name_template": "Onboard"}
DEEP = b"[" * 5000 + b"]" * 5000


def snapshot(hub) -> dict[str, int]:
    with hub.services.db.begin() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


def text(value: dict, **tokens: str) -> bytes:
    """JSON with "@name" placeholders replaced by tokens json.dumps would not write (1e400, NaN)."""
    out = json.dumps(value)
    for key, token in tokens.items():
        out = out.replace(f'"@{key}"', token)
    return out.encode()


class Api:
    def __init__(self, hub):
        self.setup = make_setup(hub)
        self.hub, self.browser, self.iid = hub, self.setup.admin, self.setup.iid
        self.rule_id = rules.create(hub.services, self.iid, {   # no task target connected: an e-mail step
            "name": "Lost deal follow-up", "trigger": "deal.lost",
            "steps": [{"kind": "email", "templates": {"to": "sales@example.com", "subject": "Lost: {{ deal.title }}",
                                                      "body": "Call them back."}}]}, "test")["id"]
        self.csrf = self.browser.csrf(f"/i/{self.iid}/settings")

    def path(self, template: str) -> str:
        return template.format(api=f"/api/v1/installations/{self.iid}", i=f"/i/{self.iid}",
                               rule=self.rule_id, sync=self.setup.sync_id)

    def send(self, method: str, template: str, body: bytes | None = None, **kw):
        headers = {"X-CSRF-Token": self.csrf, "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return self.browser.request(method, self.path(template), data=body, headers=headers, **kw)


@pytest.fixture
def api(live_hub) -> Api:
    return Api(live_hub)


JSON_CASES = [
    ("POST", "{api}/rules", json.dumps(RULE).encode("utf-16"), "body"),
    ("POST", "{api}/rules", json.dumps(RULE).encode("utf-32"), "body"),
    ("POST", "{api}/rules", DEEP, "body"),
    ("POST", "{api}/rules", text({**RULE, "name": "\ud800"}), "name"),
    ("POST", "{api}/rules", text({**RULE, "name_template": "Onboard \udfff"}), "name_template"),
    ("PUT", "{api}/rules/{rule}", text({"conditions": [{"field": "title", "op": "eq", "value": "\ud800"}]}),
     "conditions.0.value"),
    ("PUT", "{api}/rules/{rule}", text({"target": {"connection_id": "@n"}}, n="1e400"), "target.connection_id"),
    ("POST", "{api}/rules/preview", text({"rule": RULE, "object_id": "²"}), "object_id"),
    ("POST", "{api}/rules/preview", text({"rule": RULE, "object_id": "١٢"}), "object_id"),
    ("GET", "{api}/rules/catalog?connection_id=²", None, "connection_id"),
    ("GET", "{api}/rules/catalog?connection_id=1e400", None, "connection_id"),
    ("POST", "{api}/sync", DEEP, "body"),
    ("PATCH", "{api}/sync/{sync}", text({"schedule_seconds": "@n"}, n="1e400"), "schedule_seconds"),
    ("PATCH", "{api}/sync/{sync}", text({"schedule_seconds": 1e20}), "schedule_seconds"),
    ("PATCH", "{api}/sync/{sync}", text({"contact_cap": "١٢"}), "contact_cap"),
    ("PATCH", "{api}/sync/{sync}", text({"contact_cap": "@n"}, n="Infinity"), "contact_cap"),
    ("PATCH", "{api}/sync/{sync}", text({"delete_share": "@n"}, n="NaN"), "delete_share"),
    ("PATCH", "{api}/sync/{sync}", text({"delete_share": "inf"}), "delete_share"),
    ("PATCH", "{api}/sync/{sync}", text({"person_filter": {"owner_id": "²"}}), "person_filter.owner_id"),
    ("PATCH", "{api}/sync/{sync}", text({"name": "Team \ud800"}), "name"),
    ("POST", "{api}/sync/{sync}/shares", text({"connection_id": "@n", "mode": "edit"}, n="1e400"), "connection_id"),
    ("POST", "{api}/sync/{sync}/shares", text({"connection_id": 1, "mode": "\udfff"}), "mode"),
    ("POST", "{api}/sync/{sync}/deletions", DEEP, "body"),
    ("GET", "{api}/sync/labels?connection_id=²", None, "connection_id"),
    ("GET", "{api}/sync/labels?connection_id=inf", None, "connection_id"),
    ("GET", "{api}/events?limit=١٢", None, "limit"),
    ("GET", "{api}/runlog?limit=nan", None, "limit"),
    ("PUT", "{api}/visibility", text({"visibility": "all", "users": ["\ud800"]}), "users.0"),
]


def test_the_api_refuses_hostile_input_naming_the_field(api):
    """One hub for all the cases (a set-up costs seconds); every failing case is reported."""
    failures = []
    for method, template, body, field in JSON_CASES:
        before = snapshot(api.hub)
        answer = api.send(method, template, body)
        if answer.status_code != 400 or field not in answer.json().get("fields", {}):
            failures.append(f"{method} {template} {field}: {answer.status_code} {answer.text[:200]}")
        elif snapshot(api.hub) != before:
            failures.append(f"{method} {template} {field}: refused, yet something was stored")
    assert not failures, "\n".join(failures)


FORM_CASES = [   # (page, form, what the 400 page must say)
    ("{i}/sync/{sync}", {"name": "Team contacts", "direction": "two_way", "conflict_policy": "newest",
                         "schedule_minutes": "inf", "map_crm": "name", "map_store": "name"}, "expected a whole number"),
    ("{i}/sync/{sync}", {"name": "Team contacts", "direction": "two_way", "conflict_policy": "newest",
                         "schedule_minutes": "1e400", "map_crm": "name", "map_store": "name"}, "expected a whole number"),
    ("{i}/rules/{rule}", {"name": "x", "condition_rows": "²", "do": "save"}, "condition_rows"),
    ("{i}/rules/{rule}", {"name": "x", "step_count": "1", "step_0_kind": "asana.task", "step_0_connection_id": "²",
                          "do": "save"}, "Not a valid integer"),
]


def test_forms_refuse_hostile_numbers_with_a_400_page(api):
    failures = []
    for template, form, field in FORM_CASES:
        before = snapshot(api.hub)
        page = api.path(template)
        answer = api.browser.form_post(page, form, csrf_from=page)
        if answer.status_code != 400 or field not in answer.text:
            failures.append(f"{template} {field}: {answer.status_code} {answer.text[:200]}")
        elif snapshot(api.hub) != before:
            failures.append(f"{template} {field}: refused, yet something was stored")
    assert not failures, "\n".join(failures)


def test_an_unknown_provider_is_not_found_on_every_route(live_hub):
    browser = live_hub.browser()
    for method in ("DELETE", "POST", "GET"):
        answer = browser.request(method, "/oauth/nope/callback", auth=("client", "secret"),
                                 json={"company_id": 1, "user_id": 2, "isShared": True})
        assert answer.status_code == 404, (method, answer.text[:300])
    for path in ("/install/nope", "/login/nope", "/hooks/nope/token"):
        assert browser.request("POST" if path.startswith("/hooks") else "GET", path).status_code == 404


def test_a_stored_value_that_is_not_text_still_renders(api):
    """Written before input was checked: a condition value holding an unpaired surrogate (a JSON
    column keeps it as an escape). Pages and the API show U+FFFD instead of failing."""
    with api.hub.services.db.begin() as s:
        rule = s.get(Rule, api.rule_id)
        rule.conditions = [{"field": "title", "op": "eq", "value": "bad \ud800 value"}]
    page = api.browser.get(api.path("{i}/rules/{rule}"))
    assert page.status_code == 200 and "bad \ufffd value" in page.text
    listing = api.browser.get(api.path("{i}/rules"))
    assert listing.status_code == 200
    answer = api.send("GET", "{api}/rules/{rule}")
    assert answer.status_code == 200


def test_nul_in_a_form_or_query_is_refused_naming_the_field(api):
    """Forms and query strings decode bad UTF-8 leniently, but NUL passes; PostgreSQL cannot store it."""
    before = snapshot(api.hub)
    page = api.path("{i}/rules/{rule}")
    answer = api.browser.form_post(page, {"name": "a\x00b", "do": "save"}, csrf_from=page)
    assert answer.status_code == 400 and "name" in answer.text
    answer = api.send("GET", "{api}/inbox?status=a%00b")
    assert answer.status_code == 400 and "status" in answer.json()["fields"]
    assert snapshot(api.hub) == before


def test_ids_in_urls_are_ascii_digits(api):
    """werkzeug's int converter matches any Unicode digit (`١` routes to installation 1)."""
    for path in ("/api/v1/installations/١/rules", "/api/v1/installations/{iid}/rules/١".format(iid=api.iid),
                 "/i/١/settings"):
        assert api.browser.get(path, headers={"Accept": "application/json"}).status_code == 404, path
    assert api.browser.get(f"/api/v1/installations/{api.iid}/rules").status_code == 200
