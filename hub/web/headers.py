"""Response headers and cookie flags every hub page gets (and the mounted sandbox's pages too).

No page of the hub or of the sandbox is meant to be shown inside another site's frame, so framing is
refused outright (clickjacking of the visibility, uninstall and consent forms). The Content Security
Policy carries only `frame-ancestors`: the templates use inline scripts and styles, and a stricter
policy would need nonces on each of them first."""
from __future__ import annotations

from flask import Flask, Response

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # OAuth callback URLs carry codes: never sent to another site
}


def add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def configure_session_cookie(app: Flask, base_url: str) -> None:
    """HttpOnly and SameSite=Lax always; Secure whenever the hub is reached over https."""
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=base_url.lower().startswith("https://"))


def install_security_headers(app: Flask) -> None:
    app.after_request(add_security_headers)
