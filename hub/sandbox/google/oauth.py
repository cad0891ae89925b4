"""Google's OAuth 2.0 web-server flow, emulated: consent screen, token endpoint, revoke.

Paths mirror Google's: `GET/POST /o/oauth2/v2/auth` (accounts.google.com), `POST /token` and
`POST /revoke` (oauth2.googleapis.com). What is faithful (FACTS.md §1):
- the screen shows "Signed in as" with the sandbox accounts (no password) and one checkbox per
  sensitive scope (granular consent: the user may untick contacts); Deny -> `error=access_denied`;
- `access_type=offline` yields a refresh token on the first consent of a client+account, again only
  with `prompt=consent`; online access never does;
- the token response carries `access_token`, `expires_in` (3599), `refresh_token` (when issued),
  `scope` (space-separated GRANTED scopes), `token_type: Bearer`, and `id_token` for `openid`
  (signed HS256 with the client secret: Google signs RS256, a sandbox has no key set to publish);
- refresh returns no refresh token unless `faults.strict_refresh` rotates it (then reuse -> 400
  `invalid_grant`); revoking an access token that belongs to a refresh token revokes the grant.
Errors are `{"error", "error_description"}` with Google's texts where known."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit, parse_qsl

from flask import Blueprint, jsonify, redirect, render_template, request

from hub.sandbox.common import OAuthError

from .emulator import GoogleSandbox

SCOPE_TEXT = {
    "https://www.googleapis.com/auth/contacts": "See, edit, download, and permanently delete your contacts",
    "https://www.googleapis.com/auth/contacts.readonly": "See and download your contacts",
}
# non-sensitive scopes Google grants without a checkbox
BASIC_SCOPES = {
    "openid": "Associate you with your personal info on Google",
    "email": "See your primary Google Account email address",
    "profile": "See your personal info, including any personal info you've made publicly available",
    "https://www.googleapis.com/auth/userinfo.email": "See your primary Google Account email address",
    "https://www.googleapis.com/auth/userinfo.profile":
        "See your personal info, including any personal info you've made publicly available",
}
FLOW_PARAMS = ("client_id", "redirect_uri", "response_type", "scope", "state", "access_type", "prompt",
               "include_granted_scopes", "login_hint", "code_challenge", "code_challenge_method")


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _oauth_error(error: str, description: str, status: int = 400):
    resp = jsonify({"error": error, "error_description": description})
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-cache, no-store, max-age=0, must-revalidate"
    return resp


def _id_token(sb: GoogleSandbox, client_id: str, secret: str, account_id: str) -> str:
    with sb.state.lock:
        acct = sb.account(account_id)
        email = acct["email"]
    now = int(sb.clock())
    header = {"alg": "HS256", "typ": "JWT"}
    payload = {"iss": "https://accounts.google.com", "azp": client_id, "aud": client_id, "sub": account_id,
               "email": email, "email_verified": True, "iat": now, "exp": now + sb.tokens.access_ttl}
    enc = [base64.urlsafe_b64encode(json.dumps(p, separators=(",", ":")).encode()).rstrip(b"=") for p in (header, payload)]
    signing_input = b".".join(enc)
    sig = base64.urlsafe_b64encode(hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()).rstrip(b"=")
    return (signing_input + b"." + sig).decode()


def make_oauth_blueprint(sb: GoogleSandbox) -> Blueprint:
    bp = Blueprint("google_oauth", __name__, template_folder="templates")
    tokens = sb.tokens

    def error_page(error: str, description: str, status: int = 400):
        return render_template("google/oauth_error.html", error=error, description=description, status=status), status

    def validate_flow(params: dict[str, str]):
        """Client, redirect and scopes: problems here are shown on Google's page, never redirected."""
        try:
            client = tokens.check_redirect(params.get("client_id"), params.get("redirect_uri"))
        except OAuthError as exc:
            if exc.error == "invalid_client":
                return None, error_page("invalid_client", "The OAuth client was not found.", 401)
            return None, error_page("redirect_uri_mismatch", "You can't sign in to this app because it doesn't "
                                    "comply with Google's OAuth 2.0 policy. redirect_uri does not match a "
                                    "registered redirect URI.")
        scopes = (params.get("scope") or "").split()
        if not scopes:
            return None, error_page("invalid_request", "Missing required parameter: scope")
        unknown = [s for s in scopes if s not in SCOPE_TEXT and s not in BASIC_SCOPES]
        if unknown:
            return None, error_page("invalid_scope", f"Some requested scopes were invalid. {{invalid={unknown}}}")
        return client, None

    def consent_of(client_id: str, account_id: str) -> dict[str, Any]:
        with sb.state.lock:
            return dict(sb.state.data["google"]["consents"].get(client_id, {}).get(account_id, {}))

    def finish(params: dict[str, str], account_id: str, granted: list[str]):
        """Record consent and redirect back with a code for the granted scopes."""
        client_id = params["client_id"]
        previous = consent_of(client_id, account_id)
        if params.get("include_granted_scopes") == "true":
            granted = sorted(set(granted) | set(previous.get("scopes", [])))
        offline = params.get("access_type") == "offline"
        prompts = (params.get("prompt") or "").split()
        issue_refresh = offline and ("consent" in prompts or not previous.get("offline"))
        with sb.state.change() as data:
            data["google"]["consents"].setdefault(client_id, {})[account_id] = {
                "scopes": sorted(set(previous.get("scopes", [])) | set(granted)),
                "offline": bool(previous.get("offline") or offline)}
        grant = {"account": account_id, "scopes": granted, "client_id": client_id, "issue_refresh": issue_refresh}
        code = tokens.issue_code(client_id, params["redirect_uri"], grant,
                                 code_challenge=params.get("code_challenge") or None,
                                 code_challenge_method=params.get("code_challenge_method") or None)
        return redirect(_with_query(params["redirect_uri"], {"code": code, "scope": " ".join(granted),
                                                             "state": params.get("state")}))

    def deny(params: dict[str, str], error: str):
        return redirect(_with_query(params["redirect_uri"], {"error": error, "state": params.get("state")}))

    @bp.get("/o/oauth2/v2/auth")
    def authorize():
        params = {k: request.args[k] for k in FLOW_PARAMS if k in request.args}
        _, problem = validate_flow(params)
        if problem:
            return problem
        if params.get("response_type") != "code":
            return deny(params, "unsupported_response_type")
        requested = params["scope"].split()
        accounts = sb.accounts()
        hint = (params.get("login_hint") or "").lower()
        if "none" in (params.get("prompt") or "").split():
            consented = [a for a in accounts if consent_of(params["client_id"], a["id"])]
            chosen = [a for a in consented if a["email"].lower() == hint] if hint else consented
            if len(chosen) != 1:
                return deny(params, "interaction_required")
            if not set(requested) <= set(consent_of(params["client_id"], chosen[0]["id"])["scopes"]):
                return deny(params, "consent_required")
            return finish(params, chosen[0]["id"], requested)
        selected = next((a["id"] for a in accounts if a["email"].lower() == hint), accounts[0]["id"] if accounts else "")
        return render_template(
            "google/consent.html", params=params, accounts=accounts, selected=selected,
            sensitive=[(s, SCOPE_TEXT[s]) for s in requested if s in SCOPE_TEXT],
            basic=sorted({BASIC_SCOPES[s] for s in requested if s in BASIC_SCOPES}),
            client_id=params["client_id"])

    @bp.post("/o/oauth2/v2/auth")
    def decide():
        params = {k: request.form[k] for k in FLOW_PARAMS if request.form.get(k)}
        _, problem = validate_flow(params)
        if problem:
            return problem
        if request.form.get("decision") != "allow":
            return deny(params, "access_denied")
        account_id = request.form.get("account", "")
        if account_id not in {a["id"] for a in sb.accounts()}:
            return error_page("invalid_request", "Choose an account to continue.")
        requested = params["scope"].split()
        ticked = set(request.form.getlist("granted_scope"))
        granted = [s for s in requested if s in BASIC_SCOPES or (s in SCOPE_TEXT and s in ticked)]
        if not granted:
            return deny(params, "access_denied")
        return finish(params, account_id, granted)

    @bp.post("/token")
    def token():
        form = request.form
        creds = tokens.basic_credentials(request.headers.get("Authorization"))
        client_id, secret = creds if creds else (form.get("client_id"), form.get("client_secret"))
        grant_type = form.get("grant_type")
        if not grant_type:
            return _oauth_error("unsupported_grant_type", "Invalid grant_type: ")
        if grant_type not in ("authorization_code", "refresh_token"):
            return _oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        if not client_id:
            return _oauth_error("invalid_request", "Could not determine client ID from request.")
        try:
            client = tokens.authenticate_client(client_id, secret)
        except OAuthError:
            return _oauth_error("invalid_client", "Unauthorized" if client_id in tokens.clients
                                else "The OAuth client was not found.", 401)
        if grant_type == "authorization_code":
            if not form.get("code"):
                return _oauth_error("invalid_request", "Missing required parameter: code")
            if not form.get("redirect_uri"):
                return _oauth_error("invalid_request", "Missing parameter: redirect_uri")
            try:
                grant = tokens.redeem_code(form["code"], client.client_id, form["redirect_uri"],
                                           form.get("code_verifier"))
            except OAuthError as exc:
                if "redirect_uri" in exc.description:
                    return _oauth_error("redirect_uri_mismatch", "Bad Request")
                return _oauth_error("invalid_grant", "Bad Request")
            if grant.get("issue_refresh"):
                issued = tokens.issue(client.client_id, grant)
                access, refresh = issued["access_token"], issued["refresh_token"]
            else:
                access, refresh = tokens._new_access(client.client_id, grant, None), None
        else:
            if not form.get("refresh_token"):
                return _oauth_error("invalid_request", "Missing required parameter: refresh_token")
            try:
                issued = tokens.refresh(form["refresh_token"], client.client_id)
            except OAuthError:
                return _oauth_error("invalid_grant", "Token has been expired or revoked.")
            grant, access = issued["grant"], issued["access_token"]
            refresh = issued["refresh_token"] if issued["rotated"] else None
        body: dict[str, Any] = {"access_token": access, "expires_in": tokens.access_ttl}
        if refresh:
            body["refresh_token"] = refresh
        body["scope"] = " ".join(grant["scopes"])
        body["token_type"] = "Bearer"
        if "openid" in grant["scopes"]:
            body["id_token"] = _id_token(sb, client.client_id, client.client_secret, grant["account"])
        resp = jsonify(body)
        resp.headers["Cache-Control"] = "no-cache, no-store, max-age=0, must-revalidate"
        return resp

    @bp.post("/revoke")
    def revoke():
        value = request.form.get("token") or request.args.get("token")
        if not value:
            return _oauth_error("invalid_request", "Missing required parameter: token")
        with sb.state.lock:
            data = sb.state.data
            access = data.get("oauth_access", {}).get(value)
            refresh_entry = data.get("oauth_refresh", {}).get(value)
            if access and access.get("refresh") in data.get("oauth_refresh", {}):
                value, refresh_entry = access["refresh"], data["oauth_refresh"][access["refresh"]]
            grant = (refresh_entry or access or {}).get("grant")
        if not tokens.revoke(value):
            return _oauth_error("invalid_token", "Token expired or revoked")
        if refresh_entry and grant:
            # the whole grant is gone: the next consent is a first consent again
            with sb.state.change() as data:
                data["google"]["consents"].get(grant["client_id"], {}).pop(grant["account"], None)
        return "", 200

    return bp
