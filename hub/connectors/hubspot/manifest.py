"""HubSpot's OAuth endpoints, the scopes the hub asks for, and the limits the client respects.

The legacy v1 token endpoint (FACTS §1) takes a form body with the client secret in it on every
exchange (`client_secret_post`); access tokens live 30 minutes and the core refreshes them as
`expires_in` says (never on a 401 alone, which HubSpot says is no sign of expiry; the client's 401
path refreshes once anyway). Scopes are sent space-separated on the authorize URL. The account
(hub id) comes from the token's metadata (identity.py)."""
from __future__ import annotations

from ..contract.auth import OAuth2
from .identity import identity, members

# What the hub does with each scope:
SCOPES: tuple[str, ...] = (
    "oauth",                              # every app has it: token metadata (hub id, user)
    "crm.objects.contacts.read",          # contacts, their lifecycle stage and history; webhooks need it
    "crm.objects.contacts.write",         # tasks and activities are written under the contacts scope
    "crm.objects.companies.read",         # the company of a deal or contact (templates)
    "crm.objects.deals.read",             # deals: won / lost / moved to a stage
    "crm.objects.deals.write",
    "crm.objects.leads.read",             # leads: added, moved, disqualified
    "crm.objects.leads.write",            # create a lead, move it to a stage
    "crm.objects.owners.read",            # owners: members, task owners, lead owners
    "crm.schemas.contacts.read",          # lifecycle stage options, custom contact properties
    "crm.schemas.deals.read",             # deal properties
)
REQUIRED_SCOPES: tuple[str, ...] = ("oauth", "crm.objects.contacts.read", "crm.objects.deals.read",
                                    "crm.objects.owners.read")

MANIFEST = OAuth2(
    authorize_url="https://app.hubspot.com/oauth/authorize",
    token_url="https://api.hubapi.com/oauth/v1/token",
    # v1 revokes with DELETE /oauth/v1/refresh-tokens/{token}, which is not RFC 7009; uninstalling the
    # app in HubSpot is what ends the grant (deleting a refresh token would not, FACTS §1)
    revoke_url=None,
    api_url="https://api.hubapi.com",
    scopes=SCOPES,
    scope_separator=" ",
    send_scope=True,
    client_auth="client_secret_post",
    revoke_auth="none",
    required_scopes=REQUIRED_SCOPES,
    identity=identity,
    members=members,
)

# -- rate limits (FACTS §4) ------------------------------------------------------------------------
BURST_WINDOW_SECONDS = 10.0
BURST_LIMIT_OAUTH = 110          # requests per 10 s per installed account [U]
# the client's token bucket: ~10 % head-room, the window is shared by every worker of the account
RATE_LIMIT_PER_SECOND = BURST_LIMIT_OAUTH / BURST_WINDOW_SECONDS * 0.9
MAX_PAGE_SIZE = 100              # list endpoints (`limit`), and batch inputs
MAX_SEARCH_PAGE_SIZE = 200       # search endpoints

# -- webhooks (FACTS §2, §3) -----------------------------------------------------------------------
SIGNATURE_MAX_AGE_SECONDS = 300  # v3: a request timestamp older than 5 minutes is refused
