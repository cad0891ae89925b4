"""Emulator of Google's OAuth 2.0 web-server flow and the People API v1 (contacts and labels).

Paths (all relative to wherever the app is mounted; Google's hosts in brackets):
- OAuth [accounts.google.com / oauth2.googleapis.com]:
  `GET /o/oauth2/v2/auth` (consent screen), `POST /o/oauth2/v2/auth` (the screen's form),
  `POST /token` (authorization_code, refresh_token), `POST /revoke`.
- People API [people.googleapis.com], exactly as the discovery document `people.v1.json` names them:
  `GET /v1/people/{id}` (incl. `people/me`), `GET /v1/people:batchGet`,
  `GET /v1/people/me/connections`, `POST /v1/people:createContact`,
  `PATCH /v1/people/{id}:updateContact`, `DELETE /v1/people/{id}:deleteContact`,
  `POST /v1/people:batchCreateContacts` (<= 200), `POST /v1/people:batchUpdateContacts` (<= 200),
  `POST /v1/people:batchDeleteContacts` (<= 500),
  `GET|POST /v1/contactGroups`, `GET /v1/contactGroups:batchGet`,
  `GET|PUT|DELETE /v1/contactGroups/{id}`, `POST /v1/contactGroups/{id}/members:modify` (<= 1000).
- Sandbox: `/_sandbox/ui/` (accounts, labels, contacts, hand edits, fault knobs),
  `/_sandbox/faults`, `/_sandbox/tokens/expire`, `/_sandbox/oauth/counters` (common control API).

Options (besides the common `clients`, `access_ttl` (default 3599, Google's `expires_in`), `seed`):
- `accounts`: list of `{"email", "name"}` sandbox Google users (default anna@ and ben@sandbox.example);
  the consent screen offers exactly these.
- `contact_limit` (25000): live contacts per account; a create beyond it fails with
  `contact_limit_status` (400 FAILED_PRECONDITION, or 429 RESOURCE_EXHAUSTED), reason
  CONTACT_LIMIT_EXCEEDED. Google's exact error is undocumented (FACTS §9), hence the switch.
- `read_quota_per_minute`, `write_quota_per_minute` (6000 each): per-user, per-minute buckets
  charged with Google's documented per-method costs (FACTS §8); over -> 429 RATE_LIMIT_EXCEEDED.
- `sync_token_ttl` seconds (7 days): sync tokens expire this long after the full sync of their chain.
- `auto_my_contacts` (True): a created contact is also put in `contactGroups/myContacts`.
- `validate_emails` (True): malformed e-mail values are a 400 (as the batch example shows).
- `clock`: a `() -> float` time source, for tests.
- `empty_pages` (0): the initial value of that fault knob. The Google-only fault knobs (empty
  non-last pages, a sync token expiring mid-run, batches timing out after being applied or
  partially rejected, resource names changing on update, late echoes) are in `knobs.py`; they are
  set like every knob through `/_sandbox/faults` (`sandbox.empty_pages` also works in tests).
"""
from __future__ import annotations

from typing import Any

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from hub.sandbox.common import Faults, OAuthClient, SandboxState, control_blueprint

from .api import SegmentConverter, api_http_error, make_api_blueprint
from .emulator import GoogleSandbox
from .oauth import make_oauth_blueprint
from .ui import make_ui_blueprint

DEFAULT_CLIENT = {"client_id": "relay-hub-sandbox", "client_secret": "sandbox-secret", "redirect_uris": []}


def create_app(*, state: SandboxState | None = None, faults: Faults | None = None,
               options: dict[str, Any] | None = None) -> Flask:
    options = dict(options or {})
    state = state if state is not None else SandboxState()
    faults = faults if faults is not None else Faults()
    sandbox = GoogleSandbox(state, faults, options)
    for client in options.get("clients") or [DEFAULT_CLIENT]:
        sandbox.tokens.register_client(OAuthClient(client["client_id"], client["client_secret"],
                                                   list(client.get("redirect_uris") or [])))

    app = Flask(__name__)
    app.json.sort_keys = False  # keep Google's field order in responses
    app.json.ensure_ascii = False
    app.url_map.converters["seg"] = SegmentConverter
    app.extensions["sandbox"] = sandbox
    app.register_blueprint(make_oauth_blueprint(sandbox))
    app.register_blueprint(make_api_blueprint(sandbox))
    app.register_blueprint(make_ui_blueprint(sandbox))
    app.register_blueprint(control_blueprint(faults, sandbox.tokens))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path.startswith("/v1/"):
            return api_http_error(exc)
        return exc

    @app.get("/")
    def home():
        from flask import redirect, url_for
        return redirect(url_for("google_ui.index"))

    return app


__all__ = ["create_app", "GoogleSandbox"]
