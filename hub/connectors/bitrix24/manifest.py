"""Bitrix24's OAuth and limits (FACTS §2, §4).

The consent page lives on the customer's own portal (`https://<portal>/oauth/authorize/`), the code
is exchanged by GET at the OAuth server without `redirect_uri` (it comes from the app's settings),
and the token response names the portal's API root (`client_endpoint`) and the portal itself
(`member_id`, the account key). Scopes are configured on the app, never sent. Refresh tokens rotate
on every refresh: the core's refresh is single-flight and stores the new one before the access
token is used (hub/oauth/tokens.py)."""
from __future__ import annotations

import re

from ..contract.auth import OAuth2
from .identity import identity, members

SCOPES: tuple[str, ...] = ("crm", "task", "user", "placement")
REQUIRED_SCOPES: tuple[str, ...] = ("crm", "task")

_HOST = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+")


def portal_host(hint: str) -> str:
    """`acme.bitrix24.com`, `https://acme.bitrix24.com/`, `acme.bitrix24.de/crm/` -> the host; a
    self-hosted portal's own domain is fine too. ValueError for anything that names no host."""
    text = (hint or "").strip().lower()
    text = re.sub(r"^https?://", "", text).split("/", 1)[0]
    if "@" in text or ":" in text or not _HOST.fullmatch(text):
        raise ValueError("enter your Bitrix24 address, such as yourcompany.bitrix24.com")
    return text


def authorize_url_for(hint: str) -> str:
    return f"https://{portal_host(hint)}/oauth/authorize/"


MANIFEST = OAuth2(
    authorize_url="https://www.bitrix24.com/oauth/authorize/",   # unused: every portal has its own
    token_url="https://oauth.bitrix.info/oauth/token/",
    revoke_url=None,                      # Bitrix24 has no revocation endpoint: uninstalling the app ends it
    api_url=None,
    scopes=SCOPES,
    scope_separator=",",
    send_scope=False,
    client_auth="client_secret_post",
    token_fields=("member_id", "domain", "client_endpoint", "server_endpoint"),
    api_base_field="client_endpoint",
    revoke_auth="none",
    required_scopes=REQUIRED_SCOPES,
    token_method="GET",
    send_redirect_uri=False,
    authorize_url_for=authorize_url_for,
    account_label="Your Bitrix24 address",
    account_placeholder="yourcompany.bitrix24.com",
    identity=identity,
    members=members,
)

# -- limits (FACTS §4) --------------------------------------------------------------------------------
PAGE_SIZE = 50                 # every list method, fixed
BATCH_MAX = 50                 # sub-calls per batch
BUCKET_DRAIN_PER_SECOND = 2.0  # the leaky bucket of non-Enterprise plans (Enterprise: 5/s)
BUCKET_SIZE = 50
# the client's own bucket stays under the portal's, which every worker (and other apps on this
# server's IP) share
RATE_LIMIT_PER_SECOND = BUCKET_DRAIN_PER_SECOND * 0.9
QUERY_LIMIT_BACKOFF = 1.0      # seconds before another try after 503 QUERY_LIMIT_EXCEEDED (two drains)
