"""Who installed or signed in: Pipedrive's /users/me names the user, the company and the admin
flags (FACTS §3); the company's users are the people an installer may share the hub with."""
from __future__ import annotations

from typing import Any

from ..contract.auth import Identity


def _is_admin(user: dict[str, Any]) -> bool:
    """`is_admin` is the account admin; `access[].admin` an admin of one app (sales, ...)."""
    return bool(user.get("is_admin")) or any(a.get("admin") for a in user.get("access") or [] if isinstance(a, dict))


def identity(client: Any, token_response: dict[str, Any]) -> Identity:
    me = client.me()
    return Identity(account_key=str(me["company_id"]), user_id=str(me["id"]), name=me.get("name") or "",
                    email=me.get("email") or "", is_admin=_is_admin(me),
                    api_base=str(token_response.get("api_domain") or "").rstrip("/"),
                    account_name=me.get("company_name") or "", account_domain=me.get("company_domain") or "")


def members(client: Any) -> list[Identity]:
    """The company's active users."""
    return [Identity(account_key=str(u.get("company_id") or ""), user_id=str(u["id"]), name=u.get("name") or "",
                     email=u.get("email") or "", is_admin=_is_admin(u))
            for u in client.users() if u.get("active_flag", True)]
