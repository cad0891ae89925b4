"""What a connector tells the generic OAuth code about its provider; nothing else is per provider.

URLs are the real provider's; `with_origin()` swaps scheme and host for another origin (the
sandbox, `<hub>/sandbox/<provider>`), so the same code talks to either."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit, urlunsplit


def _swap_origin(url: str | None, origin: str) -> str | None:
    if not url:
        return url
    parts = urlsplit(url)
    base = urlsplit(origin.rstrip("/"))
    return urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class OAuthManifest:
    provider: str
    title: str
    authorize_url: str
    token_url: str
    revoke_url: str | None
    api_url: str | None                      # None when the token response names it (Pipedrive api_domain)
    scopes: tuple[str, ...] = ()
    scope_separator: str = " "
    send_scope: bool = True                  # Pipedrive configures scopes on the app, not in the request
    client_auth: str = "client_secret_basic"  # or "client_secret_post"
    pkce: bool = False
    authorize_params: dict[str, str] = field(default_factory=dict)
    token_fields: tuple[str, ...] = ()       # extra token-response fields to keep (e.g. "api_domain")
    revoke_auth: str = "client_secret_basic"  # or "client_secret_post" or "none"
    required_scopes: tuple[str, ...] = ()    # the connection fails clearly when a grant lacks one
    kind: str = "target"                     # "crm" (installs the hub) or "target" (Asana, Google)

    def with_origin(self, origin: str | None) -> "OAuthManifest":
        if not origin:
            return self
        return replace(self, authorize_url=_swap_origin(self.authorize_url, origin),
                       token_url=_swap_origin(self.token_url, origin),
                       revoke_url=_swap_origin(self.revoke_url, origin),
                       api_url=_swap_origin(self.api_url, origin))
