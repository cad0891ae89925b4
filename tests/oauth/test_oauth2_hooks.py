"""The OAuth2 hooks for provider quirks, end to end through the install pages, with a tiny connector
defined here: a consent page per customer account (`authorize_url_for`), the code exchanged and
refreshed by GET without `redirect_uri`, and a token-response field that is the account's API root
(`api_base_field`) kept with the other `token_fields`. The provider is `responses`: its token
endpoint refuses any request that is not shaped that way."""
from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from sqlalchemy import select

from hub import connectors
from hub.connectors.base import ApiClient
from hub.connectors.contract import Connector
from hub.connectors.contract.auth import Identity, OAuth2
from hub.oauth.clients import crm_client
from hub.oauth.tokens import ConnectionTokens, token_fields
from hub.store import Connection, Installation

CLIENT_ID, CLIENT_SECRET = "portal-app", "portal-app-secret"


class PortalClient(ApiClient):
    provider = "portal"

    def __init__(self, base_url, tokens, **options):
        super().__init__(base_url, tokens, sleep=lambda seconds: None, **options)

    def me(self):
        return self.json("GET", "user.current")


def identity(client, token_response) -> Identity:
    me = client.me()
    return Identity(account_key=token_response["member_id"], user_id=str(me["ID"]), name=me["NAME"],
                    email=me["EMAIL"], is_admin=True, account_name="Acme Portal")


def authorize_url_for(portal: str) -> str:
    if not re.fullmatch(r"[a-z0-9-]{1,40}", portal):
        raise ValueError("must be your portal's name, such as acme")
    return f"https://{portal}.portal.example/oauth/authorize/"


PORTAL = Connector(name="portalcrm", title="PortalCRM", roles=frozenset({"crm"}), client=PortalClient,
                   identity=identity, auth=OAuth2(
                       authorize_url="https://portal.example/oauth/authorize/",
                       token_url="https://oauth.portal.example/oauth/token/", revoke_url=None, api_url=None,
                       token_method="GET", send_redirect_uri=False, token_fields=("member_id",),
                       api_base_field="client_endpoint", authorize_url_for=authorize_url_for,
                       account_label="Your portal"))


class Portal:
    def __init__(self, mock: responses.RequestsMock):
        self.token_requests: list[dict] = []
        self.issued = 0
        self.endpoint = "https://acme.portal.example/rest/"
        mock.add_callback("GET", re.compile(r"https://oauth\.portal\.example/oauth/token/.*"), callback=self.token)
        mock.add_callback("GET", re.compile(r"https://[a-z0-9.]+\.portal\.example/rest/user\.current"),
                          callback=self.me)

    def token(self, request):
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        self.token_requests.append(query)
        if request.body or "redirect_uri" in query or (query.get("client_id"), query.get("client_secret")) != \
                (CLIENT_ID, CLIENT_SECRET):
            return 400, {}, json.dumps({"error": "invalid_request"})
        if query.get("grant_type") == "authorization_code" and query.get("code") != "the-code":
            return 400, {}, json.dumps({"error": "invalid_grant", "error_description": "code expired"})
        if query.get("grant_type") == "refresh_token" and query.get("refresh_token") != f"refresh-{self.issued}":
            return 400, {}, json.dumps({"error": "invalid_grant"})
        self.issued += 1
        return 200, {}, json.dumps({"access_token": f"access-{self.issued}", "refresh_token": f"refresh-{self.issued}",
                                    "expires_in": 3600, "member_id": "m-1", "client_endpoint": self.endpoint,
                                    "domain": "acme.portal.example"})

    def me(self, request):
        if request.headers.get("Authorization") != f"Bearer access-{self.issued}":
            return 401, {}, json.dumps({"error": "expired_token"})
        return 200, {}, json.dumps({"ID": 7, "NAME": "Pia Portal", "EMAIL": "pia@acme.example"})


@pytest.fixture
def portal(make_hub):
    connectors.register(PORTAL)
    try:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            yield make_hub(**{"portalcrm.client_id": CLIENT_ID, "portalcrm.client_secret": CLIENT_SECRET}), Portal(mock)
    finally:
        connectors.unregister(PORTAL.name)


def test_install_asks_for_the_portal_exchanges_by_get_and_keeps_the_api_root(portal):
    app, provider = portal
    client = app.test_client()
    form = client.get("/install/portalcrm")
    assert form.status_code == 200 and "Your portal" in form.text and 'name="account"' in form.text
    hostile = client.get("/install/portalcrm?account=evil.example/x")
    assert hostile.status_code == 400 and 'id="account-error"' in hostile.text
    off = client.get("/install/portalcrm?account=acme")
    assert off.status_code == 302
    consent = urlsplit(off.headers["Location"])
    assert (consent.scheme, consent.netloc, consent.path) == ("https", "acme.portal.example", "/oauth/authorize/")
    state = parse_qs(consent.query)["state"][0]
    wrong = client.get(f"/oauth/portalcrm/callback?state={state}&code=old-code")
    assert wrong.status_code == 400 and "expired" in wrong.text
    off = client.get("/install/portalcrm?account=acme")
    state = parse_qs(urlsplit(off.headers["Location"]).query)["state"][0]
    landed = client.get(f"/oauth/portalcrm/callback?state={state}&code=the-code")
    assert landed.status_code == 302 and "/visibility?setup=1" in landed.headers["Location"], landed.text
    assert [r["grant_type"] for r in provider.token_requests] == ["authorization_code", "authorization_code"]
    services = app.extensions["hub"]
    with services.db.begin() as s:
        inst = s.scalar(select(Installation))
        conn = s.scalar(select(Connection))
        assert (inst.company_id, inst.installer_user_id, inst.api_domain) == ("m-1", "7", "https://acme.portal.example/rest")
        assert (conn.api_base, conn.account_name) == ("https://acme.portal.example/rest", "Pia Portal")
        assert token_fields(services, s, conn.id) == {"member_id": "m-1", "client_endpoint": provider.endpoint}
    assert client.get("/api/v1/me").json["crm_user_id"] == "7"

    # refresh by GET too; a refresh naming a new API root moves the connection there
    provider.endpoint = "https://acme2.portal.example/rest/"
    with services.db.begin() as s:
        s.get(Connection, conn.id).refresh_due_at = services.queue.clock.now() - timedelta(seconds=1)
    assert ConnectionTokens(services, conn.id).access_token() == "access-2"
    assert provider.token_requests[-1]["grant_type"] == "refresh_token"
    with services.db.begin() as s:
        assert s.get(Connection, conn.id).api_base == "https://acme2.portal.example/rest"
    assert crm_client(services, inst.id).me()["NAME"] == "Pia Portal"
