"""A record id given to preview goes into a CRM API path: an id the CRM cannot have issued is
refused with a 400 naming `object_id`, and the sandbox CRM sees no request at all for it (so
`../users/me` can never make the hub call another endpoint with the installer's token)."""
from __future__ import annotations

import uuid

import pytest
from flask import request, request_started

from tests.rules.test_api import Api, full_rule

HOSTILE = ["../users/me", "%2e%2e%2fusers%2fme", "1/../../users/me", "1?x=", "1#", "..", "0", "-1", "1.0"]


@pytest.fixture
def api(env):
    return Api(env)


@pytest.fixture
def crm_requests(env):
    """Paths the sandbox CRM received (as its own Flask app routed them)."""
    app = env.services.extras["sandbox"]["pipedrive"]
    seen: list[str] = []

    def record(sender, **extra):
        seen.append(request.path)
    request_started.connect(record, app)
    yield seen
    request_started.disconnect(record, app)


@pytest.mark.parametrize("trigger", ["deal.won", "lead.added"])
def test_preview_refuses_ids_the_crm_cannot_have_issued(env, api, crm_requests, trigger):
    rule = full_rule(env, trigger=trigger)
    api.call("GET", "/catalog")          # catalogs cached: what follows is the preview's own traffic
    crm_requests.clear()
    for bad in HOSTILE:
        answer = api.call("POST", "/preview", {"rule": rule, "object_id": bad})
        assert answer.status_code == 400, (bad, answer.text)
        assert set(answer.json()["fields"]) == {"object_id"}, (bad, answer.json())
    assert not [p for p in crm_requests if "/deals/" in p or "/leads/" in p or p.endswith("/users/me")], crm_requests

    # the same path with an id of the right shape does reach the CRM (the recording works)
    good = env.deal("Nordwind GmbH - 40")["id"] if trigger == "deal.won" else str(uuid.uuid4())
    answer = api.call("POST", "/preview", {"rule": rule, "object_id": good})
    assert answer.status_code == (200 if trigger == "deal.won" else 400), answer.text
    kind = "deals" if trigger == "deal.won" else "leads"
    assert any(p.endswith(f"/{kind}/{good}") for p in crm_requests), crm_requests


def test_rule_ids_are_checked_by_their_provider(env, api):
    bad = full_rule(env, pipeline_id="../users/me", target={"connection_id": env.asana_id,
                                                            "workspace_gid": "1/../../users/me",
                                                            "project_gid": "1?x="})
    answer = api.call("POST", body=bad)
    assert answer.status_code == 400
    fields = answer.json()["fields"]
    assert "positive whole number" in fields["pipeline_id"]
    assert "gid" in fields["target.workspace_gid"] and "gid" in fields["target.project_gid"]
