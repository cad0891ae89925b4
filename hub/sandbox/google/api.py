"""HTTP plumbing shared by the People API routes: faults, bearer auth, scopes, parameter parsing.

Order per request, as a client sees Google's front end: fault knobs (latency, 429 burst, 5xx) ->
bearer token (401) -> scope (403) -> per-user quota (429) -> the method. Every failure is an
`ApiError` rendered in google.rpc.Status shape, including unknown paths and wrong methods."""
from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter

from .emulator import GoogleSandbox
from .errors import ApiError, insufficient_scope, invalid_argument, rate_limited, server_error, unauthenticated

SCOPE_CONTACTS = "https://www.googleapis.com/auth/contacts"
SCOPE_READONLY = "https://www.googleapis.com/auth/contacts.readonly"
PROFILE_SCOPES = {"https://www.googleapis.com/auth/userinfo.profile", "https://www.googleapis.com/auth/userinfo.email",
                  "profile", "email", "openid"}


# Google refuses query parameters a method does not declare ("Cannot bind query parameter").
SYSTEM_PARAMS = {"$.xgafv", "access_token", "alt", "callback", "fields", "key", "oauth_token", "prettyPrint",
                 "quotaUser", "uploadType", "upload_protocol"}
_PERSON_READ = {"personFields", "requestMask.includeField", "sources"}
QUERY_PARAMS = {
    "people_get": _PERSON_READ,
    "people_batch_get": _PERSON_READ | {"resourceNames"},
    "connections_list": _PERSON_READ | {"pageSize", "pageToken", "requestSyncToken", "sortOrder", "syncToken"},
    "create_contact": {"personFields", "sources"},
    "update_contact": {"personFields", "sources", "updatePersonFields"},
    "groups_list": {"groupFields", "pageSize", "pageToken", "syncToken"},
    "groups_batch_get": {"groupFields", "maxMembers", "resourceNames"},
    "groups_get": {"groupFields", "maxMembers"},
    "groups_delete": {"deleteContacts"},
}


class SegmentConverter(BaseConverter):
    """One path segment that stops at ':' so `people/{id}:updateContact` splits as Google's routes do."""
    regex = r"[^/:]+"


def make_api_blueprint(sb: GoogleSandbox) -> Blueprint:
    from .api_groups import register_group_routes
    from .api_people import register_people_routes

    bp = Blueprint("google_people_api", __name__)

    @bp.before_request
    def gate():
        decision = sb.faults.decide()
        if decision is not None:
            kind, status = decision
            if kind == "429":
                raise rate_limited("people.googleapis.com/critical_read_requests",
                                   "Critical read requests (Contact and Profile Reads)",
                                   "CriticalReadRequestsPerMinutePerProjectPerUser",
                                   "Critical read requests (Contact and Profile Reads) per minute per user",
                                   sb.quota_limits["read"], retry_after=sb.faults.settings.retry_after)
            raise server_error(status)
        token = None
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            token = header.split(" ", 1)[1].strip()
        token = token or request.args.get("access_token") or request.args.get("oauth_token")
        if not token:
            raise unauthenticated(missing=True)
        grant = sb.tokens.validate(token)
        if grant is None:
            raise unauthenticated(missing=False)
        with sb.state.lock:
            accounts = sb.state.data["google"]["accounts"]
            if grant.get("account") not in accounts:
                raise unauthenticated(missing=False)
        g.account_id = grant["account"]
        g.scopes = set(grant.get("scopes", []))
        allowed = QUERY_PARAMS.get((request.endpoint or "").rsplit(".", 1)[-1], set()) | SYSTEM_PARAMS
        for name in request.args:
            if name not in allowed:
                raise invalid_argument(f"Invalid JSON payload received. Unknown name \"{name}\": "
                                       "Cannot bind query parameter. Field '" + name + "' could not be found "
                                       "in request message.", name)

    @bp.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return exc.response()

    register_people_routes(bp, sb)
    register_group_routes(bp, sb)
    return bp


def api_http_error(exc: HTTPException):
    """An unknown path or method on the API host is a 404 in Google's shape (no 405 there)."""
    if exc.code in (404, 405):
        return ApiError(404, "NOT_FOUND", "Requested entity was not found.").response()
    if exc.code == 400:
        return ApiError(400, "INVALID_ARGUMENT", exc.description or "Bad request.").response()
    return ApiError(500, "INTERNAL", "Internal error encountered.").response()


# -- helpers used by the route modules --------------------------------------------------------------
def require_read() -> None:
    if not g.scopes & {SCOPE_CONTACTS, SCOPE_READONLY}:
        raise insufficient_scope()


def require_write() -> None:
    if SCOPE_CONTACTS not in g.scopes:
        raise insufficient_scope()


def json_body() -> dict[str, Any]:
    raw = request.get_data(cache=True, as_text=True)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise invalid_argument("Invalid JSON payload received. Unexpected token.") from None
    if not isinstance(body, dict):
        raise invalid_argument("Invalid JSON payload received. Expected an object.")
    try:   # an escape like "\ud800" alone is not Unicode: Google's parser refuses it
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise invalid_argument("Invalid JSON payload received. Invalid UTF-8 in a string (unpaired surrogate).") \
            from None
    return body


def int_arg(name: str, default: int, low: int, high: int, wire: str) -> int:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_argument(f"Invalid value at '{wire}' (TYPE_INT32), \"{raw}\"", name) from None
    if value == 0:
        return default
    if not low <= value <= high:
        raise invalid_argument(f"Invalid {name}: must be between {low} and {high}.", name)
    return value


def bool_arg(name: str) -> bool:
    raw = (request.args.get(name) or "").lower()
    if raw in ("", "false", "0"):
        return False
    if raw in ("true", "1"):
        return True
    raise invalid_argument(f"Invalid value at '{name}' (TYPE_BOOL), \"{raw}\"", name)


def repeated_arg(name: str) -> list[str]:
    values: list[str] = []
    for raw in request.args.getlist(name):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    return values


READ_SOURCES = {"READ_SOURCE_TYPE_UNSPECIFIED", "READ_SOURCE_TYPE_PROFILE", "READ_SOURCE_TYPE_CONTACT",
                "READ_SOURCE_TYPE_DOMAIN_CONTACT", "READ_SOURCE_TYPE_OTHER_CONTACT"}


def sources_arg(values: list[str] | None = None) -> list[str]:
    values = repeated_arg("sources") if values is None else values
    for value in values:
        if value not in READ_SOURCES:
            raise invalid_argument(f"Invalid value at 'sources' (type.googleapis.com/"
                                   f"google.apps.people.v1.ReadSourceType), \"{value}\"", "sources")
    return sorted(set(values))
