"""Bitrix24 emulator: portals with OAuth, REST (`{client_endpoint}{method}`), events and a page
to play the portal's user.

`create_app(state=None, faults=None, options=None)` returns a Flask app; the emulator object is
`app.extensions["sandbox"]` (`Bitrix24Sandbox`: create_deal, move_deal, win_deal, lose_deal,
create_lead, convert_lead, create_task, task_action, view_task, install, uninstall, bindings,
deliver_pending, deliveries ...).

Layout (`<root>` is where the app is served, `/sandbox/bitrix24` in the hub):
- `<root>/oauth/token/` the OAuth server (oauth.bitrix.info's role), `<root>/rest/` its server_endpoint;
- `<root>/portal/<name>/oauth/authorize/` a portal's consent page (`<root>/oauth/authorize/` with a
  portal picker), `<root>/portal/<name>/rest/<method>` its client_endpoint;
- `<root>/portal/<name>/crm/deal/details/<id>/`, `.../company/personal/user/<u>/tasks/task/view/<id>/`
  the portal's addresses of a deal and a task (they open the sandbox page);
- `<root>/_sandbox/ui/` the page to play a portal user, `<root>/_sandbox/faults|tokens/expire|...` control.

Options (all optional): `clients` ([{client_id, client_secret, redirect_uris|redirect_uri, scopes,
event_handler, name, version}]; `event_handler` is the app's handler for ONAPPINSTALL /
ONAPPUNINSTALL, by default the hub's `/hooks/<provider>` next to its OAuth callback); `portals`
([{name, title, domain, plan}], default one portal "demo"); `seed` (True); `clock`; `bucket_clock`;
`access_ttl` (3600); `code_ttl` (30); `bucket_burst` (50) and `bucket_drain` (2/s);
`auto_deliver` (True: a thread sends events as they happen; False: only `deliver_pending()`, which
also sends what the `webhooks_paused` knob holds back); `install_event_delay` (seconds ONAPPINSTALL
waits in the running sandbox, default 2, so the app has stored its install; 0 without auto delivery);
`session` (a requests-like session for deliveries); `base_url` / `permalink_base` (public root).
Fault knobs beyond the shared ones: refresh_reuse, bucket_enabled, bucket_burst, bucket_drain,
drop_events (next N deliveries lost), drop_event_rate, operation_limit (next N method calls answer
429 OPERATION_TIME_LIMIT, the per-method time budget; inside a batch, that command fails).
"""
from __future__ import annotations

from flask import Flask

from ..common import Faults, SandboxState, control_blueprint
from .emulator import Bitrix24Sandbox
from .oauth import oauth_blueprint
from .rest import rest_blueprint
from .ui import links_blueprint, ui_blueprint

__all__ = ["create_app", "Bitrix24Sandbox"]


def create_app(*, state: SandboxState | None = None, faults: Faults | None = None,
               options: dict | None = None) -> Flask:
    options = dict(options or {})
    state = state if state is not None else SandboxState()
    faults = faults if faults is not None else Faults()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 5 * 1024 * 1024
    app.config["SANDBOX_TITLE"] = "Bitrix24"     # the sandbox index and its nav list it with its page
    app.config["SANDBOX_PAGE"] = "_sandbox/ui/"
    sandbox = Bitrix24Sandbox(state, faults, options)
    app.extensions["sandbox"] = sandbox
    app.register_blueprint(oauth_blueprint())
    app.register_blueprint(rest_blueprint())
    app.register_blueprint(control_blueprint(faults, sandbox.tokens))
    app.register_blueprint(ui_blueprint())
    app.register_blueprint(links_blueprint())
    return app
