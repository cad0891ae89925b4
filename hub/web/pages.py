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
from ..connectors.contract import Connector
from ..connectors.contract.auth import ApiKey, OAuth2
from ..errors import Fatal, NeedsReauth, Retriable
from ..logs import redactor
from ..oauth import installs, signin_links
from ..oauth.flow import InvalidGrant, authorization_url, exchange_code, provider_app
from ..oauth.keys import MAX_ACCOUNT_CHARS, MAX_KEY_CHARS, FormError
from ..oauth.members import Refused, directory, members, set_roles
from ..oauth.reconnect import title_of
from ..store import AuditEvent, Connection, Installation, InstallationUser
from .access import admin, current_user, forbidden, is_admin, member, public, requires, sign_in
from .bodies import json_body
from .returns import came_from, safe_return_target
from .signin import end_session

log = logging.getLogger("hub.web")
bp = Blueprint("pages", __name__)
FLOW_TTL = 600  # seconds an authorization may take before its state is refused
TARGET_ROLES = ("task_target", "project_target", "contact_store")   # what a connected account is for


def services():
    return current_app.extensions["hub"]


def _connector(provider: str, *roles: str) -> Connector:
    """The named connector, 404 unless it declares one of `roles` (any, when none are given)."""
    try:
        connector = connectors.connector(provider)
    except KeyError:
        abort(404, f"unknown provider {provider}")
    if roles and not any(connector.has(role) for role in roles):
        what = "a CRM the hub installs into" if "crm" in roles else "an account the hub connects to"
        abort(404, f"{connector.title} is not {what}")
    return connector


def connectable() -> list[Connector]:
    """Connectors a member connects accounts of (targets); a CRM is installed, never connected."""
    return [c for c in connectors.connectors() if not c.has("crm") and any(c.has(r) for r in TARGET_ROLES)]


def _asks_first(connector: Connector) -> bool:
    """A form comes before the provider: a key to type, or the account whose consent page to open."""
    return isinstance(connector.auth, ApiKey) or (isinstance(connector.auth, OAuth2)
                                                  and connector.auth.authorize_url_for is not None)


# -- OAuth round trips ------------------------------------------------------------------------------
def _begin(provider: str, purpose: str, account_hint: str | None = None, **extra: Any):
    """Off to the provider's consent page. ValueError when `account_hint` cannot name an account."""
    app = provider_app(services(), provider)
    state = pysecrets.token_urlsafe(24)
    url, verifier = authorization_url(app, state, account_hint)
    flows = {k: v for k, v in session.get("oauth_flows", {}).items() if v["at"] > time.time() - FLOW_TTL}
    flows[state] = {"provider": provider, "purpose": purpose, "verifier": verifier, "at": time.time(), **extra}
    session["oauth_flows"] = dict(sorted(flows.items(), key=lambda kv: kv[1]["at"])[-5:])
    return redirect(url)


def _oauth_error(title: str, message: str, status: int = 400):
    return render_template("hub/message.html", title=title, message=message), status


# -- the forms that come before a provider: an API key, or the account to authorize ------------------
def _form_page(connector: Connector, purpose: str, action: str, *, errors: dict[str, str] | None = None,
               error: str | None = None, account: str = "", next_: str = "", status: int = 200,
               link_sent: str = ""):
    auth = connector.auth
    fields = []
    if isinstance(auth, ApiKey):
        if auth.account_label:
            fields.append({"name": "account", "label": auth.account_label, "help": auth.account_help, "type": "text",
                           "placeholder": auth.account_placeholder, "value": account, "maxlength": MAX_ACCOUNT_CHARS})
        fields.append({"name": "key", "label": auth.key_label, "help": auth.key_help, "type": "password",
                       "placeholder": "", "value": "", "maxlength": MAX_KEY_CHARS})
        if auth.secret_label:
            fields.append({"name": "secret", "label": auth.secret_label, "help": auth.secret_help, "type": "password",
                           "placeholder": "", "value": "", "maxlength": MAX_KEY_CHARS})
        note = (f"Relay Hub checks the key with {connector.title} now and keeps it encrypted; "
                "it is never shown again.")
    else:
        fields.append({"name": "account", "label": auth.account_label, "help": "", "type": "text",
                       "placeholder": auth.account_placeholder, "value": account, "maxlength": MAX_ACCOUNT_CHARS})
        note = f"You will confirm the access on {connector.title}'s own page."
    heading = {"install": f"Install Relay Hub for {connector.title}", "login": f"Sign in with {connector.title}",
               "connect": f"Connect {connector.title}"}[purpose]
    submit = {"install": "Install", "login": "Sign in", "connect": f"Connect {connector.title}"}[purpose]
    email_link = url_for("pages.login_link", provider=connector.name) \
        if purpose == "login" and isinstance(auth, ApiKey) else None
    return render_template("hub/credentials.html", heading=heading, submit=submit, action=action, fields=fields,
                           errors=errors or {}, error=error, note=note, next=next_, email_link=email_link,
                           link_sent=link_sent, installation=g.get("installation")), status


def _account_hint() -> str:
    """The account a per-account consent page belongs to (FormError when it cannot be one)."""
    raw = request.values.get("account")
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        raise FormError("account", "enter your account's address")
    if len(text) > MAX_ACCOUNT_CHARS or any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise FormError("account", f"one line of at most {MAX_ACCOUNT_CHARS} characters")
    return text


def _begin_for_account(connector: Connector, purpose: str, action: str, **extra: Any):
    """The consent page of the account the person named; the form again (400) when it names none."""
    try:
        return _begin(connector.name, purpose, _account_hint(), **extra)
    except FormError as exc:
        return _form_page(connector, purpose, action, errors={exc.field: exc.message}, status=400,
                          next_=extra.get("next", ""))
    except ValueError as exc:
        return _form_page(connector, purpose, action, errors={"account": str(exc)}, status=400,
                          account=str(request.values.get("account") or "")[:MAX_ACCOUNT_CHARS],
                          next_=extra.get("next", ""))


def _with_key(connector: Connector, purpose: str, action: str, complete, next_: str = ""):
    """Run `complete()` on the key form; the form again naming what went wrong, nothing stored."""
    account = str(request.form.get("account") or "")[:MAX_ACCOUNT_CHARS]

    def again(status: int, **problem):
        return _form_page(connector, purpose, action, account=account, next_=next_, status=status, **problem)

    try:
        return complete()
    except FormError as exc:
        return again(400, errors={exc.field: exc.message})
    except (NeedsReauth, Fatal) as exc:
        return again(400, errors={"key": f"{connector.title} refused it: {redactor.scrub(str(exc))}"})
    except Retriable as exc:
        return again(502, error=f"{connector.title} is not answering ({redactor.scrub(str(exc))}). "
                                "Nothing was stored; try again in a minute.")
    except installs.AccessDenied as exc:
        return forbidden(str(exc), exc.contact)


def _signed_in_crm(installation_id: int, user_id: str, purpose: str, next_: str = ""):
    """After an install or sign-in (either kind of auth): the same session, the same next page."""
    sign_in(installation_id, user_id, _user_name(installation_id, user_id))
    if purpose == "install":
        return redirect(url_for("pages.visibility", installation_id=installation_id, setup=1))
    return redirect(safe_return_target(next_, url_for("pages.settings", installation_id=installation_id)))


@bp.get("/")
def index():
    user = current_user()
    if user is not None:
        return redirect(url_for("pages.settings", installation_id=user.installation_id))
    crms = [{"provider": c.name, "title": c.title, "key": isinstance(c.auth, ApiKey)}
            for c in connectors.connectors(role="crm")]
    return render_template("hub/index.html", sandbox=services().settings["hub.sandbox"], crms=crms,
                           targets=[c.title for c in connectable()])


@bp.route("/install/<provider>", methods=["GET", "POST"])
@requires(GET="public", POST="public")  # the key form authenticates its sender with the provider
def install(provider: str):
    return _crm_entry(_connector(provider, "crm"), "install")


@bp.route("/login/<provider>", methods=["GET", "POST"])
@requires(GET="public", POST="public")
def login(provider: str):
    return _crm_entry(_connector(provider, "crm"), "login")


def _crm_entry(connector: Connector, purpose: str):
    """Install or sign in: OAuth consent, or the key form (GET shows it, POST checks the key)."""
    next_ = safe_return_target(request.values.get("next"), "") if purpose == "login" else ""
    action = url_for(f"pages.{purpose}", provider=connector.name)
    if isinstance(connector.auth, ApiKey):
        if request.method == "GET":
            return _form_page(connector, purpose, action, next_=next_)
        return _with_key(connector, purpose, action, lambda: _signed_in_crm(
            *installs.complete_crm_with_key(services(), connector.name, request.form, purpose), purpose, next_), next_)
    extra = {"next": next_} if purpose == "login" else {}
    if connector.auth.authorize_url_for is not None:   # the account comes first: from the form or ?account=
        if request.method == "GET" and request.args.get("account") is None:
            return _form_page(connector, purpose, action, next_=next_)
        return _begin_for_account(connector, purpose, action, **extra)
    if request.method == "POST":
        abort(405)
    return _begin(connector.name, purpose, **extra)


# -- hub accounts: one-time sign-in links by e-mail (CRMs without OAuth) ------------------------------
@bp.post("/login/<provider>/link")
@public   # asks for a link; the link, not this request, signs someone in
def login_link(provider: str):
    connector = _connector(provider, "crm")
    if not isinstance(connector.auth, ApiKey):
        abort(404, f"{connector.title} members sign in with {connector.title} itself")
    action = url_for("pages.login", provider=connector.name)
    try:
        signin_links.request_links(services(), connector.name, connector.title, request.form.get("email"))
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        return _form_page(connector, "login", action, errors={field: message}, status=400)
    return _form_page(connector, "login", action, link_sent=(
        "If this address belongs to someone who may use Relay Hub, a sign-in link is on its way to it. "
        f"It works once, for {int(signin_links.LOGIN_TTL.total_seconds() // 60)} minutes."))


def _link_problem(reason: str):
    message = {"no access": "This link's account may no longer use Relay Hub; ask your admin.",
               "used": "This sign-in link was already used.",
               "expired": "This sign-in link has expired."}.get(reason, "This sign-in link is not valid.")
    return render_template("hub/message.html", title="The link does not work",
                           message=message + " Ask for a new one on the sign-in page."), 410 if reason != "unknown" else 404


@bp.route("/login/link/<token>", methods=["GET", "POST"])
@requires(GET="public", POST="public")   # the token is the credential
def sign_in_with_link(token: str):
    """GET only shows whom the link signs in (mail scanners fetch links); the button's POST uses it."""
    try:
        if request.method == "GET":
            who = signin_links.peek(services(), token)
            return render_template("hub/signin_link.html", who=who, company=_company_name(who.installation_id))
        who = signin_links.redeem(services(), token)
    except signin_links.LinkError as exc:
        return _link_problem(str(exc))
    return _signed_in_crm(who.installation_id, who.crm_user_id, "login")


def _company_name(installation_id: int) -> str:
    with services().db.begin() as db_session:
        installation = db_session.get(Installation, installation_id)
        return installation.company_name if installation is not None else ""


@bp.post("/logout")
@public
def logout():
    end_session()
    return redirect(url_for("pages.index"))


@bp.get("/oauth/<provider>/callback")
def oauth_callback(provider: str):
    connector = _connector(provider)
    if not isinstance(connector.auth, OAuth2):
        abort(404, f"{connector.title} does not use OAuth")
    title = connector.title
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
        return _oauth_error(f"{title} did not grant access",
                            "You cancelled on the provider's page; nothing was changed." if cancelled else
                            f"{title} answered: {reason}. Nothing was changed.")
    code = request.args.get("code")
    if not code:
        return _oauth_error("Missing code", f"{title} sent no authorization code. Start again.")
    app = provider_app(services(), provider)
    try:
        token = exchange_code(app, code, flow.get("verifier"))
        if flow["purpose"] in ("install", "login"):
            installation_id, user_id = installs.complete_crm_authorization(services(), app, token, flow["purpose"])
            return _signed_in_crm(installation_id, user_id, flow["purpose"], flow.get("next") or "")
        user = current_user()
        if user is None or user.installation_id != flow.get("installation_id"):
            return _oauth_error("Signed out", "Your session ended while connecting; sign in and connect again.")
        role = _role(user)
        if role is None:
            return forbidden("You don't have access to this installation.", None)
        installs.complete_target_connection(services(), app, token, user.installation_id, user.actor,
                                            user.crm_user_id, role)
        flash(f"{title} connected.")
        return redirect(safe_return_target(flow.get("next"),
                                           url_for("pages.settings", installation_id=user.installation_id)))
    except installs.AccessDenied as exc:
        return forbidden(str(exc), exc.contact)
    except Retriable as exc:
        return _oauth_error(f"{title} is not answering", f"{exc}. Nothing was stored; try again in a minute.", 502)
    except (Fatal, NeedsReauth) as exc:
        return _oauth_error(f"{title} refused", f"{exc}. Nothing was stored.", 400)
    except InvalidGrant:
        return _oauth_error("The authorization expired", "The code was already used or is too old. Start again.")


def _role(user) -> str | None:
    with services().db.begin() as db_session:
        installation = db_session.get(Installation, user.installation_id)
        return installs.role_of(db_session, installation, user.crm_user_id)


def _user_name(installation_id: int, user_id: str) -> str:
    with services().db.begin() as db_session:
        row = db_session.scalar(select(InstallationUser).where(InstallationUser.installation_id == installation_id,
                                                               InstallationUser.crm_user_id == user_id))
        return row.name if row else ""


@bp.post("/oauth/<provider>/callback")
@public  # a hint only: it never changes access
def app_sharing_callback(provider: str):
    """Pipedrive's app-sharing notice {company_id, user_id, isShared}: a hint, never a permission."""
    _connector(provider, "crm")
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
    if not isinstance(_connector(provider, "crm").auth, OAuth2):
        abort(404, "no OAuth app to authenticate the notice with")
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
    """The account's people (the connector's `members` hook) and, when they could not be read, why."""
    try:
        return directory(services(), installation_id), None
    except (Retriable, Fatal, NeedsReauth) as exc:
        installation = g.get("installation")
        source = title_of(installation.provider) if installation is not None else "the CRM"
        return [], f"The company's users could not be read from {source} ({exc})."


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
                           directory_error=directory_error, members=people, crm_title=title_of(installation.provider),
                           **values), (400 if errors else 200)


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
    with services().db.begin() as db_session:
        connections = db_session.scalars(select(Connection).where(
            Connection.installation_id == installation_id, Connection.role == "target",
            Connection.status != "disconnected")).all()
    return [{"provider": c.name, "title": c.title, "form": _asks_first(c),
             "connections": [row for row in connections if row.provider == c.name]} for c in connectable()]


@bp.route("/i/<int:installation_id>/connect/<provider>", methods=["GET", "POST"])
@member  # a user connects accounts of their own; reconnecting a colleague's is checked when it is stored
def connect(installation_id: int, provider: str):
    """OAuth: off to the consent page (after asking which account, for a per-account provider).
    API key: GET shows the form, POST checks the key and keeps it."""
    connector = _connector(provider, *TARGET_ROLES)
    if connector.has("crm"):
        abort(404, f"{connector.title} is installed, not connected")
    action = url_for("pages.connect", installation_id=installation_id, provider=provider)
    # afterwards, back where the person started: the form's `next`, else the page "Connect" was pressed on
    back = came_from(request.values.get("next"), request.referrer, request.host)
    if back.split("?")[0] == action:
        back = ""   # the key or account form itself
    if isinstance(connector.auth, ApiKey):
        if request.method == "GET" or "key" not in request.form:
            return _form_page(connector, "connect", action, next_=back)
        user = current_user()

        def complete():
            installs.connect_target_with_key(services(), provider, request.form, installation_id, user.actor,
                                             user.crm_user_id, g.role)
            flash(f"{connector.title} connected.")
            return redirect(safe_return_target(back, url_for("pages.settings", installation_id=installation_id)))
        return _with_key(connector, "connect", action, complete, back)
    if connector.auth.authorize_url_for is not None:
        if "account" not in request.values:
            return _form_page(connector, "connect", action, next_=back)
        return _begin_for_account(connector, "connect", action, installation_id=installation_id, next=back)
    if request.method == "GET":
        abort(405)
    return _begin(provider, "connect", installation_id=installation_id, next=back)


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
                           crm_title=title_of(g.installation.provider),
                           targets=_targets(installation_id), users=users, audit=audit,
                           me=current_user().crm_user_id, webhook_setup=_webhook_setup(installation_id))


def _webhook_setup(installation_id: int) -> dict | None:
    """For admins, when the CRM's webhooks are subscribed by hand: what to do, where, with which secret."""
    from ..webhooks.credentials import webhook_credentials
    from ..webhooks.providers import connector_webhooks
    from ..webhooks.registration import hook_url

    hooks = connector_webhooks(g.installation.provider)
    if not is_admin() or hooks is None or hooks.subscribe is not None or not hooks.manual_setup:
        return None
    with services().db.begin() as db_session:
        _, password = webhook_credentials(services(), db_session, installation_id, create=True)
    return {"steps": hooks.manual_setup, "url": hook_url(services(), g.installation, hooks), "secret": password}
