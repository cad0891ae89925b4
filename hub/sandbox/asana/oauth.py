"""Asana's OAuth 2.0 endpoints: `/-/oauth_authorize`, `/-/oauth_token`, `/-/oauth_revoke` (FACTS §3).

There is no real login: the authorize screen lets the person pick which seeded user they are
"signed in as", then Allow or Deny. A wrong client_id or redirect_uri shows a plain-text error and
never redirects (an attacker must not bounce users to arbitrary URLs); every other error goes back
to the redirect_uri as `error=...&state=...`."""
from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit, parse_qsl

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request

from ..common import OAuthError
from .models import AsanaEmulator

# The scopes Asana's spec lists (securitySchemes.oauth2), plus full access and OpenID Connect.
KNOWN_SCOPES = frozenset("""
default openid email profile
attachments:read attachments:write attachments:delete custom_fields:read custom_fields:write goals:read
jobs:read ooo_entries:read ooo_entries:write ooo_entries:delete tasks:read tasks:write tasks:delete
task_custom_types:read task_templates:read team_memberships:read portfolios:read portfolios:write
project_templates:read project_portfolio_settings:read project_portfolio_settings:write projects:delete
projects:read projects:write roles:read roles:write roles:delete users:read teams:read
time_tracking_categories:read time_tracking_categories:write time_tracking_categories:delete
time_tracking_entries:read timesheet_approval_statuses:read timesheet_approval_statuses:write
stories:read stories:write tags:read tags:write webhooks:read webhooks:write webhooks:delete workspaces:read
""".split())
_AUTH_PARAMS = ("client_id", "redirect_uri", "response_type", "state", "scope", "code_challenge",
                "code_challenge_method")


def _emu() -> AsanaEmulator:
    return current_app.extensions["sandbox"]


def _with_query(url: str, params: dict) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


class _Redirectable(Exception):
    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.error = error
        self.description = description


def _check_authorize(params) -> dict:
    """Validate an authorize request; raises OAuthError (no redirect) or _Redirectable."""
    _emu().tokens.check_redirect(params.get("client_id"), params.get("redirect_uri"))
    if params.get("response_type") != "code":
        raise _Redirectable("unsupported_response_type", "The sandbox supports response_type=code only")
    if not params.get("state"):
        raise _Redirectable("invalid_request", "The state parameter is required")
    scopes = (params.get("scope") or "default").split()
    unknown = [s for s in scopes if s not in KNOWN_SCOPES]
    if unknown:
        raise _Redirectable("invalid_scope", f"Unknown scope: {unknown[0]}")
    challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
    if method and method not in ("S256", "plain"):
        raise _Redirectable("invalid_request", "code_challenge_method must be S256 or plain")
    if method and not challenge:
        raise _Redirectable("invalid_request", "code_challenge_method given without code_challenge")
    return {"scopes": scopes, "code_challenge": challenge or None,
            "code_challenge_method": (method or "plain") if challenge else None}


def _plain_error(message: str) -> Response:
    return Response(f"Error: {message}\n\nThe application sent an invalid authorization request.\n",
                    status=400, mimetype="text/plain")


def _token_error(exc: OAuthError) -> Response:
    resp = jsonify({"error": exc.error, "error_description": exc.description})
    resp.status_code = exc.status
    return resp


def _client_credentials() -> tuple[str | None, str | None]:
    basic = _emu().tokens.basic_credentials(request.headers.get("Authorization"))
    if basic:
        return basic
    return request.form.get("client_id"), request.form.get("client_secret")


def _token_body(issued: dict, *, with_refresh: bool) -> dict:
    user = _emu().get("users", issued["grant"]["user"]) or {}
    body = {"access_token": issued["access_token"], "token_type": "bearer", "expires_in": issued["expires_in"]}
    if with_refresh:
        body["refresh_token"] = issued["refresh_token"]
    body["data"] = {"id": user.get("gid"), "gid": user.get("gid"), "name": user.get("name"),
                    "email": user.get("email")}
    return body


def oauth_blueprint() -> Blueprint:
    bp = Blueprint("asana_oauth", __name__, template_folder="templates")

    @bp.route("/-/oauth_authorize", methods=["GET", "POST"])
    def authorize():
        params = request.values
        try:
            checked = _check_authorize(params)
        except OAuthError as exc:
            return _plain_error(exc.description)
        except _Redirectable as exc:
            return redirect(_with_query(params["redirect_uri"], {
                "error": exc.error, "error_description": exc.description, "state": params.get("state")}))
        emu = _emu()
        users = emu.users()
        if request.method == "GET":
            return render_template("asana/authorize.html", params={k: params.get(k) for k in _AUTH_PARAMS},
                                   users=users, scopes=checked["scopes"], client_id=params["client_id"])
        if request.form.get("decision") != "allow":
            return redirect(_with_query(params["redirect_uri"], {
                "error": "access_denied", "error_description": "The user denied the request",
                "state": params.get("state")}))
        user = request.form.get("user")
        if emu.get("users", user) is None:
            return _plain_error("Pick the user you are signed in as")
        code = emu.tokens.issue_code(
            params["client_id"], params["redirect_uri"],
            {"user": user, "scopes": checked["scopes"], "client_id": params["client_id"]},
            code_challenge=checked["code_challenge"], code_challenge_method=checked["code_challenge_method"])
        return redirect(_with_query(params["redirect_uri"], {"code": code, "state": params.get("state")}))

    @bp.post("/-/oauth_token")
    def token():
        tokens = _emu().tokens
        try:
            if request.mimetype != "application/x-www-form-urlencoded":
                raise OAuthError("invalid_request", "The token request must be form-encoded")
            client_id, secret = _client_credentials()
            client = tokens.authenticate_client(client_id, secret)
            grant_type = request.form.get("grant_type")
            if grant_type == "authorization_code":
                if not request.form.get("code"):
                    raise OAuthError("invalid_request", "code is required")
                grant = tokens.redeem_code(request.form["code"], client.client_id,
                                           request.form.get("redirect_uri"), request.form.get("code_verifier"))
                return jsonify(_token_body(tokens.issue(client.client_id, grant), with_refresh=True))
            if grant_type == "refresh_token":
                if not request.form.get("refresh_token"):
                    raise OAuthError("invalid_request", "refresh_token is required")
                issued = tokens.refresh(request.form["refresh_token"], client.client_id)
                # Asana keeps the refresh token; strict mode rotates it and must then hand it out.
                return jsonify(_token_body(issued, with_refresh=issued["rotated"]))
            raise OAuthError("unsupported_grant_type", f"Unsupported grant_type: {grant_type}")
        except OAuthError as exc:
            return _token_error(exc)

    @bp.post("/-/oauth_revoke")
    def revoke():
        tokens = _emu().tokens
        try:
            client_id, secret = _client_credentials()
            tokens.authenticate_client(client_id, secret)
            token_value = request.form.get("token")
            if not token_value:
                raise OAuthError("invalid_request", "token is required")
            with _emu().state.lock:
                is_access = token_value in _emu().state.data.get("oauth_access", {})
            if is_access:
                raise OAuthError("invalid_request", "Only refresh tokens can be revoked")
            tokens.revoke(token_value)  # 200 whether it existed or not
            return Response("", status=200)
        except OAuthError as exc:
            return _token_error(exc)

    return bp
