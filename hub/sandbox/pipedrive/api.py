"""The API subset under /api/v1 and /api/v2, as the official specs describe it.

Every request passes the same gate: fault knobs (latency, 5xx, 429 with Pipedrive's rate-limit
headers), the bearer token, then the endpoint's OAuth scopes (copied from each operation's
`security` section; any one of them suffices). Error bodies follow Pipedrive's formats (FACTS §15)."""
from __future__ import annotations

from urllib.parse import quote

import collections
import threading
import time
from functools import wraps
from typing import Any, Callable
from urllib.parse import urlparse

from flask import Blueprint, Response, current_app, g, jsonify, request, url_for

from . import models as m
from .util import BadRequest, decode_cursor, encode_cursor, parse_time

RATE_WINDOW = 2.0   # seconds, rolling burst window per token (FACTS §14)


def _sb():
    return current_app.extensions["sandbox"]


def error(status: int, message: str, info: str | None = None, **extra) -> Response:
    body = {"success": False, "error": message, "error_info": info or "Please check developers.pipedrive.com "
            "for more information about Pipedrive API.", "data": None, "additional_data": None, **extra}
    resp = jsonify(body)
    resp.status_code = status
    return resp


def ok(data: Any, additional: Any = None, status: int = 200, **extra) -> Response:
    body = {"success": True, "data": data, **extra}
    if additional is not None:
        body["additional_data"] = additional
    resp = jsonify(body)
    resp.status_code = status
    return resp


def scopes(*names: str) -> Callable:
    """Mark the OAuth scopes that grant access to an endpoint (any one is enough)."""
    def deco(fn):
        fn.pd_scopes = frozenset(names)
        return fn
    return deco


class RateWindow:
    """Rolling 2-second request counts per token, for the x-ratelimit-* headers (and optional 429)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._hits: dict[str, collections.deque] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> tuple[int, float]:
        now = time.monotonic()
        with self._lock:
            q = self._hits.setdefault(key, collections.deque())
            while q and q[0] <= now - RATE_WINDOW:
                q.popleft()
            q.append(now)
            reset = max(RATE_WINDOW - (now - q[0]), 0.0)
            return len(q), reset


# -- query parsing ----------------------------------------------------------------------------------

def q_int(name: str, default: int | None = None, lo: int | None = None, hi: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Parameter '{name}' must be an integer") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise BadRequest(f"Parameter '{name}' must be between {lo} and {hi}")
    return value


def q_enum(name: str, allowed: tuple[str, ...], default: str) -> str:
    value = request.args.get(name) or default
    if value not in allowed:
        raise BadRequest(f"Parameter '{name}' must be one of: {', '.join(allowed)}")
    return value


def cursor_page(items: list[dict], render: Callable[[dict], dict], sort_fields: tuple[str, ...] = ("id", "update_time", "add_time")):
    """v2 cursor pagination: keyset on (sort field, id); `next_cursor` null on the last page."""
    sort_by = q_enum("sort_by", sort_fields, "id")
    direction = q_enum("sort_direction", ("asc", "desc"), "asc")
    limit = q_int("limit", 100, 1, 500)
    desc = direction == "desc"
    items = sorted(items, key=lambda r: (r[sort_by], r["id"]), reverse=desc)
    cursor = request.args.get("cursor")
    if cursor:
        c = decode_cursor(cursor)
        if c["field"] != sort_by or c["sortDirection"] != direction:
            raise BadRequest("Invalid cursor", info="The cursor was made for another sort order.")
        mark = (c["fieldValue"], c["id"])
        items = [r for r in items if ((r[sort_by], r["id"]) < mark if desc else (r[sort_by], r["id"]) > mark)]
    page, more = items[:limit], len(items) > limit
    nxt = encode_cursor(sort_by, page[-1][sort_by], direction, page[-1]["id"]) if more else None
    return ok([render(r) for r in page], {"next_cursor": nxt})


def offset_page(items: list[dict], render: Callable[[dict], dict], max_limit: int = 500) -> Response:
    """v1 offset pagination with `additional_data.pagination` as the docs show it (FACTS §12)."""
    start = q_int("start", 0, 0)
    limit = q_int("limit", 100, 1, max_limit)
    page = items[start:start + limit]
    more = len(items) > start + limit
    pagination = {"start": start, "limit": limit, "more_items_in_collection": more}
    if more:
        pagination["next_start"] = start + limit
    return ok([render(r) for r in page], {"pagination": pagination})


def time_filters(items: list[dict]) -> list[dict]:
    if request.args.get("updated_since"):
        since = parse_time(request.args["updated_since"], "updated_since")
        items = [r for r in items if r["update_time"] >= since]
    if request.args.get("updated_until"):
        until = parse_time(request.args["updated_until"], "updated_until")
        items = [r for r in items if r["update_time"] < until]
    return items


def id_filters(items: list[dict], names: tuple[str, ...]) -> list[dict]:
    for name in names:
        value = q_int(name)
        if value is not None:
            items = [r for r in items if r.get(name) == value]
    if request.args.get("ids"):
        try:
            wanted = {int(x) for x in request.args["ids"].split(",") if x.strip()}
        except ValueError:
            raise BadRequest("Parameter 'ids' must be a comma-separated list of integers") from None
        if len(wanted) > 100:
            raise BadRequest("Parameter 'ids' accepts at most 100 ids")
        items = [r for r in items if r["id"] in wanted]
    return items


def json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    return body


def person_body() -> dict:
    """v2 is strict: emails/phones are arrays of objects (the Python helpers also take plain strings)."""
    body = json_body()
    for kind in ("emails", "phones"):
        items = body.get(kind)
        if items is not None and (not isinstance(items, list) or not all(isinstance(i, dict) for i in items)):
            raise BadRequest(f"{kind} must be an array of objects with value, label and primary")
    return body


# -- blueprint --------------------------------------------------------------------------------------

def api_blueprint(options: dict) -> Blueprint:
    bp = Blueprint("pd_api", __name__, url_prefix="/api")
    window = RateWindow(int(options.get("burst_limit", 80)))
    enforce = bool(options.get("enforce_burst_limit", False))

    @bp.before_request
    def gate():
        sb = _sb()
        g.pd_rate = None
        verdict = sb.faults.decide()
        if verdict:
            kind, status = verdict
            if kind == "429":
                g.pd_rate = (0, float(sb.faults.settings.retry_after))
                resp = error(429, "Rate limit exceeded", "Too many requests in the rolling 2-second window.",
                             errorCode=429)
                resp.headers["Retry-After"] = str(sb.faults.settings.retry_after)
                return resp
            return error(status, "Service unavailable" if status == 503 else "Internal server error",
                         "A sandbox fault knob answered this request with a server error.")
        header = request.headers.get("Authorization", "")
        token = header.split(" ", 1)[1].strip() if header.lower().startswith("bearer ") else None
        grant = sb.tokens.validate(token)
        if grant is None:
            resp = jsonify({"success": False, "error": "unauthorized access", "errorCode": 401,
                            "error_info": "Please check developers.pipedrive.com for more information about Pipedrive API.",
                            "data": None, "additional_data": None})
            resp.status_code = 401
            return resp
        count, reset = window.hit(token)
        g.pd_rate = (max(window.limit - count, 0), reset)
        if enforce and count > window.limit:
            resp = error(429, "Rate limit exceeded", "Too many requests in the rolling 2-second window.",
                         errorCode=429)
            resp.headers["Retry-After"] = str(max(int(reset + 0.999), 1))
            return resp
        g.pd_grant = grant
        g.pd_user = grant["user_id"]
        view = current_app.view_functions.get(request.endpoint)
        needed = getattr(view, "pd_scopes", None)
        if needed is not None and not needed & set(grant["scopes"]):
            return error(403, "Scope and URL mismatch", "This endpoint needs one of the scopes: "
                         + ", ".join(sorted(needed)), errorCode=403)

    @bp.after_request
    def rate_headers(resp):
        rate = g.get("pd_rate")
        if rate is not None:
            resp.headers["x-ratelimit-limit"] = str(window.limit)
            resp.headers["x-ratelimit-remaining"] = str(rate[0])
            resp.headers["x-ratelimit-reset"] = str(max(int(rate[1] + 0.999), 0 if rate[0] else 1))
        return resp

    @bp.errorhandler(BadRequest)
    def bad_request(exc: BadRequest):
        return error(exc.status, exc.message, exc.info)

    @bp.errorhandler(404)
    def not_found(exc):
        return error(404, "Unknown method .", "The requested endpoint does not exist.")

    @bp.errorhandler(405)
    def not_allowed(exc):
        return error(405, "Method not allowed", "The endpoint does not support this HTTP method.")

    def snapshot(table: str, pred: Callable[[dict], bool] = lambda r: True) -> list[dict]:
        sb = _sb()
        with sb.state.lock:
            return [dict(r) for r in sb.data[table].values() if pred(r)]

    def source_kw() -> dict:
        return {"actor": g.pd_user, "source": "api"}

    # -- users (v1) -------------------------------------------------------------------------------
    @bp.get("/v1/users/me")
    @scopes("base")
    def users_me():
        sb = _sb()
        return ok(m.me_v1(sb.user(g.pd_user), sb.company()))

    @bp.get("/v1/users")
    @scopes("users:read")
    def users_list():
        return ok([m.user_v1(u, g.pd_user) for u in _sb().users()])

    @bp.get("/v1/users/<int:user_id>")
    @scopes("users:read")
    def users_get(user_id):
        u = _sb().data["pd_users"].get(str(user_id))
        if u is None:
            return error(404, "User not found", "Object was not found.")
        return ok(m.user_v1(u, g.pd_user))

    # -- pipelines / stages (v2) ------------------------------------------------------------------
    @bp.get("/v2/pipelines")
    @scopes("deals:read", "deals:full", "admin")
    def pipelines_list():
        return cursor_page(snapshot("pd_pipelines"), m.pipeline_v2)

    @bp.get("/v2/pipelines/<int:pid>")
    @scopes("deals:read", "deals:full", "admin")
    def pipelines_get(pid):
        p = _sb().data["pd_pipelines"].get(str(pid))
        return ok(m.pipeline_v2(p)) if p else error(404, "Pipeline not found", "Object was not found.")

    @bp.get("/v2/stages")
    @scopes("deals:read", "deals:full", "admin")
    def stages_list():
        items = id_filters(snapshot("pd_stages"), ("pipeline_id",))
        return cursor_page(items, m.stage_v2, ("id", "update_time", "add_time", "order_nr"))

    @bp.get("/v2/stages/<int:sid>")
    @scopes("deals:read", "deals:full", "admin")
    def stages_get(sid):
        s = _sb().data["pd_stages"].get(str(sid))
        return ok(m.stage_v2(s)) if s else error(404, "Stage not found", "Object was not found.")

    # -- deals (v2) -------------------------------------------------------------------------------
    def deal_include() -> set[str]:
        return set((request.args.get("include_fields") or "").split(","))

    @bp.get("/v2/deals")
    @scopes("deals:read", "deals:full")
    def deals_list():
        statuses = [s for s in (request.args.get("status") or "").split(",") if s]
        bad = set(statuses) - {"open", "won", "lost", "deleted"}
        if bad:
            raise BadRequest("Parameter 'status' must be a comma list of open, won, lost, deleted")
        items = snapshot("pd_deals")
        if statuses:
            items = [d for d in items if (d["is_deleted"] and "deleted" in statuses)
                     or (not d["is_deleted"] and d["status"] in statuses)]
        else:
            items = [d for d in items if not d["is_deleted"]]
        items = [d for d in items if not d.get("is_archived")]
        items = time_filters(id_filters(items, ("owner_id", "person_id", "org_id", "pipeline_id", "stage_id")))
        fields, include = _sb().fields("deal"), deal_include()
        return cursor_page(items, lambda d: m.deal_v2(d, fields, include))

    @bp.get("/v2/deals/<int:deal_id>")
    @scopes("deals:read", "deals:full")
    def deals_get(deal_id):
        sb = _sb()
        with sb.state.lock:
            d = sb._get("pd_deals", deal_id, "Deal")
            return ok(m.deal_v2(d, sb.fields("deal"), deal_include()))

    @bp.patch("/v2/deals/<int:deal_id>")
    @scopes("deals:full")
    def deals_update(deal_id):
        sb = _sb()
        d = sb.update_deal(deal_id, json_body(), **source_kw())
        return ok(m.deal_v2(d, sb.fields("deal")))

    # -- persons / organizations (v2) -------------------------------------------------------------
    @bp.get("/v2/persons")
    @scopes("contacts:read", "contacts:full")
    def persons_list():
        items = snapshot("pd_persons", lambda p: not p.get("is_deleted"))
        deal_id = q_int("deal_id")
        if deal_id is not None:
            deal = _sb().data["pd_deals"].get(str(deal_id))
            items = [p for p in items if deal and p["id"] == deal["person_id"]]
        items = time_filters(id_filters(items, ("owner_id", "org_id")))
        fields = _sb().fields("person")
        return cursor_page(items, lambda p: m.person_v2(p, fields))

    @bp.get("/v2/persons/<int:person_id>")
    @scopes("contacts:read", "contacts:full")
    def persons_get(person_id):
        sb = _sb()
        with sb.state.lock:
            return ok(m.person_v2(sb._get("pd_persons", person_id, "Person"), sb.fields("person")))

    @bp.post("/v2/persons")
    @scopes("contacts:full")
    def persons_create():
        sb = _sb()
        body = person_body()
        allowed = {"name", "first_name", "last_name", "owner_id", "org_id", "emails", "phones", "visible_to",
                   "custom_fields", "label_ids", "add_time", "marketing_status"}
        unknown = set(body) - allowed
        if unknown:
            raise BadRequest(f"Unknown field(s): {', '.join(sorted(unknown))}")
        p = sb.create_person(body.get("name"), first_name=body.get("first_name"), last_name=body.get("last_name"),
                             emails=body.get("emails"), phones=body.get("phones"), org_id=body.get("org_id"),
                             owner_id=body.get("owner_id"), custom_fields=body.get("custom_fields"),
                             visible_to=body.get("visible_to", 3), **source_kw())
        return ok(m.person_v2(p, sb.fields("person")))

    @bp.patch("/v2/persons/<int:person_id>")
    @scopes("contacts:full")
    def persons_update(person_id):
        sb = _sb()
        p = sb.update_person(person_id, person_body(), **source_kw())
        return ok(m.person_v2(p, sb.fields("person")))

    @bp.delete("/v2/persons/<int:person_id>")
    @scopes("contacts:full")
    def persons_delete(person_id):
        _sb().delete_person(person_id, **source_kw())
        return ok({"id": person_id})

    @bp.get("/v2/organizations")
    @scopes("contacts:read", "contacts:full")
    def orgs_list():
        items = time_filters(id_filters(snapshot("pd_orgs", lambda o: not o.get("is_deleted")), ("owner_id",)))
        return cursor_page(items, m.org_v2)

    @bp.get("/v2/organizations/<int:org_id>")
    @scopes("contacts:read", "contacts:full")
    def orgs_get(org_id):
        sb = _sb()
        with sb.state.lock:
            return ok(m.org_v2(sb._get("pd_orgs", org_id, "Organization")))

    # -- fields (v2) ------------------------------------------------------------------------------
    def field_list(entity: str) -> Response:
        fields = [dict(f) for f in _sb().fields(entity)]
        return cursor_page(fields, m.field_v2, ("id",))

    @bp.get("/v2/dealFields")
    @scopes("deals:read", "deals:full", "admin", "deal-fields:full")
    def deal_fields():
        return field_list("deal")

    @bp.get("/v2/personFields")
    @scopes("contacts:read", "contacts:full", "admin", "contact-fields:full")
    def person_fields():
        return field_list("person")

    # -- leads (v1) -------------------------------------------------------------------------------
    @bp.get("/v1/leads")
    @scopes("leads:read", "leads:full")
    def leads_list():
        items = snapshot("pd_leads", lambda l: not l.get("is_archived"))
        for name in ("owner_id", "person_id", "organization_id"):
            value = q_int(name)
            if value is not None:
                items = [l for l in items if l.get(name) == value]
        items = time_filters(items)
        sort = request.args.get("sort") or "add_time"
        field, _, direction = sort.partition(" ")
        if field not in ("id", "title", "owner_id", "creator_id", "was_seen", "expected_close_date",
                         "add_time", "update_time"):
            raise BadRequest(f"Invalid sort field: {field}")
        items.sort(key=lambda l: (l.get(field) is None, l.get(field) or 0, l["add_time"]),
                   reverse=direction.upper() == "DESC")
        fields = _sb().fields("deal")
        return offset_page(items, lambda l: m.lead_v1(l, fields))

    @bp.get("/v1/leads/<lead_id>")
    @scopes("leads:read", "leads:full")
    def leads_get(lead_id):
        sb = _sb()
        lead = sb.data["pd_leads"].get(lead_id)
        if lead is None or lead.get("is_archived"):
            return error(404, "requested lead not found", "Object was not found.")
        return ok(m.lead_v1(lead, sb.fields("deal")))

    # -- notes (v1) -------------------------------------------------------------------------------
    @bp.get("/v1/notes")
    @scopes("deals:read", "deals:full", "contacts:read", "contacts:full")
    def notes_list():
        sb = _sb()
        items = snapshot("pd_notes")
        for name in ("deal_id", "person_id", "org_id", "user_id"):
            value = q_int(name)
            if value is not None:
                items = [n for n in items if n.get(name) == value]
        if request.args.get("lead_id"):
            items = [n for n in items if n.get("lead_id") == request.args["lead_id"]]
        flag = request.args.get("pinned_to_deal_flag")
        if flag not in (None, ""):
            if flag not in ("0", "1"):
                raise BadRequest("Parameter 'pinned_to_deal_flag' must be 0 or 1")
            items = [n for n in items if bool(n.get("pinned_to_deal_flag")) == (flag == "1")]
        if request.args.get("updated_since"):
            since = parse_time(request.args["updated_since"])
            items = [n for n in items if n["update_time"] >= since]
        sort = request.args.get("sort") or "add_time DESC"
        field, _, direction = sort.partition(" ")
        if field not in ("id", "user_id", "deal_id", "person_id", "org_id", "content", "add_time", "update_time"):
            raise BadRequest(f"Invalid sort field: {field}")
        items.sort(key=lambda n: (n.get(field) is None, n.get(field) or 0, n["id"]),
                   reverse=direction.upper() != "ASC")
        with sb.state.lock:
            return offset_page(items, lambda n: m.note_v1(n, sb.data, g.pd_user))

    @bp.post("/v1/notes")
    @scopes("deals:full", "contacts:full")
    def notes_create():
        sb = _sb()
        body = request.get_json(silent=True) if request.is_json else request.form.to_dict()
        if not isinstance(body, dict):
            raise BadRequest("Request body must be a JSON object")

        def as_int(key):
            v = body.get(key)
            if v in (None, ""):
                return None
            if isinstance(v, str) and v.isdigit():
                return int(v)
            if isinstance(v, int) and not isinstance(v, bool):
                return v
            raise BadRequest(f"{key} must be an integer")
        if not body.get("content"):
            raise BadRequest("Content is required", info="Give the note's content (HTML).")
        note = sb.add_note(str(body["content"]), deal_id=as_int("deal_id"), person_id=as_int("person_id"),
                           org_id=as_int("org_id"), lead_id=body.get("lead_id") or None,
                           pinned_to_deal=str(body.get("pinned_to_deal_flag", "0")) in ("1", "True", "true"),
                           actor=g.pd_user)
        with sb.state.lock:
            return ok(m.note_v1(note, sb.data, g.pd_user))

    # -- files (v1) -------------------------------------------------------------------------------
    def render_file(f: dict) -> dict:
        return m.file_v1(f, _sb().data, url_for("pd_api.files_download", file_id=f["id"], _external=True))

    @bp.get("/v1/deals/<int:deal_id>/files")
    @scopes("deals:read", "deals:full")
    def deal_files(deal_id):
        sb = _sb()
        with sb.state.lock:
            sb._get("pd_deals", deal_id, "Deal")
            items = sorted(snapshot("pd_files", lambda f: f.get("deal_id") == deal_id), key=lambda f: f["id"])
            return offset_page(items, render_file, max_limit=100)

    @bp.get("/v1/files/<int:file_id>")
    @scopes("deals:read", "deals:full", "activities:read", "activities:full", "contacts:read", "contacts:full")
    def files_get(file_id):
        sb = _sb()
        with sb.state.lock:
            return ok(render_file(sb._get("pd_files", file_id, "File")))

    @bp.get("/v1/files/<int:file_id>/download")
    @scopes("deals:read", "deals:full", "activities:read", "activities:full", "contacts:read", "contacts:full")
    def files_download(file_id):
        meta, content = _sb().file_content(file_id)
        resp = Response(content, mimetype="application/octet-stream")
        # RFC 6266/5987: an ASCII fallback plus the UTF-8 name, so any file name survives the header
        name = meta["file_name"]
        fallback = name.encode("ascii", "replace").decode().replace('"', "'").replace("?", "_")
        resp.headers["Content-Disposition"] = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"
        return resp

    # -- webhooks (v1) ----------------------------------------------------------------------------
    def hook_error(status: int, errors: dict) -> Response:
        resp = jsonify({"status": "error", "success": False, "errors": errors})
        resp.status_code = status
        return resp

    @bp.get("/v1/webhooks")
    @scopes("admin")
    def webhooks_list():
        return jsonify({"status": "ok", "success": True,
                        "data": [m.webhook_v1(w) for w in _sb().webhooks(g.pd_grant["client_id"])]})

    @bp.post("/v1/webhooks")
    @scopes("admin")
    def webhooks_create():
        sb = _sb()
        body = request.get_json(silent=True) if request.is_json else request.form.to_dict()
        if not isinstance(body, dict):
            return hook_error(400, {"body": ["must be a JSON object"]})
        errors: dict[str, list[str]] = {}
        for key in ("subscription_url", "event_action", "event_object", "name"):
            if not body.get(key):
                errors.setdefault(key, []).append("is required")
        if body.get("event_action") and body["event_action"] not in ("create", "change", "delete", "*"):
            errors.setdefault("event_action", []).append("must be one of create, change, delete, *")
        objects = ("activity", "deal", "lead", "note", "organization", "person", "pipeline", "product", "stage",
                   "user", "*")
        if body.get("event_object") and body["event_object"] not in objects:
            errors.setdefault("event_object", []).append("must be one of " + ", ".join(objects))
        url = body.get("subscription_url")
        if url:
            parsed = urlparse(str(url))
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                errors.setdefault("subscription_url", []).append("must be a valid http(s) URL")
            elif parsed.netloc == request.host and parsed.path.startswith(request.script_root + "/api/"):
                errors.setdefault("subscription_url", []).append("must not be a Pipedrive API URL")
        version = str(body.get("version") or "2.0")
        if version not in ("1.0", "2.0"):
            errors.setdefault("version", []).append("must be 1.0 or 2.0")
        if body.get("name") and len(str(body["name"])) > 255:
            errors.setdefault("name", []).append("must be at most 255 characters")
        hook_user = body.get("user_id")
        if hook_user not in (None, ""):
            try:
                hook_user = int(hook_user)
                sb.user(hook_user)
            except (ValueError, TypeError, BadRequest):
                errors.setdefault("user_id", []).append("must be the id of a user of the company")
        if errors:
            return hook_error(400, errors)
        w = sb.create_webhook(client_id=g.pd_grant["client_id"], user_id=g.pd_user, subscription_url=str(url),
                              event_action=body["event_action"], event_object=body["event_object"],
                              name=str(body["name"]), version=version, hook_user_id=hook_user or None,
                              http_auth_user=body.get("http_auth_user") or None,
                              http_auth_password=body.get("http_auth_password") or None)
        resp = jsonify({"status": "ok", "success": True, "data": m.webhook_v1(w)})
        resp.status_code = 201
        return resp

    @bp.delete("/v1/webhooks/<int:webhook_id>")
    @scopes("admin")
    def webhooks_delete(webhook_id):
        try:
            _sb().delete_webhook(webhook_id, client_id=g.pd_grant["client_id"])
        except BadRequest as exc:
            if exc.status == 403:
                resp = jsonify({"success": False, "message": "Forbidden"})
                resp.status_code = 403
                return resp
            return hook_error(404, {"id": ["not found"]})
        return jsonify({"status": "ok", "success": True})

    from .activities import activity_routes
    activity_routes(bp)
    return bp
