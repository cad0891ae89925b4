"""HubSpot emulator: OAuth (install per account), the CRM API subset, app webhooks and a CRM page.

`create_app(state=None, faults=None, options=None)` returns a Flask app; the emulator object is in
`app.extensions["sandbox"]` (`HubSpotSandbox`: portals, create/update/archive, set_lifecycle,
move_lead, disqualify_lead, close_deal, complete_task, log_activity, deliver_pending ...).

Routes: `/oauth/authorize` (app.hubspot.com's install screen), `/oauth/v1/token` (also `/oauth/v3/token`, `/oauth/2026-03/token`,
with `.../token/introspect` and `.../token/revoke` on the newer two),
`/oauth/v1/access-tokens/<t>`, `/oauth/v1/refresh-tokens/<t>` (GET, DELETE), `/crm/v3/...` and
`/crm/v4/...` (api.hubapi.com: this app's root is the API host), `/_sandbox/ui/` (the CRM user's
page) and `/_sandbox/faults|tokens/expire|oauth/counters|webhooks/...` (operator routes).

Options (all optional):
- `clients`: `[{client_id, client_secret, redirect_uris, scopes?, name?, app_id?, webhook_url?,
  subscriptions?}]`; default one client `relay-hub-sandbox`/`sandbox-secret` accepting any redirect_uri.
- `webhook_url`: the app's webhook target URL; default `<hub_url>/hooks/hubspot` when `hub_url`
  (the embedded hub's own base URL) is given, else no deliveries are made (they are logged as dropped).
- `subscriptions`: the app's webhook subscriptions (default `schema.DEFAULT_SUBSCRIPTIONS`).
- `deliver_in_background` (default True): a daemon thread sends deliveries as they fall due; tests
  pass False and call `sandbox.deliver_pending()`. `transport(url, headers, body) -> (status, headers)`
  replaces the HTTP POST (tests). `webhook_batch_size` (default and max 100), `delivery_timeout` (5 s),
  `time_scale` (multiplies the retry backoff; `Retry-After` of a 429 is honoured as sent).
  Inside a hub built with the sandbox on (no options to pass), a test swaps them on the object:
  `sandbox.webhooks.transport = ...`, `sandbox.webhooks.background = False`.
- `access_ttl` (1800 s), `code_ttl` (60 s), `seed` (True), `clock` (a `time.time`-like callable).
- `rate_limit` (110 requests per rolling 10 s per app and account), `search_rate_limit` (5 per
  second), `enforce_rate_limit` (False: only the headers are sent).
- `sources`: the `sourceType` / `changeSource` spelled for each kind of change (ui, api, workflow,
  import, company_sync, meetings, email); the company-to-contact sync's value is unconfirmed [U]
  (default "COMPANIES"). `company_sync`: "forward" (default: only moves a contact forward), "all", "off".
- `lifecycle_backward` [U]: "allow" (default), "ignore" or "reject" an API move to an earlier stage.
- `creation_property_events` (True): a record created with a subscribed property also fires its
  propertyChange event, as HubSpot does. `associate_activities_to_leads` (True): activities logged on
  the page are associated with the contact's open leads.

Left out, on purpose: tickets, products, line items, quotes, notes and custom objects (no behaviour of
the hub needs them); `/crm/objects/2026-03/...` date-versioned paths (the legacy `/crm/v3` ones the
docs still serve are emulated); batch create/upsert/archive and GDPR delete; user-defined association
labels (HUBSPOT_DEFINED types only); the webhooks management API and journal (subscriptions are
options and `/_sandbox/webhooks/subscriptions/<client_id>`); `maxConcurrentRequests`; daily limits
(public OAuth apps have none); the developer portal itself. Search is consistent at once (HubSpot's
index lags a few seconds).
"""
from __future__ import annotations

from flask import Flask

from ..common import Faults, SandboxState, control_blueprint
from .api import api_blueprint
from .emulator import ApiError, HubSpotSandbox, Source
from .oauth import oauth_blueprint
from .ui import control_routes, ui_blueprint

__all__ = ["create_app", "HubSpotSandbox", "Source", "ApiError"]


def create_app(*, state: SandboxState | None = None, faults: Faults | None = None,
               options: dict | None = None) -> Flask:
    options = dict(options or {})
    state = state if state is not None else SandboxState()
    faults = faults if faults is not None else Faults()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 5 * 1024 * 1024
    sandbox = HubSpotSandbox(state, faults, options)
    app.extensions["sandbox"] = sandbox
    app.register_blueprint(oauth_blueprint())
    app.register_blueprint(api_blueprint(options))
    app.register_blueprint(control_blueprint(faults, sandbox.tokens))
    app.register_blueprint(ui_blueprint())
    control_routes(app)
    app.config["SANDBOX_TITLE"] = "HubSpot"
    app.config["SANDBOX_PAGE"] = "_sandbox/ui/"
    return app
