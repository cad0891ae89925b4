"""How a Livespace account is connected: an API key and secret (Account settings -> API -> Users)
and the account's address, which is its API root. There is no OAuth (FACTS §1)."""
from __future__ import annotations

import re

from hub.connectors.contract.auth import ApiKey

from .client import sign
from .identity import identity, members

ACCOUNT = re.compile(r"(?:https://)?(?P<sub>[a-z0-9][a-z0-9-]{0,62})(?:\.livespace\.io)?/?")


def api_base_for(account: str) -> str:
    """`https://acme.livespace.io`, `acme.livespace.io` or `acme` -> `https://acme.livespace.io`."""
    found = ACCOUNT.fullmatch((account or "").strip().lower())
    if not found:
        raise ValueError("must be your Livespace address, like https://yourcompany.livespace.io")
    return f"https://{found.group('sub')}.livespace.io"


AUTH = ApiKey(sign=sign, identity=identity, members=members,
              key_label="API key", key_help="Account settings → API → Users in Livespace",
              secret_label="API secret", secret_help="shown next to the key",
              account_label="Your Livespace address", account_placeholder="https://yourcompany.livespace.io",
              account_help="the address you open Livespace at", api_base_for=api_base_for)
