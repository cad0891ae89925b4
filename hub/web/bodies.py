"""Requests and responses of every route go through here: JSON bodies are parsed by the one strict
parser (`hub.inputs.parse_json`, also behind any `request.get_json()`), refused input answers 400
naming the field, and a page or answer holding a stored value that is not valid text (an unpaired
surrogate written before input was checked) is sent with U+FFFD in its place instead of failing."""
from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask, request
from flask.wrappers import Request, Response

from ..inputs import InputError, check_text, parse_json

_SURROGATE = re.compile("[\ud800-\udfff]")


class _StrictJSON:
    """What `Request.get_json` calls: the hub's parser instead of a lenient `json.loads`."""

    @staticmethod
    def loads(data: Any, **_: Any) -> Any:
        return parse_json(data)

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        return json.dumps(obj, **kwargs)


class HubRequest(Request):
    @property
    def json_module(self) -> Any:
        return _StrictJSON

    @json_module.setter
    def json_module(self, value: Any) -> None:
        """Flask sets `app.json` on each request; the strict parser stays."""

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if isinstance(e, InputError):
            raise e
        return super().on_json_loading_failed(e)


class HubResponse(Response):
    def set_data(self, value: bytes | str) -> None:
        if isinstance(value, str):
            try:
                value = value.encode()
            except UnicodeEncodeError:
                value = _SURROGATE.sub("\ufffd", value).encode()
        super().set_data(value)


def json_body() -> Any:
    """The request's JSON value; None when the request is not JSON (callers name what they expect);
    InputError (answered 400 naming the field) when it is malformed or holds what cannot be stored."""
    if not request.is_json:
        return None
    return request.get_json(silent=False)


RAW_BODY_PREFIXES = ("/hooks/", "/sandbox/")   # read their bodies themselves (reading the form would consume it)


def install_bodies(app: Flask) -> None:
    app.request_class = HubRequest
    app.response_class = HubResponse

    @app.before_request
    def storable_text():
        """Query and form values are decoded leniently (bad UTF-8 becomes U+FFFD), but NUL passes
        and PostgreSQL cannot store it: refused here for every route, naming the field."""
        sources = [request.args]
        if not request.path.startswith(RAW_BODY_PREFIXES):
            sources.append(request.form)
        for source in sources:
            for key, value in source.items(multi=True):
                check_text(key, "(key)")
                check_text(value, key)

    @app.errorhandler(InputError)
    def refused(exc: InputError):
        from .errors import error_response
        return error_response(400, str(exc)[:1000], "invalid", fields=exc.fields)
