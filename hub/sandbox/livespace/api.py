"""Livespace's public JSON API: `POST /api/public/json/<Module>/<method>`, always HTTP 200 with
`{"data", "error", "result", "status"}` (result 200 = success), every call signed with a fresh
one-shot session from `_Api/auth_call/_api_method/getToken`.

Parameters may come as the query string, form fields, a `data` form field holding JSON, or a JSON
body; the auth fields (`_api_auth`, `_api_key`, `_api_sha`, `_api_session`) may sit at the top or
inside `data`. Writes echo what they were sent plus the new id (unknown keys included, though they
are dropped): only a re-read shows what was kept. Method names not in the facts file are marked
[I] where they are defined."""
from __future__ import annotations

import json
from typing import Any, Callable

from flask import Blueprint, Response, jsonify, request

from .crm import ApiError, LivespaceCrm, invalid

AUTH_FIELDS = ("_api_auth", "_api_key", "_api_sha", "_api_session")
WRITES = {("Deal", "addDeal"), ("Deal", "editDeal"), ("Todo", "addTodo"), ("Todo", "editTodo"),
          ("Contact", "addContact"), ("Contact", "addCompany")}


def envelope(data: Any = None, result: int = 200, error: Any = None) -> Response:
    return jsonify({"data": data, "error": error, "result": result, "status": result == 200})


def _params() -> dict:
    """Every parameter of the call, wherever the client put it."""
    out: dict[str, Any] = dict(request.args.items())
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError(550, "The body must be a JSON object")
        out.update(body)
        return out
    for key, value in request.form.items():
        if key != "data":
            out[key] = value
    if "data" in request.form:
        try:
            inner = json.loads(request.form["data"])
        except ValueError:
            raise ApiError(550, "data: not JSON") from None
        if not isinstance(inner, dict):
            raise ApiError(550, "data: a JSON object")
        out.update(inner)
    return out


def _object(params: dict, key: str) -> dict:
    value = params.get(key)
    if not isinstance(value, dict):
        raise invalid(key, f"{key}: an object")
    return value


def _limit(params: dict, default: int = 50) -> int:
    raw = params.get("limit", default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise invalid("limit", "A whole number from 1 to 100") from None
    if not 1 <= value <= 100:
        raise invalid("limit", "A whole number from 1 to 100")
    return value


def _public_user(user: dict) -> dict:
    return {k: user[k] for k in ("id", "firstname", "lastname", "name", "email", "is_admin", "is_active")}


def methods(crm: LivespaceCrm) -> dict[tuple[str, str], Callable[[dict, dict], Any]]:
    def found(row: dict | None, what: str) -> dict:
        if row is None:
            raise ApiError(550, f"{what} not found")
        return row

    def user_info(p, me):
        return {"user": _public_user(me)}

    def user_all(p, me):   # [I] the account's users
        return {"user": [_public_user(u) for u in crm.users() if u["is_active"]]}

    def contact_get(p, me):
        kind = "company" if p.get("type") == "company" else "contact"
        return {kind: found(crm.contact(kind, str(p.get("id") or "")), kind)}

    def contact_all(p, me):
        kind = "company" if p.get("type") == "company" else "contact"
        rows = crm.contacts(kind)
        if p.get("emails"):
            wanted = str(p["emails"]).strip().lower()
            rows = [r for r in rows if wanted in [e.lower() for e in r.get("emails") or []]]
        if p.get("names"):
            name = str(p["names"]).strip().lower()
            like = p.get("condition") == "like"
            rows = [r for r in rows if (name in r["name"].lower() if like else r["name"].lower() == name)]
        return {kind: rows[: _limit(p)]}

    def deal_get(p, me):
        return {"deal": found(crm.deal(str(p.get("id") or "")), "Deal")}

    def deal_all(p, me):
        conditions = {k: p[k] for k in ("status", "process_id", "owner_id", "modified_from") if p.get(k)}
        if not conditions:
            raise invalid("conditions", "At least one condition is required")
        rows = crm.deals()
        for key, value in conditions.items():
            if key == "modified_from":
                rows = [d for d in rows if d["modified"] >= str(value)]
            else:
                rows = [d for d in rows if str(d.get(key)) == str(value)]
        try:
            offset = max(0, int(p.get("offset") or 0))
        except (TypeError, ValueError):
            raise invalid("offset", "A whole number") from None
        return {"deal": rows[offset: offset + _limit(p)]}

    def processes(p, me):   # [I] the sales processes with their stages
        return {"process": crm.processes()}

    def deal_add(p, me):
        values = _object(p, "deal")
        made = crm.add_deal(values)
        return {"deal": {**values, "id": made["id"]}}         # the echo: what was sent, plus the id

    def deal_edit(p, me):
        values = _object(p, "deal")
        crm.edit_deal(values)
        return {"deal": values}

    def todo_get(p, me):
        return {"todo": found(crm.todo(str(p.get("id") or "")), "Todo")}

    def todo_all(p, me):
        rows = sorted(crm.todos(), key=lambda t: (t["modified"], t["created"], t["id"]), reverse=True)
        if p.get("object_id"):
            rows = [t for t in rows if any(o["object_id"] == str(p["object_id"]) and
                                           (not p.get("object_type") or o["object_type"] == p["object_type"])
                                           for o in t["objects"])]
        if p.get("is_completed") not in (None, ""):
            rows = [t for t in rows if t["is_completed"] == str(p["is_completed"])]
        if p.get("modified_from"):
            rows = [t for t in rows if t["modified"] >= str(p["modified_from"])]
        try:
            offset = max(0, int(p.get("offset") or 0))
        except (TypeError, ValueError):
            raise invalid("offset", "A whole number") from None
        return {"todo": rows[offset: offset + _limit(p)]}

    def todo_types(p, me):   # [I] the task types
        return {"type": [{"id": t["id"], "name": t["name"]} for t in crm.todo_types()]}

    def todo_add(p, me):
        values = _object(p, "todo")
        made = crm.add_todo(values, me)
        return {"todo": {**values, "id": made["id"]}}

    def todo_edit(p, me):
        values = _object(p, "todo")
        crm.edit_todo(values, me)
        return {"todo": values}

    def contact_add(p, me):
        values = _object(p, "contact")
        return {"contact": {**values, "id": crm.add_contact(values)["id"]}}

    def company_add(p, me):
        values = _object(p, "company")
        return {"company": {**values, "id": crm.add_company(values)["id"]}}

    return {
        ("Default", "User_getInfo"): user_info, ("Default", "User_getAll"): user_all,
        ("Contact", "get"): contact_get, ("Contact", "getAll"): contact_all,
        ("Contact", "addContact"): contact_add, ("Contact", "addCompany"): company_add,
        ("Deal", "get"): deal_get, ("Deal", "getAll"): deal_all, ("Deal", "getProcesses"): processes,
        ("Deal", "addDeal"): deal_add, ("Deal", "editDeal"): deal_edit,
        ("Todo", "get"): todo_get, ("Todo", "getAll"): todo_all, ("Todo", "getTypes"): todo_types,
        ("Todo", "addTodo"): todo_add, ("Todo", "editTodo"): todo_edit,
    }


def api_blueprint(crm: LivespaceCrm) -> Blueprint:
    bp = Blueprint("livespace_api", __name__, url_prefix="/api/public/json")
    table = methods(crm)
    modules = {m for m, _ in table}

    def throttled() -> Response | None:
        verdict = crm.faults.decide()
        if verdict is None:
            return None
        kind, status = verdict
        if kind == "429":
            response = jsonify({"error": "Too many requests"})
            response.status_code = 429
            response.headers["Retry-After"] = str(crm.faults.settings.retry_after)
            return response
        response = jsonify({"error": "Service unavailable"})
        response.status_code = status
        return response

    @bp.route("/_Api/auth_call/_api_method/getToken", methods=["GET", "POST"])
    def get_token():
        refused = throttled()
        if refused is not None:
            return refused
        try:
            params = _params()
            if params.get("_api_auth") != "key":
                raise ApiError(560, "Invalid auth method (_api_auth=key)")
            return envelope(crm.get_token(str(params.get("_api_key") or "")))
        except ApiError as exc:
            return envelope(None, exc.result, exc.error)

    @bp.route("/<module>/<method>", methods=["GET", "POST"])
    def call(module: str, method: str):
        refused = throttled()
        if refused is not None:
            return refused
        try:
            params = _params()
            me = crm.authenticate(params)
            for field in AUTH_FIELDS:
                params.pop(field, None)
            if module not in modules:
                raise ApiError(514, f"Wrong module {module}")
            handler = table.get((module, method))
            if handler is None:
                raise ApiError(515, f"Wrong method {method}")
            for knob, code in (("result_550", 550), ("result_540", 540), ("result_520", 520)):
                if crm.faults.take(knob):
                    raise ApiError(code, "Injected by the sandbox's fault knobs")
            answer = handler(params, me)
            if (module, method) in WRITES and crm.faults.take("lose_write_answers"):
                response = jsonify({"error": "Gateway timeout"})   # applied, but the answer is lost
                response.status_code = 504
                return response
            return envelope(answer)
        except ApiError as exc:
            return envelope(None, exc.result, exc.error)

    return bp
