"""Livespace emulator: the public JSON API with its one-shot API sessions, deals in sales processes,
todos with types, webhook subscriptions (handshake, signed deliveries, retries) and a page where
you play the Livespace user.

`create_app(state=None, faults=None, options=None)` returns a Flask app; the account is in
`app.extensions["sandbox"]` (`LivespaceCrm`: set_status, move_stage, add_todo, complete_todo,
subscribe, deliver_pending ...).

Routes: `/api/public/json/...` (the API; the app's own root is the account's address),
`/_sandbox/ui/` (the Livespace user's page) and the shared `/_sandbox/faults`.

Options (all optional): `seed` (default True: the demo account), `clock`, `session` (the requests
session deliveries and handshakes go through), `signature_layout` ("concat" = url + body, the
default; "newline"; "body") and `base_url` / `permalink_base` (where links point).
Fault knobs beyond the shared ones: `result_550`, `result_540`, `result_520` (the next N calls
answer that result code) and `lose_write_answers` (the next N writes are applied, then answered
with a 504 as if the answer was lost)."""
from __future__ import annotations

from flask import Flask

from ..common import Faults, SandboxState, control_blueprint
from .api import api_blueprint
from .crm import LivespaceCrm, webhook_signature
from .ui import ui_blueprint

__all__ = ["create_app", "LivespaceCrm", "webhook_signature"]


def create_app(*, state: SandboxState | None = None, faults: Faults | None = None,
               options: dict | None = None) -> Flask:
    state = state if state is not None else SandboxState()
    faults = faults if faults is not None else Faults()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 2 * 1024 * 1024
    app.config["SANDBOX_TITLE"] = "Livespace"     # the sandbox index and its bar list it with its page
    app.config["SANDBOX_PAGE"] = "_sandbox/ui/"
    crm = LivespaceCrm(state, faults, options)
    app.extensions["sandbox"] = crm
    app.register_blueprint(api_blueprint(crm))
    app.register_blueprint(ui_blueprint(crm))
    app.register_blueprint(control_blueprint(faults))
    return app
