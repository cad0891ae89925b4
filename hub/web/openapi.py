"""The OpenAPI document of the whole JSON API (`/api/v1/openapi.json`), generated with apispec from
the marshmallow schemas each feature declares next to its routes.

A feature lists its operations in a module-level `OPERATIONS` (method, path under its `BASE`,
summary, request schema, (status, response schema), query parameters) with `BASE` and `TAG`;
`SOURCES` names those modules. tests/web/test_openapi.py walks `app.url_map` and fails when a
route under /api/ is missing here, so schemathesis (tests/web/test_schemathesis.py) reaches all."""
from __future__ import annotations

import importlib
import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, current_app, jsonify
from marshmallow import Schema, fields

from ..inputs import MAX_INT

SOURCES = ("hub.web.openapi", "hub.web.api_schemas", "hub.rules.web", "hub.sync.schemas", "hub.webhooks.schemas",
           "hub.tasks.schemas", "hub.tasks.templates_web")
ERRORS = ((400, "invalid input (or CSRF token); `fields` names each bad field"), (401, "not signed in"),
          (403, "not allowed for this installation, or not an admin"), (404, "no such installation or object"),
          (502, "a provider refused"), (503, "a provider is unavailable"))

bp = Blueprint("openapi", __name__)


class Error(Schema):
    error = fields.String(required=True)
    message = fields.String(required=True)
    fields_ = fields.Dict(data_key="fields", metadata={"description": "field (a dotted path) -> why"})
    grant_access = fields.Dict(metadata={"description": "who can grant access (403)"})


def _operations() -> list[tuple[str, str, Any]]:
    """(module BASE, module TAG, operation) for every source that is installed."""
    out = []
    for name in SOURCES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        out += [(module.BASE, module.TAG, op) for op in module.OPERATIONS]
    return out


# Path parameters that are a provider's text ids, not the hub's row ids.
TEXT_PARAMS = {"crm_user_id": {"type": "string", "minLength": 1, "maxLength": 100},
               "object_type": {"type": "string", "pattern": "^[A-Za-z0-9_]{1,40}$"},
               "object_id": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[^/\\r\\n\\x00]+$"}}


def _schema_name(schema: Any) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__


def build_openapi() -> dict[str, Any]:
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(title="Relay Hub API", version="1", openapi_version="3.0.3", plugins=[plugin],
                   info={"description": "The settings page's JSON API. Sign in through the hub (session cookie); "
                                        "writes need the session's CSRF token in the X-CSRF-Token header. Errors "
                                        "are {error, message, fields}."})
    from ..rules.schemas import Id
    plugin.map_to_openapi_type(Id, fields.String)
    spec.components.security_scheme("session", {"type": "apiKey", "in": "cookie", "name": "session"})
    spec.components.security_scheme("csrf", {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"})
    spec.components.schema("Error", schema=Error)
    errors = {str(code): {"description": text, "content": {"application/json": {"schema": "Error"}}}
              for code, text in ERRORS}
    paths: dict[str, dict[str, Any]] = {}
    for base, tag, (method, suffix, summary, request_schema, (status, response_schema), query) in _operations():
        path = base + suffix
        params = [{"name": name, "in": "path", "required": True,
                   "schema": TEXT_PARAMS.get(name) or {"type": "integer", "format": "int64", "minimum": 1,
                                                        "maximum": MAX_INT}}
                  for name in re.findall(r"\{(\w+)\}", path)] + query
        ok: dict[str, Any] = {"description": "OK"}
        if response_schema is not None:
            ok["content"] = {"application/json": {"schema": response_schema}}
        op: dict[str, Any] = {"summary": summary, "tags": [tag], "parameters": params,
                              "responses": {str(status): ok, **errors},
                              "security": [{"session": []}] if method == "get" else [{"session": [], "csrf": []}]}
        if request_schema is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": request_schema}}}
        paths.setdefault(path, {})[method] = op
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    doc = spec.to_dict()
    for name, patch in _patches().items():
        if name in doc["components"]["schemas"]:
            doc["components"]["schemas"][name].update(patch)
    return doc


def _patches() -> dict[str, dict[str, Any]]:
    """What marshmallow cannot say, added to the generated component schemas."""
    out: dict[str, dict[str, Any]] = {}
    for name in SOURCES:
        try:
            out.update(getattr(importlib.import_module(name), "OPENAPI_PATCHES", {}))
        except ModuleNotFoundError:
            continue
    return out


@bp.get("/api/v1/openapi.json")
def openapi():
    doc = current_app.extensions.get("hub.openapi")
    if doc is None:
        doc = current_app.extensions["hub.openapi"] = build_openapi()
    return jsonify(doc)


# the document describes itself too, so every route under /api/ is in it
BASE, TAG = "", "api"
OPERATIONS: list = [("get", "/api/v1/openapi.json", "This OpenAPI document", None, (200, None), [])]
