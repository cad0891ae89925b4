"""Regression (found by bench/chaos.py with access tokens expiring every few seconds): a token
that expired again between its refresh and its use made the call fail as NeedsReauth, and the job
waited 10 minutes though the connection was fine. A second refusal now gets a second refresh;
a third still means the grant no longer works."""
from __future__ import annotations

import pytest
import responses

from hub.connectors.base import ApiClient
from hub.errors import NeedsReauth

URL = "https://api.example.test/v1/me"


class Tokens:
    """A token source that hands out a new token per refresh and counts them."""

    def __init__(self):
        self.current, self.refreshes = "tok-0", 0

    def access_token(self) -> str:
        return self.current

    def refresh_after_rejection(self, rejected: str | None) -> str:
        if rejected == self.current:
            self.refreshes += 1
            self.current = f"tok-{self.refreshes}"
        return self.current


def statuses(*codes: int) -> list[str]:
    """Answer the calls with these statuses in turn; return the tokens the calls carried."""
    seen: list[str] = []
    answers = iter(codes)

    def reply(request):
        seen.append(request.headers["Authorization"].split()[-1])
        code = next(answers)
        return code, {"Content-Type": "application/json"}, '{"ok": true}' if code == 200 else '{"error": "expired"}'
    responses.add_callback(responses.GET, URL, callback=reply)
    return seen


@responses.activate
def test_a_token_that_expires_again_right_after_its_refresh_is_refreshed_once_more():
    tokens = Tokens()
    seen = statuses(401, 401, 200)
    client = ApiClient("https://api.example.test/v1", tokens, sleep=lambda s: None)
    assert client.json("GET", "me") == {"ok": True}
    assert seen == ["tok-0", "tok-1", "tok-2"] and tokens.refreshes == 2


@responses.activate
def test_a_grant_whose_fresh_tokens_keep_being_refused_needs_the_admin():
    tokens = Tokens()
    seen = statuses(401, 401, 401)
    client = ApiClient("https://api.example.test/v1", tokens, sleep=lambda s: None)
    with pytest.raises(NeedsReauth):
        client.json("GET", "me")
    assert seen == ["tok-0", "tok-1", "tok-2"] and tokens.refreshes == 2


@responses.activate
def test_one_refusal_costs_one_refresh():
    tokens = Tokens()
    statuses(401, 200, 200)
    client = ApiClient("https://api.example.test/v1", tokens, sleep=lambda s: None)
    client.json("GET", "me")
    client.json("GET", "me")
    assert tokens.refreshes == 1
