"""People API errors in Google's google.rpc.Status JSON shape.

Every API failure is raised as `ApiError` anywhere in the emulator and rendered once, so the body is
always `{"error": {"code", "message", "status", "details"?, "errors"?}}` as Google's JSON APIs answer
(https://cloud.google.com/apis/design/errors). The helpers below carry the texts and ErrorInfo
reasons seen in public captures (FACTS.md §2, §5, §7); where Google never documented the wording
the text is ours and the status/reason is the part clients should key on."""
from __future__ import annotations

from typing import Any

from flask import Response, jsonify

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
BATCH_CREATE_DETAILS = "type.googleapis.com/google.apps.people.v1.BatchCreateContactsErrorDetails"
BATCH_UPDATE_DETAILS = "type.googleapis.com/google.apps.people.v1.BatchUpdateContactsErrorDetails"

# canonical code names -> numeric google.rpc.Code (used inside nested Status objects)
RPC_CODES = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9,
    "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
    "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}
# HTTP status a 5xx fault knob may ask for -> canonical status string
HTTP_STATUS_NAMES = {500: "INTERNAL", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
                     504: "DEADLINE_EXCEEDED"}

SERVICE = "people.googleapis.com"


class ApiError(Exception):
    """One People API error; `body()` is the JSON Google would send."""

    def __init__(self, http: int, status: str, message: str, *, details: list[dict] | None = None,
                 errors: list[dict] | None = None, headers: dict[str, str] | None = None):
        super().__init__(f"{http} {status}: {message}")
        self.http = http
        self.status = status
        self.message = message
        self.details = details or []
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.http, "message": self.message}
        if self.errors:
            error["errors"] = self.errors
        error["status"] = self.status
        if self.details:
            error["details"] = self.details
        return {"error": error}

    def response(self) -> Response:
        resp = jsonify(self.body())
        resp.status_code = self.http
        for key, value in self.headers.items():
            resp.headers[key] = value
        return resp

    def as_status(self) -> dict[str, Any]:
        """The nested google.rpc.Status form used inside batch error details (numeric code)."""
        return {"code": RPC_CODES.get(self.status, 2), "message": self.message}


def error_info(reason: str, domain: str = SERVICE, **metadata: str) -> dict[str, Any]:
    info: dict[str, Any] = {"@type": ERROR_INFO, "reason": reason, "domain": domain}
    if metadata:
        info["metadata"] = metadata
    return info


def invalid_argument(message: str, field: str | None = None) -> ApiError:
    details = []
    if field:
        details.append({"@type": BAD_REQUEST, "fieldViolations": [{"field": field, "description": message}]})
    return ApiError(400, "INVALID_ARGUMENT", message, details=details)


def not_found(message: str = "Requested entity was not found.") -> ApiError:
    return ApiError(404, "NOT_FOUND", message)


def unknown_field(name: str, where: str) -> ApiError:
    """Google's JSON transcoder rejects unknown fields instead of ignoring them."""
    msg = f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': Cannot find field."
    return ApiError(400, "INVALID_ARGUMENT", msg, details=[{
        "@type": BAD_REQUEST,
        "fieldViolations": [{"field": where, "description": msg}],
    }])


def stale_etag(source_variant: bool = False) -> ApiError:
    """updateContact with an etag that is not the current one (examples/error-etag-failed-precondition.json)."""
    field = "person.metadata.sources.etag" if source_variant else "person.etag"
    msg = (f"Request {field} is different than the current {field}. "
           "Clear local cache and get the latest person.")
    return ApiError(400, "FAILED_PRECONDITION", msg,
                    errors=[{"message": msg, "domain": "global", "reason": "failedPrecondition"}])


def expired_sync_token() -> ApiError:
    """connections.list / contactGroups.list with an expired or unknown syncToken (examples/error-expired-sync-token.json)."""
    return ApiError(400, "FAILED_PRECONDITION",
                    "Sync token is expired. Clear local cache and retry call without the sync token.",
                    details=[error_info("EXPIRED_SYNC_TOKEN")])


def unauthenticated(missing: bool) -> ApiError:
    if missing:
        msg = ("Request is missing required authentication credential. Expected OAuth 2 access token, "
               "login cookie or other valid authentication credential. "
               "See https://developers.google.com/identity/sign-in/web/devconsole-project.")
        reason = "CREDENTIALS_MISSING"
    else:
        msg = ("Request had invalid authentication credentials. Expected OAuth 2 access token, "
               "login cookie or other valid authentication credential. "
               "See https://developers.google.com/identity/sign-in/web/devconsole-project.")
        reason = "ACCESS_TOKEN_EXPIRED"
    return ApiError(401, "UNAUTHENTICATED", msg,
                    details=[error_info(reason, "googleapis.com", service=SERVICE)],
                    headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'
                             + ("" if missing else ', error="invalid_token"')})


def insufficient_scope() -> ApiError:
    return ApiError(403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.",
                    details=[error_info("ACCESS_TOKEN_SCOPE_INSUFFICIENT", "googleapis.com", service=SERVICE)],
                    headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", '
                             'error="insufficient_scope", scope="https://www.googleapis.com/auth/contacts"'})


def rate_limited(metric: str, metric_label: str, limit: str, limit_label: str, limit_value: int,
                 retry_after: int | None = None) -> ApiError:
    """Per-minute quota exhausted: 429 RESOURCE_EXHAUSTED with ErrorInfo RATE_LIMIT_EXCEEDED (FACTS §2)."""
    msg = (f"Quota exceeded for quota metric '{metric_label}' and limit '{limit_label}' "
           f"of service '{SERVICE}' for consumer 'project_number:000000000000'.")
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return ApiError(429, "RESOURCE_EXHAUSTED", msg, headers=headers, details=[error_info(
        "RATE_LIMIT_EXCEEDED", "googleapis.com", quota_metric=metric, quota_limit=limit,
        quota_limit_value=str(limit_value), service=SERVICE, consumer="projects/000000000000")])


def server_error(status: int) -> ApiError:
    name = HTTP_STATUS_NAMES.get(status, "INTERNAL" if status < 503 else "UNAVAILABLE")
    message = ("The service is currently unavailable." if name == "UNAVAILABLE"
               else "Internal error encountered.")
    return ApiError(status, name, message)
