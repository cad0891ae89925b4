"""The HubSpot emulator's app webhooks: signed arrays across accounts, shared eventIds, duplicates,
reordering, and the documented retry policy; checked with an independent HMAC computation."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

from hub.sandbox.hubspot import Source

from .test_emulator_api import CLIENT_ID, SECRET, authorize, exchange, make

URL = "https://hub.example/hooks/hubspot?x=1"


class Receiver:
    """A webhook target: records each POST and answers with the scripted statuses (then 204)."""

    def __init__(self, *statuses):
        self.script = list(statuses)
        self.calls = []

    def __call__(self, url, headers, body):
        self.calls.append({"url": url, "headers": headers, "body": body, "events": json.loads(body)})
        status = self.script.pop(0) if self.script else 204
        if isinstance(status, tuple):
            return status
        if status == "refused":
            raise ConnectionError("refused")
        return status, {}


def setup(receiver, portals=(0,), **options):
    app, sb, clock = make(transport=receiver, webhook_url=URL, **options)
    client = app.test_client()
    hubs = []
    for n in portals:
        code, hub, _ = authorize(client, sb, portal=n)
        exchange(client, code)
        hubs.append(hub)
    return app, sb, clock, hubs


def test_signature_v3_is_verifiable_independently():
    rx = Receiver()
    app, sb, clock, (hub,) = setup(rx)
    contact = sb.records(hub, "contacts")[1]
    sb.set_lifecycle(hub, "contacts", contact["id"], "salesqualifiedlead")
    sent = sb.deliver_pending()
    assert len(sent) == 1 and len(rx.calls) == 1
    call = rx.calls[0]
    ts = call["headers"]["X-HubSpot-Request-Timestamp"]
    assert ts == str(int(clock.now * 1000))
    expected = base64.b64encode(hmac.new(SECRET.encode(), b"POST" + URL.encode() + call["body"] + ts.encode(),
                                         hashlib.sha256).digest()).decode()
    assert call["headers"]["X-HubSpot-Signature-v3"] == expected
    assert call["headers"]["X-HubSpot-Signature"] == hashlib.sha256(SECRET.encode() + call["body"]).hexdigest()
    (event,) = call["events"]
    assert event["subscriptionType"] == "contact.propertyChange" and event["propertyName"] == "lifecyclestage"
    assert event["propertyValue"] == "salesqualifiedlead" and event["portalId"] == hub
    assert event["objectId"] == int(contact["id"]) and event["attemptNumber"] == 0
    assert event["changeSource"] == "CRM_UI" and event["sourceId"].startswith("userId:")
    assert event["appId"] == sb.client_options[CLIENT_ID]["app_id"]


def test_batches_mix_portals_and_events_share_event_ids_across_subscriptions():
    rx = Receiver()
    app, sb, clock, hubs = setup(rx, portals=(0, 1))
    sb.webhooks.set_subscriptions(CLIENT_ID, [
        {"subscriptionType": "contact.propertyChange", "propertyName": "lifecyclestage"},
        {"subscriptionType": "object.propertyChange", "objectTypeId": "0-1", "propertyName": "lifecyclestage"},
        {"subscriptionType": "object.creation", "objectTypeId": "0-136"}])
    a = sb.records(hubs[0], "contacts")[0]
    b = sb.records(hubs[1], "contacts")[0]
    sb.set_lifecycle(hubs[0], "contacts", a["id"], "customer")
    sb.set_lifecycle(hubs[1], "contacts", b["id"], "opportunity")
    sb.deliver_pending()
    assert len(rx.calls) == 1
    events = rx.calls[0]["events"]
    assert {e["portalId"] for e in events} == set(hubs) and len(events) == 4
    first = [e for e in events if e["portalId"] == hubs[0]]
    assert len({e["eventId"] for e in first}) == 1 and len({e["subscriptionId"] for e in first}) == 2
    generic = next(e for e in first if e["subscriptionType"] == "object.propertyChange")
    assert generic["objectTypeId"] == "0-1"
    # an uninstalled account gets nothing
    sb.uninstall(CLIENT_ID, hubs[1])
    sb.set_lifecycle(hubs[1], "contacts", b["id"], "customer")
    assert sb.deliver_pending() == []


def test_company_sync_carries_its_own_change_source():
    rx = Receiver()
    app, sb, clock, (hub,) = setup(rx, sources={"company_sync": "COMPANY_SYNC_TEST"})
    company = sb.records(hub, "companies")[0]
    members = sb.associated_ids(hub, "companies", company["id"], "contacts")
    assert len(members) == 3
    sb.set_lifecycle(hub, "companies", company["id"], "opportunity")
    sb.deliver_pending()
    events = rx.calls[0]["events"]
    company_events = [e for e in events if e["subscriptionType"] == "company.propertyChange"]
    contact_events = [e for e in events if e["subscriptionType"] == "contact.propertyChange"]
    assert company_events[0]["changeSource"] == "CRM_UI"
    assert sorted(str(e["objectId"]) for e in contact_events) == sorted(members)
    assert {e["changeSource"] for e in contact_events} == {"COMPANY_SYNC_TEST"}
    hist = sb.find(hub, "contacts", members[0])["history"]["lifecyclestage"][0]
    assert hist["sourceType"] == "COMPANY_SYNC_TEST" and hist["value"] == "opportunity"
    # forward only: a company moved back does not pull its contacts back
    sb.set_lifecycle(hub, "companies", company["id"], "lead")
    assert sb.value(hub, "contacts", members[0], "lifecyclestage") == "opportunity"


def test_retries_count_attempts_and_stop_on_documented_statuses():
    rx = Receiver(500, "refused", 503)
    app, sb, clock, (hub,) = setup(rx)
    contact = sb.records(hub, "contacts")[0]
    sb.set_lifecycle(hub, "contacts", contact["id"], "customer")
    sb.deliver_pending()
    assert len(rx.calls) == 1
    assert sb.deliver_pending() == []                    # the retry waits its backoff
    clock.now += 60
    sb.deliver_pending()
    clock.now += 120
    sb.deliver_pending()
    clock.now += 240
    sb.deliver_pending()
    assert [c["events"][0]["attemptNumber"] for c in rx.calls] == [0, 1, 2, 3]
    assert sb.deliveries[-1]["outcome"] == "delivered"

    for status in (400, 401, 403, 404, 405):
        rx.script = [status]
        rx.calls.clear()
        sb.set_lifecycle(hub, "contacts", contact["id"], "lead")
        sb.deliver_pending(force=True)
        assert len(rx.calls) == 1, status                # never retried
        assert sb.deliveries[-1]["outcome"] == "dropped"
        sb.set_lifecycle(hub, "contacts", contact["id"], "customer")
        rx.script = [status]
        sb.deliver_pending(force=True)


def test_ten_retries_at_most_and_429_waits_its_retry_after():
    rx = Receiver(*([500] * 20))
    app, sb, clock, (hub,) = setup(rx)
    contact = sb.records(hub, "contacts")[0]
    sb.set_lifecycle(hub, "contacts", contact["id"], "customer")
    sb.deliver_pending(force=True)
    assert [c["events"][0]["attemptNumber"] for c in rx.calls] == list(range(11))
    assert sb.deliveries[-1]["outcome"] == "given up" and sb.webhooks.pending_count() == 0

    rx.script, rx.calls[:] = [(429, {"Retry-After": "7"})], []
    sb.set_lifecycle(hub, "contacts", contact["id"], "evangelist")
    sb.deliver_pending()
    clock.now += 6.9
    assert sb.deliver_pending() == []
    clock.now += 0.2
    sb.deliver_pending()
    assert [c["events"][0]["attemptNumber"] for c in rx.calls] == [0, 1]


def test_duplicates_reordering_delay_and_pause():
    rx = Receiver()
    app, sb, clock, (hub,) = setup(rx, webhook_batch_size=50)
    sb.faults.update({"webhook_duplicate_rate": 1.0, "webhook_reorder_rate": 1.0})
    contact = sb.records(hub, "contacts")[0]
    sb.set_lifecycle(hub, "contacts", contact["id"], "lead")
    sb.set_lifecycle(hub, "contacts", contact["id"], "customer")
    sb.deliver_pending()
    events = rx.calls[0]["events"]
    assert len(events) == 4 and len({e["eventId"] for e in events}) == 2          # each one twice
    assert events[0]["occurredAt"] >= events[-1]["occurredAt"]
    assert [e["propertyValue"] for e in events][0] == "customer"                   # newest first
    sb.faults.update({"webhook_duplicate_rate": 0.0, "webhook_reorder_rate": 0.0, "webhook_delay_ms": 5000.0,
                      "webhooks_paused": True})
    rx.calls.clear()
    sb.set_lifecycle(hub, "contacts", contact["id"], "opportunity")
    clock.now += 10
    assert sb.deliver_pending() == []                                              # paused
    sb.faults.update({"webhooks_paused": False})
    assert len(sb.deliver_pending()) == 1


def test_creation_events_and_sources_for_leads_tasks_and_activities():
    rx = Receiver()
    app, sb, clock, (hub,) = setup(rx)
    contact = sb.records(hub, "contacts")[2]
    (lead_id,) = sb.open_leads(hub, contact["id"])
    sb.move_lead(hub, lead_id, "new-stage-id")                                     # a person moves it back
    sb.move_lead(hub, lead_id, "connected-stage-id", source=Source("workflow", "enrollmentId:1"))
    sb.log_activity(hub, contact["id"], "call", response=True)
    sb.log_activity(hub, contact["id"], "email", response=True)
    sb.disqualify_lead(hub, lead_id, "NO_BUDGET")
    sb.deliver_pending()
    events = [e for c in rx.calls for e in c["events"]]
    stage = [e for e in events if e.get("propertyName") == "hs_pipeline_stage"]
    assert [(e["propertyValue"], e["changeSource"]) for e in stage] == [
        ("new-stage-id", "CRM_UI"), ("connected-stage-id", "AUTOMATION_PLATFORM"), ("unqualified-stage-id", "CRM_UI")]
    assert all(e["objectTypeId"] == "0-136" for e in stage)
    reason = next(e for e in events if e.get("propertyName") == "hs_lead_disqualification_reason")
    assert reason["propertyValue"] == "NO_BUDGET"
    created = {e["objectTypeId"] for e in events if e["subscriptionType"] == "object.creation"}
    assert {"0-48", "0-49"} <= created
    calls = sb.records(hub, "calls")
    assert calls[-1]["properties"]["hs_call_disposition"] == "f240bbac-87c9-4f6e-bf70-924b57d47db7"
    assert lead_id in sb.associated_ids(hub, "calls", calls[-1]["id"], "leads")
    assert sb.records(hub, "emails")[-1]["properties"]["hs_email_direction"] == "INCOMING_EMAIL"


def test_background_sender_delivers_without_being_asked():
    import threading
    arrived = threading.Event()

    def transport(url, headers, body):
        arrived.set()
        return 200, {}
    app, sb, clock = make(transport=transport, webhook_url=URL, deliver_in_background=True)
    client = app.test_client()
    code, hub, _ = authorize(client, sb)
    exchange(client, code)
    sb.set_lifecycle(hub, "contacts", sb.records(hub, "contacts")[0]["id"], "customer")
    assert arrived.wait(5)
