"""`next` and other return targets: only paths on the hub's own origin, after the repairs browsers make."""
from __future__ import annotations

from urllib.parse import parse_qs, unquote, urljoin, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.web.returns import browser_normalise, safe_return_target
from tests.web.conftest import ADMIN, install

BASE = "https://hub.example.com/i/1/settings"
DEFAULT = "/fallback"
ATTACKS = ["/\t/evil.example/phish", "//evil.example", "/\\evil.example", "\\\\evil.example", "\\/evil.example",
           " //evil.example", "/\n/evil.example", "/\r\n/evil.example", "https://evil.example/", "javascript:alert(1)",
           "http:evil.example", "HTTPS://evil.example", "//user@evil.example", "/%2F%2Fevil.example",
           "/%2f/evil.example", "/%5Cevil.example", "/%09/evil.example", "/%252F%252Fevil.example", "\x00//evil.example",
           "evil.example", "", "/\x00/x", None, 42, "/" + "a" * 5000]
# pieces browsers treat specially, so the generated input hits the repairs often
PIECES = st.sampled_from(["/", "\\", "\t", "\n", "\r", " ", "\x00", "\x0b", "\x7f", ":", "@", "?", "#", ".", "%",
                          "%2F", "%2f", "%5C", "%09", "%0A", "%25", "%252F", "http:", "https:", "javascript:",
                          "evil.example", "a", "i", "1", "\u3002", "\uff0f", "\u2215"])
INPUTS = st.one_of(st.lists(PIECES, max_size=12).map("".join), st.text(max_size=40))


def same_origin(target: str) -> bool:
    joined = urlsplit(urljoin(BASE, browser_normalise(target)))
    return (joined.scheme, joined.netloc) == ("https", "hub.example.com")


@settings(max_examples=3000, deadline=None)
@given(INPUTS)
def test_whatever_the_input_the_target_stays_on_the_hub(value):
    target = safe_return_target(value, DEFAULT)
    for form in (target, unquote(target), unquote(unquote(target))):
        assert form.startswith("/") and not form.startswith(("//", "/\\"))
        assert same_origin(form), (value, target)
    assert target == DEFAULT or target == browser_normalise(value)


@pytest.mark.parametrize("value", ATTACKS)
def test_known_escapes_fall_back_to_the_default(value):
    assert safe_return_target(value, DEFAULT) == DEFAULT


@pytest.mark.parametrize("value", ["/i/1/settings", "/i/1/rules?status=active#list", "/", "/i/1/a%20b",
                                   "/_sandbox/ui/deals/100?"])
def test_local_paths_are_kept(value):
    assert safe_return_target(value, DEFAULT) == value


def test_login_next_with_a_tab_lands_on_the_hub(live_hub):
    """The reported escape: `/\\t/evil.example/phish` passed the check and was followed as //evil.example."""
    install(live_hub)
    browser = live_hub.browser()
    for nxt, expected in [("/\t/evil.example/phish", "/i/1/settings"), ("/\\evil.example", "/i/1/settings"),
                          ("/i/1/setup/connect", "/i/1/setup/connect")]:
        first = browser.get("/login/pipedrive", params={"next": nxt}, allow_redirects=False)
        authorize = first.headers["Location"]
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
        consent = browser.post(authorize.split("?")[0], allow_redirects=False, data={
            "client_id": query["client_id"], "redirect_uri": query["redirect_uri"], "state": query["state"],
            "user_id": str(ADMIN), "step": "2", "decision": "allow", "visibility": "me"})
        landed = browser.get(urljoin(authorize, consent.headers["Location"]), allow_redirects=False)
        assert landed.status_code == 302 and landed.headers["Location"] == expected, (nxt, landed.headers)


def test_sandbox_actor_form_returns_only_within_the_site(live_hub):
    """The sandbox's actor switch posts the page it was on; mounted under /sandbox/pipedrive it must
    come back there, and nowhere else."""
    client = live_hub.app.test_client()
    page = client.get("/sandbox/pipedrive/_sandbox/ui/deals/100")
    assert b'name="next" value="/sandbox/pipedrive/_sandbox/ui/deals/100?"' in page.data
    back = client.post("/sandbox/pipedrive/_sandbox/ui/actor",
                       data={"actor": "12400002", "next": "/sandbox/pipedrive/_sandbox/ui/deals/100?"})
    assert back.status_code == 302 and back.headers["Location"].rstrip("?") == "/sandbox/pipedrive/_sandbox/ui/deals/100"
    assert client.get(back.headers["Location"]).status_code == 200
    for evil in ("/\t/evil.example/phish", "https://evil.example/", "//evil.example"):
        back = client.post("/sandbox/pipedrive/_sandbox/ui/actor", data={"actor": "12400002", "next": evil})
        assert back.headers["Location"] == "/sandbox/pipedrive/_sandbox/ui/", evil
