"""Asana emulator: the API subset Relay Hub uses, OAuth, and sandbox pages (FACTS: shared/providers/asana).

Mount points (relative to wherever the app is mounted):
- `/api/1.0/...`            the REST API (workspaces, teams, projects, users, tasks, attachments)
- `/-/oauth_authorize`, `/-/oauth_token`, `/-/oauth_revoke`   OAuth 2.0 with PKCE
- `/_sandbox/ui/`           pages showing what landed, with the fault knobs
- `/_sandbox/faults`, `/_sandbox/tokens/expire`, `/_sandbox/oauth/counters`   control API
- `/_sandbox/files/<gid>`   the short-lived signed `download_url` of uploaded attachments

`options` (all optional):
- `clients`: `[{"client_id", "client_secret", "redirect_uris": [...]}]`; default one client
  `relay-hub-sandbox` / `sandbox-secret` accepting any redirect_uri.
- `access_ttl`: access-token lifetime in seconds (Asana: 3600).
- `seed`: create the demo organization, workspace, teams, users and projects on an empty state (True).
- `attachment_max_bytes`: upload limit per attachment (Asana: 100 MB); larger files get 400.
- `permalink_base`: base of `permalink_url` values (default `https://app.asana.com`); the hub's
  sandbox sets it to where the emulator is served, whose `/1/<ws>/task/<gid>` ... open its pages.
- `offset_secret`: bytes/str key signing pagination offsets and download URLs (default: random).
"""
from __future__ import annotations

import os

from flask import Flask, request

from ..common import Faults, OAuthClient, SandboxState, TokenAuthority, control_blueprint
from .api import API_PREFIX, api_blueprint, error_response
from .links import links_blueprint
from .models import AsanaEmulator
from .oauth import oauth_blueprint
from .ui import attachment_urls, ui_blueprint

DEFAULT_CLIENT = {"client_id": "relay-hub-sandbox", "client_secret": "sandbox-secret", "redirect_uris": []}

__all__ = ["create_app", "AsanaEmulator"]


def create_app(*, state: SandboxState | None = None, faults: Faults | None = None,
               options: dict | None = None) -> Flask:
    options = dict(options or {})
    state = state or SandboxState()
    faults = faults or Faults()
    tokens = TokenAuthority(state, faults, prefix="asana_", access_ttl=int(options.get("access_ttl", 3600)))
    for client in options.get("clients") or [DEFAULT_CLIENT]:
        tokens.register_client(OAuthClient(client["client_id"], client["client_secret"],
                                           list(client.get("redirect_uris") or [])))

    app = Flask(__name__)
    secret = options.get("offset_secret") or os.urandom(32)
    app.config["ASANA_OFFSET_SECRET"] = secret.encode() if isinstance(secret, str) else secret
    app.config["ASANA_ATTACHMENT_URLS"] = attachment_urls
    emulator = AsanaEmulator(state, faults, tokens, options)
    # Leave room for multipart overhead; the emulator itself answers an oversize file with 400.
    app.config["MAX_CONTENT_LENGTH"] = emulator.attachment_max_bytes + 1024 * 1024
    app.extensions["sandbox"] = emulator

    app.register_blueprint(api_blueprint())
    app.register_blueprint(oauth_blueprint())
    app.register_blueprint(ui_blueprint())
    app.register_blueprint(links_blueprint())
    app.register_blueprint(control_blueprint(faults, tokens))

    @app.errorhandler(413)
    def too_large(exc):
        if request.path.startswith(API_PREFIX):
            # The spec lists no 413 for createAttachmentForObject; a 400 is what it allows.
            return error_response(400, f"file: File is too large; the limit is {emulator.attachment_max_bytes} bytes")
        return exc

    @app.errorhandler(405)
    def wrong_method(exc):
        if request.path.startswith(API_PREFIX):
            return error_response(404, "No matching route for request")
        return exc

    if options.get("seed", True):
        emulator.seed_if_empty()
    return app
