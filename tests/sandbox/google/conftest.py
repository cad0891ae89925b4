"""Fixtures for the Google emulator: a fake clock, a live server, and an HTTP client whose every
People API exchange is checked against the discovery document (see discovery.py)."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from hub.sandbox.common import Faults, SandboxState
from hub.sandbox.google import create_app

from .discovery import Discovery

CLIENT_ID, CLIENT_SECRET = "relay-hub-sandbox", "sandbox-secret"
REDIRECT = "http://127.0.0.1:9/oauth/callback"
CONTACTS = "https://www.googleapis.com/auth/contacts"
READONLY = "https://www.googleapis.com/auth/contacts.readonly"
ANNA, BEN = "anna@sandbox.example", "ben@sandbox.example"
ALL_FIELDS = "names,emailAddresses,phoneNumbers,organizations,memberships,metadata,clientData"


class FakeClock:
    def __init__(self, now: float = 1_790_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def discovery(provider_specs) -> Discovery:
    return Discovery(provider_specs / "google" / "people.v1.json")


@pytest.fixture(scope="session")
def google_examples(provider_specs):
    folder = provider_specs / "google" / "examples"
    return lambda name: json.loads((folder / name).read_text(encoding="utf-8"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def faults() -> Faults:
    return Faults(seed=7)


@pytest.fixture
def options(request, clock) -> dict[str, Any]:
    """Emulator options; a test adds its own with
    `@pytest.mark.parametrize("options", [{...}], indirect=True)` (the fake clock stays in)."""
    return {"clock": clock, **getattr(request, "param", {})}


@pytest.fixture
def app(options, faults):
    return create_app(state=SandboxState(), faults=faults, options=options)


@pytest.fixture
def sandbox(app):
    return app.extensions["sandbox"]






@pytest.fixture
def server(app, plug):
    return plug(app)


class _Hidden(HTMLParser):
    def __init__(self):
        super().__init__()
        self.fields: dict[str, str] = {}
        self.accounts: list[str] = []
        self.scopes: list[str] = []
        self.action = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action")
        if tag == "input" and a.get("type") == "hidden":
            self.fields[a["name"]] = a.get("value", "")
        if tag == "input" and a.get("name") == "account":
            self.accounts.append(a["value"])
        if tag == "input" and a.get("name") == "granted_scope":
            self.scopes.append(a["value"])


class Google:
    """A client of the emulator over real HTTP: OAuth like a browser + web app, and the People API
    with every exchange validated against the discovery document."""

    def __init__(self, base: str, discovery: Discovery):
        self.base = base
        self.discovery = discovery
        self.http = requests.Session()
        self.http.hooks["response"].append(self._conform)
        self.token: str | None = None

    # -- conformance hook -------------------------------------------------------------------------
    def _conform(self, resp: requests.Response, *args, **kwargs) -> None:
        path = urlsplit(resp.request.url).path
        if not path.startswith("/v1/"):
            return
        raw = resp.request.body
        body = json.loads(raw) if raw else None
        answer = resp.json() if resp.content else {}
        self.discovery.check_exchange(resp.request.method, resp.request.url, body, resp.status_code, answer)

    # -- OAuth ------------------------------------------------------------------------------------
    def consent_page(self, scopes: list[str], **extra: str) -> tuple[requests.Response, _Hidden]:
        params = {"client_id": CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code",
                  "scope": " ".join(scopes), "state": "st-1", **extra}
        page = self.http.get(f"{self.base}/o/oauth2/v2/auth", params=params, allow_redirects=False)
        parser = _Hidden()
        parser.feed(page.text)
        return page, parser

    def authorize(self, account_email: str | None = None, scopes: list[str] = (CONTACTS,),
                  grant: list[str] | None = None, decision: str = "allow", **extra: str) -> dict[str, list[str]]:
        """Walk the consent screen; returns the query of the redirect back to the app."""
        page, form = self.consent_page(list(scopes), **extra)
        assert page.status_code == 200, page.text
        data = dict(form.fields)
        account = form.accounts[0]
        if account_email:
            account = next(a["id"] for a in self.accounts() if a["email"] == account_email)
            assert account in form.accounts
        data.update(account=account, decision=decision)
        payload = list(data.items()) + [("granted_scope", s) for s in (form.scopes if grant is None else grant)]
        resp = self.http.post(self.base + form.action, data=payload, allow_redirects=False)
        assert resp.status_code == 302, resp.text
        location = resp.headers["Location"]
        assert location.startswith(REDIRECT)
        return parse_qs(urlsplit(location).query)

    def accounts(self):
        return self._sandbox.accounts()

    def exchange(self, code: str, **override: str) -> requests.Response:
        data = {"grant_type": "authorization_code", "code": code, "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET, "redirect_uri": REDIRECT, **override}
        return self.http.post(f"{self.base}/token", data=data)

    def refresh(self, refresh_token: str) -> requests.Response:
        return self.http.post(f"{self.base}/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                                                          "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})

    def login(self, account_email: str = ANNA, scopes: list[str] = (CONTACTS,), **extra: str) -> dict:
        query = self.authorize(account_email, scopes, access_type="offline", prompt="consent", **extra)
        resp = self.exchange(query["code"][0])
        assert resp.status_code == 200, resp.text
        tokens = resp.json()
        self.token = tokens["access_token"]
        return tokens

    # -- People API -------------------------------------------------------------------------------
    def call(self, method: str, path: str, *, token: str | None = "default", **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        token = self.token if token == "default" else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, f"{self.base}{path}", headers=headers, **kwargs)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, **kw):
        return self.call("POST", path, **kw)

    def ok(self, method: str, path: str, **kw) -> dict:
        resp = self.call(method, path, **kw)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def list_all(self, **params) -> tuple[list[dict], dict]:
        """Page through connections; returns (people, last page)."""
        params.setdefault("personFields", ALL_FIELDS)
        people, token = [], None
        while True:
            page = self.ok("GET", "/v1/people/me/connections", params=dict(params, **({"pageToken": token} if token else {})))
            people += page.get("connections", [])
            token = page.get("nextPageToken")
            if not token:
                return people, page


@pytest.fixture
def google(server, discovery, sandbox) -> Google:
    client = Google(server.url, discovery)
    client._sandbox = sandbox
    return client


@pytest.fixture
def anna(google) -> Google:
    google.login(ANNA)
    return google


def error_of(resp: requests.Response) -> dict:
    """The google.rpc.Status body of an error answer (shape already checked by the hook)."""
    assert resp.status_code >= 400, resp.text
    return resp.json()["error"]


def reason_of(resp: requests.Response) -> str | None:
    for detail in error_of(resp).get("details", []):
        if detail["@type"].endswith("google.rpc.ErrorInfo"):
            return detail["reason"]
    return None


def new_person(given: str, family: str = "Test", email: str | None = None, groups: list[str] = ()) -> dict:
    person: dict[str, Any] = {"names": [{"givenName": given, "familyName": family}]}
    if email:
        person["emailAddresses"] = [{"value": email, "type": "work"}]
    if groups:
        person["memberships"] = [{"contactGroupMembership": {"contactGroupResourceName": g}} for g in groups]
    return person


def only_re(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in page"
    return match.group(1)
