"""Who is asking, and may they: sign-in session, CSRF, and the visibility check.

Both checks run in `before_request` for every route, so a new page or API endpoint is covered
without remembering anything: a route with an `installation_id` in its URL is served only to a
signed-in user whom `may_use()` admits, and every state-changing request from a browser must carry
the session's CSRF token (provider callbacks and webhooks authenticate otherwise)."""
from __future__ import annotations

import hmac
import secrets as pysecrets
from dataclasses import dataclass

from flask import Flask, abort, current_app, g, jsonify, render_template, request, session

from ..oauth.installs import grantor, may_use
from ..store import Installation
from .signin import end_session, start_session

CSRF_EXEMPT_PREFIXES = ("/oauth/", "/hooks/", "/sandbox/")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass
class CurrentUser:
    installation_id: int
    crm_user_id: str
    name: str

    @property
    def actor(self) -> str:
        """How the audit trail names this person: readable, and unambiguous."""
        return f"{self.name} ({self.crm_user_id})" if self.name else self.crm_user_id


def current_user() -> CurrentUser | None:
    data = session.get("user")
    if not data:
        return None
    return CurrentUser(data["installation_id"], data["crm_user_id"], data.get("name", ""))


def sign_in(installation_id: int, crm_user_id: str, name: str) -> None:
    end_session()  # a sign-in in a signed-in browser ends the session it had
    session["user"] = {"installation_id": installation_id, "crm_user_id": crm_user_id, "name": name}
    session.permanent = True
    start_session(installation_id, crm_user_id)


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = pysecrets.token_urlsafe(32)
    return session["csrf"]


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def forbidden(message: str, installation: Installation | None = None, status: int = 403):
    contact = grantor(installation) if installation is not None else None
    if wants_json():
        body = {"error": "forbidden" if status == 403 else "unauthorized", "message": message}
        if contact:
            body["grant_access"] = contact
        return jsonify(body), status
    return render_template("hub/forbidden.html", message=message, contact=contact,
                           installation=installation, status=status), status


def install_access_checks(app: Flask) -> None:
    @app.before_request
    def check_csrf():
        if request.method in SAFE_METHODS or request.path.startswith(CSRF_EXEMPT_PREFIXES):
            return None
        sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
        expected = session.get("csrf") or ""
        if not expected or not hmac.compare_digest(sent, expected):
            if wants_json():
                return jsonify({"error": "csrf", "message": "missing or wrong CSRF token (X-CSRF-Token header)"}), 400
            abort(400, "This form has expired (CSRF token missing or wrong). Go back, reload the page and try again.")
        return None

    @app.before_request
    def check_installation_access():
        view_args = request.view_args or {}
        if "installation_id" not in view_args:
            return None
        services = current_app.extensions["hub"]
        user = current_user()
        with services.db.begin() as db_session:
            installation = db_session.get(Installation, view_args["installation_id"])
            if installation is None or installation.status != "active":
                if user is None:
                    return forbidden("Sign in with Pipedrive to continue.", None, 401)
                return forbidden("This installation does not exist or was uninstalled.", None, 404)
            if user is None:
                if wants_json():
                    return forbidden("Sign in with Pipedrive first.", installation, 401)
                from flask import redirect, url_for
                return redirect(url_for("pages.login", provider=installation.provider, next=request.path))
            if user.installation_id != installation.id or not may_use(db_session, installation, user.crm_user_id):
                return forbidden(f"You don't have access to Relay Hub for {installation.company_name}.", installation)
            g.installation = installation
            g.is_installer = user.crm_user_id == installation.installer_user_id
        return None

    @app.context_processor
    def template_globals():
        return {"csrf_token": csrf_token, "current_user": current_user()}


def require_installer():
    """Inside an installation route: only the installer may change visibility or uninstall."""
    if not g.get("is_installer"):
        return forbidden("Only the admin who installed Relay Hub can do this.", g.installation)
    return None
