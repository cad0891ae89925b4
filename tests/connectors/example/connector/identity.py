"""Who connected (checked with the pasted key at connect) and who else is in the account."""
from __future__ import annotations

from typing import Any

from hub.connectors.contract.auth import Identity


def identity(client: Any) -> Identity:
    me = client.me()
    account, user = me["account"], me["user"]
    return Identity(account_key=str(account["id"]), user_id=str(user["id"]), name=user.get("name") or "",
                    email=user.get("email") or "", is_admin=bool(user.get("admin")),
                    account_name=account.get("name") or "")


def members(client: Any) -> list[Identity]:
    account = client.me()["account"]
    return [Identity(account_key=str(account["id"]), user_id=str(u["id"]), name=u.get("name") or "",
                     email=u.get("email") or "", is_admin=bool(u.get("admin")),
                     account_name=account.get("name") or "") for u in client.users()]
