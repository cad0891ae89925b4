"""schemathesis against the hub's own OpenAPI document (/api/v1/openapi.json), over HTTP, as the
signed-in installer with Asana connected: generated valid and invalid requests for every operation
must never get a 5xx and every answer must match the document (status code, content type,
headers, body schema).

Deterministic: hypothesis is derandomized (the examples follow from the document) and has no
example database; bounded: a fixed number of examples per operation.

Generated ids rarely name anything that exists, so the installation id is always the installer's
and three generated rule/run ids in four are mapped onto rules and runs the test made (a done run
with its Asana link, a failed one that can be retried); the others stay as generated (404s are
checked too). Each operation must also have succeeded at least once, so a pass is not all 404s.
DELETE gets a throwaway rule, so the operations after it still find rules."""
from __future__ import annotations

import traceback
from collections import Counter

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

from hub.rules import service
from tests.web.conftest import ADMIN

EXAMPLES = 20          # per operation and mode
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


class Target:
    """The live hub the generated requests go to, and the ids worth aiming at."""

    def __init__(self, env):
        self.env = env
        self.browser = env.browser
        self.csrf = self.browser.csrf(f"/i/{env.iid}/settings")
        failing = env.rule(name="Failing rule", carry={"attachments": False})
        working = env.rule(name="Working rule", pipeline_id=env.pipeline("Renewals"),
                           target={"project_gid": env.project("Renewals")})
        draft = env.rule(name="Draft rule", status="draft", trigger="deal.lost")
        with env.asana.state.change():
            env.asana._t("projects").pop(env.project("Won deals – onboarding"))   # deleted in Asana: runs fail
        env.pd.mark_won(env.deal("Nordwind GmbH - 40")["id"])
        renewal = next(d for d in env.pd.data["pd_deals"].values()
                       if str(d["pipeline_id"]) == env.pipeline("Renewals") and d["status"] == "open")
        env.pd.mark_won(renewal["id"])
        env.settle()
        runs = {r.rule_id: r for r in env.runs()}
        assert runs[failing["id"]].status == "failed" and runs[working["id"]].status == "done", \
            [(r.rule_id, r.status, r.error) for r in runs.values()]
        self.rule_ids = [failing["id"], working["id"], draft["id"]]
        self.run_ids = [runs[failing["id"]].id, runs[working["id"]].id]
        self.deal_id = str(renewal["id"])

    def aim(self, case) -> None:
        """Point the generated request at things that exist, three times in four (a generated id
        divisible by 4 is kept: it names nothing, and the 404 is checked too)."""
        params = case.path_parameters or {}
        if "installation_id" in params:
            params["installation_id"] = self.env.iid
        rule_id = params.get("rule_id")
        if isinstance(rule_id, int) and rule_id % 4:
            if case.method.upper() == "DELETE":
                params["rule_id"] = service.create(self.env.services, self.env.iid, {"preset": "lost_followup"},
                                                   str(ADMIN))["id"]
            else:
                params["rule_id"] = self.rule_ids[rule_id % len(self.rule_ids)]
                run_id = params.get("run_id")
                if isinstance(run_id, int) and run_id % 4:
                    # the failed run belongs to the first rule: aim there so a retry can succeed
                    params["rule_id"], params["run_id"] = self.rule_ids[0], self.run_ids[run_id % 2]
        body = case.body
        if case.path.endswith("/preview") and isinstance(body, dict) and isinstance(body.get("rule"), dict) \
                and len(str(body.get("object_id"))) % 2 and body["rule"].get("trigger") != "lead.added":
            body["object_id"] = self.deal_id


@pytest.fixture
def target(env) -> Target:
    return Target(env)


def operations(target) -> list:
    doc = target.browser.get("/api/v1/openapi.json").json()
    schema = schemathesis.openapi.from_dict(doc)
    schema.config.update(base_url=target.env.hub.url, request_timeout=10)
    return [result.ok() for result in schema.get_all_operations()]


def test_api_conforms_to_its_openapi_document(target):
    """Every operation, valid and invalid inputs: a failure names the operation, the check and
    the request (as curl) that broke it. (schemathesis's pytest plugin loader does not run on
    pytest 9, so the strategies are driven with hypothesis directly.)"""
    failures: list[str] = []
    statuses: dict[tuple[str, str], Counter] = {}
    sent = 0
    ops = operations(target)
    assert len(ops) >= 12, [op.label for op in ops]
    for operation in ops:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis.settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                                 phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def exchange(case):
                nonlocal sent
                target.aim(case)
                sent += 1
                response = case.call_and_validate(session=target.browser, headers={"X-CSRF-Token": target.csrf},
                                                  checks=CHECKS)
                statuses.setdefault((operation.label, mode.value), Counter())[response.status_code] += 1

            try:
                exchange()
            except (Exception, BaseExceptionGroup) as exc:   # noqa: BLE001  (collect them all, fail once)
                failures.append(f"{operation.label} [{mode.value}]: {exc!s}" if str(exc) else
                                f"{operation.label} [{mode.value}]: " + "".join(traceback.format_exception(exc)))
    assert not failures, f"{len(failures)} operation(s) failed:\n\n" + "\n\n".join(failures)
    assert sent >= len(ops) * EXAMPLES
    # not a vacuous pass: every operation also succeeded on something that exists
    succeeded = {label for (label, _), counts in statuses.items() if any(200 <= c < 300 for c in counts)}
    assert succeeded == {op.label for op in ops}, {op.label for op in ops} - succeeded


def test_the_document_names_every_rules_route(live_hub):
    """Every JSON route of the rules blueprint is in the document schemathesis tests (a route left
    out would escape the check above)."""
    from hub.rules.web import bp

    doc = live_hub.browser().get("/api/v1/openapi.json").json()
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    routes = set()
    for rule in live_hub.app.url_map.iter_rules():
        if rule.endpoint.startswith(bp.name + ".") and rule.rule.startswith("/api/v1/installations/"):
            path = rule.rule.replace("<int:", "{").replace(">", "}")
            routes |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes and routes <= documented, routes - documented
