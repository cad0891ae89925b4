"""The OpenAPI document covers the whole JSON API: every route under /api/ (walked from
`app.url_map`, whatever blueprint brings it) is an operation of /api/v1/openapi.json, so the
schemathesis test (test_schemathesis.py) reaches every one."""
from __future__ import annotations

import re


def routes(app) -> set[tuple[str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            out |= {(path, method) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return out


def test_every_api_route_is_in_the_document(live_hub):
    doc = live_hub.browser().get("/api/v1/openapi.json").json()
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    api = routes(live_hub.app)
    assert len(api) >= 43, sorted(api)
    assert not api - documented, sorted(api - documented)
    assert not documented - api, sorted(documented - api)       # nor does it name what is not there


def test_every_operation_documents_its_parameters_and_errors(live_hub):
    doc = live_hub.browser().get("/api/v1/openapi.json").json()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            named = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert named == set(re.findall(r"\{(\w+)\}", path)), (method, path)
            assert {"400", "401", "403", "404"} <= set(op["responses"]), (method, path)
            assert op["tags"] and op["summary"], (method, path)
