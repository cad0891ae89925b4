"""/healthz: the process answers. /readyz: it can do work (database, schema, a live worker)."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, jsonify
from sqlalchemy import func, select

from ..store import ProcessHeartbeat
from ..store.migrate import is_current

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    services = current_app.extensions["hub"]
    checks: dict[str, dict] = {}
    try:
        services.db.ping()
        checks["database"] = {"ok": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": f"unreachable ({type(exc).__name__})"}
    if checks["database"]["ok"]:
        try:
            current = is_current(services.db.engine)
            checks["migrations"] = {"ok": current} if current else {
                "ok": False, "error": "schema is not at the latest migration: run `flask --app hub db upgrade`"}
        except Exception as exc:
            checks["migrations"] = {"ok": False, "error": type(exc).__name__}
        try:
            stale = services.settings["scheduler.heartbeat_stale_seconds"]
            since = services.queue.clock.now() - timedelta(seconds=stale)
            with services.db.begin() as session:
                live = session.scalar(select(func.count()).select_from(ProcessHeartbeat).where(
                    ProcessHeartbeat.role == "worker", ProcessHeartbeat.beat_at >= since))
            checks["worker"] = {"ok": bool(live), "live_workers": live} if live else {
                "ok": False, "live_workers": 0, "error": f"no worker heartbeat in the last {stale:g} s"}
        except Exception as exc:
            checks["worker"] = {"ok": False, "error": type(exc).__name__}
    ok = all(c["ok"] for c in checks.values())
    return jsonify({"status": "ok" if ok else "unavailable", "checks": checks}), (200 if ok else 503)
