"""How a connector authenticates, as data plus a few small hooks; the generic flows in `hub/oauth`
do the rest.

`OAuth2` is the authorization-code flow. Its fields are the provider's facts (URLs, scopes, how
the client authenticates, PKCE); its hooks cover the quirks we know of: an authorize URL per
customer account (Bitrix24's portal), a token exchange by GET without `redirect_uri`, token-
response fields that name the account's API (Pipedrive's `api_domain`, Bitrix24's
`client_endpoint`).

`ApiKey` is a key (and usually a secret) a person pastes into the hub's form. The hub keeps them
encrypted like OAuth tokens and hands every outgoing request to `sign(request, key, secret)`.

Either way, after the credentials are in hand the core builds the connector's client and asks its
identity hook who this is: `OAuth2` hooks are called `identity(client, token_response)`, `ApiKey`
hooks `identity(client)` (there is no token response). The answer is an `Identity`; an account
key names the customer account (one installation per CRM account), the user id the person.

URLs are the real provider's; `with_origin()` swaps scheme and host for another origin (the
sandbox, `<hub>/sandbox/<provider>`), so the same code talks to either."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True)
class Identity:
    """Who connected: the account (company, portal, workspace) and the person in it."""

    account_key: str              # the customer account's id: one installation per (connector, account_key)
    user_id: str                  # the person, as the provider names them
    name: str = ""
    email: str = ""
    is_admin: bool = False        # an admin of the account (may reinstall over a colleague's install)
    api_base: str = ""            # this account's API root when it differs per account ("": the default)
    account_name: str = ""        # what people call the account ("Acme Ltd")
    account_domain: str = ""      # the account's sub-domain or host, when it has one


def swap_origin(url: str | None, origin: str | None) -> str | None:
    """`url` with the scheme and host of `origin` (its path prefixed): the sandbox's copy of a URL."""
    if not url or not origin:
        return url
    parts = urlsplit(url)
    base = urlsplit(origin.rstrip("/"))
    return urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, parts.fragment))


# -- OAuth 2.0 --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OAuth2:
    authorize_url: str
    token_url: str
    revoke_url: str | None
    api_url: str | None                       # None when the token response names it (`api_base_field`)
    scopes: tuple[str, ...] = ()
    scope_separator: str = " "
    send_scope: bool = True                   # False: scopes are configured on the app (Pipedrive)
    client_auth: str = "client_secret_basic"  # or "client_secret_post"
    pkce: bool = False
    authorize_params: dict[str, str] = field(default_factory=dict)
    token_fields: tuple[str, ...] = ()        # token-response fields kept with the connection
    api_base_field: str | None = None         # the token-response field that is this account's API root
    revoke_auth: str = "client_secret_basic"  # or "client_secret_post" or "none"
    required_scopes: tuple[str, ...] = ()     # the connection fails clearly when a grant lacks one
    token_method: str = "POST"                # "GET": code and refresh go in the query string, with
                                              # the client credentials (Bitrix24)
    send_redirect_uri: bool = True            # False: neither the authorize URL nor the code exchange
                                              # carries redirect_uri (the app's settings hold it)
    # hooks ---------------------------------------------------------------------------------------
    authorize_url_for: Callable[[str], str] | None = None
    """`(account_hint) -> authorize URL` for providers whose consent page lives on the customer's own
    host (a Bitrix24 portal): the install and connect pages then ask for the account first (or take
    `?account=`); raise ValueError with a message for a hint that cannot name an account."""
    account_label: str = "Your account's address"   # that question, when authorize_url_for is set
    account_placeholder: str = ""
    identity: Callable[[Any, dict], Identity] | None = None
    """`(client, token_response) -> Identity`; the connector's `CONNECTOR.identity` wins when both are set."""
    members: Callable[[Any], list[Identity]] | None = None
    """`(client) -> the account's active people`, for a CRM: whom the installer may share the hub with."""

    kind = "oauth2"

    def __post_init__(self):
        if self.token_method not in ("POST", "GET"):
            raise ValueError(f"token_method: POST or GET, not {self.token_method!r}")
        if self.api_base_field and self.api_base_field not in self.token_fields:
            object.__setattr__(self, "token_fields", (*self.token_fields, self.api_base_field))

    def with_origin(self, origin: str | None) -> "OAuth2":
        if not origin:
            return self
        per_account = self.authorize_url_for
        return replace(self, authorize_url=swap_origin(self.authorize_url, origin),
                       token_url=swap_origin(self.token_url, origin),
                       revoke_url=swap_origin(self.revoke_url, origin),
                       api_url=swap_origin(self.api_url, origin),
                       authorize_url_for=(lambda hint: swap_origin(per_account(hint), origin))
                       if per_account else None)


# -- API key ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ApiKey:
    """A key and secret the person pastes into the hub's form (no OAuth). `sign` is required: it
    gets each outgoing `requests.PreparedRequest` (headers, URL and body may all be changed in
    place; returning a new prepared request replaces it) with the stored key and secret."""

    sign: Callable[[Any, str, str], Any] | None = None
    identity: Callable[[Any], Identity] | None = None
    """`(client) -> Identity`: checks the key at connect (a refusal is shown on the form)."""
    members: Callable[[Any], list[Identity]] | None = None
    """`(client) -> the account's active people`, for a CRM (as for OAuth2)."""
    key_label: str = "API key"
    key_help: str = ""
    secret_label: str | None = "API secret"   # None: the provider issues a key alone
    secret_help: str = ""
    account_label: str | None = None          # e.g. "Your account's address"; None: no such field
    account_help: str = ""
    account_placeholder: str = ""
    api_url: str | None = None                # the API root when it is the same for every account
    api_base_for: Callable[[str], str] | None = None
    """`(account field) -> API root`; raise ValueError with a message for a value that cannot be
    one. Without it the account field must itself be an https:// URL."""

    kind = "api_key"

    def __post_init__(self):
        if self.sign is None:
            raise ValueError("ApiKey needs sign=(prepared_request, key, secret): how a request carries the key")
        if not self.api_url and not self.account_label:
            raise ValueError("ApiKey needs api_url, or an account field (account_label) that gives the API root")

    def api_base(self, account: str) -> str:
        """The API root for what the person typed in the account field (ValueError: not usable)."""
        if self.api_base_for is not None:
            return self.api_base_for(account)
        if self.api_url:
            return self.api_url
        parts = urlsplit(account)
        if parts.scheme != "https" or not parts.netloc or parts.username or parts.password:
            raise ValueError("must be the https:// address of your account")
        return account.rstrip("/")

    def with_origin(self, origin: str | None) -> "ApiKey":
        if not origin:
            return self
        return replace(self, api_url=swap_origin(self.api_url, origin),
                       api_base_for=lambda account: swap_origin(self.api_base(account), origin))
