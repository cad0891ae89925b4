"""Google's OAuth 2.0 web-server flow and the People API origin (FACTS.md §1).

- `access_type=offline` is what yields a refresh token; Google issues one only on the first consent
  of a client+user unless `prompt=consent` is sent, so the connect flow always sends both.
- `include_granted_scopes=true` keeps scopes granted earlier (incremental auth).
- Granular consent: the user may untick contacts, hence `required_scopes` (the connection fails
  clearly instead of failing on the first write with 403).
- The token endpoint takes the client credentials in the form body (`client_secret_post`, as
  Google documents); revoke takes only `token=` and no client authentication.
- The refresh response normally has no `refresh_token`: keep the stored one.

Limits the client enforces (DD method descriptions): batchCreate/batchUpdate <= 200 contacts,
batchDelete <= 500, batchGet <= 200 names, members:modify <= 1000 names per call. Quota is per
project and per user per minute (Cloud Console only); writes for one user must be sequential."""
from __future__ import annotations

from ..contract.auth import OAuth2
from .identity import identity

CONTACTS_SCOPE = "https://www.googleapis.com/auth/contacts"

MANIFEST = OAuth2(
    authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
    token_url="https://oauth2.googleapis.com/token",
    revoke_url="https://oauth2.googleapis.com/revoke",
    api_url="https://people.googleapis.com",
    scopes=("openid", "email", CONTACTS_SCOPE),  # openid+email: which Google account it is (id_token)
    required_scopes=(CONTACTS_SCOPE,),
    client_auth="client_secret_post",
    authorize_params={"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"},
    revoke_auth="none",
    identity=identity,
)
