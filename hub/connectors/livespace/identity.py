"""Who connected with the pasted key (`Default/User_getInfo`) and who else is in the account.

The account is the sub-domain of its address (`https://<subdomain>.livespace.io`), which is the
API root too; an account reached through another origin (the sandbox) is named by that origin's
host and path."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from hub.connectors.contract.auth import Identity

HOST = re.compile(r"(?P<sub>[a-z0-9][a-z0-9-]{0,62})\.livespace\.io")


def account_of(api_base: str) -> tuple[str, str]:
    """(account key, domain) of an API root."""
    parts = urlsplit(api_base)
    host = (parts.hostname or "").lower()
    found = HOST.fullmatch(host)
    if found:
        return found.group("sub"), host
    return f"{parts.netloc}{parts.path}".rstrip("/")[:100], parts.netloc


def _person(user: dict, account: str, domain: str) -> Identity:
    name = user.get("name") or " ".join(p for p in (user.get("firstname"), user.get("lastname")) if p)
    return Identity(account_key=account, user_id=str(user["id"]), name=name or "", email=user.get("email") or "",
                    is_admin=str(user.get("is_admin")).lower() in ("1", "true"), account_name=account,
                    account_domain=domain)


def identity(client: Any) -> Identity:
    account, domain = account_of(client.base_url)
    return _person(client.me(), account, domain)


def members(client: Any) -> list[Identity]:
    """The account's active users with an e-mail: the admin picks who may use the hub."""
    account, domain = account_of(client.base_url)
    return [_person(u, account, domain) for u in client.users()
            if u.get("email") and u.get("id") and str(u.get("is_active", True)).lower() not in ("0", "false")]
