"""Each connector's settings section comes from the registry: what its kind of auth needs, then its
own `CONNECTOR.settings`; nothing lists providers by name."""
from __future__ import annotations

import pytest

from hub import connectors
from hub.config import ConfigError, load_settings
from hub.connectors.contract import Connector
from hub.connectors.contract.auth import ApiKey, OAuth2


def _sign(request, key, secret):
    request.headers["X-Key"] = key


KEYED = Connector(name="keyedcrm", title="KeyedCRM", roles=frozenset({"crm"}),
                  auth=ApiKey(sign=_sign, api_url="https://keyed.example/api"), settings={"page_size": 50})
OAUTH = Connector(name="oauthtasks", title="OAuthTasks", roles=frozenset({"task_target"}),
                  auth=OAuth2(authorize_url="https://o.example/a", token_url="https://o.example/t", revoke_url=None,
                              api_url="https://o.example/api"))


@pytest.fixture
def registered():
    for c in (KEYED, OAUTH):
        connectors.register(c)
    yield
    for c in (KEYED, OAUTH):
        connectors.unregister(c.name)


def test_sections_follow_the_registry(registered):
    settings = load_settings(environ={"HUB_KEYEDCRM_PAGE_SIZE": "20", "HUB_OAUTHTASKS_CLIENT_ID": "abc"})
    assert settings["keyedcrm.page_size"] == 20 and settings["keyedcrm.origin"] == ""
    assert "keyedcrm.client_id" not in settings.as_dict()          # a key connector has no OAuth app
    assert settings["oauthtasks.client_id"] == "abc" and settings["oauthtasks.client_secret"] == ""
    with pytest.raises(ConfigError, match="HUB_KEYEDCRM_PAGE_SIZE: expected a whole number"):
        load_settings(environ={"HUB_KEYEDCRM_PAGE_SIZE": "many"})
    with pytest.raises(ConfigError, match="unknown setting keyedcrm.client_id"):
        load_settings({"keyedcrm.client_id": "x"})


def test_sections_are_gone_with_their_connector():
    assert "keyedcrm.origin" not in load_settings(environ={}).as_dict()


def test_a_connector_cannot_take_a_core_section():
    connectors.register(Connector(name="jobs", title="Jobs", roles=frozenset({"task_target"}), auth=OAUTH.auth))
    try:
        with pytest.raises(ConfigError, match=r"connector jobs: its settings section would replace the hub's \[jobs\]"):
            load_settings(environ={})
    finally:
        connectors.unregister("jobs")


def test_api_key_needs_signing_and_an_api_root():
    with pytest.raises(ValueError, match="sign="):
        ApiKey(api_url="https://x.example")
    with pytest.raises(ValueError, match="api_url, or an account field"):
        ApiKey(sign=_sign)
    keyed = ApiKey(sign=_sign, account_label="Your address")
    assert keyed.api_base("https://acme.example/api/") == "https://acme.example/api"
    for bad in ("http://acme.example", "acme", "https://user:pw@acme.example", "javascript:alert(1)"):
        with pytest.raises(ValueError):
            keyed.api_base(bad)
    assert keyed.with_origin("http://127.0.0.1:9/sandbox/keyed").api_base("https://acme.example/api") == \
        "http://127.0.0.1:9/sandbox/keyed/api"
