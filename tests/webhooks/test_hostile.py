"""Whatever reaches /hooks/<provider>/<token>: never a 5xx, and a refused delivery stores nothing
(no InboxEvent, no job). Named hostile bodies first (each refused with 400 naming the field), then
hypothesis over arbitrary bytes and over Pipedrive-shaped JSON whose leaves are hostile values.

Requests go through the app's test client (the same WSGI app the live server runs): thousands of
deliveries in seconds, deterministic (derandomized, no example database)."""
from __future__ import annotations

import base64
import json
from collections import Counter
from urllib.parse import urlsplit

import hypothesis
import pytest
from hypothesis import HealthCheck, Phase, strategies as st
from sqlalchemy import func, select

from hub.store import InboxEvent, Job, RegisteredWebhook
from hub.webhooks.credentials import webhook_credentials
from tests.web.conftest import install

V2 = {"meta": {"action": "change", "entity": "deal", "entity_id": "9", "id": "0d7c1e1a-aaaa-bbbb-cccc-1234567890ab",
               "timestamp": "2026-11-20T14:03:11.562Z", "version": "2.0"},
      "data": {"id": 9, "title": "x", "status": "won", "update_time": "2026-11-20T14:03:11Z"},
      "previous": {"status": "open"}}
V1 = {"v": 1, "event": "updated.deal", "retry": 0,
      "meta": {"v": 1, "action": "updated", "object": "deal", "id": 9, "company_id": 7, "user_id": 3,
               "timestamp": 1795000000, "timestamp_micro": 1795000000123456},
      "current": {"id": 9, "title": "x", "status": "won", "update_time": "2026-11-20 14:03:11"},
      "previous": {"id": 9, "title": "x", "status": "open", "update_time": "2026-11-20 14:00:00"}}


class Endpoint:
    def __init__(self, hub):
        install(hub)
        hub.run_jobs()   # registers the webhooks
        with hub.services.db.begin() as s:
            hook = s.scalar(select(RegisteredWebhook))
            user, password = webhook_credentials(hub.services, s, hook.installation_id)
        self.hub, self.path = hub, urlsplit(hook.url).path
        self.headers = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(),
                        "Content-Type": "application/json"}
        self.client = hub.app.test_client()

    def post(self, body: bytes):
        return self.client.post(self.path, data=body, headers=self.headers)

    def stored(self) -> tuple[int, int]:
        with self.hub.services.db.begin() as s:
            return (s.scalar(select(func.count()).select_from(InboxEvent)),
                    s.scalar(select(func.count()).select_from(Job).where(Job.kind == "webhook.process")))


@pytest.fixture
def endpoint(live_hub) -> Endpoint:
    return Endpoint(live_hub)


def with_meta(base: dict, **meta) -> dict:
    return {**base, "meta": {**base["meta"], **meta}}


def raw(payload: dict, **replace: str) -> bytes:
    """JSON text with placeholders swapped for literal tokens json.dumps cannot write (1e400 ...)."""
    text = json.dumps(payload)
    for key, token in replace.items():
        text = text.replace(f'"@{key}"', token)
    return text.encode()


HOSTILE = [
    ("utf-16", json.dumps(V2).encode("utf-16"), "body"),
    ("utf-16-le, no BOM", json.dumps(V2).encode("utf-16-le"), "body"),
    ("utf-32", json.dumps(V2).encode("utf-32"), "body"),
    ("utf-8 BOM", json.dumps(V2).encode("utf-8-sig"), "body"),
    ("invalid utf-8", b'{"meta": "\xff\xfe"}', "body"),
    ("utf-8 encoded surrogate", '{"meta": "\ud800"}'.encode("utf-8", "surrogatepass"), "body"),
    ("retry as a list", raw({**V1, "retry": [1, 2]}), "retry"),
    ("retry 1e400", raw({**V1, "retry": "@r"}, r="1e400"), "retry"),
    ("retry as text", raw({**V1, "retry": "twice"}), "retry"),
    ("timestamp Infinity", raw(with_meta(V2, timestamp="@t"), t="Infinity"), "meta.timestamp"),
    ("timestamp NaN", raw(with_meta(V2, timestamp="@t"), t="NaN"), "meta.timestamp"),
    ("timestamp -Infinity (v1)", raw(with_meta(V1, timestamp="@t"), t="-Infinity"), "meta.timestamp"),
    ("timestamp 1e20", raw(with_meta(V2, timestamp=1e20)), "meta.timestamp"),
    ("timestamp 1e20 (v1)", raw(with_meta(V1, timestamp=1e20)), "meta.timestamp"),
    ("timestamp of 20 digits", raw(with_meta(V2, timestamp="12345678901234567890")), "meta.timestamp"),
    ("timestamp of 20 digits (v1)", raw(with_meta(V1, timestamp="12345678901234567890")), "meta.timestamp"),
    ("timestamp true", raw(with_meta(V2, timestamp=True)), "meta.timestamp"),
    ("integer beyond 64 bits", raw(with_meta(V2, company_id=2**64)), "meta.company_id"),
    ("integer of 5000 digits", b'{"meta": ' + b"9" * 5000 + b"}", "body"),
    ("100,000 deep", b'{"meta": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "body"),
    ("40,000 deep objects", b'{"a":' * 40_000 + b"1" + b"}" * 40_000, "body"),
    ("lone surrogate in a value", raw({**V2, "data": {**V2["data"], "title": "\ud800"}}), "data.title"),
    ("lone surrogate in a key", raw({**V2, "data": {**V2["data"], "\udfff": 1}}), "data.(key)"),
    ("NUL in a value", raw(with_meta(V2, id="a\u0000b")), "meta.id"),
]


@pytest.mark.parametrize("name, body, field", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_deliveries_are_refused_naming_the_field_and_store_nothing(endpoint, name, body, field):
    before = endpoint.stored()
    answer = endpoint.post(body)
    assert answer.status_code == 400, (answer.status_code, answer.get_data(as_text=True)[:300])
    assert field in answer.get_json()["fields"], answer.get_json()
    assert endpoint.stored() == before
    good = endpoint.post(json.dumps(V2).encode())      # and the endpoint still takes a real delivery
    assert good.status_code == 200


# -- property-based ---------------------------------------------------------------------------------
SETTINGS = dict(derandomize=True, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck))
TEXT = st.text(st.characters(exclude_categories=()), max_size=12)          # surrogates and NUL included
NUMBER = st.one_of(st.integers(), st.integers(min_value=2**63 - 2, max_value=2**70),
                   st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e20, 1e300, -0.0]))
HOSTILE_LEAF = st.one_of(st.none(), st.booleans(), NUMBER, TEXT,
                         st.sampled_from(["", "12345678901234567890", "1e400", "²", "١٢", "Infinity", "2026-13-45"]))
ANY_JSON = st.recursive(HOSTILE_LEAF, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                              st.dictionaries(TEXT, inner, max_size=3)), max_leaves=8)
FIELD = st.one_of(HOSTILE_LEAF, ANY_JSON)
META = st.fixed_dictionaries({}, optional={
    "action": st.one_of(st.sampled_from(["create", "change", "delete", "added", "updated", "merged"]), FIELD),
    "entity": st.one_of(st.sampled_from(["deal", "person", "lead"]), FIELD),
    "object": st.one_of(st.sampled_from(["deal", "person"]), FIELD),
    "id": st.one_of(st.uuids().map(str), FIELD), "entity_id": FIELD, "timestamp": FIELD,
    "timestamp_micro": FIELD, "v": st.one_of(st.just(1), FIELD), "version": st.one_of(st.just("2.0"), FIELD),
    "company_id": FIELD})
OBJECT = st.one_of(st.fixed_dictionaries({"id": FIELD}, optional={
    "status": st.one_of(st.sampled_from(["won", "lost", "open"]), FIELD), "stage_id": FIELD,
    "pipeline_id": FIELD, "update_time": FIELD, "title": FIELD}), FIELD)
PATHS = [("meta", "timestamp"), ("meta", "id"), ("meta", "entity_id"), ("meta", "action"), ("meta", "company_id"),
         ("meta", "timestamp_micro"), ("retry",), ("data",), ("data", "title"), ("data", "update_time"),
         ("data", "status"), ("data", "stage_id"), ("previous",), ("previous", "status"), ("current",),
         ("current", "update_time"), ("current", "status"), ("previous", "stage_id")]


def mutated(base: dict, path: tuple, value, n: int) -> dict:
    """A real delivery with one value swapped for a hostile one (most of these are well-formed),
    and an event id of its own, so it is stored (not a duplicate) and normalized."""
    out = json.loads(json.dumps(base))
    out["meta"]["id" if "id" in out["meta"] and base is V2 else "timestamp_micro"] = \
        f"0d7c1e1a-aaaa-bbbb-cccc-{n:012d}" if base is V2 else 1795000000000000 + n
    target = out
    for key in path[:-1]:
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    target[path[-1]] = value
    return out


ONE_BAD_VALUE = st.builds(mutated, st.sampled_from([V1, V2]), st.sampled_from(PATHS), FIELD,
                          st.integers(min_value=0, max_value=10**9))
DELIVERY = st.fixed_dictionaries({"meta": st.one_of(META, FIELD)}, optional={
    "data": OBJECT, "previous": OBJECT, "current": OBJECT, "retry": FIELD, "event": FIELD})


def encode(value, how: str) -> bytes:
    text = json.dumps(value, allow_nan=True, ensure_ascii=how == "ascii")
    if how in ("ascii", "utf-8"):
        return text.encode("utf-8", "surrogatepass")     # a lone surrogate becomes invalid UTF-8
    return text.encode(how, "surrogatepass")


def check(endpoint, body: bytes) -> int:
    before = endpoint.stored()
    answer = endpoint.post(body)
    assert answer.status_code < 500, (body[:300], answer.get_data(as_text=True)[:300])
    if answer.status_code != 200:
        assert endpoint.stored() == before, (body[:300], answer.status_code)
    return answer.status_code


def test_arbitrary_bytes_never_get_a_5xx(endpoint):
    seen = set()

    @hypothesis.given(body=st.one_of(st.binary(max_size=400),
                                     st.binary(max_size=200).map(lambda b: b'{"meta": ' + b + b"}")))
    @hypothesis.settings(max_examples=300, **SETTINGS)
    def deliver(body):
        seen.add(check(endpoint, body))

    deliver()
    assert seen == {400}


def test_arbitrary_json_deliveries_never_get_a_5xx(endpoint):
    seen = set()

    @hypothesis.given(payload=st.one_of(ONE_BAD_VALUE, DELIVERY, ANY_JSON),
                      how=st.sampled_from(["ascii", "utf-8", "utf-16", "utf-32", "utf-8-sig"]))
    @hypothesis.settings(max_examples=500, **SETTINGS)
    def deliver(payload, how):
        seen.add(check(endpoint, encode(payload, how)))

    deliver()
    assert 400 in seen and 200 in seen, seen    # some were well-formed enough to be stored, too
    # what was stored is normalized, or fails visibly with the reason (dead letter), never a crash
    endpoint.hub.run_jobs()
    with endpoint.hub.services.db.begin() as s:
        jobs = s.execute(select(Job.status, Job.last_error).where(Job.kind == "webhook.process")).all()
    assert len(jobs) >= 15, len(jobs)
    crashed = [(status, error) for status, error in jobs if error and "malformed" not in error]
    assert not crashed, crashed[:5]
    assert {status for status, _ in jobs} <= {"done", "dead"}, Counter(status for status, _ in jobs)
