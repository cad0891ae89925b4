"""HubSpot's OAuth: the install (authorize) screen, the token endpoint, token metadata, refresh-token delete.

Paths as on app.hubspot.com (`/oauth/authorize`) and api.hubapi.com (`/oauth/v1/token`, also
served at `/oauth/v3/token`; `/oauth/v1/access-tokens/{token}`, `/oauth/v1/refresh-tokens/{token}`).
Documented rules kept (FACTS §1): every parameter in the form body (never the query string), the
client secret on every exchange, single-use codes, 30-minute access tokens, the refresh token
returned again on refresh; deleting a refresh token leaves minted access tokens alive. Choosing the
account on the consent screen is the install: the account (portal) is what `hub_id` names."""
from __future__ import annotations

import uuid
from urllib.parse import urlencode

from flask import Blueprint, current_app, jsonify, redirect, render_template, request

from ..common import OAuthError


def _sb():
    return current_app.extensions["sandbox"]


def _with_query(url: str, params: dict) -> str:
    return url + ("&" if "?" in url else "?") + urlencode({k: v for k, v in params.items() if v is not None})


def token_error(status: str, message: str, error: str, code: int = 400):
    resp = jsonify({"status": status, "message": message, "correlationId": str(uuid.uuid4()),
                    "error": error, "error_description": message})
    resp.status_code = code
    return resp


def oauth_blueprint() -> Blueprint:
    bp = Blueprint("hs_oauth", __name__)

    def page_error(message: str, status: int = 400):
        return render_template("hubspot/oauth_error.html", message=message), status

    @bp.route("/oauth/authorize", methods=["GET", "POST"])
    def authorize():
        sb = _sb()
        form = request.values
        client_id, redirect_uri, state = form.get("client_id"), form.get("redirect_uri"), form.get("state")
        try:
            sb.tokens.check_redirect(client_id, redirect_uri)
        except OAuthError as exc:
            return page_error(exc.description)
        app_scopes = sb.client_options[client_id]["scopes"]
        required = [x for x in (form.get("scope") or "").split() if x]
        optional = [x for x in (form.get("optional_scope") or "").split() if x]
        if not required:
            return page_error("The scope parameter is required.")
        unknown = [x for x in required + optional if x not in app_scopes]
        if unknown:
            return page_error("The scopes requested do not match the app's settings: " + ", ".join(unknown))
        accounts = [(p, sb.users(p["hub_id"])) for p in sb.portals()]
        if request.method == "GET" or form.get("decision") not in ("allow", "deny"):
            return render_template("hubspot/authorize.html", client_id=client_id, redirect_uri=redirect_uri,
                                   state=state, scope=" ".join(required), optional_scope=" ".join(optional),
                                   scopes=required + optional, accounts=accounts,
                                   app_name=sb.client_options[client_id]["name"])
        if form.get("decision") != "allow":
            return redirect(_with_query(redirect_uri, {"error": "access_denied", "state": state}))
        hub_raw, _, user_raw = (form.get("account") or "").partition(":")
        try:
            hub_id, user_id = int(hub_raw), int(user_raw)
            sb.user(hub_id, user_id)
        except Exception:   # noqa: BLE001 (any bad pick is the same answer)
            return page_error("Choose an account and a user to install the app.")
        scopes = required + optional
        sb.install(client_id, hub_id, user_id, scopes)
        grant = {"client_id": client_id, "hub_id": hub_id, "user_id": user_id, "scopes": scopes}
        code = sb.tokens.issue_code(client_id, redirect_uri, grant)
        return redirect(_with_query(redirect_uri, {"code": code, "state": state}))

    @bp.post("/oauth/v1/token")
    @bp.post("/oauth/v3/token")
    @bp.post("/oauth/2026-03/token")
    def token():
        sb = _sb()
        fault = sb.faults.decide()
        if fault is not None:
            kind, status = fault
            resp = jsonify({"status": "error", "message": "Too many requests" if kind == "429" else "Internal error",
                            "correlationId": str(uuid.uuid4()),
                            "category": "RATE_LIMITS" if kind == "429" else "INTERNAL_ERROR"})
            resp.status_code = status
            if kind == "429":
                resp.headers["Retry-After"] = str(sb.faults.settings.retry_after)
            return resp
        if request.args:
            return token_error("BAD_REQUEST", "parameters must be sent in the form-encoded request body, "
                               "not the query string", "invalid_request")
        form = request.form
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if not client_id or client_id not in sb.client_options:
            return token_error("BAD_CLIENT_ID", "missing or unknown client id", "invalid_client")
        if not secret:
            return token_error("BAD_CLIENT_SECRET", "missing or invalid client secret", "invalid_client")
        try:
            sb.tokens.authenticate_client(client_id, secret)
        except OAuthError:
            return token_error("BAD_CLIENT_SECRET", "missing or invalid client secret", "invalid_client")
        grant_type = form.get("grant_type")
        try:
            if grant_type == "authorization_code":
                if not form.get("redirect_uri"):
                    return token_error("BAD_REDIRECT_URI", "missing redirect uri", "invalid_request")
                if not form.get("code"):
                    return token_error("BAD_AUTH_CODE", "missing or unknown auth code", "invalid_grant")
                try:
                    grant = sb.tokens.redeem_code(form.get("code"), client_id, form.get("redirect_uri"),
                                                  form.get("code_verifier"))
                except OAuthError as exc:
                    status = "BAD_REDIRECT_URI" if "redirect_uri" in exc.description else "BAD_AUTH_CODE"
                    return token_error(status, "missing or unknown auth code" if status == "BAD_AUTH_CODE"
                                       else "redirect uri does not match", "invalid_grant")
                issued = sb.tokens.issue(client_id, grant)
            elif grant_type == "refresh_token":
                if not form.get("refresh_token"):
                    return token_error("BAD_REFRESH_TOKEN", "missing or unknown refresh token", "invalid_grant")
                try:
                    issued = sb.tokens.refresh(form.get("refresh_token"), client_id)
                except OAuthError:
                    return token_error("BAD_REFRESH_TOKEN", "missing or unknown refresh token", "invalid_grant")
                if issued["grant"]["hub_id"] not in sb.installed_portals(client_id):
                    return token_error("BAD_REFRESH_TOKEN", "the app is not installed in this account", "invalid_grant")
            else:
                return token_error("BAD_GRANT_TYPE", "missing or unsupported grant type", "unsupported_grant_type")
        except KeyError:
            return token_error("BAD_REQUEST", "invalid request", "invalid_request")
        resp = jsonify({"token_type": "bearer", "refresh_token": issued["refresh_token"],
                        "access_token": issued["access_token"], "expires_in": issued["expires_in"]})
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def metadata(token: str, kind: str):
        sb = _sb()
        table = "oauth_access" if kind == "access" else "oauth_refresh"
        with sb.state.lock:
            entry = sb.state.data.get(table, {}).get(token)
            entry = dict(entry) if entry else None
        if entry is None:
            return token_error("NOT_FOUND", f"{kind} token not found", "invalid_token", 404)
        grant = entry["grant"]
        out = {"token": token, "hub_id": grant["hub_id"], "scopes": grant["scopes"],
               "client_id": grant["client_id"], "user_id": grant["user_id"], "token_type": kind}
        try:
            user = sb.user(grant["hub_id"], grant["user_id"])
            out["user"] = user["email"]
            out["hub_domain"] = sb.portal(grant["hub_id"])["domain"]
        except Exception:   # noqa: BLE001 (a user or account removed since: metadata without them)
            out["user"], out["hub_domain"] = None, None
        out["app_id"] = sb.client_options[grant["client_id"]]["app_id"]
        if kind == "access":
            remaining = int(entry["expires_at"] - sb.clock())
            if remaining <= 0:
                resp = jsonify({"status": "error", "message": "The OAuth token used to make this call expired "
                                f"{max(1, -remaining // 60)} minute(s) ago.", "correlationId": str(uuid.uuid4()),
                                "category": "EXPIRED_AUTHENTICATION"})
                resp.status_code = 401
                return resp
            out["expires_in"] = remaining
        return jsonify(out)

    @bp.get("/oauth/v1/access-tokens/<token>")
    def access_token_info(token):
        return metadata(token, "access")

    @bp.get("/oauth/v1/refresh-tokens/<token>")
    def refresh_token_info(token):
        return metadata(token, "refresh")

    @bp.delete("/oauth/v1/refresh-tokens/<token>")
    def delete_refresh_token(token):
        """Access tokens already minted stay valid, and the app stays installed (FACTS §1)."""
        sb = _sb()
        with sb.state.change() as data:
            gone = data.get("oauth_refresh", {}).pop(token, None)
        if gone is None:
            return token_error("NOT_FOUND", "refresh token not found", "invalid_token", 404)
        return "", 204

    def client_from_form():
        sb = _sb()
        client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
        if not client_id or client_id not in sb.client_options:
            return None, token_error("BAD_CLIENT_ID", "missing or unknown client id", "invalid_client")
        try:
            sb.tokens.authenticate_client(client_id, secret)
        except OAuthError:
            return None, token_error("BAD_CLIENT_SECRET", "missing or invalid client secret", "invalid_client")
        return client_id, None

    @bp.post("/oauth/v3/token/introspect")
    @bp.post("/oauth/2026-03/token/introspect")
    def introspect():
        """RFC 7662 style; the field names beyond `active` are unconfirmed [U]."""
        sb = _sb()
        client_id, problem = client_from_form()
        if problem is not None:
            return problem
        token = request.form.get("token") or ""
        with sb.state.lock:
            access = sb.state.data.get("oauth_access", {}).get(token)
            refresh = sb.state.data.get("oauth_refresh", {}).get(token)
            entry, kind = (access, "access") if access else (refresh, "refresh")
            entry = dict(entry) if entry else None
        if entry is None or entry["client_id"] != client_id or (kind == "access" and entry["expires_at"] <= sb.clock()):
            return jsonify({"active": False})
        grant = entry["grant"]
        out = {"active": True, "token_type": kind, "client_id": client_id, "hub_id": grant["hub_id"],
               "user_id": grant["user_id"], "scopes": grant["scopes"], "scope": " ".join(grant["scopes"])}
        if kind == "access":
            out["expires_in"] = int(entry["expires_at"] - sb.clock())
        return jsonify(out)

    @bp.post("/oauth/v3/token/revoke")
    @bp.post("/oauth/2026-03/token/revoke")
    def revoke():
        """Revoking a refresh token ends its grant; the app stays installed (uninstall is the user's)."""
        sb = _sb()
        client_id, problem = client_from_form()
        if problem is not None:
            return problem
        token = request.form.get("token") or ""
        with sb.state.lock:
            entry = sb.state.data.get("oauth_refresh", {}).get(token) or sb.state.data.get("oauth_access", {}).get(token)
        if entry is not None and entry["client_id"] == client_id:
            sb.tokens.revoke(token)
        return "", 200

    return bp
