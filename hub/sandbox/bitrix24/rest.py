"""`{client_endpoint}{method}`: the portal's REST entry, `<root>/portal/<name>/rest/<method>[.json]`.

Parameters come from the query string, a form body or a JSON body (merged in that order) with
`auth=<access token>`. Every request passes one gate: the leaky bucket (503 QUERY_LIMIT_EXCEEDED),
the fault knobs, the token (401 NO_AUTH_FOUND / expired_token), the method's scope (403
insufficient_scope). Answers: `{"result", "time", "total"?, "next"?}` or `{"error", "error_description"}`.

`batch`: up to 50 `cmd` entries ("method?query"), `halt`, later commands may use
`$result[key][FIELD]` (or `$result[key][0][FIELD]` ...) from earlier results; one HTTP 200 with
result / result_error / result_total / result_next / result_time (empty ones as `[]`)."""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, request

from .methods import METHODS, Ctx
from .util import RestError, parse_query, php_params

BATCH_LIMIT = 50
_REF = re.compile(r"\$result\[([^\]]+)\]((?:\[[^\]]*\])*)")


def _sb():
    return current_app.extensions["sandbox"]


def _time_block(start: float) -> dict:
    finish = time.time()
    stamp = lambda t: datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return {"start": start, "finish": finish, "duration": finish - start, "processing": finish - start,
            "date_start": stamp(start), "date_finish": stamp(finish), "operating_reset_at": int(start) + 600,
            "operating": 0}


def _json(body: dict, status: int = 200) -> Response:
    resp = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")
    return resp


def error(exc: RestError) -> Response:
    return _json(exc.body(), exc.status)


def request_params() -> dict[str, Any]:
    params = php_params(request.args.items(multi=True))
    if request.form:
        params.update(php_params(request.form.items(multi=True)))
    elif request.data:
        try:
            body = json.loads(request.data)
        except ValueError:
            raise RestError("INVALID_REQUEST", "The request body is not valid JSON", 400) from None
        if not isinstance(body, dict):
            raise RestError("INVALID_REQUEST", "The JSON body must be an object", 400)
        params.update(body)
    return params


def authenticate(sb, portal: str, token: Any) -> Ctx:
    if not token:
        raise RestError("NO_AUTH_FOUND", "Wrong authorization data", 401)
    with sb.state.lock:
        entry = sb.state.data.get("oauth_access", {}).get(str(token))
    if entry is None or entry["grant"].get("portal") != portal:
        raise RestError("NO_AUTH_FOUND", "Wrong authorization data", 401)
    if entry["expires_at"] <= sb.clock():
        raise RestError("expired_token", "The access token provided has expired.", 401)
    grant = entry["grant"]
    if sb.installed(portal, grant["client_id"]) is None:
        raise RestError("NO_AUTH_FOUND", "Wrong authorization data", 401)
    user = sb.user(portal, grant["user_id"])
    if user is None or not user["ACTIVE"]:
        raise RestError("user_access_error", "The user does not have access to the application.", 403)
    return Ctx(sb, portal, grant["client_id"], int(grant["user_id"]), list(grant["scopes"]))


def call(ctx: Ctx, name: str, params: dict) -> tuple[Any, dict]:
    name = name.lower()
    if name.endswith(".json"):
        name = name[:-5]
    entry = METHODS.get(name)
    if entry is None:
        raise RestError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)
    scope, fn = entry
    if scope != "basic" and scope not in ctx.scopes:
        raise RestError("insufficient_scope", "The request requires higher privileges than provided by the access token",
                        403)
    return fn(ctx, params)


def _resolve(text: str, results: dict) -> str:
    def sub(m):
        value: Any = results.get(m.group(1))
        for part in re.findall(r"\[([^\]]*)\]", m.group(2)):
            if isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            elif isinstance(value, dict):
                value = value.get(part)
            else:
                value = None
        if isinstance(value, bool):
            value = int(value)
        return quote("" if value is None else str(value), safe="")
    return _REF.sub(sub, text)


def batch(ctx: Ctx, params: dict) -> dict:
    cmd = params.get("cmd")
    if isinstance(cmd, list):
        cmd = {str(n): v for n, v in enumerate(cmd)}
    if not isinstance(cmd, dict) or not cmd:
        raise RestError("ERROR_ARGUMENT", "cmd: required, a map or list of \"method?params\" strings", 400)
    if len(cmd) > BATCH_LIMIT:
        raise RestError("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded", 400)
    halt = str(params.get("halt", 0)) not in ("0", "", "false", "N")
    results: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    totals: dict[str, Any] = {}
    nexts: dict[str, Any] = {}
    times: dict[str, Any] = {}
    for key, line in cmd.items():
        start = time.time()
        if not isinstance(line, str):
            errors[key] = {"error": "ERROR_ARGUMENT", "error_description": "each cmd is a \"method?params\" string"}
            if halt:
                break
            continue
        name, _, query = _resolve(line, results).partition("?")
        try:
            if ctx.sb.faults.take("operation_limit"):
                raise RestError("OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.", 429)
            if name.strip().lower() in ("batch", "batch.json"):
                raise RestError("ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage", 405)
            result, extra = call(ctx, name.strip(), parse_query(query))
        except RestError as exc:
            errors[key] = exc.body()
            if halt:
                break
            continue
        results[key] = result
        if "total" in extra:
            totals[key] = extra["total"]
        if "next" in extra:
            nexts[key] = extra["next"]
        times[key] = _time_block(start)
    return {"result": results or [], "result_error": errors or [], "result_total": totals or [],
            "result_next": nexts or [], "result_time": times or []}


def rest_blueprint() -> Blueprint:
    bp = Blueprint("bx_rest", __name__)

    @bp.route("/portal/<portal>/rest/<path:method>", methods=["GET", "POST"])
    def rest(portal: str, method: str):
        sb = _sb()
        sb.learn_base_url(request.url_root)
        start = time.time()
        try:
            with sb.state.lock:
                sb.portal(portal)
            if not sb.bucket_hit(portal):
                raise RestError("QUERY_LIMIT_EXCEEDED", "Too many requests", 503)
            fault = sb.faults.decide()
            if fault is not None:
                kind, status = fault
                if kind == "429":
                    raise RestError("QUERY_LIMIT_EXCEEDED", "Too many requests", 503)
                raise RestError("INTERNAL_SERVER_ERROR", "Internal server error", status)
            params = request_params()
            ctx = authenticate(sb, portal, params.pop("auth", None))
            name = method.lower()
            name = name[:-5] if name.endswith(".json") else name
            if name != "batch" and sb.faults.take("operation_limit"):
                raise RestError("OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.", 429)
            if name == "batch":
                return _json({"result": batch(ctx, params), "time": _time_block(start)})
            result, extra = call(ctx, name, params)
        except RestError as exc:
            return error(exc)
        return _json({"result": result, **extra, "time": _time_block(start)})

    @bp.route("/rest/<path:method>", methods=["GET", "POST"])
    def server_rest(method: str):
        """The OAuth server's own REST (server_endpoint): app.info by the app's token, as the docs show."""
        sb = _sb()
        start = time.time()
        try:
            params = request_params()
            token = params.pop("auth", None)
            with sb.state.lock:
                entry = sb.state.data.get("oauth_access", {}).get(str(token or ""))
            if entry is None:
                raise RestError("NO_AUTH_FOUND", "Wrong authorization data", 401)
            ctx = authenticate(sb, entry["grant"]["portal"], token)
            if method.lower().removesuffix(".json") != "app.info":
                raise RestError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)
            result, extra = call(ctx, "app.info", params)
        except RestError as exc:
            return error(exc)
        return _json({"result": result, **extra, "time": _time_block(start)})

    return bp
