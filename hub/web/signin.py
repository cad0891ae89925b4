"""The browser side of server-side sessions (hub/oauth/web_sessions.py).

The signed cookie says who the browser was; the `web_sessions` row says whether that still holds.
A check before every other one drops the sign-in from a cookie whose row is gone (signed out,
removed from the installation, uninstalled, expired), so the request, read or write, is treated
exactly like one from a browser that never signed in: no user, no CSRF token."""
from __future__ import annotations

from flask import Flask, current_app, request, session

from ..oauth.web_sessions import close_session, is_alive, open_session

SIGNED_IN_KEYS = ("user", "sid", "csrf")


def _services():
    return current_app.extensions["hub"]


def start_session(installation_id: int, crm_user_id: str) -> None:
    services = _services()
    with services.db.begin() as db_session:
        session["sid"] = open_session(db_session, installation_id, crm_user_id, services.queue.clock.now(),
                                      current_app.permanent_session_lifetime)


def end_session() -> None:
    """Sign-out: the row goes, so every copy of this cookie is signed out too."""
    sid = session.get("sid")
    if sid:
        with _services().db.begin() as db_session:
            close_session(db_session, sid)
    session.clear()


def install_session_check(app: Flask) -> None:
    @app.before_request
    def drop_ended_sign_in():
        user = session.get("user")
        if not user or request.endpoint == "static":
            return None
        services = _services()
        alive = False
        if isinstance(user, dict):
            with services.db.begin() as db_session:
                alive = is_alive(db_session, session.get("sid"), user.get("installation_id"),
                                 str(user.get("crm_user_id")), services.queue.clock.now())
        if not alive:
            for key in SIGNED_IN_KEYS:
                session.pop(key, None)
        return None
