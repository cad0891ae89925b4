"""The connector against its emulator: signed calls, identity, the neutral record, idempotent tasks,
signed deliveries verified and normalized, subscriptions kept in step."""
from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from hub.connectors.contract.records import Carry, SourceContext
from hub.connectors.contract.targets import AttachmentRefused, TargetContext, TaskSpec
from hub.connectors.contract.webhooks import Credentials, RawRequest, Refused, Secrets
from hub.errors import NeedsReauth

from .conftest import ACCOUNT
from .connector import CONNECTOR, webhooks
from .harness import client_for

FIXTURES = Path(__file__).parent / "fixtures"


def catalog_of(client):
    return lambda name: CONNECTOR.catalogs[name].load(client)


def raw(body: bytes, secret: str | None = "whsec", **headers) -> RawRequest:
    if secret is not None:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers.setdefault("x-example-signature", f"sha256={digest}")
    return RawRequest("POST", "https://hub.test/hooks/example/tok", headers, body, "application/json")


def test_identity_names_the_account_and_the_admin(client):
    me = CONNECTOR.auth.identity(client)
    assert (me.account_key, me.is_admin, me.email) == (ACCOUNT, True, "ada@example.test")
    assert {m.email for m in CONNECTOR.auth.members(client)} == {"ada@example.test", "bo@example.test"}


def test_a_refused_key_asks_for_the_admin(emulator):
    with pytest.raises(NeedsReauth, match="refused the API key"):
        client_for(emulator[0], secret="not-the-secret").me()


def test_the_sandbox_origin_replaces_the_api_root():
    assert CONNECTOR.auth.with_origin("http://hub.test/sandbox/example").api_base("") == \
        "http://hub.test/sandbox/example"


def test_a_deal_becomes_a_neutral_record(client, crm):
    deal = crm.deals(ACCOUNT)[-1]
    crm.update_deal(ACCOUNT, deal["id"], {"stage_id": crm.stages(ACCOUNT)[2]["id"], "amount": "1234.5"})
    source = CONNECTOR.source(SourceContext(client, "https://crm.example.test", catalog_of(client)))
    warnings: list[str] = []
    record = source.load("deal", str(deal["id"]), None, Carry(), warnings)
    assert (record.kind, record.id, record.title, record.status) == ("deal", str(deal["id"]), deal["title"], "open")
    assert (record.stage, record.owner, record.amount) == ("Proposal", "Bo Seller", "1,234.50 EUR")
    assert record.url == f"https://crm.example.test/deals/{deal['id']}" and warnings == []
    assert source.recent("deal", 1)[0].id == str(deal["id"])      # the most recently updated first
    assert source.value("deal", record.data, "deal.amount") == 1234.5
    assert source.value("deal", record.data, "deal.stage_id") == str(crm.stages(ACCOUNT)[2]["id"])
    assert "deal.stage_id" in {f.key for f in source.fields("deal")}


def test_a_task_is_made_once_per_effect_key(client, crm):
    ctx = TargetContext(client, "https://crm.example.test", catalog_of(client))
    step = CONNECTOR.targets["task"]
    target = step.target(ctx)
    deal = crm.deals(ACCOUNT)[0]
    source = CONNECTOR.source(SourceContext(client, "", catalog_of(client)))
    record = source.load("deal", str(deal["id"]), deal, Carry(), [])
    spec = TaskSpec(name="Kick-off", notes_html="<p>hi</p>", settings={"link_deal": True}, record=record)
    first = target.ensure(spec, "rule 1 / occurrence A / step 1", first_try=True)
    retry = target.ensure(spec, "rule 1 / occurrence A / step 1", first_try=False)
    racing = target.ensure(spec, "rule 1 / occurrence A / step 1", first_try=True)   # a repeated first try
    assert first.created and not retry.created and not racing.created
    assert first.external_id == retry.external_id == racing.external_id
    [task] = crm.tasks()
    assert task["deal_id"] == deal["id"] and task["title"] == "Kick-off"
    other = target.ensure(spec, "rule 1 / occurrence B / step 1", first_try=True)
    assert other.external_id != first.external_id and len(crm.tasks()) == 2
    assert target.status(first.external_id) == "open"
    assert target.complete(first.external_id) == "completed" == target.status(first.external_id)
    with pytest.raises(AttachmentRefused):
        target.attach(first.external_id, {"id": "1", "name": "a.pdf", "size": 3, "mime": "application/pdf"},
                      iter([b"abc"]))


def test_task_settings_are_checked_against_the_account(client):
    validate = CONNECTOR.targets["task"].validate
    catalog = catalog_of(client)
    assert validate({}, catalog, True) == {}
    assert validate({"assignee_id": "100"}, catalog, True) == {}
    assert set(validate({"assignee_id": "99999", "link_deal": "yes"}, catalog, True)) == {"assignee_id", "link_deal"}
    assert validate({"assignee_id": "99999"}, None, True) == {}      # lists unavailable: checked later


@pytest.mark.parametrize("secret, header", [
    (None, None), ("whsec", "sha256=" + "0" * 64), ("other", None), ("whsec", "md5=abc"),
])
def test_a_delivery_not_signed_with_the_installation_secret_is_refused(secret, header):
    body = (FIXTURES / "deal-updated-won.json").read_bytes()
    request = raw(body, secret) if header is None else raw(body, None, **{"x-example-signature": header})
    with pytest.raises(Refused):
        webhooks.verify(request, Secrets(user="relayhub-1", password="whsec"))


def test_a_signed_delivery_passes_and_a_tampered_one_does_not():
    body = (FIXTURES / "deal-updated-won.json").read_bytes()
    webhooks.verify(raw(body), Secrets(user="relayhub-1", password="whsec"))
    signed = raw(body)
    tampered = RawRequest("POST", signed.url, signed.headers, body.replace(b"won", b"lost"), "application/json")
    with pytest.raises(Refused):
        webhooks.verify(tampered, Secrets(user="relayhub-1", password="whsec"))
    with pytest.raises(Refused):
        webhooks.verify(signed, Secrets())           # an installation without a secret trusts nothing


EXPECTED = {
    "deal-created.json": ["deal.created"],
    "deal-updated-stage.json": ["deal.updated", "deal.stage_changed"],
    "deal-updated-won.json": ["deal.updated", "deal.won"],
    "deal-updated-lost.json": ["deal.updated", "deal.lost"],
    "deal-deleted.json": ["deal.deleted"],
    "task-completed.json": ["task.completed"],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixtures_normalize(name):
    body = (FIXTURES / name).read_bytes()
    [delivery] = webhooks.split(raw(body))
    events = webhooks.normalize(delivery, None)
    assert [e.kind for e in events] == EXPECTED[name]
    payload = json.loads(body)
    assert delivery.key == payload["id"] and events[0].event_id == payload["id"]
    assert len({e.event_id for e in events}) == len(events)
    assert events == webhooks.normalize(webhooks.split(raw(body))[0], None)   # a redelivery: the same events
    if name == "deal-updated-stage.json":
        assert (events[1].from_stage_id, events[1].to_stage_id) == ("1", "2")


@pytest.mark.parametrize("body, field", [
    (b"[]", "body"), (b'{"type": "deal.updated"}', "id"), (b'{"id": "e", "type": "deal.updated"}', "data"),
    (b'{"id": "e", "type": "deal.updated", "data": {"object": {}}}', "data.object"),
    (b'{"id": "e", "type": "deal.updated", "data": {"object": {"id": 1}}, "created_at": "soon"}', "created_at"),
])
def test_a_body_that_is_no_delivery_names_the_field(body, field):
    with pytest.raises(ValueError) as caught:
        webhooks.normalize(webhooks.split(raw(body))[0], None)
    assert caught.value.field == field


def test_an_unknown_type_gives_no_event():
    body = b'{"id": "e9", "type": "invoice.paid", "data": {"object": {"id": 1}}}'
    assert webhooks.normalize(webhooks.split(raw(body))[0], None) == []


def test_subscribe_keeps_one_hook_per_url_and_drops_stale_ones(client, crm):
    creds = Credentials("relayhub-1", "whsec")
    ours = "https://hub.test/hooks/example/"
    first = webhooks.subscribe(client, ours + "tok1", creds, ours)
    assert len(first.created) == 1
    again = webhooks.subscribe(client, ours + "tok1", creds, ours)
    assert again.created == [] and [h.remote_id for h in again.kept] == [first.created[0].remote_id]
    moved = webhooks.subscribe(client, ours + "tok2", creds, ours)     # a new endpoint token
    assert moved.deleted == 1 and [h["url"] for h in crm.webhooks(ACCOUNT)] == [ours + "tok2"]
    webhooks.unsubscribe(client, moved.created[0].remote_id)
    assert crm.webhooks(ACCOUNT) == []


def test_a_delivery_from_the_emulator_verifies_and_normalizes(client, crm):
    creds = Credentials("relayhub-1", "whsec")
    webhooks.subscribe(client, "http://127.0.0.1:9/hooks/example/tok", creds, "http://127.0.0.1:9/hooks/example/")
    deal = crm.deals(ACCOUNT)[0]
    crm.update_deal(ACCOUNT, deal["id"], {"status": "won"})
    [sent] = crm.deliveries()
    request = RawRequest("POST", sent["url"], {k.lower(): v for k, v in sent["headers"].items()},
                         sent["body"].encode(), "application/json")
    webhooks.verify(request, Secrets(user="relayhub-1", password="whsec"))
    kinds = [e.kind for d in webhooks.split(request) for e in webhooks.normalize(d, None)]
    assert kinds == ["deal.updated", "deal.won"]


def test_reconciliation_finds_a_missed_win(client, crm):
    deal = crm.deals(ACCOUNT)[0]
    known = dict(deal)
    crm.update_deal(ACCOUNT, deal["id"], {"status": "won"})
    [now] = [s for s in webhooks.poll(client, None) if s.object_id == str(deal["id"])]
    assert [e.kind for e in webhooks.changes(known, now)] == ["deal.updated", "deal.won"]
    assert webhooks.changes(now.data, now) == []


def test_a_task_is_a_record_too(client, crm):
    made = crm.create_task(ACCOUNT, {"title": "Call back", "external_id": "x-1"})
    crm.complete_task(ACCOUNT, made["id"])
    source = CONNECTOR.source(SourceContext(client, "", catalog_of(client)))
    record = source.load("task", str(made["id"]), None, Carry(), [])
    assert (record.kind, record.title, record.status) == ("task", "Call back", "completed")
    assert [r.id for r in source.recent("task")] == [str(made["id"])]
    with pytest.raises(Exception, match="deals and tasks only"):
        source.load("person", "1", None, Carry(), [])
