"""Server-rendered pages: install, sign-in, the OAuth callbacks, visibility and the settings page."""
from __future__ import annotations

import hmac
import logging
import secrets as pysecrets
import time
from typing import Any

from flask import (Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request,
                   session, url_for)
from sqlalchemy import select

from .. import connectors
from ..errors import Fatal, NeedsReauth, Retriable
from ..oauth import installs
from ..oauth.flow import authorization_url, exchange_code, provider_app
from ..oauth.clients import crm_client
from ..store import AuditEvent, Connection, Installation, InstallationUser
from ..oauth.members import Refused, members, set_roles
from .access import admin, current_user, forbidden, member, public, sign_in
from .bodies import json_body
from .returns import came_from, safe_return_target
from .signin import end_session

log = logging.getLogger("hub.web")
bp = Blueprint("pages", __name__)
FLOW_TTL = 600  # seconds an authorization may take before its state is refused


def services():
    return current_app.extensions["hub"]


def _manifest(provider: str):
    if provider not in connectors.available():
        abort(404, f"unknown provider {provider}")
    return connectors.manifest(provider)


# -- OAuth round trips ------------------------------------------------------------------------------
def _begin(provider: str, purpose: str, **extra: Any):
    app = provider_app(services(), provider)
    state = pysecrets.token_urlsafe(24)
    url, verifier = authorization_url(app, state)
    flows = {k: v for k, v in session.get("oauth_flows", {}).items() if v["at"] > time.time() - FLOW_TTL}
    flows[state] = {"provider": provider, "purpose": purpose, "verifier": verifier, "at": time.time(), **extra}
    session["oauth_flows"] = dict(sorted(flows.items(), key=lambda kv: kv[1]["at"])[-5:])
    return redirect(url)


def _oauth_error(title: str, message: str, status: int = 400):
    return render_template("hub/message.html", title=title, message=message), status


@bp.get("/")
def index():
    user = current_user()
    if user is not None:
        return redirect(url_for("pages.settings", installation_id=user.installation_id))
    return render_template("hub/index.html", sandbox=services().settings["hub.sandbox"])


@bp.get("/install/<provider>")
def install(provider: str):
    if _manifest(provider).kind != "crm":
        abort(404, f"{provider} is not a CRM the hub installs into")
    return _begin(provider, "install")


@bp.get("/login/<provider>")
def login(provider: str):
    if _manifest(provider).kind != "crm":
        abort(404, f"{provider} is not a CRM the hub signs in with")
    return _begin(provider, "login", next=safe_return_target(request.args.get("next"), ""))


@bp.post("/logout")
@public
def logout():
    end_session()
    return redirect(url_for("pages.index"))


@bp.get("/oauth/<provider>/callback")
def oauth_callback(provider: str):
    manifest = _manifest(provider)
    state = request.args.get("state", "")
    flows = session.get("oauth_flows", {})
    flow = flows.pop(state, None) if state else None
    session["oauth_flows"] = flows
    if flow is None or flow["provider"] != provider or flow["at"] < time.time() - FLOW_TTL:
        return _oauth_error("This link has expired", "The sign-in could not be matched to this browser "
                            "(its state is missing, already used or too old). Start again from the hub.")
    if request.args.get("error"):
        reason = request.args.get("error")
        cancelled = reason in ("access_denied", "user_denied")
        return _oauth_error(f"{manifest.title} did not grant access",
                            "You cancelled on the provider's page; nothing was changed." if cancelled else
                            f"{manifest.title} answered: {reason}. Nothing was changed.")
    code = request.args.get("code")
    if not code:
        return _oauth_error("Missing code", f"{manifest.title} sent no authorization code. Start again.")
    app = provider_app(services(), provider)
    try:
        token = exchange_code(app, code, flow.get("verifier"))
        if flow["purpose"] in ("install", "login"):
            installation_id, user_id = installs.complete_crm_authorization(services(), app, token, flow["purpose"])
            name = _user_name(installation_id, user_id)
            sign_in(installation_id, user_id, name)
            if flow["purpose"] == "install":
                return redirect(url_for("pages.visibility", installation_id=installation_id, setup=1))
            return redirect(safe_return_target(flow.get("next"),
                                               url_for("pages.settings", installation_id=installation_id)))
        user = current_user()
        if user is None or user.installation_id != flow.get("installation_id"):
            return _oauth_error("Signed out", "Your session ended while connecting; sign in and connect again.")
        with services().db.begin() as db_session:
            installation = db_session.get(Installation, user.installation_id)
            role = installs.role_of(db_session, installation, user.crm_user_id)
        if role is None:
            return forbidden("You don't have access to this installation.", None)
        installs.complete_target_connection(services(), app, token, user.installation_id, user.actor,
                                            user.crm_user_id, role)
        flash(f"{manifest.title} connected.")
        return redirect(safe_return_target(flow.get("next"),
                                           url_for("pages.settings", installation_id=user.installation_id)))
    except installs.AccessDenied as exc:
        return forbidden(str(exc), exc.contact)
    except Retriable as exc:
        return _oauth_error(f"{manifest.title} is not answering", f"{exc}. Nothing was stored; try again in a minute.", 502)
    except Fatal as exc:
        return _oauth_error(f"{manifest.title} refused", f"{exc}. Nothing was stored.", 400)
    except Exception as exc:  # the token exchange failed in a way we did not foresee: say so, store nothing
        from ..oauth.flow import InvalidGrant
        if isinstance(exc, InvalidGrant):
            return _oauth_error("The authorization expired", "The code was already used or is too old. Start again.")
        raise


def _user_name(installation_id: int, user_id: str) -> str:
    with services().db.begin() as db_session:
        row = db_session.scalar(select(InstallationUser).where(InstallationUser.installation_id == installation_id,
                                                               InstallationUser.crm_user_id == user_id))
        return row.name if row else ""


@bp.post("/oauth/<provider>/callback")
@public  # a hint only: it never changes access
def app_sharing_callback(provider: str):
    """Pipedrive's app-sharing notice {company_id, user_id, isShared}: a hint, never a permission."""
    body = json_body()
    if not isinstance(body, dict) or "company_id" not in body or "isShared" not in body:
        return jsonify({"error": "bad_request", "message": "expected JSON with company_id, user_id and isShared"}), 400
    installs.record_sharing_signal(services(), provider, str(body["company_id"]), bool(body["isShared"]))
    # the same answer whether the company has the hub or not: anyone can send this, so it must not
    # tell who the hub's customers are
    return jsonify({"ok": True})


@bp.delete("/oauth/<provider>/callback")
@public  # authenticated with the app's client credentials below
def uninstall_callback(provider: str):
    """Pipedrive's uninstall notice, authenticated with HTTP Basic client_id:client_secret."""
    app = provider_app(services(), provider)
    auth = request.authorization
    if (auth is None or auth.type != "basic"
            or not hmac.compare_digest((auth.username or "").encode(), app.client_id.encode())
            or not hmac.compare_digest((auth.password or "").encode(), app.client_secret.encode())):
        return jsonify({"error": "unauthorized", "message": "bad or missing client credentials"}), 401
    body = json_body()
    if not isinstance(body, dict) or "company_id" not in body or "user_id" not in body:
        return jsonify({"error": "bad_request", "message": "expected JSON with company_id and user_id"}), 400
    if str(body.get("client_id", app.client_id)) != app.client_id:
        return jsonify({"error": "bad_request", "message": "client_id: not this app"}), 400
    scope = installs.provider_uninstalled_user(services(), provider, str(body["company_id"]), str(body["user_id"]))
    return jsonify({"ok": True, "uninstalled": scope})


# -- installation pages ---------------------------------------------------------------------------
def company_directory(installation_id: int) -> tuple[list[dict], str | None]:
    try:
        users = crm_client(services(), installation_id).users()
        return [u for u in users if u.get("active_flag", True)], None
    except (Retriable, Fatal, NeedsReauth) as exc:
        return [], f"The company's users could not be read from Pipedrive ({exc})."


@bp.route("/i/<int:installation_id>/visibility", methods=["GET", "POST"])
@admin
def visibility(installation_id: int):
    installation: Installation = g.installation
    setup = bool(request.values.get("setup"))
    directory, directory_error = company_directory(installation_id)
    with services().db.begin() as db_session:
        allowed = {u.crm_user_id for u in db_session.scalars(select(InstallationUser).where(
            InstallationUser.installation_id == installation_id, InstallationUser.allowed.is_(True)))}
    errors: dict[str, str] = {}
    if request.method == "POST":
        choice = request.form.get("visibility", "")
        user_ids = request.form.getlist("users")
        try:
            mailed = installs.set_visibility(services(), installation_id, current_user().actor, choice,
                                             user_ids, bool(request.form.get("notify")), directory)
        except ValueError as exc:
            field, _, message = str(exc).partition(": ")
            errors[field] = message
            allowed = set(user_ids)
            installation.visibility = choice if choice in installs.VISIBILITIES else installation.visibility
        else:
            flash("Access saved." + (f" E-mailed {', '.join(mailed)}." if mailed else ""))
            if setup:
                return redirect(url_for("pages.connect_accounts", installation_id=installation_id))
            return redirect(url_for("pages.settings", installation_id=installation_id))
    default = installation.visibility
    if not installation.visibility_confirmed and installation.shared_signal:
        default = "all"
    return _access_page(installation, directory, directory_error, allowed=allowed, choice=default, setup=setup,
                        errors=errors)


def _access_page(installation: Installation, directory: list[dict], directory_error: str | None, **values):
    """The visibility and roles page (one page: who may use the hub, and who of them are admins)."""
    with services().db.begin() as db_session:
        people = members(db_session, installation, directory)
        values.setdefault("allowed", set(db_session.scalars(select(InstallationUser.crm_user_id).where(
            InstallationUser.installation_id == installation.id, InstallationUser.allowed.is_(True)))))
    errors = values.get("errors") or {}
    values.setdefault("choice", installation.visibility)
    return render_template("hub/visibility.html", installation=installation, directory=directory,
                           directory_error=directory_error, members=people, **values), (400 if errors else 200)


@bp.post("/i/<int:installation_id>/roles")
@admin
def roles(installation_id: int):
    """The roles form: one `role_<crm user id>` field per member shown (admin or user)."""
    directory, directory_error = company_directory(installation_id)
    wanted = {key[5:]: value for key, value in request.form.items() if key.startswith("role_")}
    try:
        changed = set_roles(services(), installation_id, current_user().actor, wanted, directory)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        return _access_page(g.installation, directory, directory_error, errors={field: message}, setup=False)
    flash("Roles saved." if changed else "No role changed.")
    return redirect(url_for("pages.visibility", installation_id=installation_id) + "#roles")


@bp.get("/i/<int:installation_id>/setup/connect")
def connect_accounts(installation_id: int):
    return render_template("hub/connect.html", installation=g.installation, targets=_targets(installation_id))


def _targets(installation_id: int) -> list[dict]:
    rows = []
    with services().db.begin() as db_session:
        connections = db_session.scalars(select(Connection).where(
            Connection.installation_id == installation_id, Connection.role == "target",
            Connection.status != "disconnected")).all()
    for provider in connectors.available():
        manifest = connectors.manifest(provider)
        if manifest.kind == "target":
            rows.append({"provider": provider, "title": manifest.title,
                         "connections": [c for c in connections if c.provider == provider]})
    return rows


@bp.post("/i/<int:installation_id>/connect/<provider>")
@member  # a user connects accounts of their own; reconnecting a colleague's is checked at the callback
def connect(installation_id: int, provider: str):
    if _manifest(provider).kind != "target":
        abort(404, f"{provider} is not an account the hub connects to")
    return _begin(provider, "connect", installation_id=installation_id,   # back where the person started
                  next=came_from(request.form.get("next"), request.referrer, request.host))


@bp.post("/i/<int:installation_id>/connections/<int:connection_id>/disconnect")
@member  # users disconnect their own; installs.disconnect_as checks whose it is
def disconnect(installation_id: int, connection_id: int):
    user = current_user()
    try:
        installs.disconnect_as(services(), installation_id, connection_id, user.crm_user_id, g.role, user.actor)
    except LookupError:
        abort(404, "no such connection")
    except ValueError:
        abort(400, "The installer's CRM connection is the installation itself: use Uninstall.")
    except Refused as exc:
        return forbidden("Only an admin can disconnect a connection someone else made; you can disconnect your own.",
                         exc.contact)
    flash("Disconnected; the provider was asked to revoke the access.")
    return redirect(url_for("pages.settings", installation_id=installation_id))


@bp.post("/i/<int:installation_id>/uninstall")
@admin
def uninstall(installation_id: int):
    if request.form.get("confirm") != "uninstall":
        abort(400, "Type 'uninstall' to confirm.")
    installs.uninstall(services(), installation_id, current_user().actor)
    session.clear()
    return render_template("hub/message.html", title="Relay Hub was uninstalled",
                           message="Tokens were revoked at the providers and deleted here; the hub's webhooks "
                                   "were removed. The audit record is kept.")


@bp.get("/i/<int:installation_id>/settings")
def settings(installation_id: int):
    with services().db.begin() as db_session:
        crm = db_session.scalars(select(Connection).where(
            Connection.installation_id == installation_id, Connection.role == "crm",
            Connection.status != "disconnected")).all()
        users = db_session.scalars(select(InstallationUser).where(
            InstallationUser.installation_id == installation_id).order_by(InstallationUser.name)).all()
        audit = db_session.scalars(select(AuditEvent).where(AuditEvent.installation_id == installation_id)
                                   .order_by(AuditEvent.id.desc()).limit(20)).all()
    return render_template("hub/settings.html", installation=g.installation, crm=crm,
                           targets=_targets(installation_id), users=users, audit=audit,
                           me=current_user().crm_user_id)
