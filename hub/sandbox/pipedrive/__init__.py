"""Pipedrive emulator: OAuth host, API v1/v2 subset, webhooks v2 and a CRM page for the sandbox.

`create_app(state=None, faults=None, options=None)` returns a Flask app; the emulator object is in
`app.extensions["sandbox"]` (`PipedriveSandbox`: create_deal, update_deal, move_stage, mark_won,
mark_lost, add_lead, create_person, pin_note, attach_file, deliveries, flush ...).

Routes: `/oauth/authorize|token|token/|revoke` (Pipedrive's OAuth host), `/api/v1/...`, `/api/v2/...`
(the company's `api_domain`, which is this app's own root URL), `/_sandbox/ui/` (the CRM user's
page) and `/_sandbox/faults|tokens/expire|oauth/counters` (shared control routes).

Options (all optional):
- `clients`: `[{client_id, client_secret, redirect_uris, scopes?, callback_url?, name?}]`; default one
  client `relay-hub-sandbox`/`sandbox-secret` accepting any redirect_uri. `scopes` default
  base, deals:full, contacts:full, leads:read, users:read, activities:full, admin; `callback_url` defaults to the
  redirect_uri last used by the install (target of app-sharing and uninstall callbacks).
- `access_ttl`: seconds (default 3600, as Pipedrive documents).
- `seed`: create the demo company on an empty state (default True).
- `time_scale`: multiplies webhook retry delays, the ban and the 3-day deletion (default 1.0).
- `delivery_timeout`: seconds a subscriber may take before a delivery counts as failed (default 10).
- `burst_limit`: requests per rolling 2 s per token announced in `x-ratelimit-limit` (default 80,
  the Lite plan for OAuth apps); `enforce_burst_limit` (default False) answers 429 beyond it.
- `clock`: a `time.time`-like callable (tests).
"""
from __future__ import annotations

from flask import Flask

from ..common import Faults, SandboxState, control_blueprint
from .api import api_blueprint
from .emulator import PipedriveSandbox
from .oauth import oauth_blueprint
from .ui import ui_blueprint

__all__ = ["create_app", "PipedriveSandbox"]


def create_app(*, state: SandboxState | None = None, faults: Faults | None = None,
               options: dict | None = None) -> Flask:
    options = dict(options or {})
    state = state if state is not None else SandboxState()
    faults = faults if faults is not None else Faults()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 20 * 1024 * 1024
    sandbox = PipedriveSandbox(state, faults, options)
    app.extensions["sandbox"] = sandbox
    app.register_blueprint(oauth_blueprint())
    app.register_blueprint(api_blueprint(options))
    app.register_blueprint(ui_blueprint())
    app.register_blueprint(control_blueprint(faults, sandbox.tokens))
    return app
