"""How the hub answers when a request fails: a page in the hub's look for a person in a browser, JSON
`{"error", "message"}` for the API and for programs, never a traceback or a secret.

Browsers are told apart by what they ask for: a request that lists `text/html` in its Accept header
(at least as wanted as JSON) and is not an API, webhook or JSON request gets the page. werkzeug's
`accept_mimetypes.best` is not used for this: Chromium's header lists a parametrised type first, so
`best` names that type and Chromium would be sent JSON."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, make_response, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from .returns import came_from

log = logging.getLogger("hub.web")
JSON_PREFIXES = ("/api/", "/hooks/")

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
         409: "conflict", 413: "too_large", 415: "unsupported_media_type", 429: "too_many_requests",
         500: "internal_error", 502: "bad_gateway", 503: "unavailable"}
TITLES = {400: "This request could not be used", 401: "Please sign in", 403: "You don't have access",
          404: "Not found", 405: "This address does not take that request", 413: "Too much data",
          500: "Something went wrong"}
PLAIN = {  # werkzeug's wording is for developers; these are for the person in front of the page
    404: "There is nothing at this address. The link may be old, or the thing it pointed to was deleted.",
    405: "This address is the target of a form or a button; open the page the form is on instead.",
    413: "What was sent is larger than the hub accepts.",
    500: "The hub failed to handle this request. Nothing more was changed; the hub's log has the details.",
}


def wants_html() -> bool:
    """A person's browser asking for a page (see the module's docstring)."""
    if request.path.startswith(JSON_PREFIXES) or request.is_json:
        return False
    accept = request.accept_mimetypes
    listed = [value for value, quality in accept if quality > 0]
    if "text/html" not in listed and "application/xhtml+xml" not in listed:
        return False
    return max(accept["text/html"], accept["application/xhtml+xml"]) >= accept["application/json"]


def back_target() -> tuple[str, str]:
    """Where "back" leads: the page of this hub the browser came from, else the hub's start page."""
    came = came_from(None, request.referrer, request.host)
    if came and came != request.full_path.rstrip("?"):
        return came, "Back to the previous page"
    return url_for("pages.index"), "Back to Relay Hub"


def _message(exc: HTTPException, code: int) -> str:
    described = exc.description and exc.description != type(exc).description
    return exc.description if described else PLAIN.get(code, exc.description or exc.name)


def error_response(code: int, message: str, error: str | None = None, **extra):
    """One refusal, as a page or as JSON (see `wants_html`); `extra` goes into the JSON body."""
    if wants_html():
        back, back_text = back_target()
        page = render_template("hub/error.html", status=code, title=TITLES.get(code, "This did not work"),
                               message=message, back=back, back_text=back_text)
        return make_response(page, code)
    return make_response(jsonify({"error": error or CODES.get(code, "error"), "message": message, **extra}), code)


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = exc.code or 500
        if code < 400:  # RequestRedirect and friends are answers, not errors
            return exc
        response = error_response(code, _message(exc, code))
        valid = getattr(exc, "valid_methods", None)
        if code == 405 and valid:
            response.headers["Allow"] = ", ".join(valid)
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, PLAIN[500])

    @app.context_processor
    def back_link():
        return {"back_target": back_target}
