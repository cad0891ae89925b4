"""Who is asking, and may they: sign-in session, roles and visibility, CSRF. In one place.

Every view states what it needs with a decorator (`@admin`, `@member`, `@public`, or `@requires`
per method), and `before_request` enforces it for every route, so a new page or API endpoint is
covered without remembering anything else:
  - a route with `installation_id` in its URL is served only to a signed-in member whom
    `role_of()` admits; "admin" routes only to admins;
  - a state-changing route that declares nothing is refused (default deny); a reading one is
    "member" when installation-scoped, else public;
  - people who are not members learn nothing: signed out, an unknown installation, another
    company's or an uninstalled one all get the same answer, naming nobody. Members who lack the
    role are told which admins to ask;
  - every state-changing request from a browser carries the session's CSRF token (provider
    callbacks and webhooks authenticate otherwise)."""
from __future__ import annotations

import hmac
import logging
import secrets as pysecrets
from dataclasses import dataclass
from typing import Callable

from flask import (Flask, abort, current_app, g, jsonify, redirect, render_template, request, session,
                   url_for)

from .. import connectors
from ..oauth.members import admins_contact, role_of
from ..store import Installation
from .signin import end_session, start_session

log = logging.getLogger("hub.web")
CSRF_EXEMPT_PREFIXES = ("/oauth/", "/hooks/", "/sandbox/")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
LEVELS = ("admin", "member", "public")
NOT_FOUND = "There is no Relay Hub installation here that you can use."
SIGN_IN = "Sign in to continue."


# -- declarations -----------------------------------------------------------------------------------
def requires(default: str | None = None, **per_method: str) -> Callable:
    """Declare who may call a view: `requires("admin")`, or per method `requires(GET="member",
    POST="admin")`. Levels: "admin", "member" (any member the installation admits), "public"
    (no sign-in: the route authenticates its caller itself, or changes nothing of anyone's)."""
    wanted = {m.upper(): level for m, level in per_method.items()}
    if default is not None:
        wanted["*"] = default
    bad = [level for level in wanted.values() if level not in LEVELS]
    if bad:
        raise ValueError(f"access level must be one of {', '.join(LEVELS)}, not {bad[0]!r}")

    def mark(view: Callable) -> Callable:
        view.hub_access = {**getattr(view, "hub_access", {}), **wanted}
        return view
    return mark


admin = requires("admin")
member = requires("member")
public = requires("public")


def required_level(view: Callable, method: str, scoped: bool) -> str | None:
    """The level a request needs; None means the route declared nothing for a state-changing method."""
    declared = getattr(view, "hub_access", {})
    method = "GET" if method == "HEAD" else method
    level = declared.get(method) or declared.get("*")
    if level is None and method in SAFE_METHODS:
        level = "member" if scoped else "public"
    if level == "public" and scoped:
        level = "member"  # an installation's data is never public
    return level


# -- the session ------------------------------------------------------------------------------------
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


def is_admin() -> bool:
    """Inside an installation route: the member is an admin (for pages that show admin controls)."""
    return g.get("role") == "admin"


def restricted_to() -> str | None:
    """Inside an installation route: None for an admin, else the CRM user id whose own things the
    member may change (ownership checks in the services take it)."""
    user = current_user()
    return None if is_admin() else (user.crm_user_id if user else "")


# -- answers ----------------------------------------------------------------------------------------
def crm_sign_ins() -> list[dict[str, str]]:
    """Every CRM a person may sign in with (each installs the hub)."""
    return [{"provider": c.name, "title": c.title} for c in connectors.connectors(role="crm")]


def forbidden(message: str, contact: str | None = None, status: int = 403, **extra):
    """A refusal. `contact` (who can grant access) only for people who are members of the company."""
    if wants_json():
        error = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(status, "forbidden")
        body = {"error": error, "message": message, **extra}
        if contact:
            body["grant_access"] = contact
        return jsonify(body), status
    return render_template("hub/forbidden.html", message=message, contact=contact, status=status,
                           sign_ins=crm_sign_ins()), status


def signed_out():
    """The same for every installation id, known or not: the installation is not even looked up."""
    logins = crm_sign_ins()
    if not wants_json() and request.method in SAFE_METHODS and len(logins) == 1:
        return redirect(url_for("pages.login", provider=logins[0]["provider"], next=request.path))
    return forbidden(SIGN_IN, None, 401)


def not_found():
    """Unknown, uninstalled and other companies' installations: one answer."""
    return forbidden(NOT_FOUND, None, 404)


def install_access_checks(app: Flask) -> None:
    @app.before_request
    def check_access():
        view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
        if view is None:
            return None
        scoped = "installation_id" in (request.view_args or {})
        level = required_level(view, request.method, scoped)
        if not scoped:
            if level == "public":
                return None
            log.warning("refused %s %s: the route declares no access level it can have", request.method, request.path)
            return forbidden("This route declares no access level, so it is refused.", None, 403)
        user = current_user()
        if user is None:
            return signed_out()
        installation_id = request.view_args["installation_id"]
        with current_app.extensions["hub"].db.begin() as db_session:
            installation = db_session.get(Installation, installation_id)
            if installation is None or installation.status != "active" or user.installation_id != installation.id:
                return not_found()
            role = role_of(db_session, installation, user.crm_user_id)
            if role is None or level is None or (level == "admin" and role != "admin"):
                contact = admins_contact(db_session, installation)
                if role is None:
                    return forbidden(f"You don't have access to Relay Hub for {installation.company_name}.", contact)
                if level is None:
                    log.warning("refused %s %s: the route declares no access level", request.method, request.path)
                    return forbidden("This route declares no access level, so it is refused.", contact)
                return forbidden("Only an admin can do this.", contact, required_role="admin")
            db_session.expunge(installation)
        g.installation, g.role = installation, role
        return None

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

    @app.context_processor
    def template_globals():
        return {"csrf_token": csrf_token, "current_user": current_user(), "is_admin": is_admin()}
