"""The one OAuth 2.0 client of the hub, on Authlib: authorization URL (with PKCE where the
connector's `OAuth2` asks), code exchange, refresh and revocation. Connectors contribute only their
`OAuth2` (hub/connectors/contract/auth.py): data plus small hooks for quirks.

Token-endpoint failures are sorted like API failures: `InvalidGrant` (the grant is gone: the
connection needs the admin), `Retriable` (5xx, 429, network) or `Fatal` (any other refusal)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

from .. import connectors
from ..config import ConfigError
from ..connectors.contract import Connector
from ..connectors.contract.auth import OAuth2
from ..errors import Fatal, Retriable

log = logging.getLogger("hub.oauth")
TIMEOUT = (5, 30)


class InvalidGrant(Exception):
    """The provider refused the code or refresh token for good (RFC 6749 invalid_grant)."""


def connector_origin(services: Any, name: str) -> str | None:
    """Where the connector's provider answers: its configured origin, else the built-in sandbox
    (when on), else None (the real provider's URLs as the connector states them)."""
    settings = services.settings
    origin = settings.get(f"{name}.origin") or ""
    if not origin and settings["hub.sandbox"]:
        from ..sandbox import sandbox_origin
        origin = sandbox_origin(services.base_url, name)
    return origin or None


@dataclass(frozen=True)
class ProviderApp:
    """A provider as this hub is registered with it: its `OAuth2` (origin applied) and client credentials."""

    connector: Connector
    auth: OAuth2
    client_id: str
    client_secret: str
    redirect_uri: str

    @property
    def provider(self) -> str:
        return self.connector.name

    @property
    def title(self) -> str:
        return self.connector.title


def provider_app(services: Any, provider: str) -> ProviderApp:
    """KeyError for a provider that is not a connector, or whose auth is not OAuth 2.0."""
    connector = connectors.connector(provider)
    if not isinstance(connector.auth, OAuth2):
        raise KeyError(provider)
    settings = services.settings
    client_id = settings.get(f"{provider}.client_id") or ""
    client_secret = settings.get(f"{provider}.client_secret") or ""
    if not client_id and settings["hub.sandbox"]:
        from ..sandbox import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
        client_id, client_secret = SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
    if not client_id or not client_secret:
        name = provider.upper()
        raise ConfigError(f"HUB_{name}_CLIENT_ID and HUB_{name}_CLIENT_SECRET: required to connect {connector.title}")
    return ProviderApp(connector, connector.auth.with_origin(connector_origin(services, provider)), client_id,
                       client_secret, f"{services.base_url}/oauth/{provider}/callback")


def _check(title: str, response: requests.Response) -> requests.Response:
    """Before a token response is parsed: sort out failures that are not OAuth errors."""
    if response.status_code == 429 or response.status_code >= 500:
        raise Retriable(f"{title} token endpoint answered {response.status_code}",
                        _retry_after(response.headers.get("Retry-After")))
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            raise Fatal(f"{title} token endpoint answered {response.status_code}", response.status_code) from None
        error = body.get("error") if isinstance(body, dict) else None
        if error == "invalid_grant":
            raise InvalidGrant(_describe(body))
        raise Fatal(f"{title} refused: {_describe(body)}", response.status_code)
    return response


def _session(app: ProviderApp, scope: str | None = None) -> OAuth2Session:
    m = app.auth
    session = OAuth2Session(app.client_id, app.client_secret, token_endpoint_auth_method=m.client_auth,
                            revocation_endpoint_auth_method=m.revoke_auth if m.revoke_auth != "none" else "none",
                            scope=scope, redirect_uri=app.redirect_uri,
                            code_challenge_method="S256" if m.pkce else None)
    session.register_compliance_hook("access_token_response", lambda response: _check(app.title, response))
    session.register_compliance_hook("refresh_token_response", lambda response: _check(app.title, response))
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


def authorization_url(app: ProviderApp, state: str, account_hint: str | None = None) -> tuple[str, str | None]:
    """The provider's consent URL and the PKCE verifier to keep until the callback (or None).
    A connector whose consent page lives on the customer's host gets `account_hint` (ValueError
    when that hint cannot name an account)."""
    m = app.auth
    scope = m.scope_separator.join(m.scopes) if (m.send_scope and m.scopes) else None
    verifier = generate_token(64) if m.pkce else None
    base = m.authorize_url_for(account_hint or "") if m.authorize_url_for else m.authorize_url
    session = _session(app, scope)
    if not m.send_redirect_uri:       # the provider takes it from the app's settings (Bitrix24's portals)
        session.redirect_uri = None
    url, _ = session.create_authorization_url(base, state=state, code_verifier=verifier, **m.authorize_params)
    return url, verifier


def _call(fn, title: str, *args, **kwargs) -> dict[str, Any]:
    try:
        token = dict(fn(*args, timeout=TIMEOUT, **kwargs))
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
    if not isinstance(token.get("access_token"), str) or not token["access_token"]:
        raise Fatal(f"{title} token endpoint sent no access token")
    return token


def _get_token(app: ProviderApp, url: str, params: dict[str, str], timeout=TIMEOUT) -> dict[str, Any]:
    """A token request by GET, everything in the query string (client credentials included)."""
    query = {"client_id": app.client_id, "client_secret": app.client_secret, **params}
    response = _check(app.title, requests.get(url, params=query, headers={"Accept": "application/json"},
                                              timeout=timeout))
    body = response.json()
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    if body.get("error"):
        if body["error"] == "invalid_grant":
            raise InvalidGrant(_describe(body))
        raise Fatal(f"{app.title} refused: {_describe(body)}")
    return body


def exchange_code(app: ProviderApp, code: str, verifier: str | None) -> dict[str, Any]:
    m = app.auth
    if m.token_method == "GET":
        params = {"grant_type": "authorization_code", "code": code}
        if m.send_redirect_uri:
            params["redirect_uri"] = app.redirect_uri
        if verifier:
            params["code_verifier"] = verifier
        return _call(lambda timeout: _get_token(app, m.token_url, params, timeout), app.title)
    kwargs: dict[str, Any] = {"code": code, "grant_type": "authorization_code"}
    if verifier:
        kwargs["code_verifier"] = verifier
    if not m.send_redirect_uri:
        kwargs["redirect_uri"] = None  # Authlib leaves out an empty one
    return _call(_session(app).fetch_token, app.title, m.token_url, **kwargs)


def refresh(app: ProviderApp, token_url: str, refresh_token: str) -> dict[str, Any]:
    if app.auth.token_method == "GET":
        params = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return _call(lambda timeout: _get_token(app, token_url, params, timeout), app.title)
    return _call(_session(app).refresh_token, app.title, token_url, refresh_token=refresh_token)


def revoke(app: ProviderApp, revoke_url: str, token: str, hint: str = "refresh_token") -> bool:
    """Best effort: a failed revocation is logged and reported, never blocks an uninstall."""
    if not revoke_url:
        return False
    try:
        response = _session(app).revoke_token(revoke_url, token=token, token_type_hint=hint, timeout=TIMEOUT)
        if response.status_code >= 400:
            log.warning("%s revocation answered %s", app.title, response.status_code)
        return response.status_code < 400
    except Exception as exc:
        log.warning("%s revocation failed: %s", app.title, type(exc).__name__)
        return False


def missing_scopes(app: ProviderApp, token: dict[str, Any]) -> list[str]:
    """Required scopes the grant lacks (only when the token response lists what it granted)."""
    granted_raw = token.get("scope") or ""
    if not granted_raw or not app.auth.required_scopes:
        return []
    granted = set(str(granted_raw).replace(",", " ").split())
    return [s for s in app.auth.required_scopes if s not in granted]


def kept_fields(app: ProviderApp, token: dict[str, Any]) -> dict[str, str]:
    """The token-response fields the connector keeps (`OAuth2.token_fields`)."""
    return {name: str(token[name]) for name in app.auth.token_fields if token.get(name) not in (None, "")}
