"""Who installed or signed in: `member_id` (from the token response) is the portal, the account
key; `user.current` names the person and `profile` says whether they administer the portal (one
batch, one round trip). The portal's host comes from `client_endpoint`: the token response's own
`domain` is the OAuth server's (FACTS §2)."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..contract.auth import Identity


def _name(user: dict[str, Any]) -> str:
    return " ".join(p for p in (str(user.get("NAME") or "").strip(), str(user.get("LAST_NAME") or "").strip()) if p)


def _admin(value: Any) -> bool:
    return value is True or str(value).upper() in ("Y", "TRUE", "1")


def identity(client: Any, token_response: dict[str, Any]) -> Identity:
    user, profile = client.whoami()
    endpoint = str(token_response.get("client_endpoint") or client.base_url or "").rstrip("/")
    host = urlsplit(endpoint).hostname or ""
    return Identity(account_key=str(token_response.get("member_id") or ""), user_id=str(user.get("ID") or profile.get("ID") or ""),
                    name=_name(user) or _name(profile), email=str(user.get("EMAIL") or ""),
                    is_admin=_admin(profile.get("ADMIN")), api_base=endpoint, account_name=host,
                    account_domain=host)


def members(client: Any) -> list[Identity]:
    """The portal's active employees (user.get, ACTIVE)."""
    return [Identity(account_key="", user_id=str(u["ID"]), name=_name(u), email=str(u.get("EMAIL") or ""),
                     is_admin=_admin(u.get("IS_ADMIN")))
            for u in client.users() if _admin(u.get("ACTIVE", True))]
