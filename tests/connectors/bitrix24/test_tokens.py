"""Bitrix24 rotates the refresh token on every refresh and refuses the old one. Two workers whose
access token expired at once must refresh once between them, the rotated refresh token must be
stored before the new access token is used, and the next refresh must work (nothing lost)."""
from __future__ import annotations

import json
import threading

import pytest
import requests

from hub.connectors.bitrix24.client import Bitrix24Client
from hub.oauth import tokens as core_tokens
from hub.oauth.tokens import ConnectionTokens, refresh_ref, store_tokens
from hub.store import Connection, Installation

from .conftest import CLIENT_ID, CLIENT_SECRET, PORTAL, emulator


class Watching(requests.Session):
    """The workers' HTTP session: after a 401 both wait for each other (so both refresh at once),
    and every call made with a new access token notes the refresh token stored at that moment."""

    def __init__(self, barrier: threading.Barrier, stored_refresh, seen: list):
        super().__init__()
        self.barrier, self.stored_refresh, self.seen = barrier, stored_refresh, seen

    def request(self, method, url, *args, **kwargs):
        body = kwargs.get("json") or {}
        if "/rest/" in url and body.get("auth"):
            self.seen.append((body["auth"], self.stored_refresh()))
        answer = super().request(method, url, *args, **kwargs)
        if answer.status_code == 401:
            try:
                self.barrier.wait(timeout=5)
            except threading.BrokenBarrierError:
                pass
        return answer


def seed(services, live) -> tuple[int, str]:
    issued = live.emu.issue_tokens(PORTAL, CLIENT_ID, live.emu.admin_id(PORTAL))
    member = live.emu.portals()[0]["member_id"]
    with services.db.begin() as s:
        inst = Installation(provider="bitrix24", company_id=member, installer_user_id="1", company_name="Relay Demo",
                            endpoint_token="tok-b24-refresh", api_domain=live.api_base)
        s.add(inst)
        s.flush()
        conn = Connection(installation_id=inst.id, provider="bitrix24", role="crm", account_id="1",
                          api_base=live.api_base, token_url=f"{live.url}/oauth/token/")
        s.add(conn)
        s.flush()
        store_tokens(services, s, conn, {"access_token": issued["access_token"],
                                         "refresh_token": issued["refresh_token"], "expires_in": 3600})
        return conn.id, issued["refresh_token"]


@pytest.mark.parametrize("separate_processes", [False, True], ids=["threads", "processes"])
def test_two_workers_refresh_once_and_keep_the_rotated_token(make_hub, monkeypatch, separate_processes):
    with emulator() as live:
        app = make_hub(**{"bitrix24.origin": live.url, "bitrix24.client_id": CLIENT_ID,
                          "bitrix24.client_secret": CLIENT_SECRET})
        services = app.extensions["hub"]
        connection_id, first_refresh = seed(services, live)
        if separate_processes:     # no in-process lock: only the database's row lock keeps one flight
            monkeypatch.setattr(core_tokens, "_local_lock", lambda _id: threading.Lock())

        def stored_refresh() -> str:
            with services.db.begin() as s:
                return services.secrets.get(s, refresh_ref(connection_id))

        live.emu.tokens.expire_all_now()
        before = live.emu.tokens.counters().get("refreshes", 0)
        barrier, seen, errors, deals = threading.Barrier(2), [], [], []

        def worker():
            client = Bitrix24Client(live.api_base, ConnectionTokens(services, connection_id), rate_limit=None,
                                    session=Watching(barrier, stored_refresh, seen))
            try:
                deals.append(client.deal(1))
            except Exception as exc:   # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == [] and [d["ID"] for d in deals] == ["1", "1"]
        counters = live.emu.tokens.counters()
        assert counters.get("refreshes", 0) - before == 1 and counters.get("invalid_grant", 0) == 0
        rotated = stored_refresh()
        assert rotated != first_refresh
        used_new = [refresh for access, refresh in seen[2:]]       # the calls after the two refused ones
        assert used_new and all(r == rotated for r in used_new)   # stored before the new token was used
        with services.db.begin() as s:
            assert s.get(Connection, connection_id).status == "connected"
        # the next expiry: the stored (rotated) refresh token works
        live.emu.tokens.expire_all_now()
        client = Bitrix24Client(live.api_base, ConnectionTokens(services, connection_id), rate_limit=None)
        assert client.deal(2)["ID"] == "2"
        assert live.emu.tokens.counters().get("invalid_grant", 0) == 0 and stored_refresh() != rotated
