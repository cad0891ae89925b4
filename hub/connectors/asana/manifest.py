"""Asana's OAuth 2.0 (authorization code + PKCE) and API origin (FACTS.md §3, §4).

- Granular scopes cover every call the hub makes, attachments and project creation included
  (`attachments:write` protects POST /attachments, `projects:write` POST /teams/{gid}/projects),
  so the app asks for those instead of `default` (full access). An app registered for granular
  scopes must not also send `default` (the two modes reportedly exclude each other).
- Token and revoke requests are form-encoded with the client credentials in the body.
- Access tokens last one hour; the refresh response carries no new refresh token: keep the old one.
- Revoke takes the *refresh* token (an access token gets 400) and ends the whole grant.
- Custom external data (`external`, the exactly-once key on tasks) needs an OAuth token, never a PAT,
  and is private to this app's client id.
The token response does not list the granted scopes, so `required_scopes` stays empty: a
missing scope shows up as a 403 Fatal naming it.
Rate limits are per token: 150 (free) / 1,500 (paid) requests a minute, 15 writes in flight."""
from __future__ import annotations

from ..contract.auth import OAuth2
from .identity import identity

SCOPES = (
    "workspaces:read",    # GET /workspaces (is_organization)
    "teams:read",         # GET /workspaces/{gid}/teams
    "projects:read",      # GET /workspaces/{gid}/projects, /teams/{gid}/projects
    "projects:write",     # POST /teams/{gid}/projects, POST /projects
    "users:read",         # GET /users?workspace=, /users/me
    "tasks:read",         # GET /tasks/{gid}, /tasks/external:{id}
    "tasks:write",        # POST /tasks
    "attachments:read",   # GET /attachments?parent=
    "attachments:write",  # POST /attachments
)

MANIFEST = OAuth2(
    authorize_url="https://app.asana.com/-/oauth_authorize",
    token_url="https://app.asana.com/-/oauth_token",
    revoke_url="https://app.asana.com/-/oauth_revoke",
    api_url="https://app.asana.com/api/1.0",
    scopes=SCOPES,
    client_auth="client_secret_post",
    pkce=True,
    revoke_auth="client_secret_post",
    identity=identity,
)
