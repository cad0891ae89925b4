"""Who installed or signed in: the access token's metadata names the account (`hub_id`) and the
user (FACTS §1); the account's owners are the people an installer may share the hub with."""
from __future__ import annotations

from typing import Any

from ...errors import Fatal
from ..contract.auth import Identity


def identity(client: Any, token_response: dict[str, Any]) -> Identity:
    """Installing or authorizing an app takes HubSpot's App Marketplace permission, which only
    super admins grant, so the person who connected is an admin of the account."""
    info = client.token_info(token_response["access_token"])
    hub_id = info.get("hub_id") if info.get("hub_id") not in (None, "") else info.get("hubId")
    if hub_id in (None, ""):
        raise Fatal("HubSpot's token metadata names no hub_id")
    user = info.get("user") or ""
    return Identity(account_key=str(hub_id), user_id=str(info.get("user_id") or user), name=user, email=user,
                    is_admin=True, account_domain=info.get("hub_domain") or "")


def members(client: Any) -> list[Identity]:
    """The account's active owners (users with a seat); `user_id` is the HubSpot user id, the id
    the token metadata names, not the owner id."""
    out = []
    for owner in client.owners():
        if owner.get("archived") or owner.get("userId") in (None, ""):
            continue
        name = " ".join(p for p in (owner.get("firstName"), owner.get("lastName")) if p) or owner.get("email") or ""
        out.append(Identity(account_key="", user_id=str(owner["userId"]), name=name, email=owner.get("email") or ""))
    return out
