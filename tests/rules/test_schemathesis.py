"""schemathesis against the hub's OpenAPI document (/api/v1/openapi.json), which covers the whole
JSON API (rules, runs, sync, shares, connections, jobs, run log, visibility; tests/web/test_openapi.py
checks that), over HTTP, as the signed-in installer with Asana and two Google accounts connected, a
sync shared with the second: generated valid and invalid requests for every operation must never
get a 5xx, every answer must match the document (status code, content type, headers, body
schema), and a refused request (4xx) must have stored nothing (every table's row count unchanged).

Deterministic: hypothesis is derandomized (the examples follow from the document) and has no
example database; bounded: a fixed number of examples per operation and mode (the budget is about
a minute for the whole API).

Generated ids rarely name anything that exists, so the installation id is always the installer's
and three generated ids in four are mapped onto objects the test made (rules, runs, the sync, its
share, an event, a failed webhook, a dead job); the others stay as generated (404s are checked
too). Each operation must also have succeeded at least once, so a pass is not all 404s. DELETE
gets a throwaway rule or share; the operations that end things (disconnect, uninstall) run last."""
from __future__ import annotations

import itertools
import traceback
from collections import Counter

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)
from sqlalchemy import func, select, update

from hub.rules import service
from hub.store import HubEvent, InboxEvent, Job
from hub.store.models import Base, ContactSync, RuleRun
from hub.sync import service as syncs
from tests.sync.conftest import connect_google
from tests.web.conftest import ADMIN, DEV

EXAMPLES = 5           # per operation and mode
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
LAST = ("/connections/{connection_id}/disconnect", "/uninstall")   # these end what the others need
ODD_WEBHOOK = {"meta": {"action": "change", "entity": "deal", "entity_id": "5", "version": "2.0",
                        "id": "11111111-2222-3333-4444-555555555555"}, "data": None, "previous": None}


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
        self._sync_setup()
        self._runlog_setup()
        self.serial = itertools.count(1)
        self._tasks_setup()
        self.turns = itertools.count(1)   # bodies are aimed three times in four, whatever hypothesis draws

    def _sync_setup(self) -> None:
        env, hub = self.env, self.env.hub
        connect_google(hub, self.browser, env.iid, "anna@sandbox.example")
        connect_google(hub, self.browser, env.iid, "ben@sandbox.example")
        with env.services.db.begin() as s:
            anna, ben = [c.id for c in syncs.store_connections(s, env.iid)]
        sync = syncs.create(env.services, env.iid, "test", {"name": "Team contacts", "store_connection_id": anna,
                                                            "group": "__new__", "new_group_name": "Acme CRM",
                                                            "schedule_seconds": 0})
        self.google, self.colleague, self.sync_id = anna, ben, sync.id
        self.share_id = self._share()

    def _share(self) -> int:
        return syncs.create_share(self.env.services, self.env.iid, self.sync_id, "test",
                                  {"connection_id": self.colleague, "mode": "read"}).id

    def _runlog_setup(self) -> None:
        """A webhook that fails to normalize: a failed inbox event and a dead job to replay."""
        env = self.env
        with env.services.db.begin() as s:
            from hub.store import RegisteredWebhook
            from hub.webhooks.credentials import webhook_credentials
            hook = s.scalar(select(RegisteredWebhook))
            auth = webhook_credentials(env.services, s, hook.installation_id)
        assert requests.post(hook.url, json=ODD_WEBHOOK, auth=auth).status_code == 200
        env.hub.run_jobs()
        with env.services.db.begin() as s:
            self.inbox_id = s.scalar(select(InboxEvent.id).where(InboxEvent.status == "failed"))
            self.dead_job_id = s.scalar(select(Job.id).where(Job.status == "dead", Job.kind == "webhook.process"))
            self.event_id = s.scalar(select(func.max(HubEvent.id)))
        assert self.inbox_id and self.dead_job_id and self.event_id

    def _tasks_setup(self) -> None:
        """Task templates: a set (an Asana task, for the admin, fully shared), its task made for a
        deal (the calendar's), a suggestion for the admin."""
        from hub.store.models import HubTask
        from hub.tasks import config, sets

        env = self.env
        config.update(env.services, env.iid, {"sharing": "full"})
        self.template = {"title": "Call {{ deal.title }}", "kind": "asana.task", "connection_id": env.asana_id,
                         "delay_days": 1, "responsible": env.user("dana"),
                         "settings": {"workspace_gid": env.workspace("Acme Sandbox Org"),
                                      "project_gid": env.project("Renewals")}}
        made = sets.create(env.services, env.iid, {"name": "Calls", "templates": [self.template]})
        self.set_id, self.template_id = made["id"], made["templates"][0]["id"]
        self.type_id = config.view(env.services, env.iid)["types"][0]["id"]
        answer = self.browser.post(f"/api/v1/installations/{env.iid}/tasks/apply", headers={"X-CSRF-Token": self.csrf},
                                   json={"set_id": self.set_id, "object_type": "deal", "object_id": self.deal_id})
        assert answer.status_code == 202, answer.text
        env.hub.run_jobs()
        with env.services.db.begin() as s:
            task = s.scalar(select(HubTask))
            assert task is not None
            task.owner_email, self.task_id = "", task.id
            task.due_at = None

    def _suggestion(self) -> int:
        from hub.store import utcnow
        from hub.store.models import TaskSuggestion
        with self.env.services.db.begin() as s:
            row = TaskSuggestion(installation_id=self.env.iid, effect_key=f"st:{next(self.serial)}",
                                 template_id=self.template_id, object_type="deal", object_id=self.deal_id,
                                 completed_task="a task", to_email="", to_user_id=str(ADMIN), status="open",
                                 nonce="n", expires_at=utcnow().replace(year=2100), created_at=utcnow())
            s.add(row)
            s.flush()
            return row.id

    def _aim_tasks(self, case, params: dict, aimed: dict, path: str, method: str) -> None:
        from hub.tasks import config, sets
        env = self.env
        if aimed.get("type_id"):
            params["type_id"] = config.add_type(env.services, env.iid, {"name": f"Type {next(self.serial)}"})["id"] \
                if method == "DELETE" else self.type_id
        if aimed.get("set_id"):
            params["set_id"] = sets.create(env.services, env.iid, {"name": "Throwaway", "templates": [self.template]})[
                "id"] if method == "DELETE" else self.set_id
        if aimed.get("task_id"):
            params["task_id"] = self.task_id
        if aimed.get("suggestion_id"):
            params["suggestion_id"] = self._suggestion()
        body = case.body
        if not isinstance(body, dict) or next(self.turns) % 4 == 0 or "/tasks/" not in path:
            return
        if path.endswith("/tasks/types") and method == "POST":
            body.update(name=f"Kind {next(self.serial)}", sharing="full")
        elif path.endswith("/types/{type_id}"):
            body.pop("name", None)
        elif path.endswith("/tasks/sets"):
            body.update(name="A set", templates=[dict(self.template)])
        elif path.endswith("/sets/{set_id}"):       # keeps its template (a next-task rule may use it)
            body.update(name="A set", templates=[dict(self.template, id=self.template_id)])
        elif path.endswith("/next-tasks"):
            body.update(from_type_id=self.type_id, template_id=self.template_id, mode="suggest")
        elif path.endswith("/post-sale"):
            body.update(pipeline_id=env.pipeline("Renewals"), outcome="won", set_id=self.set_id)
        elif path.endswith("/tasks/apply"):
            body.update(set_id=self.set_id, object_type="deal", object_id=self.deal_id, key=f"k{next(self.serial)}")
        elif path.endswith("/calendar/{task_id}"):
            body["due"] = "2026-12-10T10:00"
        elif path.endswith("/tasks/options"):
            body.pop("timezone", None)

    def snapshot(self) -> dict[str, int]:
        with self.env.services.db.begin() as s:
            return {t.name: s.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}

    def aim(self, case) -> None:
        """Point the generated request at things that exist, three times in four (a generated id
        divisible by 4 is kept: it names nothing, and the 404 is checked too)."""
        params = case.path_parameters or {}
        if "installation_id" in params:
            params["installation_id"] = self.env.iid
        path, method = case.path, case.method.upper()
        aimed = {k: isinstance(v, int) and v % 4 != 0 for k, v in params.items()}
        rule_id = params.get("rule_id")
        if aimed.get("rule_id"):
            if method == "DELETE":
                params["rule_id"] = service.create(self.env.services, self.env.iid, {"preset": "lost_followup"},
                                                   str(ADMIN))["id"]
            else:
                params["rule_id"] = self.rule_ids[rule_id % len(self.rule_ids)]
                if aimed.get("run_id"):
                    # the failed run belongs to the first rule: aim there so a retry can succeed (a
                    # retried run is queued: failed again first); one in eight aims at the done run
                    done = params["run_id"] % 8 == 1
                    params["rule_id"], params["run_id"] = self.rule_ids[0], self.run_ids[1 if done else 0]
                    with self.env.services.db.begin() as s:
                        s.execute(update(RuleRun).where(RuleRun.id == self.run_ids[0]).values(status="failed"))
        if aimed.get("sync_id"):
            params["sync_id"] = self.sync_id
            if path.endswith("/deletions"):
                with self.env.services.db.begin() as s:
                    s.get(ContactSync, self.sync_id).pending_deletes = {"crm": ["1"], "store": []}
        if aimed.get("share_id"):
            params["share_id"] = self.share_id = self._existing_share()
        for name, value in (("event_id", self.event_id), ("inbox_id", self.inbox_id), ("job_id", self.dead_job_id)):
            if aimed.get(name):
                params[name] = value
        if aimed.get("job_id"):
            with self.env.services.db.begin() as s:   # a replayed job is queued again: make it dead once more
                s.execute(update(Job).where(Job.id == self.dead_job_id).values(status="dead"))
        if aimed.get("connection_id"):
            params["connection_id"] = self.colleague
        if "crm_user_id" in params and len(str(params["crm_user_id"])) % 4:
            params["crm_user_id"] = str(DEV)      # a colleague in the CRM's directory: roles can change
        self._aim_body(case, path, method)
        self._aim_tasks(case, params, aimed, path, method)
        query = case.query if isinstance(case.query, dict) else None
        if query and isinstance(query.get("connection_id"), int) and query["connection_id"] % 4:
            query["connection_id"] = self.google if path.endswith("/labels") else self.env.asana_id

    def _existing_share(self) -> int:
        with self.env.services.db.begin() as s:
            found = s.scalar(select(ContactSync.id).where(ContactSync.parent_id == self.sync_id))
        return found or self._share()

    def _aim_body(self, case, path: str, method: str) -> None:
        body = case.body
        if not isinstance(body, dict):
            return
        aimed = next(self.turns) % 4 != 0
        if path.endswith("/preview") and aimed:
            # a rule's steps are too rich to be valid by chance: aim at a one-step rule and a real deal
            body["rule"] = {"name": "Preview", "trigger": "deal.won", "action": "asana.task",
                            "name_template": "{{ deal.title }}", "pipeline_id": self.env.pipeline("Renewals")}
            body["object_id"] = self.deal_id
            body.pop("step", None)
        elif path.endswith("/rules") and method == "POST" and aimed and not body.get("preset"):
            for key in ("steps", "action", "target", "carry", "name_template", "description_template",
                        "field_mappings", "conditions"):
                body.pop(key, None)
            body["preset"] = "lost_followup"
        elif path.endswith("/sync") and method == "POST" and aimed:
            for key in ("field_map", "schedule_seconds", "contact_cap", "group"):
                body.pop(key, None)
            body.update(store_connection_id=self.google, group="__new__", name=f"Sync {next(self.serial)}",
                        new_group_name=f"Label {next(self.serial)}")
        elif path.endswith("/sync/{sync_id}") and method == "PATCH" and aimed:
            for key in ("field_map", "schedule_seconds", "contact_cap", "group", "person_filter"):
                body.pop(key, None)
        elif path.endswith("/shares") and method == "POST" and aimed:
            with self.env.services.db.begin() as s:
                share = s.scalar(select(ContactSync.id).where(ContactSync.parent_id == self.sync_id))
            if share is not None:   # free the colleague's account so the share can be made again
                syncs.remove_share(self.env.services, self.env.iid, self.sync_id, share, "test")
            body["connection_id"] = self.colleague


@pytest.fixture
def target(env) -> Target:
    return Target(env)


def operations(target) -> list:
    doc = target.browser.get("/api/v1/openapi.json").json()
    schema = schemathesis.openapi.from_dict(doc)
    schema.config.update(base_url=target.env.hub.url, request_timeout=10)
    ops = [result.ok() for result in schema.get_all_operations()]
    return sorted(ops, key=lambda op: next((n + 1 for n, end in enumerate(LAST) if op.path.endswith(end)), 0))


def test_api_conforms_to_its_openapi_document(target):
    """Every operation, valid and invalid inputs: a failure names the operation, the check and
    the request (as curl) that broke it. (schemathesis's pytest plugin loader does not run on
    pytest 9, so the strategies are driven with hypothesis directly.)"""
    failures: list[str] = []
    statuses: dict[tuple[str, str], Counter] = {}
    last_refusal: dict[str, str] = {}
    sent = 0
    ops = operations(target)
    assert len(ops) >= 43, [op.label for op in ops]
    for operation in ops:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis.settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                                 phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def exchange(case):
                nonlocal sent
                target.aim(case)
                before = target.snapshot()
                sent += 1
                response = case.call_and_validate(session=target.browser, headers={"X-CSRF-Token": target.csrf},
                                                  checks=CHECKS)
                statuses.setdefault((operation.label, mode.value), Counter())[response.status_code] += 1
                if 400 <= response.status_code < 500:
                    last_refusal[operation.label] = response.text[:300]
                    after = target.snapshot()
                    assert after == before, f"refused ({response.status_code}), yet stored: " + str(
                        {k: (before[k], after[k]) for k in after if after[k] != before[k]})

            try:
                exchange()
            except (Exception, BaseExceptionGroup) as exc:   # noqa: BLE001  (collect them all, fail once)
                failures.append(f"{operation.label} [{mode.value}]: {exc!s}" if str(exc) else
                                f"{operation.label} [{mode.value}]: " + "".join(traceback.format_exception(exc)))
    assert not failures, f"{len(failures)} operation(s) failed:\n\n" + "\n\n".join(failures)
    assert sent >= len(ops) * EXAMPLES
    # not a vacuous pass: every operation also succeeded on something that exists
    succeeded = {label for (label, _), counts in statuses.items() if any(200 <= c < 300 for c in counts)}
    assert succeeded == {op.label for op in ops}, [(label, mode, dict(counts), last_refusal.get(label))
                                                   for (label, mode), counts in statuses.items()
                                                   if label not in succeeded]
