"""/healthz and /readyz as an orchestrator or load balancer reads them."""
from __future__ import annotations

from hub.jobs.worker import record_heartbeat
from hub.store import FakeClock, migrate


def test_healthz_and_readyz_follow_the_worker_heartbeat(make_hub):
    clock = FakeClock()
    app = make_hub(clock=clock)
    client = app.test_client()
    assert client.get("/healthz").json == {"status": "ok"}
    body = client.get("/readyz")
    assert body.status_code == 503
    assert body.json["checks"]["database"] == {"ok": True}
    assert body.json["checks"]["migrations"] == {"ok": True}
    assert "no worker heartbeat" in body.json["checks"]["worker"]["error"]
    services = app.extensions["hub"]
    record_heartbeat(services.queue, "worker:test", "worker")
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["status"] == "ok"
    clock.advance(31)  # heartbeat_stale_seconds = 30
    assert client.get("/readyz").status_code == 503


def test_readyz_reports_an_old_schema(make_hub):
    app = make_hub()
    migrate.downgrade(app.extensions["hub"].db.engine, "base")
    body = app.test_client().get("/readyz")
    assert body.status_code == 503
    assert "flask --app hub db upgrade" in body.json["checks"]["migrations"]["error"]
