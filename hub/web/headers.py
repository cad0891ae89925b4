"""Response headers and cookie flags every hub page gets (and the mounted sandbox's pages too).

No page of the hub or of the sandbox is meant to be shown inside another site's frame, so framing is
refused outright (clickjacking of the visibility, uninstall and consent forms). The Content Security
Policy carries only `frame-ancestors`: the templates use inline scripts and styles, and a stricter
policy would need nonces on each of them first."""
from __future__ import annotations

from flask import Flask, Response
from flask.sessions import SecureCookieSessionInterface

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # OAuth callback URLs carry codes: never sent to another site
}


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    for name, value in SECURITY_HEADERS.items():
        if name not in headers:
            headers.add(name, value)   # as setdefault, without its second look-up
    return response


SESSIONLESS_PREFIXES = ("/hooks/",)   # called by providers, never by a browser signed in to the hub


class HubSessionInterface(SecureCookieSessionInterface):
    """The signed-cookie session, except on sessionless routes: a provider's webhook has no hub
    session, so it gets the read-only null session (no cookie read, signer built or cookie written;
    a write to it fails loudly)."""

    def open_session(self, app: Flask, request):
        if request.path.startswith(SESSIONLESS_PREFIXES):
            return self.make_null_session(app)
        return super().open_session(app, request)


def configure_session_cookie(app: Flask, base_url: str) -> None:
    """HttpOnly and SameSite=Lax always; Secure whenever the hub is reached over https."""
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=base_url.lower().startswith("https://"))
    app.session_interface = HubSessionInterface()


def install_security_headers(app: Flask) -> None:
    app.after_request(add_security_headers)
