"""Asana REST API subset under `/api/1.0`: envelopes, opt_fields, offset pagination, errors.

Every request passes the fault knobs, then bearer-token and scope checks, exactly in that order:
a rate-limited request is rejected before the server looks at who sent it, as Asana's limiter does."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
from functools import wraps
from typing import Any, Callable
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, request, url_for

from . import fields
from .models import ApiError, AsanaEmulator

API_PREFIX = "/api/1.0"
HELP = ("For more information on API status codes and how to handle them, read the docs on errors: "
        "https://developers.asana.com/docs/errors")
RATE_LIMIT_MESSAGE = ("You've made too many requests and hit a rate limit. "
                      "Please retry after the given amount of time.")
OFFSET_TTL = 900  # seconds; a token seen in the wild lived 15 minutes (FACTS §9)
_PHRASE_WORDS = (("6", "7", "12", "23", "42"), ("sad", "brave", "sleepy", "tiny", "loud"),
                 ("squid", "otters", "lemurs", "herons", "yaks"), ("snuggle", "wander", "giggle", "hum"),
                 ("softly", "quietly", "boldly", "often"))


def _emu() -> AsanaEmulator:
    return current_app.extensions["sandbox"]


def json_response(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    pretty = request.args.get("opt_pretty", "").lower() in ("1", "true") if request else False
    text = json.dumps(body, indent=2 if pretty else None, ensure_ascii=False)
    resp = Response(text, status=status, mimetype="application/json")
    resp.headers["Content-Type"] = "application/json; charset=UTF-8"
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def error_response(status: int, message: str, headers: dict | None = None) -> Response:
    err = {"message": message, "help": HELP}
    if status >= 500:  # Asana adds a support phrase to server errors only
        rng = random.Random()
        err["phrase"] = " ".join(rng.choice(words) for words in _PHRASE_WORDS)
    return json_response({"errors": [err]}, status, headers)


def scoped(scope: str) -> Callable:
    """Require a granular scope unless the grant has full (`default`) permissions."""

    def deco(fn: Callable) -> Callable:
        @wraps(fn)
        def wrapper(*args, **kwargs):
            scopes = g.asana_ctx["scopes"]
            if "default" not in scopes and scope not in scopes:
                raise ApiError(403, f"Forbidden: this request needs the {scope} scope, which the token was not granted")
            return fn(*args, **kwargs)

        return wrapper

    return deco


# -- input -------------------------------------------------------------------------------------

def body_data() -> tuple[dict, dict]:
    """(`data`, `options`) from a JSON envelope or a form-encoded body (options with `opt_`)."""
    if request.mimetype == "application/json":
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict):
            raise ApiError(400, "Could not parse request data, invalid JSON")
        data = payload.get("data")
        if not isinstance(data, dict):
            raise ApiError(400, "data: Missing input")
        options = payload.get("options") if isinstance(payload.get("options"), dict) else {}
        return data, options
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = request.form
        data = {k: v for k, v in form.items() if not k.startswith("opt_")}
        options = {"fields": form["opt_fields"]} if "opt_fields" in form else {}
        return data, options
    raise ApiError(400, "Request data must be JSON or form-encoded")


def opt_tree(options: dict | None = None) -> fields.Tree | None:
    raw = request.args.get("opt_fields")
    if raw is None and options:
        raw = options.get("fields")
    return fields.parse(raw)


# -- output ------------------------------------------------------------------------------------

OPT_IN = {
    "task": {"html_notes", "external", "num_subtasks", "dependencies", "dependents", "created_by",
             "is_rendered_as_separator"},
    "project": {"html_notes", "project_brief", "created_from_template"},
    "team": {"description", "html_description"},
}


def _expander(ctx: dict) -> fields.Expander:
    return lambda kind, gid: _emu().render(kind, gid, ctx)


def shape_one(kind: str, gid: str, tree: fields.Tree | None) -> dict:
    ctx = g.asana_ctx
    full = _emu().render(kind, gid, ctx)
    if full is None:
        raise ApiError(404, f"{kind}: Unknown object: {gid}")
    if tree is None:
        return {k: v for k, v in full.items() if k not in OPT_IN.get(kind, ())}
    return fields.select(full, tree, _expander(ctx))


def single(kind: str, gid: str, status: int = 200, options: dict | None = None,
           location: str | None = None) -> Response:
    headers = {"Location": location} if location else None
    return json_response({"data": shape_one(kind, gid, opt_tree(options))}, status, headers)


def _offset_secret() -> bytes:
    return current_app.config["ASANA_OFFSET_SECRET"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_offset(key: list) -> str:
    """An opaque, signed, expiring token (JWT-like, as Asana's look) for the last key served."""
    now = int(time.time())
    head = _b64(b'{"typ":"JWT","alg":"HS256"}')
    body = _b64(json.dumps({"border_rank": key, "iat": now, "exp": now + OFFSET_TTL}).encode())
    sig = _b64(hmac.new(_offset_secret(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def decode_offset(token: str) -> list:
    try:
        head, body, sig = token.split(".")
        want = _b64(hmac.new(_offset_secret(), f"{head}.{body}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(want, sig):
            raise ValueError
        claims = json.loads(_unb64(body))
    except (ValueError, json.JSONDecodeError):
        raise ApiError(400, "offset: Your pagination token is invalid") from None
    if claims.get("exp", 0) < time.time():
        raise ApiError(400, "offset: Your pagination token has expired")
    return claims["border_rank"]


def parse_limit() -> int | None:
    raw = request.args.get("limit")
    if raw is None:
        return None
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError(400, f"limit: Not a valid integer: {raw}") from None
    if not 1 <= limit <= 100:
        raise ApiError(400, "limit: Must be between 1 and 100")
    return limit


def list_response(kind: str, records: list[dict], *, sort_key: Callable[[dict], list] | None = None,
                  paginated: bool = True, cap: int | None = None) -> Response:
    """Compact records (or opt_fields), sorted, paged by `limit` + signed `offset` tokens."""
    emu = _emu()
    sort_key = sort_key or (lambda r: [int(r["gid"])])
    records = sorted(records, key=sort_key)
    if request.args.get("offset"):
        border = decode_offset(request.args["offset"])
        records = [r for r in records if sort_key(r) > border]
    limit = parse_limit() if paginated else None
    page = records[:limit] if limit else records[:cap] if cap else records
    tree = opt_tree()
    ctx = g.asana_ctx
    if tree is None:
        data = [emu.compact(kind, r) for r in page]
    else:
        data = [fields.select(emu.render(kind, r["gid"], ctx), tree, _expander(ctx)) for r in page]
    body: dict = {"data": data}
    if limit:
        body["next_page"] = None
        if len(records) > limit:
            token = encode_offset(sort_key(page[-1]))
            query = [(k, v) for k, v in request.args.items(multi=True) if k != "offset"] + [("offset", token)]
            rel = request.path[len(API_PREFIX):] + "?" + urlencode(query, safe=",")
            body["next_page"] = {"offset": token, "path": rel,
                                 "uri": request.host_url.rstrip("/") + request.script_root + API_PREFIX + rel}
    return json_response(body)


# -- lookups -----------------------------------------------------------------------------------

def visible(table: str, gid: str, label: str) -> dict:
    """The record or 404; 403 when it lives in a workspace the token's user is not a member of."""
    emu = _emu()
    rec = emu.get(table, gid)
    if rec is None:
        raise ApiError(404, f"{label}: Unknown object: {gid}")
    ws = {"workspaces": lambda r: r["gid"], "teams": lambda r: r["organization"]}.get(
        table, lambda r: r.get("workspace"))(rec)
    if ws and not emu.member_of(g.asana_ctx["user"], ws):
        raise ApiError(403, "You do not have access to this object")
    return rec


def user_gid(ref: str) -> str:
    emu = _emu()
    if ref == "me":
        return g.asana_ctx["user"]
    if "@" in ref:
        found = next((u for u in emu.users() if u["email"].lower() == ref.lower()), None)
        if found is None:
            raise ApiError(404, f"user: Unknown object: {ref}")
        return found["gid"]
    if emu.get("users", ref) is None:
        raise ApiError(404, f"user: Unknown object: {ref}")
    return ref


def task_for(ref: str) -> dict:
    task = _emu().find_task(ref, g.asana_ctx)
    if task is None:
        raise ApiError(404, f"task: Unknown object: {ref}")
    if not _emu().member_of(g.asana_ctx["user"], task["workspace"]):
        raise ApiError(403, "You do not have access to this object")
    return task


def bool_arg(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if raw.lower() not in ("true", "false"):
        raise ApiError(400, f"{name}: Not a boolean: {raw}")
    return raw.lower() == "true"


def location(endpoint: str, **values: str) -> str:
    return url_for(endpoint, _external=True, **values)


# -- blueprint ---------------------------------------------------------------------------------

def api_blueprint() -> Blueprint:
    bp = Blueprint("asana_api", __name__, url_prefix=API_PREFIX)

    @bp.before_request
    def gate():
        emu = _emu()
        decision = emu.faults.decide()
        if decision is not None:
            kind, status = decision
            if kind == "429":
                return error_response(429, RATE_LIMIT_MESSAGE,
                                      {"Retry-After": str(int(emu.faults.settings.retry_after))})
            return error_response(status, "Server Error")
        grant = emu.tokens.bearer(request.headers.get("Authorization"))
        if grant is None or emu.get("users", grant.get("user")) is None:
            return error_response(401, "Not Authorized")
        g.asana_ctx = {"user": grant["user"], "scopes": grant.get("scopes", ["default"]),
                       "client_id": grant.get("client_id"),
                       "attachment_urls": current_app.config["ASANA_ATTACHMENT_URLS"]}
        return None

    @bp.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return error_response(exc.status, exc.message)

    from .api_routes import register  # routes split out to keep this module about mechanics
    register(bp)

    @bp.route("/<path:unknown>", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def no_route(unknown: str):
        raise ApiError(404, "No matching route for request")

    return bp
