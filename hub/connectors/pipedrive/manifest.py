"""Pipedrive's OAuth endpoints, the scopes the hub asks for, and the limits the client respects.

Pipedrive names the API host per company in the token response (`api_domain`), so `api_url` is None
and `api_base_field` names `api_domain`. Scopes are configured on the app in Developer Hub, never sent
in the authorize request (FACTS §2); the token response lists the granted ones comma-separated."""
from __future__ import annotations

from ..contract.auth import OAuth2
from .identity import identity, members

# What the hub does with each scope (FACTS §3, §11):
SCOPES: tuple[str, ...] = (
    "base",            # /users/me after install: user, company, admin flags
    "deals:full",      # deals, pipelines, stages, deal fields, notes, files; PATCH deals (write-back)
    "contacts:full",   # persons/organizations read + write (two-way contact sync)
    "leads:read",      # lead.added trigger and lead details
    "users:read",      # owner pickers on the settings page
    "activities:full", # activities as a rule's tasks inside the CRM (create, complete, list for look-up)
    "admin",           # the app's own webhooks: the spec puts /webhooks under `admin` only
)
# Without these the hub cannot work at all; a grant lacking them fails the connection clearly.
# leads:read and users:read only switch features off.
REQUIRED_SCOPES: tuple[str, ...] = ("base", "deals:full", "contacts:full", "admin")

MANIFEST = OAuth2(
    authorize_url="https://oauth.pipedrive.com/oauth/authorize",
    token_url="https://oauth.pipedrive.com/oauth/token",
    revoke_url="https://oauth.pipedrive.com/oauth/revoke",
    api_url=None,
    scopes=SCOPES,
    scope_separator=",",
    send_scope=False,
    client_auth="client_secret_basic",
    token_fields=("api_domain",),
    api_base_field="api_domain",
    revoke_auth="client_secret_basic",
    required_scopes=REQUIRED_SCOPES,
    identity=identity,
    members=members,
)

# -- rate limits (FACTS §14) -----------------------------------------------------------------------
BURST_WINDOW_SECONDS = 2.0
# Requests per rolling 2-second window per token for OAuth apps, by plan.
BURST_LIMITS_OAUTH = {"lite": 80, "growth": 160, "premium": 400, "ultimate": 480}
SEARCH_BURST_LIMIT = 10          # search endpoints, every plan, per 2 s
# The client's token bucket: the lowest plan's budget with ~10 % head-room, because the window is
# shared by every worker holding the same user's token and we cannot see the company's plan.
RATE_LIMIT_PER_SECOND = BURST_LIMITS_OAUTH["lite"] / BURST_WINDOW_SECONDS * 0.9
# Daily token budget per company: 30,000 x plan multiplier x seats; resets at server midnight.
DAILY_TOKENS_PER_SEAT = 30_000
PLAN_MULTIPLIERS = {"lite": 1, "growth": 2, "premium": 5, "ultimate": 7}

# -- paging limits (FACTS §12) ---------------------------------------------------------------------
MAX_PAGE_SIZE = 500              # v2 cursor lists and most v1 offset lists
MAX_FILES_PAGE_SIZE = 100        # /deals/{id}/files and /files cap lower

# -- webhooks (FACTS §6, §8) -----------------------------------------------------------------------
WEBHOOKS_PER_USER = 40
WEBHOOK_TIMEOUT_SECONDS = 10     # answer 2xx within this or the delivery counts as failed
