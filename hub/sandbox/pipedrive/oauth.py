"""Pipedrive's OAuth host: authorize screens (with app sharing), token, revoke.

Paths as on oauth.pipedrive.com. No real login exists in the sandbox, so the authorize page has a
"Signed in as" picker (`user_id`, default the company admin). Token errors are HTTP 400 (FACTS §2);
their JSON shape is unconfirmed, so the RFC 6749 fields are used with Pipedrive's `success: false`."""
from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, current_app, jsonify, redirect, render_template, request

from ..common import OAuthError
from .util import BadRequest


def _sb():
    return current_app.extensions["sandbox"]


def _with_query(url: str, params: dict) -> str:
    return url + ("&" if "?" in url else "?") + urlencode({k: v for k, v in params.items() if v is not None})


def _int(value, default=None):
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        raise BadRequest(f"not an integer: {value!r}") from None


def oauth_blueprint() -> Blueprint:
    bp = Blueprint("pd_oauth", __name__, url_prefix="/oauth")

    def page_error(message: str, status: int):
        return render_template("pipedrive/oauth_error.html", message=message), status

    @bp.route("/authorize", methods=["GET", "POST"])
    def authorize():
        sb = _sb()
        form = request.values
        client_id, redirect_uri, state = form.get("client_id"), form.get("redirect_uri"), form.get("state")
        try:
            sb.tokens.check_redirect(client_id, redirect_uri)
            user_id = _int(form.get("user_id"), sb.admin_id())
            user = sb.user(user_id)
        except OAuthError as exc:
            return page_error(exc.description, 400)
        except BadRequest as exc:
            return page_error(exc.message, 400)
        install = sb.installs.get(client_id)
        if not sb.installs.may_use(install, user_id):
            admin = sb.user(install["installed_by"])
            return page_error(f"{sb.client_options[client_id]['name']} has not been shared with you, {user['name']}. "
                              f"Ask {admin['name']}, who added it to {sb.company()['name']}, to give you access.", 403)
        ctx = dict(client_id=client_id, redirect_uri=redirect_uri, state=state, user=user, users=sb.users(),
                   company=sb.company(), app_name=sb.client_options[client_id]["name"],
                   scopes=sb.client_options[client_id]["scopes"])
        setup = sb.installs.needs_setup(client_id, user_id)
        step = form.get("step") if request.method == "POST" else None
        if setup and step not in ("1", "2"):
            return render_template("pipedrive/authorize_setup.html", **ctx)
        visibility = form.get("visibility", "me") if setup else None
        chosen = [int(x) for x in form.getlist("user_ids") if x.isdigit()] if setup else []
        notify = form.get("notify") in ("1", "on", "true") if setup else False
        if step != "2":
            return render_template("pipedrive/authorize_consent.html", visibility=visibility, chosen=chosen,
                                   notify=notify, setup=setup, **ctx)
        if form.get("decision") != "allow":
            return redirect(_with_query(redirect_uri, {"error": "user_denied", "state": state}))
        try:
            grant = sb.installs.authorize(client_id, user_id, redirect_uri, visibility=visibility,
                                          user_ids=chosen, notify=notify)
        except BadRequest as exc:
            return page_error(exc.message, exc.status)
        code = sb.tokens.issue_code(client_id, redirect_uri, grant)
        return redirect(_with_query(redirect_uri, {"code": code, "state": state}))

    def oauth_error(error: str, description: str, status: int = 400):
        return jsonify({"success": False, "error": error, "error_description": description,
                        "message": description}), status

    def client_credentials():
        tokens = _sb().tokens
        creds = tokens.basic_credentials(request.headers.get("Authorization"))
        if creds is None:   # tolerated (discouraged): credentials in the form body
            creds = (request.form.get("client_id"), request.form.get("client_secret"))
        return tokens.authenticate_client(*creds)

    @bp.post("/token")
    @bp.post("/token/")
    def token():
        sb = _sb()
        fault = sb.faults.decide()   # the OAuth host fails too: 5xx and 429 from the fault knobs
        if fault is not None:
            kind, status = fault
            response = oauth_error("rate_limit" if kind == "429" else "server_error",
                                   "Too many requests" if kind == "429" else "Service unavailable", status)[0]
            response.status_code = status
            if kind == "429":
                response.headers["Retry-After"] = str(sb.faults.settings.retry_after)
            return response
        try:
            client = client_credentials()
        except OAuthError as exc:
            return oauth_error(exc.error, exc.description)   # Pipedrive answers 400, not 401 (FACTS §2)
        grant_type = request.form.get("grant_type")
        try:
            if grant_type == "authorization_code":
                if not request.form.get("code"):
                    return oauth_error("invalid_request", "code is required")
                issued = sb.tokens.issue(client.client_id, sb.tokens.redeem_code(
                    request.form.get("code"), client.client_id, request.form.get("redirect_uri")))
            elif grant_type == "refresh_token":
                if not request.form.get("refresh_token"):
                    return oauth_error("invalid_request", "refresh_token is required")
                issued = sb.tokens.refresh(request.form.get("refresh_token"), client.client_id)
            elif not grant_type:
                return oauth_error("invalid_request", "grant_type is required")
            else:
                return oauth_error("unsupported_grant_type", f"Unsupported grant type: {grant_type}")
        except OAuthError as exc:
            return oauth_error(exc.error, exc.description, 400)
        resp = jsonify({
            "access_token": issued["access_token"], "token_type": "Bearer",
            "refresh_token": issued["refresh_token"], "scope": ",".join(issued["grant"]["scopes"]),
            "expires_in": max(issued["expires_in"] - 1, 0),   # Pipedrive shows 3599 for a 60-minute token
            "api_domain": request.url_root.rstrip("/"),
        })
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @bp.post("/revoke")
    def revoke():
        """RFC 7009: 200 even for an unknown token; a refresh token's revocation uninstalls the app."""
        sb = _sb()
        try:
            client = client_credentials()
        except OAuthError as exc:
            return oauth_error(exc.error, exc.description, 401)
        token = request.form.get("token")
        if not token:
            return oauth_error("invalid_request", "token is required")
        with sb.state.lock:
            entry = sb.state.data.get("oauth_refresh", {}).get(token)
            access = sb.state.data.get("oauth_access", {}).get(token)
        if entry is not None and entry["client_id"] == client.client_id:
            sb.installs.uninstall(client.client_id, entry["grant"]["user_id"])
            sb.tokens.revoke(token)
        elif access is not None and access["client_id"] == client.client_id:
            sb.tokens.revoke(token)
        return "", 200

    return bp
