"""The token side of an emulated OAuth 2.0 server: codes, access and refresh tokens, strict rotation.

Each emulator renders its own authorize screens and token responses (field names and error shapes
differ per provider); this class only keeps the grants honest: codes expire and work once, access
tokens expire, refresh tokens are either kept (as Pipedrive and Google document) or rotated with
reuse refused (`strict_refresh`, as Bitrix24 behaves), and revocation ends a whole grant."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .faults import Faults
from .state import SandboxState


class OAuthError(Exception):
    """An RFC 6749 error: `error` is the code (invalid_grant, invalid_client ...)."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str
    redirect_uris: list[str] = field(default_factory=list)


class TokenAuthority:
    def __init__(
        self,
        state: SandboxState,
        faults: Faults,
        *,
        prefix: str,
        access_ttl: int = 3600,
        code_ttl: int = 300,
        clock: Callable[[], float] = time.time,
    ):
        self.state = state
        self.faults = faults
        self.prefix = prefix
        self.access_ttl = access_ttl
        self.code_ttl = code_ttl
        self.clock = clock
        self.clients: dict[str, OAuthClient] = {}

    # -- clients --------------------------------------------------------------------------------
    def register_client(self, client: OAuthClient) -> None:
        self.clients[client.client_id] = client

    def authenticate_client(self, client_id: str | None, client_secret: str | None) -> OAuthClient:
        client = self.clients.get(client_id or "")
        if client is None or not hmac.compare_digest(client.client_secret.encode(), (client_secret or "").encode()):
            raise OAuthError("invalid_client", "Invalid client credentials", 401)
        return client

    @staticmethod
    def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
        if not authorization or not authorization.lower().startswith("basic "):
            return None
        try:
            raw = base64.b64decode(authorization.split(" ", 1)[1].strip()).decode()
        except Exception:
            return None
        user, sep, password = raw.partition(":")
        return (user, password) if sep else None

    def check_redirect(self, client_id: str | None, redirect_uri: str | None) -> OAuthClient:
        client = self.clients.get(client_id or "")
        if client is None:
            raise OAuthError("invalid_client", "Unknown client_id")
        if not redirect_uri or (client.redirect_uris and redirect_uri not in client.redirect_uris):
            raise OAuthError("invalid_request", "redirect_uri does not match the registered callback")
        return client

    # -- codes ----------------------------------------------------------------------------------
    def issue_code(self, client_id: str, redirect_uri: str, grant: dict[str, Any], *,
                   code_challenge: str | None = None, code_challenge_method: str | None = None) -> str:
        code = self._token("c")
        with self.state.change() as data:
            data.setdefault("oauth_codes", {})[code] = {
                "client_id": client_id, "redirect_uri": redirect_uri, "grant": grant,
                "expires_at": self.clock() + self.code_ttl,
                "code_challenge": code_challenge, "code_challenge_method": code_challenge_method,
            }
        return code

    def redeem_code(self, code: str | None, client_id: str, redirect_uri: str | None,
                    code_verifier: str | None = None) -> dict[str, Any]:
        """Return the grant the code stands for; a code works once and for `code_ttl` seconds."""
        with self.state.change() as data:
            entry = data.setdefault("oauth_codes", {}).pop(code or "", None)
        if entry is None or entry["expires_at"] < self.clock():
            raise OAuthError("invalid_grant", "Invalid grant: authorization_code is invalid")
        if entry["client_id"] != client_id:
            raise OAuthError("invalid_grant", "Invalid grant: code was issued to another client")
        if redirect_uri is not None and entry["redirect_uri"] != redirect_uri:
            raise OAuthError("invalid_grant", "Invalid grant: redirect_uri mismatch")
        if entry.get("code_challenge"):
            if not code_verifier:
                raise OAuthError("invalid_grant", "Invalid grant: code_verifier required")
            if entry.get("code_challenge_method", "plain") == "S256":
                digest = hashlib.sha256(code_verifier.encode()).digest()
                computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            else:
                computed = code_verifier
            if not hmac.compare_digest(computed, entry["code_challenge"]):
                raise OAuthError("invalid_grant", "Invalid grant: code_verifier does not match")
        return entry["grant"]

    # -- tokens ---------------------------------------------------------------------------------
    def issue(self, client_id: str, grant: dict[str, Any]) -> dict[str, Any]:
        """A new access + refresh token pair for a fresh grant."""
        refresh = self._token("r")
        with self.state.change() as data:
            data.setdefault("oauth_refresh", {})[refresh] = {"client_id": client_id, "grant": grant,
                                                             "created_at": self.clock()}
            self._count(data, "grants")
        access = self._new_access(client_id, grant, refresh)
        return {"access_token": access, "refresh_token": refresh, "expires_in": self.access_ttl, "grant": grant}

    def refresh(self, refresh_token: str | None, client_id: str) -> dict[str, Any]:
        """New access token; the refresh token rotates (old one dead) only in strict mode."""
        strict = self.faults.settings.strict_refresh
        with self.state.change() as data:
            table = data.setdefault("oauth_refresh", {})
            entry = table.get(refresh_token or "")
            if entry is None or entry["client_id"] != client_id:
                self._count(data, "invalid_grant")
                raise OAuthError("invalid_grant", "Invalid grant: refresh token is invalid")
            self._count(data, "refreshes")
            new_refresh = refresh_token
            if strict:
                new_refresh = self._token("r")
                del table[refresh_token]
                table[new_refresh] = dict(entry, created_at=self.clock())
                for tok in data.setdefault("oauth_access", {}).values():
                    if tok.get("refresh") == refresh_token:
                        tok["refresh"] = new_refresh
        access = self._new_access(client_id, entry["grant"], new_refresh)
        return {"access_token": access, "refresh_token": new_refresh, "expires_in": self.access_ttl,
                "grant": entry["grant"], "rotated": new_refresh != refresh_token}

    def _new_access(self, client_id: str, grant: dict[str, Any], refresh: str) -> str:
        access = self._token("a")
        with self.state.change() as data:
            table = data.setdefault("oauth_access", {})
            now = self.clock()
            for key in [k for k, v in table.items() if v["expires_at"] < now - 3600]:
                del table[key]  # keep the table small: long-expired tokens are gone for good
            table[access] = {"client_id": client_id, "grant": grant, "refresh": refresh,
                             "expires_at": now + self.access_ttl}
        return access

    def validate(self, access_token: str | None) -> dict[str, Any] | None:
        """The grant behind a live access token, or None (unknown, revoked or expired)."""
        with self.state.lock:
            entry = self.state.data.get("oauth_access", {}).get(access_token or "")
            if entry is None or entry["expires_at"] <= self.clock():
                return None
            return entry["grant"]

    def bearer(self, authorization: str | None) -> dict[str, Any] | None:
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        return self.validate(authorization.split(" ", 1)[1].strip())

    def revoke(self, token: str | None) -> bool:
        """Revoking a refresh token ends the grant and its access tokens; an access token only itself."""
        with self.state.change() as data:
            refresh = data.setdefault("oauth_refresh", {})
            access = data.setdefault("oauth_access", {})
            if token in refresh:
                del refresh[token]
                for key in [k for k, v in access.items() if v.get("refresh") == token]:
                    del access[key]
                return True
            if token in access:
                del access[token]
                return True
            return False

    def revoke_where(self, predicate: Callable[[dict[str, Any]], bool]) -> int:
        """End every grant matching `predicate(grant)` (an uninstall); returns how many."""
        with self.state.change() as data:
            refresh = data.setdefault("oauth_refresh", {})
            access = data.setdefault("oauth_access", {})
            dead = [k for k, v in refresh.items() if predicate(v["grant"])]
            for key in dead:
                del refresh[key]
            for key in [k for k, v in access.items() if v.get("refresh") in dead or predicate(v["grant"])]:
                del access[key]
            return len(dead)

    def expire_all_now(self) -> int:
        """Fault knob: every live access token expires at once (refresh tokens stay valid)."""
        with self.state.change() as data:
            table = data.setdefault("oauth_access", {})
            now = self.clock()
            for entry in table.values():
                entry["expires_at"] = min(entry["expires_at"], now - 1)
            return len(table)

    def counters(self) -> dict[str, int]:
        with self.state.lock:
            return dict(self.state.data.get("oauth_counters", {}))

    # -- helpers --------------------------------------------------------------------------------
    def _token(self, kind: str) -> str:
        return f"{self.prefix}{kind}_{secrets.token_urlsafe(32)}"

    @staticmethod
    def _count(data: dict, name: str) -> None:
        counters = data.setdefault("oauth_counters", {})
        counters[name] = counters.get(name, 0) + 1
