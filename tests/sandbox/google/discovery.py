"""Conformance against Google's discovery document (people.v1.json), which is not OpenAPI.

`Discovery` turns the document's `schemas` into JSON Schema (draft 2020-12) and its `resources`
tree into a method table, then checks one HTTP exchange:
- the (httpMethod, path) pair must be a discovery method — otherwise only a 404 error is acceptable;
- for a 2xx answer the request must have been valid: every required parameter given (the document's
  `required: true` plus those its descriptions call "Required.", listed in DESCRIBED_REQUIRED), no
  unknown query parameter, enum/integer/boolean values well formed, the body valid against the
  method's `request` schema (or absent when the method has none), and the body valid against the
  method's `response` schema;
- for an error answer the body must be a google.rpc.Status envelope (ERROR_ENVELOPE below) whose
  HTTP code and canonical status agree (https://cloud.google.com/apis/design/errors#handling_errors).

Conversion rules (discovery -> JSON Schema):
  $ref X                -> {"$ref": "#/$defs/X"};  type any -> {}
  type object           -> properties converted; `additionalProperties` converted when given,
                           otherwise false: Google's JSON front end rejects unknown field names
                           ("Unknown name ... Cannot find field"), so an extra field is a mismatch
  type array / items    -> items converted;  enum -> enum
  integer int32/uint32  -> integer within the 32-bit range;  string int64/uint64 -> decimal string
  string google-datetime-> RFC 3339 UTC timestamp (format checked);  string byte -> base64
  description "Required." on a property -> listed in `required` of the converted object
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker

# Parameters the method descriptions call "Required." without `required: true` in the document.
# (`requestMask.includeField` is the deprecated alternative to personFields and is never sent.)
DESCRIBED_REQUIRED = {
    "people.people.connections.list": ["personFields"],
    "people.people.get": ["personFields"],
    "people.people.getBatchGet": ["personFields", "resourceNames"],
    "people.people.updateContact": ["updatePersonFields"],
    "people.contactGroups.batchGet": ["resourceNames"],
}

CANONICAL_HTTP = {  # google.rpc.Code -> HTTP mapping from the API design guide
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400, "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ABORTED": 409, "ALREADY_EXISTS": 409,
    "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499, "DATA_LOSS": 500, "UNKNOWN": 500, "INTERNAL": 500,
    "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")

# google.rpc.Status as Google's JSON APIs send it (https://cloud.google.com/apis/design/errors).
# Known detail types are checked field by field; the legacy `errors[]` array is allowed as observed.
ERROR_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {"error": {
        "type": "object",
        "required": ["code", "message", "status"],
        "additionalProperties": False,
        "properties": {
            "code": {"type": "integer", "minimum": 400, "maximum": 599},
            "message": {"type": "string", "minLength": 1},
            "status": {"enum": sorted(CANONICAL_HTTP)},
            "errors": {"type": "array", "items": {
                "type": "object", "required": ["message", "domain", "reason"], "additionalProperties": False,
                "properties": {"message": {"type": "string"}, "domain": {"type": "string"},
                               "reason": {"type": "string"}, "location": {"type": "string"},
                               "locationType": {"type": "string"}}}},
            "details": {"type": "array", "items": {"$ref": "#/$defs/_ErrorDetail"}},
        },
    }},
}
ERROR_DETAIL: dict[str, Any] = {
    "type": "object",
    "required": ["@type"],
    "properties": {"@type": {"type": "string", "pattern": r"^type\.googleapis\.com/"}},
    "allOf": [
        {"if": {"properties": {"@type": {"const": "type.googleapis.com/google.rpc.ErrorInfo"}}},
         "then": {"required": ["reason", "domain"], "additionalProperties": False,
                  "properties": {"@type": True, "reason": {"type": "string", "pattern": "^[A-Z0-9_]+$"},
                                 "domain": {"type": "string"},
                                 "metadata": {"type": "object", "additionalProperties": {"type": "string"}}}}},
        {"if": {"properties": {"@type": {"const": "type.googleapis.com/google.rpc.BadRequest"}}},
         "then": {"required": ["fieldViolations"], "additionalProperties": False,
                  "properties": {"@type": True, "fieldViolations": {"type": "array", "items": {
                      "type": "object", "required": ["field", "description"], "additionalProperties": False,
                      "properties": {"field": {"type": "string"}, "description": {"type": "string"}}}}}}},
        {"if": {"properties": {"@type": {"enum": [
            "type.googleapis.com/google.apps.people.v1.BatchCreateContactsErrorDetails",
            "type.googleapis.com/google.apps.people.v1.BatchUpdateContactsErrorDetails"]}}},
         "then": {"required": ["contactErrors"], "additionalProperties": False,
                  "properties": {"@type": True, "contactErrors": {
                      "type": "object", "minProperties": 1,
                      "additionalProperties": {"$ref": "#/$defs/Status"}}}}},
    ],
}


def _format_checker() -> FormatChecker:
    checker = FormatChecker()

    @checker.checks("google-datetime")
    def _datetime(value: object) -> bool:
        return not isinstance(value, str) or bool(RFC3339.match(value))

    return checker


@dataclass
class Method:
    id: str
    http_method: str
    pattern: re.Pattern
    spec: dict[str, Any]


class ConformanceError(AssertionError):
    pass


class Discovery:
    def __init__(self, path: Path):
        self.doc = json.loads(Path(path).read_text(encoding="utf-8"))
        self.defs = {name: self.convert(schema) for name, schema in self.doc["schemas"].items()}
        self.defs["_ErrorDetail"] = ERROR_DETAIL
        self.methods: list[Method] = []
        self._collect(self.doc["resources"])
        self.checker = _format_checker()
        self.seen: set[str] = set()  # method ids exercised with a 2xx answer

    # -- schema conversion ------------------------------------------------------------------------
    def convert(self, schema: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in schema:
            return {"$ref": f"#/$defs/{schema['$ref']}"}
        kind = schema.get("type")
        out: dict[str, Any] = {}
        if kind == "any" or kind is None:
            return {}
        if kind == "object":
            out["type"] = "object"
            props = schema.get("properties") or {}
            out["properties"] = {name: self.convert(sub) for name, sub in props.items()}
            required = [name for name, sub in props.items()
                        if str(sub.get("description", "")).startswith("Required.")]
            if required:
                out["required"] = required
            if "additionalProperties" in schema:
                out["additionalProperties"] = self.convert(schema["additionalProperties"])
            else:
                out["additionalProperties"] = False
        elif kind == "array":
            out["type"] = "array"
            if "items" in schema:
                out["items"] = self.convert(schema["items"])
        elif kind == "integer":
            out["type"] = "integer"
            fmt = schema.get("format")
            if fmt == "int32":
                out.update(minimum=-2**31, maximum=2**31 - 1)
            elif fmt == "uint32":
                out.update(minimum=0, maximum=2**32 - 1)
        elif kind == "number":
            out["type"] = "number"
        elif kind == "boolean":
            out["type"] = "boolean"
        elif kind == "string":
            out["type"] = "string"
            fmt = schema.get("format")
            if fmt in ("int64", "uint64"):
                out["pattern"] = r"^-?\d+$"
            elif fmt == "byte":
                out["pattern"] = r"^[A-Za-z0-9+/_-]*=*$"
            elif fmt == "google-datetime":
                out["format"] = "google-datetime"
        else:
            raise ValueError(f"discovery type not handled: {kind}")
        if "enum" in schema:
            out["enum"] = list(schema["enum"])
        return out

    def validator(self, ref: str | dict) -> Draft202012Validator:
        root = dict(ref) if isinstance(ref, dict) else {"$ref": f"#/$defs/{ref}"}
        root["$defs"] = self.defs
        return Draft202012Validator(root, format_checker=self.checker)

    def check(self, ref: str | dict, instance: Any, what: str) -> None:
        errors = sorted(self.validator(ref).iter_errors(instance), key=lambda e: list(e.absolute_path))
        if errors:
            lines = [f"  at /{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:10]]
            raise ConformanceError(f"{what} does not match the discovery document:\n" + "\n".join(lines))

    # -- methods ----------------------------------------------------------------------------------
    def _collect(self, resources: dict[str, Any]) -> None:
        for resource in resources.values():
            for method in resource.get("methods", {}).values():
                flat = method.get("flatPath", method["path"])
                regex = "^/" + re.sub(r"\\\{[^}]+\\\}", r"[^/:]+", re.escape(flat)) + "$"
                self.methods.append(Method(method["id"], method["httpMethod"], re.compile(regex), method))
            self._collect(resource.get("resources", {}))

    def find(self, http_method: str, path: str) -> Method | None:
        for method in self.methods:
            if method.http_method == http_method.upper() and method.pattern.match(path):
                return method
        return None

    def method(self, method_id: str) -> Method:
        return next(m for m in self.methods if m.id == method_id)

    # -- one exchange -----------------------------------------------------------------------------
    def check_exchange(self, http_method: str, url: str, request_body: Any, status: int,
                       response_body: Any) -> Method | None:
        parts = urlsplit(url)
        method = self.find(http_method, parts.path)
        if status >= 400:
            self.check(ERROR_ENVELOPE, response_body, f"error body of {http_method} {parts.path} ({status})")
            error = response_body["error"]
            if error["code"] != status:
                raise ConformanceError(f"error.code {error['code']} differs from HTTP status {status}")
            # allow-list: 502 is produced by Google's front end, not by the API's status mapping;
            # the sandbox's 5xx knob renders it as UNAVAILABLE (retriable), as clients treat it.
            if CANONICAL_HTTP[error["status"]] != status and (status, error["status"]) != (502, "UNAVAILABLE"):
                raise ConformanceError(f"status {error['status']} does not map to HTTP {status}")
            if method is None and status != 404:
                raise ConformanceError(f"{http_method} {parts.path} is no People API method, yet answered {status}")
            return method
        if method is None:
            raise ConformanceError(f"{http_method} {parts.path} is not a method of the discovery document")
        self._check_query(method, parse_qsl(parts.query, keep_blank_values=True))
        request_ref = (method.spec.get("request") or {}).get("$ref")
        if request_ref:
            self.check(request_ref, request_body if request_body is not None else {},
                       f"request body of {method.id}")
        elif request_body not in (None, b"", ""):
            raise ConformanceError(f"{method.id} takes no request body, one was sent")
        response_ref = (method.spec.get("response") or {}).get("$ref")
        if response_ref:
            self.check(response_ref, response_body, f"response body of {method.id}")
        self.seen.add(method.id)
        return method

    def _check_query(self, method: Method, query: list[tuple[str, str]]) -> None:
        params = method.spec.get("parameters", {})
        global_params = self.doc["parameters"]
        given = {name for name, _ in query}
        for name, value in query:
            spec = params.get(name) or global_params.get(name)
            if spec is None:
                raise ConformanceError(f"{method.id}: unknown query parameter {name!r}")
            if spec.get("location") == "path":
                raise ConformanceError(f"{method.id}: path parameter {name!r} sent in the query")
            if not spec.get("repeated") and sum(1 for n, _ in query if n == name) > 1:
                raise ConformanceError(f"{method.id}: parameter {name!r} is not repeated but given twice")
            kind = spec.get("type")
            if kind == "integer" and not re.fullmatch(r"-?\d+", value):
                raise ConformanceError(f"{method.id}: {name}={value!r} is not an integer")
            if kind == "boolean" and value not in ("true", "false"):
                raise ConformanceError(f"{method.id}: {name}={value!r} is not a boolean")
            if "enum" in spec and value not in spec["enum"]:
                raise ConformanceError(f"{method.id}: {name}={value!r} not in {spec['enum']}")
        required = [n for n, s in params.items() if s.get("required") and s.get("location") == "query"]
        for name in required + DESCRIBED_REQUIRED.get(method.id, []):
            if name not in given:
                raise ConformanceError(f"{method.id}: required parameter {name!r} missing")


def check_error_body(discovery: Discovery, status: int, body: Any) -> None:
    discovery.check(ERROR_ENVELOPE, body, f"error body ({status})")
    if body["error"]["code"] != status:
        raise ConformanceError("error.code differs from the HTTP status")


__all__ = ["Discovery", "ConformanceError", "ERROR_ENVELOPE", "check_error_body", "jsonschema"]
