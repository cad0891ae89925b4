"""The HubSpot client and identity against the emulator: who connected (token metadata), owners as
members, HubSpot's error bodies mapped to Fatal (with HubSpot's message) / Retriable / NeedsReauth,
paging by `after`, and a token refreshed when HubSpot refuses it."""
from __future__ import annotations

import pytest

from hub.connectors.hubspot import CONNECTOR
from hub.connectors.hubspot.identity import members
from hub.connectors.retry import RetryPolicy
from hub.errors import Fatal, NeedsReauth, Retriable


def test_identity_is_the_account_and_user_of_the_token(hs):
    who = CONNECTOR.identity(hs.client, {"access_token": hs.tokens.access, "expires_in": 1800})
    user = hs.emu.user(hs.hub_id, hs.user_id)
    assert (who.account_key, who.user_id, who.email) == (str(hs.hub_id), str(hs.user_id), user["email"])
    assert who.account_domain == hs.emu.portal(hs.hub_id)["domain"]
    people = members(hs.client)
    assert {p.user_id for p in people} == {str(u["id"]) for u in hs.emu.users(hs.hub_id)}


def test_a_missing_object_is_fatal_with_hubspots_message(hs):
    with pytest.raises(Fatal) as caught:
        hs.client.get("deals", "999999999")
    assert caught.value.status == 404 and "Object not found" in str(caught.value)
    assert hs.client.find("deals", "999999999") is None


def test_a_validation_error_names_the_property(hs):
    with pytest.raises(Fatal) as caught:
        hs.client.create("tasks", {"hs_task_subject": "no due date"})
    assert caught.value.status == 400 and "hs_timestamp" in str(caught.value)


def test_rate_limit_and_server_errors_are_retriable(hs):
    client = CONNECTOR.client(hs.api_base, hs.tokens, rate_limit=None, sleep=lambda s: None,
                              retry_policy=RetryPolicy(inline_retries=0))
    hs.emu.faults.update({"burst_429": 1, "retry_after": 7})
    with pytest.raises(Retriable) as caught:
        client.owners()
    assert "ten_secondly_rolling" in str(caught.value) and caught.value.retry_after == 7
    hs.emu.faults.update({"error_rate": 1.0, "error_status": 502})
    with pytest.raises(Retriable):
        client.owners()
    hs.emu.faults.update({"error_rate": 0.0})
    assert client.owners()


def test_an_expired_token_is_refreshed_and_a_revoked_grant_needs_reauth(hs):
    old = hs.tokens.access
    hs.emu.tokens.expire_all_now()                         # 30 minutes later
    assert hs.client.owners() and hs.tokens.refreshes == 1 and hs.tokens.access != old
    hs.emu.uninstall("relay-hub-sandbox", hs.hub_id)       # the app removed from the account
    with pytest.raises(NeedsReauth):
        hs.client.owners()


def test_paging_follows_after(hs):
    client = CONNECTOR.client(hs.api_base, hs.tokens, rate_limit=None, page_size=1)
    owners = client.owners()
    assert len(owners) == len(hs.emu.owners(hs.hub_id)) >= 2
    contacts = list(client.iter_search("contacts", {"properties": ["firstname"]}, max_results=3))
    assert len(contacts) == 3
