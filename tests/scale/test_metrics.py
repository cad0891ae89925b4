"""/metrics as Prometheus reads it, and the fields of JSON log lines, on SQLite and PostgreSQL."""
from __future__ import annotations

import io
import json
import logging
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hub.errors import Fatal, Retriable
from hub.jobs import Worker, handler
from hub.jobs.worker import record_heartbeat
from hub.logs import JsonFormatter, current_context, log_context
from hub.store import Connection, FakeClock, Installation
from hub.web.metrics import WEBHOOK_REJECTS, dead_reason
from hub.webhooks.credentials import webhook_credentials


@handler("test.metrics.ok")
def _ok(ctx) -> None:
    logging.getLogger("hub.test").info("handled payload %s", ctx.payload.get("n"))


@handler("test.metrics.fatal")
def _fatal(ctx) -> None:
    raise Fatal("the target was deleted")


@handler("test.metrics.flaky")
def _flaky(ctx) -> None:
    if ctx.attempt < 2:
        raise Retriable("503 from the provider", retry_after=60)


def scrape(client, **headers) -> dict[str, list]:
    """{sample name: [(labels, value)]} of one scrape, parsed by Prometheus' own parser."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.content_type.startswith("text/plain; version=")
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples, name, **labels) -> float | None:
    for have, v in samples.get(name, []):
        if all(have.get(k) == str(x) for k, x in labels.items()):
            return v
    return None


def test_queue_depth_backlog_dead_letter_latency_retries(make_hub):
    clock = FakeClock()
    app = make_hub(clock=clock, **{"jobs.backoff_base": 1.0})
    services = app.extensions["hub"]
    queue = services.queue
    with services.db.begin() as s:
        for n in range(3):
            queue.enqueue(s, "test.metrics.ok", {"n": n}, installation_id=None)
        queue.enqueue(s, "test.metrics.fatal", {}, installation_id=None)
        queue.enqueue(s, "test.metrics.flaky", {}, installation_id=None)
        queue.enqueue(s, "test.metrics.ok", {"n": 99}, delay=3600, installation_id=None)   # not due yet
    client = app.test_client()
    before = scrape(client)
    assert value(before, "hub_database_up") == 1
    assert value(before, "hub_jobs", status="queued", kind="test.metrics.ok") == 4
    assert value(before, "hub_jobs_due", kind="test.metrics.ok") == 3
    assert value(before, "hub_jobs_oldest_due_seconds", kind="test.metrics.ok") == 0
    clock.advance(7)
    assert value(scrape(client), "hub_jobs_oldest_due_seconds", kind="test.metrics.ok") == 7

    worker = Worker(queue, app=app, worker_id="w")
    worker.drain()
    after = scrape(client)
    assert value(after, "hub_jobs", status="dead", kind="test.metrics.fatal") == 1
    assert value(after, "hub_jobs_dead_by_reason", kind="test.metrics.fatal", reason="Fatal") == 1
    assert value(after, "hub_jobs_finished_recent", kind="test.metrics.ok", status="done") == 3
    # the flaky job failed once: it waits for its retry, visible as such
    assert value(after, "hub_jobs_retrying", kind="test.metrics.flaky") == 1
    assert value(after, "hub_job_latency_seconds", kind="test.metrics.ok", quantile="0.5") == 7
    assert value(after, "hub_job_run_seconds", kind="test.metrics.ok", quantile="0.99") == 0
    clock.advance(61)
    worker.drain()
    final = scrape(client)
    assert value(final, "hub_job_retries_recent", kind="test.metrics.flaky") == 1
    assert value(final, "hub_jobs_retrying", kind="test.metrics.flaky") is None
    # the not-yet-due job is queued but not part of the due backlog
    assert value(final, "hub_jobs", status="queued", kind="test.metrics.ok") == 1
    assert value(final, "hub_jobs_due", kind="test.metrics.ok") == 0


def test_processes_leader_connections(make_hub):
    clock = FakeClock()
    app = make_hub(clock=clock)
    services = app.extensions["hub"]
    record_heartbeat(services.queue, "worker:a", "worker")
    record_heartbeat(services.queue, "worker:b", "worker")
    record_heartbeat(services.queue, "scheduler:a", "scheduler", is_leader=True)
    record_heartbeat(services.queue, "scheduler:b", "scheduler")
    with services.db.begin() as s:
        inst = Installation(provider="pipedrive", company_id="1", installer_user_id="1", endpoint_token="tok")
        s.add(inst)
        s.flush()
        s.add(Connection(installation_id=inst.id, provider="asana", role="target", account_id="1",
                         status="needs_reconnection"))
    samples = scrape(app.test_client())
    assert value(samples, "hub_processes_live", role="worker") == 2
    assert value(samples, "hub_processes_live", role="scheduler") == 2
    assert value(samples, "hub_scheduler_leaders") == 1
    assert value(samples, "hub_connections", provider="asana", role="target", status="needs_reconnection") == 1
    clock.advance(31)   # heartbeat_stale_seconds: dead processes stop counting
    samples = scrape(app.test_client())
    assert value(samples, "hub_processes_live", role="worker") == 0
    assert value(samples, "hub_scheduler_leaders") == 0


def test_webhook_rejects_are_counted_by_reason(make_hub):
    app = make_hub()
    services = app.extensions["hub"]
    with services.db.begin() as s:
        # a token of its own: the ingest endpoint caches tokens per process (across the sqlite/postgres runs)
        token = f"hook-{uuid.uuid4().hex}"
        inst = Installation(provider="pipedrive", company_id="7", installer_user_id="1", endpoint_token=token)
        s.add(inst)
        s.flush()
        user, password = webhook_credentials(services, s, inst.id, create=True)
    client = app.test_client()

    def count(reason: str, provider: str = "pipedrive") -> float:
        return WEBHOOK_REJECTS.labels(provider, reason)._value.get()

    base = {r: count(r) for r in ("unauthorized", "not_found", "malformed")}
    unknown = count("not_found", "unknown")
    assert client.post(f"/hooks/pipedrive/{token}", data=b"{}", auth=(user, "wrong")).status_code == 401
    assert client.post("/hooks/pipedrive/no-such-token", data=b"{}").status_code == 404
    assert client.post(f"/hooks/pipedrive/{token}", data=b"{not json", auth=(user, password)).status_code == 400
    assert client.post("/hooks/made-up-provider/x", data=b"{}").status_code == 404
    assert count("unauthorized") == base["unauthorized"] + 1
    assert count("not_found") == base["not_found"] + 1
    assert count("malformed") == base["malformed"] + 1
    assert count("not_found", "unknown") == unknown + 1     # an attacker's path does not make a label
    samples = scrape(client)
    assert value(samples, "hub_webhook_rejects_total", provider="pipedrive", reason="unauthorized") >= 1


def test_metrics_token_guards_the_endpoint(make_hub):
    app = make_hub(**{"metrics.token": "scrape-me-please"})
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert value(scrape(client, Authorization="Bearer scrape-me-please"), "hub_database_up") == 1


def test_a_scrape_answers_when_the_database_does_not(make_hub):
    app = make_hub()
    services = app.extensions["hub"]
    services.db.engine.dispose()
    original = services.db.engine.connect

    def broken():
        raise OSError("database down")
    services.db.engine.connect = broken
    try:
        assert value(scrape(app.test_client()), "hub_database_up") == 0
    finally:
        services.db.engine.connect = original


@pytest.mark.parametrize("error, reason", [
    ("Fatal: the task was deleted", "Fatal"), ("NeedsReauth: reconnect", "NeedsReauth"),
    ("requests.exceptions.HTTPError: 500", "HTTPError"), ("lease expired 8 times (worker lost)", "lease_expired"),
    ("no handler registered for job kind 'x'", "no_handler"), ("something odd happened", "other"), (None, "unknown")])
def test_dead_reason_labels_stay_bounded(error, reason):
    assert dead_reason(error) == reason


def test_json_log_lines_name_the_job_kind_and_installation(make_hub):
    app = make_hub()
    services = app.extensions["hub"]
    stream = io.StringIO()
    handler_ = logging.StreamHandler(stream)
    handler_.setFormatter(JsonFormatter())
    logger = logging.getLogger("hub.test")
    logger.addHandler(handler_)
    logger.setLevel(logging.INFO)
    try:
        with services.db.begin() as s:
            job_id = services.queue.enqueue(s, "test.metrics.ok", {"n": 1}, installation_id=42)
        Worker(services.queue, app=app, worker_id="w-json").drain()
        with log_context(installation_id=7):
            logger.info("outside a job, password=%s", "abcdefgh-secret")
    finally:
        logger.removeHandler(handler_)
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert first["message"] == "handled payload 1"
    assert (first["job_id"], first["job_kind"], first["attempt"], first["worker"], first["installation_id"]) == \
        (job_id, "test.metrics.ok", 1, "w-json", 42)
    assert first["ts"].endswith("Z") and first["level"] == "INFO" and first["logger"] == "hub.test"
    assert second["installation_id"] == 7 and "job_id" not in second
    assert "abcdefgh-secret" not in second["message"]        # redaction still applies


def test_web_requests_log_their_installation(make_hub):
    app = make_hub()
    seen = []
    app.teardown_request(lambda exc: seen.append(current_context()))   # runs before the context is unbound
    # an anonymous visitor is refused by the access check: its log lines still name the installation
    response = app.test_client().get("/i/5/settings", headers={"X-Request-Id": "req-1"})
    assert response.status_code in (302, 401, 403)
    assert seen[0]["installation_id"] == 5 and seen[0]["request_id"] == "req-1"
    assert (seen[0]["method"], seen[0]["path"]) == ("GET", "/i/5/settings")
    assert current_context() == {}
