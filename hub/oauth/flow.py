"""The one OAuth 2.0 client of the hub, on Authlib: authorization URL (with PKCE where the
manifest asks), code exchange, refresh and revocation. Connectors contribute only a manifest.

Token-endpoint failures are sorted like API failures: `InvalidGrant` (the grant is gone: the
connection needs the admin), `Retriable` (5xx, 429, network) or `Fatal` (any other refusal)."""
from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

from .. import connectors
from ..config import ConfigError
from ..errors import Fatal, Retriable
from .manifest import OAuthManifest

log = logging.getLogger("hub.oauth")
TIMEOUT = (5, 30)


class InvalidGrant(Exception):
    """The provider refused the code or refresh token for good (RFC 6749 invalid_grant)."""


@dataclass(frozen=True)
class ProviderApp:
    """A provider as this hub is registered with it: manifest (origin applied) and client credentials."""

    manifest: OAuthManifest
    client_id: str
    client_secret: str
    redirect_uri: str

    @property
    def provider(self) -> str:
        return self.manifest.provider


def provider_app(services: Any, provider: str) -> ProviderApp:
    if provider not in connectors.available():
        raise KeyError(provider)
    manifest: OAuthManifest = connectors.manifest(provider)
    settings = services.settings
    sandbox = settings["hub.sandbox"]
    origin = settings[f"{provider}.origin"]
    if not origin and sandbox:
        from ..sandbox import sandbox_origin
        origin = sandbox_origin(services.base_url, provider)
    client_id = settings[f"{provider}.client_id"]
    client_secret = settings[f"{provider}.client_secret"]
    if not client_id and sandbox:
        from ..sandbox import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
        client_id, client_secret = SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
    if not client_id or not client_secret:
        name = provider.upper()
        raise ConfigError(f"HUB_{name}_CLIENT_ID and HUB_{name}_CLIENT_SECRET: required to connect {manifest.title}")
    return ProviderApp(manifest.with_origin(origin), client_id, client_secret,
                       f"{services.base_url}/oauth/{provider}/callback")


def _session(app: ProviderApp, scope: str | None = None) -> OAuth2Session:
    m = app.manifest
    session = OAuth2Session(app.client_id, app.client_secret, token_endpoint_auth_method=m.client_auth,
                            revocation_endpoint_auth_method=m.revoke_auth if m.revoke_auth != "none" else "none",
                            scope=scope, redirect_uri=app.redirect_uri,
                            code_challenge_method="S256" if m.pkce else None)

    def check(response: requests.Response) -> requests.Response:
        """Before Authlib parses a token response: sort out failures that are not OAuth errors."""
        if response.status_code == 429 or response.status_code >= 500:
            raise Retriable(f"{m.title} token endpoint answered {response.status_code}",
                            _retry_after(response.headers.get("Retry-After")))
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                raise Fatal(f"{m.title} token endpoint answered {response.status_code}", response.status_code) from None
            error = body.get("error") if isinstance(body, dict) else None
            if error == "invalid_grant":
                raise InvalidGrant(_describe(body))
            raise Fatal(f"{m.title} refused: {_describe(body)}", response.status_code)
        return response

    session.register_compliance_hook("access_token_response", check)
    session.register_compliance_hook("refresh_token_response", check)
    return session


def _describe(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # google.rpc style
            return str(error.get("message") or error.get("status"))
        return str(body.get("error_description") or body.get("message") or error or body)[:300]
    return str(body)[:300]


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def authorization_url(app: ProviderApp, state: str) -> tuple[str, str | None]:
    """The provider's consent URL and the PKCE verifier to keep until the callback (or None)."""
    m = app.manifest
    scope = m.scope_separator.join(m.scopes) if (m.send_scope and m.scopes) else None
    verifier = generate_token(64) if m.pkce else None
    url, _ = _session(app, scope).create_authorization_url(m.authorize_url, state=state, code_verifier=verifier,
                                                           **m.authorize_params)
    return url, verifier


def _call(fn, title: str, *args, **kwargs) -> dict[str, Any]:
    try:
        return dict(fn(*args, timeout=TIMEOUT, **kwargs))
    except (InvalidGrant, Retriable, Fatal):
        raise
    except AuthlibBaseError as exc:
        if exc.error == "invalid_grant":
            raise InvalidGrant(exc.description or exc.error) from None
        raise Fatal(f"{title} refused: {exc.description or exc.error}") from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise Retriable(f"{title} token endpoint unreachable ({type(exc).__name__})") from None
    except ValueError as exc:  # a 2xx that is not a token response
        raise Fatal(f"{title} token endpoint sent an unreadable answer ({exc})") from None


def exchange_code(app: ProviderApp, code: str, verifier: str | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"code": code, "grant_type": "authorization_code"}
    if verifier:
        kwargs["code_verifier"] = verifier
    return _call(_session(app).fetch_token, app.manifest.title, app.manifest.token_url, **kwargs)


def refresh(app: ProviderApp, token_url: str, refresh_token: str) -> dict[str, Any]:
    return _call(_session(app).refresh_token, app.manifest.title, token_url, refresh_token=refresh_token)


def revoke(app: ProviderApp, revoke_url: str, token: str, hint: str = "refresh_token") -> bool:
    """Best effort: a failed revocation is logged and reported, never blocks an uninstall."""
    if not revoke_url:
        return False
    try:
        response = _session(app).revoke_token(revoke_url, token=token, token_type_hint=hint, timeout=TIMEOUT)
        if response.status_code >= 400:
            log.warning("%s revocation answered %s", app.manifest.title, response.status_code)
        return response.status_code < 400
    except Exception as exc:
        log.warning("%s revocation failed: %s", app.manifest.title, type(exc).__name__)
        return False


def id_token_claims(token: dict[str, Any]) -> dict[str, Any]:
    """Claims of an id_token received directly from the token endpoint over TLS (OIDC Core 3.1.3.7
    lets the TLS exchange stand for the signature check in that case)."""
    raw = token.get("id_token")
    if not raw or raw.count(".") != 2:
        return {}
    payload = raw.split(".")[1]
    try:
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return {}
