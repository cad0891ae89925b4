"""Bitrix24's OAuth: the portal's consent page and the OAuth server's token endpoint.

- `<root>/portal/<name>/oauth/authorize/?client_id=..&state=..` is the portal's page (per portal, as
  `https://<portal>/oauth/authorize/` is). `<root>/oauth/authorize/` serves the same page with a
  portal picker (`?portal=` preselects), for a hub whose sandbox origin replaced the portal's host.
  No real login exists, so the page has a "Signed in as" picker. The redirect goes to the app's
  registered redirect URI (a `redirect_uri` parameter is ignored, as Bitrix24 takes it from the
  app's settings) with code (30 s, single use), state, domain, member_id, scope, server_domain.
  An admin's first consent installs the app on the portal; other users need it installed.
- `GET <root>/oauth/token/?grant_type=authorization_code|refresh_token&client_id&client_secret&...`
  (everything in the query string) answers the token JSON with client_endpoint / server_endpoint /
  member_id; each refresh hands out a new refresh token and (by default) kills the old one."""
from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from flask import Blueprint, current_app, jsonify, redirect, render_template_string, request

from ..common import OAuthError
from .util import RestError

CONSENT = """<!doctype html><html><head><meta charset="utf-8"><title>Bitrix24 sandbox: allow access</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:520px;margin:2rem auto;padding:0 1rem;color:#222}
.card{border:1px solid #cfd8e0;border-radius:8px;padding:1rem 1.25rem;background:#f7fbff}
label{display:block;margin:.6rem 0 .2rem;font-weight:600}select,button{font:inherit;padding:.35rem .6rem}
button{margin:.8rem .5rem 0 0;border-radius:6px;border:1px solid #2fc6f6;background:#2fc6f6;color:#fff;cursor:pointer}
button.deny{background:#fff;color:#333;border-color:#aaa}.err{color:#a00}</style></head><body>
<h1>{{ portal_title }}</h1>
<div class="card">
{% if error %}<p class="err" role="alert">{{ error }}</p>{% endif %}
<p><b>{{ app_name }}</b> asks for access to your Bitrix24 ({{ scopes|join(', ') }}).</p>
{% if not installed %}<p>The application is not installed on this portal yet: allowing it as an administrator installs it.</p>{% endif %}
<form method="post">
<input type="hidden" name="client_id" value="{{ client_id }}"><input type="hidden" name="state" value="{{ state or '' }}">
{% if portals %}<label for="portal">Portal</label><select id="portal" name="portal">
{% for p in portals %}<option value="{{ p.name }}" {{ 'selected' if p.name == portal }}>{{ p.title }} ({{ p.domain }})</option>{% endfor %}
</select>{% endif %}
<label for="user_id">Signed in as</label><select id="user_id" name="user_id">
{% for u in users %}<option value="{{ u.ID }}" {{ 'selected' if u.ID|int == user_id }}>{{ u.NAME }} {{ u.LAST_NAME }}{{ ' (administrator)' if u.ADMIN }}</option>{% endfor %}
</select>
<div><button name="decision" value="allow">Allow</button><button class="deny" name="decision" value="deny">Cancel</button></div>
</form></div></body></html>"""


def _sb():
    return current_app.extensions["sandbox"]


def _with_query(url: str, params: dict) -> str:
    return url + ("&" if "?" in url else "?") + urlencode({k: v for k, v in params.items() if v is not None})


def oauth_blueprint() -> Blueprint:
    bp = Blueprint("bx_oauth", __name__)

    def page(portal: str | None, status: int = 200, error: str | None = None, picker: bool = False):
        sb = _sb()
        form = request.values
        client_id = form.get("client_id") or ""
        if client_id not in sb.client_options:
            return render_template_string("<!doctype html><title>Error</title><p role=alert>Unknown application "
                                          "(client_id).</p>"), 400
        portal = portal or sb.default_portal()
        with sb.state.lock:
            sb.portal(portal)
        users = sb.users(portal)
        raw = form.get("user_id") or ""
        user_id = int(raw) if raw.isdigit() else sb.admin_id(portal)
        return render_template_string(
            CONSENT, portal_title=next(p["title"] for p in sb.portals() if p["name"] == portal), portal=portal,
            portals=sb.portals() if picker else None, users=users, user_id=user_id, client_id=client_id,
            state=form.get("state"), app_name=sb.client_options[client_id]["name"],
            scopes=sb.client_options[client_id]["scopes"], installed=sb.installed(portal, client_id) is not None,
            error=error), status

    def consent(portal: str | None, picker: bool):
        sb = _sb()
        sb.learn_base_url(request.url_root)
        form = request.values
        if picker and request.method == "POST":
            portal = form.get("portal") or None
        elif picker:
            portal = form.get("portal") or None
        try:
            if portal is not None:
                with sb.state.lock:
                    sb.portal(portal)
        except RestError as exc:
            return render_template_string("<!doctype html><title>Error</title><p role=alert>{{ m }}</p>",
                                          m=exc.description), 404
        if request.method == "GET":
            return page(portal, picker=picker)
        client_id = form.get("client_id") or ""
        options = sb.client_options.get(client_id)
        if options is None:
            return page(portal, picker=picker)
        portal = portal or sb.default_portal()
        redirect_uri = options["redirect_uri"]
        if not redirect_uri:
            return page(portal, 400, "The application has no redirect URI in its settings.", picker)
        if form.get("decision") != "allow":
            return redirect(_with_query(redirect_uri, {"error": "access_denied", "state": form.get("state")}))
        raw = form.get("user_id") or ""
        user = sb.user(portal, raw) if raw.isdigit() else None
        if user is None:
            return page(portal, 400, "Choose who is signed in.", picker)
        if sb.installed(portal, client_id) is None:
            if not user["ADMIN"]:
                return page(portal, 403, "Only an administrator can install the application on this portal.", picker)
            sb.install(portal, client_id)
        grant = sb.grant(portal, client_id, int(user["ID"]))
        code = sb.tokens.issue_code(client_id, redirect_uri, grant)
        with sb.state.lock:
            info = dict(sb.portal(portal)["info"])
        return redirect(_with_query(redirect_uri, {
            "code": code, "state": form.get("state"), "domain": info["domain"], "member_id": info["member_id"],
            "scope": ",".join(options["scopes"]), "server_domain": urlsplit(sb.endpoints(portal)["server_endpoint"]).netloc}))

    @bp.route("/portal/<portal>/oauth/authorize/", methods=["GET", "POST"])
    @bp.route("/portal/<portal>/oauth/authorize", methods=["GET", "POST"])
    def authorize(portal: str):
        return consent(portal, picker=False)

    @bp.route("/oauth/authorize/", methods=["GET", "POST"])
    @bp.route("/oauth/authorize", methods=["GET", "POST"])
    def authorize_any():
        return consent(None, picker=True)

    def oauth_error(error: str, description: str, status: int = 400):
        return jsonify({"error": error, "error_description": description}), status

    @bp.get("/oauth/token/")
    @bp.get("/oauth/token")
    def token():
        sb = _sb()
        sb.learn_base_url(request.url_root)
        fault = sb.faults.decide()
        if fault is not None:
            return oauth_error("server_error", "Service unavailable", fault[1] if fault[0] != "429" else 503)
        q = request.args
        try:
            client = sb.tokens.authenticate_client(q.get("client_id"), q.get("client_secret"))
        except OAuthError as exc:
            return oauth_error(exc.error, exc.description, 401)
        grant_type = q.get("grant_type")
        try:
            if grant_type == "authorization_code":
                if not q.get("code"):
                    return oauth_error("invalid_request", "code: required")
                grant = sb.tokens.redeem_code(q.get("code"), client.client_id, None)
                if sb.installed(grant["portal"], client.client_id) is None:
                    raise OAuthError("invalid_client", "The application is not installed on the portal")
                issued = sb.tokens.issue(client.client_id, grant)
                sb.finish_install(grant["portal"], client.client_id, grant)
            elif grant_type == "refresh_token":
                if not q.get("refresh_token"):
                    return oauth_error("invalid_request", "refresh_token: required")
                issued = sb.refresh(q.get("refresh_token"), client.client_id)
            elif not grant_type:
                return oauth_error("invalid_request", "grant_type: required")
            else:
                return oauth_error("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
        except OAuthError as exc:
            return oauth_error(exc.error, exc.description, 400)
        grant = issued["grant"]
        with sb.state.lock:
            info = dict(sb.portal(grant["portal"])["info"])
            install = dict(sb.portal(grant["portal"])["installs"].get(client.client_id) or {})
        ends = sb.endpoints(grant["portal"])
        resp = jsonify({
            "access_token": issued["access_token"], "expires": int(sb.clock()) + sb.tokens.access_ttl,
            "expires_in": sb.tokens.access_ttl, "scope": ",".join(grant["scopes"]),
            "domain": urlsplit(ends["server_endpoint"]).netloc, "server_endpoint": ends["server_endpoint"],
            "status": install.get("status", "L"), "client_endpoint": ends["client_endpoint"],
            "member_id": info["member_id"], "user_id": grant["user_id"], "refresh_token": issued["refresh_token"]})
        resp.headers["Cache-Control"] = "no-store"
        return resp

    return bp
