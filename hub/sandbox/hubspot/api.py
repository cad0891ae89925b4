"""The CRM API subset: /crm/v3/objects, /search, /batch/read, /crm/v3/pipelines, /crm/v3/properties,
/crm/v3/owners and /crm/v4 associations, behind HubSpot's gate.

Every request passes the same gate: fault knobs (latency, 5xx, 429), the bearer token (401
`INVALID_AUTHENTICATION` / `EXPIRED_AUTHENTICATION`), the app's installation in the token's account,
the 10-second rolling limit per (app, account) with the `X-HubSpot-RateLimit-*` headers (the search
endpoints have their own per-second limit), then the endpoint's scopes (403 `MISSING_SCOPES`).
Errors use HubSpot's body: status, message, correlationId, category, and errors[] where it has one."""
from __future__ import annotations

import collections
import threading
import uuid
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from . import schema as s
from .emulator import ApiError, parse_datetime

RATE_WINDOW = 10.0        # seconds, rolling, per (app, account) (FACTS §4)
SEARCH_WINDOW = 1.0
MAX_LIST = 100
MAX_SEARCH = 200
MAX_BATCH = 100


def _sb():
    return current_app.extensions["sandbox"]


def err(exc: ApiError) -> Response:
    resp = jsonify(exc.body())
    resp.status_code = exc.status
    return resp


class RateWindow:
    """Rolling request counts per key on the emulator's clock."""

    def __init__(self, window: float):
        self.window = window
        self._hits: dict[Any, collections.deque] = {}
        self._lock = threading.Lock()

    def hit(self, key: Any, now: float, limit: int, enforce: bool) -> tuple[bool, int]:
        """(allowed, remaining); a refused request does not count."""
        with self._lock:
            q = self._hits.setdefault(key, collections.deque())
            while q and q[0] <= now - self.window:
                q.popleft()
            if enforce and len(q) >= limit:
                return False, 0
            q.append(now)
            return True, max(limit - len(q), 0)


def rate_limited(policy: str) -> Response:
    if policy == "SECONDLY":
        message = "You have reached your secondly limit."
    else:
        message = "You have reached your ten_secondly_rolling limit."
    resp = jsonify({"status": "error", "message": message, "errorType": "RATE_LIMIT",
                    "correlationId": str(uuid.uuid4()), "policyName": policy, "category": "RATE_LIMITS"})
    resp.status_code = 429
    return resp


def _kind(name: str) -> str:
    kind = s.resolve_type(name)
    if kind is None:
        raise ApiError(400, f"Unable to infer object type from: {name}", "VALIDATION_ERROR")
    return kind


def _read_scopes(kind: str) -> set[str]:
    base = "contacts" if kind in s.ENGAGEMENTS else kind
    return {f"crm.objects.{base}.read", f"crm.objects.{base}.write"}


def _write_scopes(kind: str) -> set[str]:
    base = "contacts" if kind in s.ENGAGEMENTS else kind
    return {f"crm.objects.{base}.write"}


def need(any_of: set[str]) -> None:
    granted = set(g.grant["scopes"])
    if not granted & any_of:
        raise ApiError(403, "This app hasn't been granted all required scopes to make this call. Read more about "
                            "required scopes here: https://developers.hubspot.com/scopes.", "MISSING_SCOPES",
                       errors=[{"message": "One or more of the following scopes are required.",
                                "context": {"requiredGranularScopes": sorted(any_of)}}])


def _csv(name: str) -> list[str]:
    return [x.strip() for raw in request.args.getlist(name) for x in raw.split(",") if x.strip()]


def _int_arg(name: str, default: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid value for {name}: {raw!r} is not an integer") from None
    if value < 1:
        raise ApiError(400, f"Invalid value for {name}: must be at least 1")
    return min(value, hi)


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid input JSON: expected a JSON object body", "VALIDATION_ERROR")
    return body


# -- presenting records -----------------------------------------------------------------------------

def present(hub_id: int, kind: str, rec: dict, props: list[str] | None = None,
            history: list[str] | None = None, assoc: list[str] | None = None) -> dict:
    sb = _sb()
    info = s.OBJECT_TYPES[kind]
    names = props if props else info["default"]
    known = {p["name"] for p in sb.properties(hub_id, kind)}
    out_props = {n: rec["properties"].get(n) for n in names if n in known}
    for n in ("hs_object_id", info["created"], info["modified"]):
        out_props[n] = rec["properties"].get(n)
    out: dict[str, Any] = {"id": rec["id"], "properties": out_props, "createdAt": rec["createdAt"],
                           "updatedAt": rec["updatedAt"], "archived": rec["archived"]}
    if rec["archived"]:
        out["archivedAt"] = rec.get("archivedAt")
    if history:
        out["propertiesWithHistory"] = {n: list(rec["history"].get(n, [])) for n in history if n in known}
    if assoc:
        links = {}
        for name in assoc:
            to_kind = s.resolve_type(name)
            if to_kind is None:
                continue
            results = [{"id": tid, "type": s.type_name(t)}
                       for tid, types in sorted(sb.associations(hub_id, kind, rec["id"], to_kind).items(),
                                                key=lambda x: int(x[0]))
                       for t in types]
            if results:
                links[to_kind] = {"results": results}
        if links:
            out["associations"] = links
    return out


# -- search -------------------------------------------------------------------------------------------

OPERATORS = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY",
             "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}


def _comparable(prop: dict | None, value: Any) -> Any:
    if value is None:
        return None
    if prop and prop["type"] in ("datetime", "date"):
        return parse_datetime(value)
    if prop and prop["type"] == "number":
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    return str(value).lower()


def _filter_ok(hub_id: int, kind: str, rec: dict, f: dict) -> bool:
    sb = _sb()
    name, op = f["propertyName"], f["operator"]
    if name.startswith("associations."):
        to_kind = s.resolve_type(name.split(".", 1)[1])
        ids = set(sb.associations(hub_id, kind, rec["id"], to_kind)) if to_kind else set()
        wanted = {str(v) for v in (f.get("values") or [f.get("value")])}
        if op in ("EQ", "IN"):
            return bool(ids & wanted)
        if op in ("NEQ", "NOT_IN"):
            return not ids & wanted
        return op == "HAS_PROPERTY" and bool(ids)
    prop = sb.property(hub_id, kind, name)
    raw = rec["properties"].get(name)
    if name == "hs_object_id":
        raw = rec["id"]
    if op == "HAS_PROPERTY":
        return raw not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return raw in (None, "")
    have = _comparable(prop, raw)
    if op in ("IN", "NOT_IN"):
        values = {_comparable(prop, v) for v in f.get("values") or []}
        return (have in values) == (op == "IN")
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(f.get("value", "")).lower().strip("*")
        found = have is not None and token in str(have)
        return found == (op == "CONTAINS_TOKEN")
    want = _comparable(prop, f.get("value"))
    if op == "EQ":
        return have == want
    if op == "NEQ":
        return have != want
    if have is None or want is None:
        return False
    try:
        if op == "BETWEEN":
            high = _comparable(prop, f.get("highValue"))
            return high is not None and want <= have <= high
        return {"LT": have < want, "LTE": have <= want, "GT": have > want, "GTE": have >= want}[op]
    except TypeError:
        return False


def _check_search(body: dict) -> None:
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list) or len(groups) > 5:
        raise ApiError(400, "filterGroups must be an array of at most 5 groups")
    total = 0
    for n, grp in enumerate(groups):
        filters = grp.get("filters") if isinstance(grp, dict) else None
        if not isinstance(filters, list) or len(filters) > 6:
            raise ApiError(400, f"filterGroups[{n}].filters must be an array of at most 6 filters")
        total += len(filters)
        for m, f in enumerate(filters):
            if not isinstance(f, dict) or not isinstance(f.get("propertyName"), str) or f.get("operator") not in OPERATORS:
                raise ApiError(400, f"filterGroups[{n}].filters[{m}]: propertyName and a valid operator "
                                    f"({', '.join(sorted(OPERATORS))}) are required")
            if f["operator"] in ("IN", "NOT_IN") and not isinstance(f.get("values"), list):
                raise ApiError(400, f"filterGroups[{n}].filters[{m}]: operator {f['operator']} needs values")
            if f["operator"] == "BETWEEN" and "highValue" not in f:
                raise ApiError(400, f"filterGroups[{n}].filters[{m}]: BETWEEN needs highValue")
    if total > 18:
        raise ApiError(400, "at most 18 filters in all filterGroups")


# -- the blueprint --------------------------------------------------------------------------------------

def api_blueprint(options: dict) -> Blueprint:
    bp = Blueprint("hs_api", __name__)
    limit = int(options.get("rate_limit", 110))
    search_limit = int(options.get("search_rate_limit", 5))
    enforce = bool(options.get("enforce_rate_limit", False))
    window, search_window = RateWindow(RATE_WINDOW), RateWindow(SEARCH_WINDOW)

    @bp.before_request
    def gate():
        if not request.path.startswith("/crm/"):
            return None
        sb = _sb()
        fault = sb.faults.decide()
        if fault is not None:
            kind, status = fault
            if kind == "429":
                resp = rate_limited("TEN_SECONDLY_ROLLING")
                resp.headers["Retry-After"] = str(sb.faults.settings.retry_after)
                return resp
            return err(ApiError(status, "internal error", "INTERNAL_ERROR"))
        auth = request.headers.get("Authorization", "")
        token = auth.split(" ", 1)[1].strip() if auth.lower().startswith("bearer ") else None
        if not token:
            return err(ApiError(401, "Authentication credentials not found. This API supports OAuth 2.0 "
                                     "authentication and you can find more details at "
                                     "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                                "INVALID_AUTHENTICATION"))
        with sb.state.lock:
            entry = sb.state.data.get("oauth_access", {}).get(token)
            entry = dict(entry) if entry else None
        if entry is None:
            return err(ApiError(401, "Authentication credentials not found.", "INVALID_AUTHENTICATION"))
        if entry["expires_at"] <= sb.clock():
            minutes = max(1, int(sb.clock() - entry["expires_at"]) // 60)
            return err(ApiError(401, f"The OAuth token used to make this call expired {minutes} minute(s) ago.",
                                "EXPIRED_AUTHENTICATION"))
        grant = entry["grant"]
        if grant["hub_id"] not in sb.installed_portals(grant["client_id"]):
            return err(ApiError(401, "The app is not installed in this account.", "INVALID_AUTHENTICATION"))
        g.grant, g.hub_id = grant, grant["hub_id"]
        key = (grant["client_id"], grant["hub_id"])
        now = sb.clock()
        allowed, remaining = window.hit(key, now, limit, enforce)
        g.rate = (limit, remaining)
        if not allowed:
            return rate_limited("TEN_SECONDLY_ROLLING")
        if request.path.endswith("/search"):
            ok, _ = search_window.hit(key, now, search_limit, enforce)
            if not ok:
                return rate_limited("SECONDLY")
        return None

    @bp.after_request
    def headers(resp):
        rate = g.get("rate")
        if rate is not None:
            resp.headers["X-HubSpot-RateLimit-Max"] = str(rate[0])
            resp.headers["X-HubSpot-RateLimit-Remaining"] = str(rate[1])
            resp.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(int(RATE_WINDOW * 1000))
        return resp

    @bp.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return err(exc)

    def source():
        return _sb().api_source(g.grant["client_id"], g.grant["user_id"])

    # -- objects ----------------------------------------------------------------------------------
    @bp.get("/crm/v3/objects/<object_type>")
    def list_objects(object_type):
        sb, kind = _sb(), _kind(object_type)
        need(_read_scopes(kind))
        size = _int_arg("limit", 10, MAX_LIST)
        after = request.args.get("after")
        archived = request.args.get("archived", "false").lower() == "true"
        with sb.state.lock:
            rows = [r for r in sorted(sb.table(g.hub_id, kind).values(), key=lambda r: int(r["id"]))
                    if r["archived"] == archived]
            if after:
                if not after.isdigit():
                    raise ApiError(400, f"Invalid paging cursor after={after}")
                rows = [r for r in rows if int(r["id"]) > int(after)]
            page = rows[:size]
            results = [present(g.hub_id, kind, r, _csv("properties"), _csv("propertiesWithHistory"),
                               _csv("associations")) for r in page]
        body: dict[str, Any] = {"results": results}
        if len(rows) > size:
            nxt = page[-1]["id"]
            body["paging"] = {"next": {"after": nxt, "link": f"{request.base_url}?after={nxt}"}}
        return jsonify(body)

    @bp.get("/crm/v3/objects/<object_type>/<object_id>")
    def get_object(object_type, object_id):
        sb, kind = _sb(), _kind(object_type)
        need(_read_scopes(kind))
        archived = request.args.get("archived", "false").lower() == "true"
        with sb.state.lock:
            rec = _lookup(kind, object_id, request.args.get("idProperty"), archived)
            return jsonify(present(g.hub_id, kind, rec, _csv("properties"), _csv("propertiesWithHistory"),
                                   _csv("associations")))

    def _lookup(kind: str, object_id: str, id_property: str | None, archived: bool = False) -> dict:
        sb = _sb()
        if id_property and id_property != "hs_object_id":
            prop = sb.property(g.hub_id, kind, id_property)
            if prop is None or not prop.get("hasUniqueValue") and id_property != "email":
                raise ApiError(400, f"{id_property} is not a unique identifier property")
            for rec in sb.table(g.hub_id, kind).values():
                if rec["archived"] == archived and str(rec["properties"].get(id_property) or "").lower() == object_id.lower():
                    return rec
            raise ApiError(404, "Object not found.", "OBJECT_NOT_FOUND", context={"id": [object_id]})
        return sb.record(g.hub_id, kind, object_id, archived=archived)

    @bp.post("/crm/v3/objects/<object_type>")
    def create_object(object_type):
        sb, kind = _sb(), _kind(object_type)
        need(_write_scopes(kind))
        body = _body()
        rec = sb.create(g.hub_id, kind, body.get("properties"), body.get("associations"), source=source())
        with sb.state.lock:
            names = list(rec["properties"])
            return jsonify(present(g.hub_id, kind, sb.record(g.hub_id, kind, rec["id"]), names)), 201

    @bp.patch("/crm/v3/objects/<object_type>/<object_id>")
    def update_object(object_type, object_id):
        sb, kind = _sb(), _kind(object_type)
        need(_write_scopes(kind))
        body = _body()
        with sb.state.lock:
            rec_id = _lookup(kind, object_id, request.args.get("idProperty"))["id"]
        rec = sb.update(g.hub_id, kind, rec_id, body.get("properties"), source=source())
        with sb.state.lock:
            return jsonify(present(g.hub_id, kind, sb.record(g.hub_id, kind, rec["id"]), list(rec["properties"])))

    @bp.delete("/crm/v3/objects/<object_type>/<object_id>")
    def archive_object(object_type, object_id):
        sb, kind = _sb(), _kind(object_type)
        need(_write_scopes(kind))
        with sb.state.lock:
            rec = sb.table(g.hub_id, kind).get(str(object_id))
        if rec is not None and not rec["archived"]:
            sb.archive(g.hub_id, kind, object_id, source=source())
        return "", 204      # HubSpot answers 204 for an unknown or already archived id too

    @bp.post("/crm/v3/objects/<object_type>/search")
    def search(object_type):
        sb, kind = _sb(), _kind(object_type)
        need(_read_scopes(kind))
        body = _body()
        _check_search(body)
        try:
            size = min(int(body.get("limit", 10)), MAX_SEARCH)
            offset = int(body.get("after") or 0)
        except (TypeError, ValueError):
            raise ApiError(400, "limit and after must be integers") from None
        if size < 0 or offset < 0:
            raise ApiError(400, "limit and after must not be negative")
        if offset + size > 10_000:
            raise ApiError(400, "Search results are limited to 10,000 per query")
        sorts = body.get("sorts") or []
        if not isinstance(sorts, list):
            raise ApiError(400, "sorts must be an array")
        query = str(body.get("query") or "").lower().strip()
        props = body.get("properties") if isinstance(body.get("properties"), list) else None
        with sb.state.lock:
            rows = [r for r in sb.table(g.hub_id, kind).values() if not r["archived"]]
            groups = body.get("filterGroups") or []
            if groups:
                rows = [r for r in rows if any(all(_filter_ok(g.hub_id, kind, r, f) for f in grp["filters"])
                                               for grp in groups)]
            if query:
                rows = [r for r in rows if any(query in str(v).lower() for k, v in r["properties"].items()
                                               if v and k in s.OBJECT_TYPES[kind]["default"] + ["hs_lead_name",
                                               "hs_task_subject", "email", "name", "dealname", "firstname", "lastname"])]
            rows.sort(key=lambda r: int(r["id"]))
            for srt in reversed(sorts):
                if isinstance(srt, str):
                    srt = {"propertyName": srt.lstrip("-"), "direction": "DESCENDING" if srt.startswith("-") else "ASCENDING"}
                if not isinstance(srt, dict) or not srt.get("propertyName"):
                    raise ApiError(400, "each sort needs a propertyName")
                prop = sb.property(g.hub_id, kind, srt["propertyName"])
                rows.sort(key=lambda r: (_comparable(prop, r["properties"].get(srt["propertyName"])) is None,
                                         _comparable(prop, r["properties"].get(srt["propertyName"])) or 0
                                         if prop and prop["type"] in ("number", "datetime", "date")
                                         else str(_comparable(prop, r["properties"].get(srt["propertyName"])) or "")),
                          reverse=srt.get("direction") == "DESCENDING")
            page = rows[offset: offset + size]
            results = [present(g.hub_id, kind, r, props) for r in page]
        out: dict[str, Any] = {"total": len(rows), "results": results}
        if offset + size < len(rows):
            out["paging"] = {"next": {"after": str(offset + size)}}
        return jsonify(out)

    @bp.post("/crm/v3/objects/<object_type>/batch/read")
    def batch_read(object_type):
        sb, kind = _sb(), _kind(object_type)
        need(_read_scopes(kind))
        body = _body()
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) and i.get("id") not in (None, "") for i in inputs):
            raise ApiError(400, "inputs must be an array of {\"id\": ...}")
        if len(inputs) > MAX_BATCH:
            raise ApiError(400, f"Batch input must contain at most {MAX_BATCH} inputs")
        started = _sb().now()
        results, missing = [], []
        with sb.state.lock:
            for item in inputs:
                try:
                    rec = _lookup(kind, str(item["id"]), body.get("idProperty"))
                except ApiError:
                    missing.append(str(item["id"]))
                    continue
                results.append(present(g.hub_id, kind, rec, body.get("properties") or None,
                                       body.get("propertiesWithHistory") or None))
        from .emulator import iso
        out: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": iso(started),
                               "completedAt": iso(sb.now())}
        if missing:
            out["numErrors"] = 1
            out["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND",
                              "message": f"Could not get some {s.OBJECT_TYPES[kind]['singular'].upper()} objects, "
                                         "they may be deleted or not exist. Check that ids are valid.",
                              "context": {"ids": missing}}]
            return jsonify(out), 207
        return jsonify(out)

    @bp.post("/crm/v3/objects/<object_type>/batch/update")
    def batch_update(object_type):
        sb, kind = _sb(), _kind(object_type)
        need(_write_scopes(kind))
        inputs = _body().get("inputs")
        if not isinstance(inputs, list) or len(inputs) > MAX_BATCH or not all(
                isinstance(i, dict) and i.get("id") not in (None, "") for i in inputs):
            raise ApiError(400, f"inputs must be an array of at most {MAX_BATCH} {{id, properties}}")
        with sb.state.lock:
            for item in inputs:             # all or nothing: check every record first
                sb.record(g.hub_id, kind, item["id"])
        started = sb.now()
        results = []
        for item in inputs:
            rec = sb.update(g.hub_id, kind, item["id"], item.get("properties"), source=source())
            with sb.state.lock:
                results.append(present(g.hub_id, kind, sb.record(g.hub_id, kind, rec["id"]), list(rec["properties"])))
        from .emulator import iso
        return jsonify({"status": "COMPLETE", "results": results, "startedAt": iso(started),
                        "completedAt": iso(sb.now())})

    # -- v3 associations on one record ------------------------------------------------------------
    @bp.put("/crm/v3/objects/<object_type>/<object_id>/associations/<to_type>/<to_id>/<assoc_type>")
    def v3_associate(object_type, object_id, to_type, to_id, assoc_type):
        sb, kind, to_kind = _sb(), _kind(object_type), _kind(to_type)
        need(_write_scopes(kind))
        try:
            tid = int(assoc_type)
        except ValueError:
            tid = next((t for t in s.ASSOCIATION_TYPES if s.type_name(t) == assoc_type), None)
        if tid is None:
            raise ApiError(400, f"Unknown association type {assoc_type}")
        sb.associate(g.hub_id, kind, object_id, to_kind, to_id, [tid])
        with sb.state.lock:
            return jsonify(present(g.hub_id, kind, sb.record(g.hub_id, kind, object_id), None, None, [to_kind]))

    # -- v4 associations ----------------------------------------------------------------------------
    @bp.get("/crm/v4/associations/<from_type>/<to_type>/labels")
    def labels(from_type, to_type):
        kind, to_kind = _kind(from_type), _kind(to_type)
        need(_read_scopes(kind))
        rows = [{"category": "HUBSPOT_DEFINED", "typeId": t, "label": a["label"]}
                for t, a in sorted(s.ASSOCIATION_TYPES.items()) if a["from"] == kind and a["to"] == to_kind]
        return jsonify({"results": rows})

    @bp.get("/crm/v4/objects/<from_type>/<object_id>/associations/<to_type>")
    def v4_list(from_type, object_id, to_type):
        sb, kind, to_kind = _sb(), _kind(from_type), _kind(to_type)
        need(_read_scopes(kind))
        size = _int_arg("limit", 500, 500)
        after = request.args.get("after")
        with sb.state.lock:
            sb.record(g.hub_id, kind, object_id)
            items = sorted(sb.associations(g.hub_id, kind, object_id, to_kind).items(), key=lambda x: int(x[0]))
        if after:
            items = [x for x in items if int(x[0]) > int(after)] if after.isdigit() else []
        page = items[:size]
        body: dict[str, Any] = {"results": [
            {"toObjectId": int(tid), "associationTypes": [
                {"category": "HUBSPOT_DEFINED", "typeId": t, "label": s.ASSOCIATION_TYPES[t]["label"]} for t in types]}
            for tid, types in page]}
        if len(items) > size:
            body["paging"] = {"next": {"after": page[-1][0]}}
        return jsonify(body)

    @bp.put("/crm/v4/objects/<from_type>/<object_id>/associations/default/<to_type>/<to_id>")
    def v4_default(from_type, object_id, to_type, to_id):
        sb, kind, to_kind = _sb(), _kind(from_type), _kind(to_type)
        need(_write_scopes(kind))
        tid = s.default_type(kind, to_kind)
        if tid is None:
            raise ApiError(400, f"No default association from {kind} to {to_kind}")
        sb.associate(g.hub_id, kind, object_id, to_kind, to_id, [tid])
        return jsonify({"status": "COMPLETE", "results": [
            {"from": {"id": str(object_id)}, "to": {"id": str(to_id)},
             "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": tid}}]})

    @bp.put("/crm/v4/objects/<from_type>/<object_id>/associations/<to_type>/<to_id>")
    def v4_label(from_type, object_id, to_type, to_id):
        sb, kind, to_kind = _sb(), _kind(from_type), _kind(to_type)
        need(_write_scopes(kind))
        body = request.get_json(silent=True)
        if not isinstance(body, list) or not body:
            raise ApiError(400, "body must be a non-empty array of {associationCategory, associationTypeId}")
        ids = []
        for item in body:
            try:
                if item["associationCategory"] != "HUBSPOT_DEFINED":
                    raise ValueError
                ids.append(int(item["associationTypeId"]))
            except (KeyError, TypeError, ValueError):
                raise ApiError(400, "each item needs associationCategory HUBSPOT_DEFINED and an associationTypeId") from None
        sb.associate(g.hub_id, kind, object_id, to_kind, to_id, ids)
        with sb.state.lock:
            types = sb.associations(g.hub_id, kind, object_id, to_kind).get(str(to_id), [])
        return jsonify({"fromObjectTypeId": s.OBJECT_TYPES[kind]["id"], "fromObjectId": int(object_id),
                        "toObjectTypeId": s.OBJECT_TYPES[to_kind]["id"], "toObjectId": int(to_id),
                        "labels": [s.ASSOCIATION_TYPES[t]["label"] for t in types if s.ASSOCIATION_TYPES[t]["label"]]}), 201

    @bp.delete("/crm/v4/objects/<from_type>/<object_id>/associations/<to_type>/<to_id>")
    def v4_delete(from_type, object_id, to_type, to_id):
        sb, kind, to_kind = _sb(), _kind(from_type), _kind(to_type)
        need(_write_scopes(kind))
        sb.dissociate(g.hub_id, kind, object_id, to_kind, to_id)
        return "", 204

    # -- pipelines ----------------------------------------------------------------------------------
    def _pipeline_kind(object_type: str) -> str:
        kind = _kind(object_type)
        if kind not in ("deals", "leads"):
            raise ApiError(400, f"Object type {object_type} does not support pipelines")
        need(_read_scopes(kind))
        return kind

    @bp.get("/crm/v3/pipelines/<object_type>")
    def pipelines(object_type):
        kind = _pipeline_kind(object_type)
        with _sb().state.lock:
            return jsonify({"results": [p for p in _sb().pipelines(g.hub_id, kind) if not p["archived"]]})

    def _pipeline(kind: str, pipeline_id: str) -> dict:
        p = next((p for p in _sb().pipelines(g.hub_id, kind) if p["id"] == pipeline_id), None)
        if p is None:
            raise ApiError(404, f"Unable to find pipeline {pipeline_id}", "OBJECT_NOT_FOUND")
        return p

    @bp.get("/crm/v3/pipelines/<object_type>/<pipeline_id>")
    def pipeline(object_type, pipeline_id):
        kind = _pipeline_kind(object_type)
        with _sb().state.lock:
            return jsonify(_pipeline(kind, pipeline_id))

    @bp.get("/crm/v3/pipelines/<object_type>/<pipeline_id>/stages")
    def pipeline_stages(object_type, pipeline_id):
        kind = _pipeline_kind(object_type)
        with _sb().state.lock:
            return jsonify({"results": _pipeline(kind, pipeline_id)["stages"]})

    @bp.get("/crm/v3/pipelines/<object_type>/<pipeline_id>/stages/<stage_id>")
    def pipeline_stage(object_type, pipeline_id, stage_id):
        kind = _pipeline_kind(object_type)
        with _sb().state.lock:
            st = next((x for x in _pipeline(kind, pipeline_id)["stages"] if x["id"] == stage_id), None)
            if st is None:
                raise ApiError(404, f"Unable to find stage {stage_id}", "OBJECT_NOT_FOUND")
            return jsonify(st)

    # -- properties ---------------------------------------------------------------------------------
    def _schema_scopes(kind: str) -> set[str]:
        return _read_scopes(kind) | {f"crm.schemas.{kind}.read", f"crm.schemas.{kind}.write"}

    @bp.get("/crm/v3/properties/<object_type>")
    def properties(object_type):
        kind = _kind(object_type)
        need(_schema_scopes(kind))
        with _sb().state.lock:
            return jsonify({"results": _sb().properties(g.hub_id, kind)})

    @bp.get("/crm/v3/properties/<object_type>/<name>")
    def property_(object_type, name):
        kind = _kind(object_type)
        need(_schema_scopes(kind))
        with _sb().state.lock:
            prop = _sb().property(g.hub_id, kind, name)
            if prop is None:
                raise ApiError(404, f"Unable to find property named {name} for object type "
                                    f"{s.OBJECT_TYPES[kind]['id']}", "OBJECT_NOT_FOUND")
            return jsonify(prop)

    @bp.post("/crm/v3/properties/<object_type>")
    def create_property(object_type):
        """An app's own property (e.g. a key for idempotent writes); `hasUniqueValue` is enforced."""
        sb, kind = _sb(), _kind(object_type)
        need(_write_scopes(kind) | {f"crm.schemas.{kind}.write"})
        body = _body()
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
        if missing:
            raise ApiError(400, f"Missing required fields: {', '.join(missing)}", errors=[
                {"message": f"{m} is required", "code": "REQUIRED_FIELD", "context": {"field": [m]}} for m in missing])
        if body["type"] not in ("string", "number", "date", "datetime", "enumeration", "bool"):
            raise ApiError(400, f"type {body['type']!r} is not one of string, number, date, datetime, enumeration, bool")
        import re
        if not re.fullmatch(r"[a-z][a-z0-9_]*", str(body["name"])):
            raise ApiError(400, "name must start with a lowercase letter and hold only lowercase letters, digits and _")
        with sb.state.change():
            if sb.property(g.hub_id, kind, body["name"]) is not None:
                raise ApiError(409, f"Property named '{body['name']}' already exists.", "OBJECT_ALREADY_EXISTS")
            from .schema import _prop
            prop = _prop(body["name"], str(body["label"]), body["type"], str(body["fieldType"]),
                         group=str(body["groupName"]))
            prop.update(hubspotDefined=False, hasUniqueValue=bool(body.get("hasUniqueValue")),
                        description=str(body.get("description") or ""),
                        displayOrder=len(sb.properties(g.hub_id, kind)))
            prop["modificationMetadata"]["readOnlyDefinition"] = False
            if body["type"] == "enumeration":
                opts = body.get("options") or []
                prop["options"] = [{"label": str(o.get("label")), "value": str(o.get("value")),
                                    "displayOrder": n, "hidden": bool(o.get("hidden"))}
                                   for n, o in enumerate(opts) if isinstance(o, dict)]
            sb.properties(g.hub_id, kind).append(prop)
            return jsonify(prop), 201

    # -- owners -------------------------------------------------------------------------------------
    @bp.get("/crm/v3/owners")
    @bp.get("/crm/v3/owners/")
    def owners():
        need({"crm.objects.owners.read"})
        rows = _sb().owners(g.hub_id)
        email = request.args.get("email")
        if email:
            rows = [o for o in rows if o["email"].lower() == email.lower()]
        size = _int_arg("limit", 100, 500)
        after = request.args.get("after")
        if after:
            rows = [o for o in rows if int(o["id"]) > int(after)] if after.isdigit() else []
        body: dict[str, Any] = {"results": rows[:size]}
        if len(rows) > size:
            body["paging"] = {"next": {"after": rows[size - 1]["id"]}}
        return jsonify(body)

    @bp.get("/crm/v3/owners/<owner_id>")
    def owner(owner_id):
        need({"crm.objects.owners.read"})
        by = request.args.get("idProperty", "id")
        row = next((o for o in _sb().owners(g.hub_id)
                    if str(o["userId" if by == "userId" else "id"]) == owner_id), None)
        if row is None:
            raise ApiError(404, f"Owner {owner_id} not found", "OBJECT_NOT_FOUND")
        return jsonify(row)

    @bp.route("/crm/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def unknown(rest):
        raise ApiError(404, f"Unknown endpoint /crm/{rest}", "OBJECT_NOT_FOUND")

    return bp
