"""Which Asana user connected: GET /users/me with the new token. An Asana user spans workspaces,
so the account is the user itself; the workspace is picked per rule."""
from __future__ import annotations

from typing import Any

from ..contract.auth import Identity


def identity(client: Any, token_response: dict[str, Any]) -> Identity:
    me = client.me(fields=("name", "email"))
    gid = str(me.get("gid") or "")
    return Identity(account_key=gid, user_id=gid, name=me.get("name") or me.get("email") or "",
                    email=me.get("email") or "")
