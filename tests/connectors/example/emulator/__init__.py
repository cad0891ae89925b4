"""The Example CRM emulator: its REST API (signed with key + secret, ../API.md) and webhook deliveries.

`create_app(state=None, faults=None, options=None)` returns a Flask app, as every emulator under
`hub/sandbox/` does, so the hub mounts it at `/sandbox/example/` like the others (registered with
`hub.sandbox.register`). The CRM itself (`ExampleCrm`: deals, tasks, deliveries, `flush()`) is in
`app.extensions["sandbox"]`. Options: `accounts` ([{id, name, api_key, api_secret}]), `seed`,
`base_url`, `clock`, `session` (the requests session deliveries go through)."""
from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request

from hub.sandbox.common import Faults, SandboxState, control_blueprint

from .crm import DEMO_ACCOUNT, Duplicate, ExampleCrm, Invalid

__all__ = ["create_app", "ExampleCrm", "DEMO_ACCOUNT", "signature"]


def signature(secret: str, method: str, target: str, body: bytes) -> str:
    """What ../API.md says a request's `X-Signature` is."""
    message = method.upper().encode() + b"\n" + target.encode() + b"\n" + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def error(status: int, code: str, message: str, **extra: Any) -> Response:
    response = jsonify({"error": code, "message": message, **extra})
    response.status_code = status
    return response


def _target() -> str:
    """The request target as the client sent it (prefix included, query kept as sent)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        return raw
    query = request.query_string.decode("latin-1")
    return request.script_root + request.path + (f"?{query}" if query else "")


def api_blueprint(crm: ExampleCrm) -> Blueprint:
    bp = Blueprint("example_api", __name__, url_prefix="/api/v1")

    @bp.before_request
    def gate():
        verdict = crm.faults.decide()
        if verdict is not None:
            kind, status = verdict
            if kind == "429":
                resp = error(429, "rate_limited", "too many requests")
                resp.headers["Retry-After"] = str(crm.faults.settings.retry_after)
                return resp
            return error(status, "unavailable", "try again later")
        account = crm.account_by_key(request.headers.get("X-Api-Key", ""))
        sent = request.headers.get("X-Signature", "")
        if account is None:
            return error(401, "unauthorized", "X-Api-Key: unknown or missing API key")
        wanted = signature(account["api_secret"], request.method, _target(), request.get_data())
        if not hmac.compare_digest(sent.encode(), wanted.encode()):
            return error(401, "unauthorized", "X-Signature: does not match the request")
        g.account = account["id"]

    def body() -> dict:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise Invalid("body", "body: a JSON object")
        return data

    @bp.errorhandler(Invalid)
    def invalid(exc: Invalid):
        return error(400, "invalid", str(exc), field=exc.field)

    @bp.errorhandler(Duplicate)
    def duplicate(exc: Duplicate):
        return error(409, "duplicate", str(exc), task_id=exc.task_id)

    def limit() -> int:
        value = request.args.get("limit", "20")
        if not value.isdigit() or not 1 <= int(value) <= 100:
            raise Invalid("limit", "limit: a whole number from 1 to 100")
        return int(value)

    def found(row: dict | None, what: str):
        return jsonify(row) if row is not None else error(404, "not_found", f"no such {what}")

    @bp.get("/me")
    def me():
        account = crm.data["accounts"][g.account]
        admin = next(u for u in crm.users(g.account) if u["admin"])
        return jsonify({"account": {"id": account["id"], "name": account["name"]}, "user": admin})

    @bp.get("/users")
    def users():
        return jsonify({"items": crm.users(g.account)})

    @bp.get("/stages")
    def stages():
        return jsonify({"items": crm.stages(g.account)})

    @bp.get("/deals")
    def deals():
        return jsonify({"items": crm.deals(g.account, limit())})

    @bp.get("/deals/<deal_id>")
    def deal(deal_id):
        return found(crm.deal(g.account, deal_id), "deal")

    @bp.post("/deals")
    def create_deal():
        return jsonify(crm.create_deal(g.account, body())), 201

    @bp.patch("/deals/<deal_id>")
    def update_deal(deal_id):
        return found(crm.update_deal(g.account, deal_id, body()), "deal")

    @bp.delete("/deals/<deal_id>")
    def delete_deal(deal_id):
        return ("", 204) if crm.delete_deal(g.account, deal_id) else error(404, "not_found", "no such deal")

    @bp.post("/tasks")
    def create_task():
        return jsonify(crm.create_task(g.account, body())), 201

    @bp.get("/tasks")
    def tasks():
        external = request.args.get("external_id")
        if external is None:
            return jsonify({"items": crm.tasks(g.account)[::-1][:limit()]})
        task = crm.task_by_external(g.account, external) if external else None
        return jsonify({"items": [task] if task else []})

    @bp.get("/tasks/<task_id>")
    def task(task_id):
        return found(crm.task(g.account, task_id), "task")

    @bp.post("/tasks/<task_id>/complete")
    def complete(task_id):
        return found(crm.complete_task(g.account, task_id), "task")

    @bp.post("/webhooks")
    def subscribe():
        data = body()
        return jsonify(crm.subscribe(g.account, data.get("url"), data.get("events"), data.get("secret"))), 201

    @bp.get("/webhooks")
    def webhooks():
        return jsonify({"items": crm.webhooks(g.account)})

    @bp.delete("/webhooks/<webhook_id>")
    def unsubscribe(webhook_id):
        return ("", 204) if crm.unsubscribe(g.account, webhook_id) else error(404, "not_found", "no such webhook")

    return bp


def create_app(*, state: SandboxState | None = None, faults: Faults | None = None,
               options: dict | None = None) -> Flask:
    state = state if state is not None else SandboxState()
    faults = faults if faults is not None else Faults()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    crm = ExampleCrm(state, faults, options)
    app.extensions["sandbox"] = crm
    app.register_blueprint(api_blueprint(crm))
    app.register_blueprint(control_blueprint(faults))

    @app.errorhandler(404)
    def not_found(exc):
        return error(404, "not_found", "no such endpoint")

    @app.errorhandler(405)
    def not_allowed(exc):
        return error(405, "method_not_allowed", "method not allowed here")

    return app
