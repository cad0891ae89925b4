"""The API-key kind of auth end to end, with two tiny connectors defined here (registered with
`hub.connectors.register`): a CRM installed with a key, secret and account address, and a task
target connected with a key. The provider is `responses`: it checks every request's signature,
so a request the hub did not sign with the stored key fails the test."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from urllib.parse import urlsplit

import pytest
import responses
from sqlalchemy import func, select

from hub import connectors
from hub.connectors.base import ApiClient
from hub.connectors.contract import Connector
from hub.connectors.contract.auth import ApiKey, Identity
from hub.errors import NeedsReauth
from hub.oauth.clients import client_for, crm_client
from hub.store import AuditEvent, Connection, Installation, Job, Secret

ADA_KEY, ADA_SECRET = "ada-key-0001", "ada-secret-0001"
BEN_KEY, BEN_SECRET = "ben-key-0002", "ben-secret-0002"
TASKS_KEY = "tasks-key-0003"
PEOPLE = {  # key -> (secret, the person the key belongs to)
    ADA_KEY: (ADA_SECRET, {"id": "u1", "account": "acme", "name": "Ada Admin", "email": "ada@acme.example",
                           "admin": True}),
    BEN_KEY: (BEN_SECRET, {"id": "u2", "account": "acme", "name": "Ben Seller", "email": "ben@acme.example",
                           "admin": False}),
    TASKS_KEY: ("", {"id": "t9", "account": "t9", "name": "Tess Tasks", "email": "tess@tasks.example",
                     "admin": False}),
}


def sign(request, key, secret):
    """Key in a header, HMAC-SHA256 of method and URL with the secret: what a provider might ask."""
    request.headers["X-Key"] = key
    request.headers["X-Signature"] = hmac.new(secret.encode(), f"{request.method} {request.url}".encode(),
                                              hashlib.sha256).hexdigest()


class TinyClient(ApiClient):
    provider = "tiny"

    def __init__(self, base_url, tokens, **options):
        super().__init__(base_url, tokens, sleep=lambda seconds: None, **options)

    def me(self):
        return self.json("GET", "me")

    def users(self):
        return self.json("GET", "users")


def identity(client) -> Identity:
    me = client.me()
    return Identity(account_key=me["account"], user_id=me["id"], name=me["name"], email=me["email"],
                    is_admin=me["admin"], account_name=f"{me['account'].title()} Inc")


def members(client) -> list[Identity]:
    return [Identity(account_key=u["account"], user_id=u["id"], name=u["name"], email=u["email"])
            for u in client.users()]


def account_api(account: str) -> str:
    if not re.fullmatch(r"[a-z0-9-]{1,40}", account):
        raise ValueError("must be your account's name, such as acme")
    return f"https://{account}.tinycrm.example/api"


CRM = Connector(name="tinycrm", title="TinyCRM", roles=frozenset({"crm"}), client=TinyClient, identity=identity,
                auth=ApiKey(sign=sign, members=members, account_label="Account name", api_base_for=account_api))
TASKS = Connector(name="tinytasks", title="TinyTasks", roles=frozenset({"task_target"}), client=TinyClient,
                  auth=ApiKey(sign=sign, identity=identity, secret_label=None, api_url="https://tinytasks.example/v1"))


class Provider:
    """Both tiny providers: answers only requests signed with a known, unrevoked key."""

    def __init__(self, mock: responses.RequestsMock):
        self.revoked: set[str] = set()
        self.down = False
        self.seen: list[tuple[str, str]] = []   # (key, path) of every request
        pattern = re.compile(r"https://([a-z0-9.-]+\.)?tiny(crm|tasks)\.example/.*")
        for method in ("GET", "POST"):
            mock.add_callback(method, pattern, callback=self.answer)

    def answer(self, request):
        key = request.headers.get("X-Key", "")
        self.seen.append((key, urlsplit(request.url).path))
        if self.down:
            return 500, {}, json.dumps({"message": "internal error"})
        secret, person = PEOPLE.get(key, ("", None))
        expected = hmac.new(secret.encode(), f"{request.method} {request.url}".encode(), hashlib.sha256).hexdigest()
        if person is None or key in self.revoked or not hmac.compare_digest(expected, request.headers.get("X-Signature", "")):
            return 401, {}, json.dumps({"message": f"unknown key {key}"})   # echoes the key: the hub must not
        path = urlsplit(request.url).path
        if path.endswith("/me"):
            return 200, {}, json.dumps(person)
        if path.endswith("/users"):
            return 200, {}, json.dumps([p for _, p in PEOPLE.values() if p["account"] == "acme"])
        return 404, {}, json.dumps({"message": "no such endpoint"})


@pytest.fixture
def tiny(make_hub):
    connectors.register(CRM)
    connectors.register(TASKS)
    try:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            yield make_hub(), Provider(mock)
    finally:
        connectors.unregister(CRM.name)
        connectors.unregister(TASKS.name)


def csrf(client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def install(app, key=ADA_KEY, secret=ADA_SECRET, account="acme"):
    client = app.test_client()
    token = csrf(client, "/install/tinycrm")
    answer = client.post("/install/tinycrm", data={"csrf_token": token, "account": account, "key": key,
                                                   "secret": secret})
    return client, answer


def installation_id(answer) -> int:
    return int(re.search(r"/i/(\d+)/", answer.headers["Location"]).group(1))


def test_install_with_a_key_makes_the_installer_admin_and_keeps_the_key_encrypted(tiny):
    app, provider = tiny
    page = app.test_client().get("/install/tinycrm")
    assert page.status_code == 200
    assert all(f'name="{name}"' in page.text for name in ("account", "key", "secret"))
    client, answer = install(app)
    assert answer.status_code == 302 and "/visibility?setup=1" in answer.headers["Location"], answer.text
    iid = installation_id(answer)
    assert provider.seen == [(ADA_KEY, "/api/me")]   # the key was checked with a signed call
    services = app.extensions["hub"]
    with services.db.begin() as s:
        inst = s.get(Installation, iid)
        assert (inst.provider, inst.company_id, inst.installer_user_id, inst.installer_name, inst.company_name,
                inst.visibility) == ("tinycrm", "acme", "u1", "Ada Admin", "Acme Inc", "only_me")
        conn = s.scalar(select(Connection).where(Connection.installation_id == iid))
        assert (conn.role, conn.account_id, conn.api_base, conn.status) == \
            ("crm", "u1", "https://acme.tinycrm.example/api", "connected")
        raw = b"".join(s.scalars(select(Secret.ciphertext).where(Secret.ref.like(f"connection:{conn.id}:%"))))
        assert services.secrets.get(s, f"connection:{conn.id}:api_key") == ADA_KEY
        assert services.secrets.get(s, f"connection:{conn.id}:api_secret") == ADA_SECRET
        assert ADA_KEY.encode() not in raw and ADA_SECRET.encode() not in raw
    # signed in as the installer, an admin: the visibility page lists the account's people
    assert client.get("/api/v1/me").json["crm_user_id"] == "u1"
    page = client.get(f"/i/{iid}/visibility?setup=1")
    assert page.status_code == 200 and "Ben Seller" in page.text and "TinyCRM does not tell apps" in page.text
    assert ADA_KEY not in page.text and ADA_SECRET not in page.text
    # later calls are signed with the stored key
    assert crm_client(services, iid).me()["id"] == "u1"
    assert provider.seen[-1] == (ADA_KEY, "/api/me")


def test_bad_input_is_named_and_nothing_is_stored(tiny):
    app, provider = tiny
    client = app.test_client()
    cases = [({"account": "acme", "key": "", "secret": "s"}, 'id="key-error"'),
             ({"account": "acme", "key": "k" * 5000, "secret": "s"}, 'id="key-error"'),
             ({"account": "acme", "key": "a\r\nX-Evil: 1", "secret": "s"}, 'id="key-error"'),
             ({"account": "", "key": ADA_KEY, "secret": ADA_SECRET}, 'id="account-error"'),
             ({"account": "../../evil", "key": ADA_KEY, "secret": ADA_SECRET}, 'id="account-error"'),
             ({"account": "acme", "key": ADA_KEY}, 'id="secret-error"'),
             ({"account": "acme", "key": ADA_KEY, "secret": "wrong-secret-99"}, 'id="key-error"'),
             ({"account": "acme", "key": "stolen-key-42", "secret": "whatever-77"}, 'id="key-error"')]
    for data, named in cases:
        answer = client.post("/install/tinycrm", data={"csrf_token": csrf(client, "/install/tinycrm"), **data})
        assert answer.status_code == 400 and named in answer.text, (data, answer.status_code)
        for secret in (data.get("key"), data.get("secret")):
            assert not secret or len(secret) < 6 or secret not in answer.text   # never echoed, even by the provider
    assert "TinyCRM refused it" in answer.text
    provider.down = True
    answer = client.post("/install/tinycrm", data={"csrf_token": csrf(client, "/install/tinycrm"), "account": "acme",
                                                   "key": ADA_KEY, "secret": ADA_SECRET})
    assert answer.status_code == 502 and "not answering" in answer.text
    with app.extensions["hub"].db.begin() as s:
        assert s.scalar(select(func.count()).select_from(Installation)) == 0
        assert s.scalar(select(func.count()).select_from(Secret).where(Secret.ref.like("connection:%"))) == 0
    assert client.post("/install/tinycrm", data={"account": "acme", "key": ADA_KEY, "secret": ADA_SECRET}).status_code == 400


def test_colleagues_sign_in_with_their_own_key_as_far_as_visibility_admits(tiny):
    app, _ = tiny
    admin, answer = install(app)
    iid = installation_id(answer)
    ben = app.test_client()

    def sign_in():
        return ben.post("/login/tinycrm", data={"csrf_token": csrf(ben, "/login/tinycrm"), "account": "acme",
                                                "key": BEN_KEY, "secret": BEN_SECRET})
    refused = sign_in()
    assert refused.status_code == 403 and "not shared with you" in refused.text and "Ada Admin" in refused.text
    _, again = install(app, BEN_KEY, BEN_SECRET)   # a colleague who is no admin cannot install over it
    assert again.status_code == 403 and "already installed" in again.text
    done = admin.post(f"/i/{iid}/visibility", data={"csrf_token": csrf(admin, f"/i/{iid}/visibility"),
                                                    "visibility": "all"})
    assert done.status_code == 302
    signed_in = sign_in()
    assert signed_in.status_code == 302 and signed_in.headers["Location"].endswith(f"/i/{iid}/settings")
    assert ben.get("/api/v1/me").json["crm_user_id"] == "u2"
    assert "Only an admin can change this." in ben.get(f"/i/{iid}/settings").text


def test_a_target_connected_with_a_key_signs_its_calls_and_disconnects(tiny):
    app, provider = tiny
    admin, answer = install(app)
    iid = installation_id(answer)
    settings = admin.get(f"/i/{iid}/settings").text
    assert f'href="/i/{iid}/connect/tinytasks"' in settings     # a form first, not a consent page
    form = admin.get(f"/i/{iid}/connect/tinytasks")
    assert form.status_code == 200 and 'name="key"' in form.text and 'name="secret"' not in form.text
    token = csrf(admin, f"/i/{iid}/connect/tinytasks")
    refused = admin.post(f"/i/{iid}/connect/tinytasks", data={"csrf_token": token, "key": "nobody-key-11"})
    assert refused.status_code == 400 and "nobody-key-11" not in refused.text
    done = admin.post(f"/i/{iid}/connect/tinytasks", data={"csrf_token": token, "key": TASKS_KEY})
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/i/{iid}/settings")
    assert "TinyTasks connected." in admin.get(f"/i/{iid}/settings").text
    services = app.extensions["hub"]
    with services.db.begin() as s:
        conn = s.scalar(select(Connection).where(Connection.provider == "tinytasks"))
        assert (conn.role, conn.account_id, conn.owner_user_id, conn.api_base) == \
            ("target", "t9", "u1", "https://tinytasks.example/v1")
    assert client_for(services, conn).me()["name"] == "Tess Tasks"
    assert provider.seen[-1] == (TASKS_KEY, "/v1/me")
    gone = admin.post(f"/i/{iid}/connections/{conn.id}/disconnect",
                      data={"csrf_token": csrf(admin, f"/i/{iid}/settings")})
    assert gone.status_code == 302
    with services.db.begin() as s:
        assert s.get(Connection, conn.id).status == "disconnected"
        assert s.scalar(select(func.count()).select_from(Secret).where(
            Secret.ref.like(f"connection:{conn.id}:%"))) == 0
    with pytest.raises(NeedsReauth):
        client_for(services, conn).me()


def test_a_key_refused_later_waits_for_the_admin_who_is_told_once(tiny):
    app, provider = tiny
    _, answer = install(app)
    iid = installation_id(answer)
    services = app.extensions["hub"]
    assert crm_client(services, iid).me()["id"] == "u1"
    provider.revoked.add(ADA_KEY)
    for _ in range(2):
        with pytest.raises(NeedsReauth):
            crm_client(services, iid).me()
    asked = len(provider.seen)
    with pytest.raises(NeedsReauth):   # marked: no further call reaches the provider
        crm_client(services, iid).me()
    assert len(provider.seen) == asked
    with services.db.begin() as s:
        conn = s.scalar(select(Connection).where(Connection.installation_id == iid))
        assert conn.status == "needs_reconnection" and "refused the API key" in conn.status_reason
        assert ADA_KEY not in conn.status_reason
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "connection.needs_reconnection")) == 1
        assert s.scalar(select(func.count()).select_from(Job).where(Job.kind == "mail.send")) == 1
