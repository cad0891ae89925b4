"""HubSpot webhooks without an API: signature v3, splitting a delivery array (mixed portals, a bad
element), and events normalized from the event alone (no client to re-read the object)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from hub.connectors.contract.webhooks import Delivery, MalformedPayload, RawRequest, Refused, Secrets
from hub.connectors.hubspot import CONNECTOR
from hub.connectors.hubspot import webhooks as hw

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "hubspot-fixture-client-secret"
URL = "https://hub.example.org/hooks/hubspot"
NOW = 1733395230.0                       # the hub's clock, epoch seconds


def sign(body: bytes, ts: str, secret: str = SECRET, url: str = URL, method: str = "POST") -> str:
    """Signature v3 as HubSpot's docs describe it, written out here independently of the connector."""
    message = (method + url).encode() + body + ts.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def request(body: bytes, ts: str = "1733395201500", signature: str | None = None, url: str = URL,
            received_at: float | None = NOW) -> RawRequest:
    headers = {"content-type": "application/json", "x-hubspot-request-timestamp": ts,
               "x-hubspot-signature-v3": sign(body, ts, url=url) if signature is None else signature}
    return RawRequest("POST", url, headers, body, "application/json", received_at=received_at)


SECRETS = Secrets(app_secret_source=lambda: SECRET)


def test_signed_request_verifies():
    body = (FIXTURES / "deal-stage-changed.json").read_bytes()
    hw.verify(request(body), SECRETS)
    assert json.loads((FIXTURES / "deal-stage-changed.request.json").read_text())["headers"][
        "X-HubSpot-Signature-v3"] == sign(body, "1733395201500")


def test_altered_body_is_refused():
    body = (FIXTURES / "deal-stage-changed.json").read_bytes()
    good = request(body)
    altered = RawRequest("POST", URL, good.headers, body.replace(b"closedwon", b"closedlost"), received_at=NOW)
    with pytest.raises(Refused, match="does not match"):
        hw.verify(altered, SECRETS)


def test_other_url_is_refused():
    body = b"[]"
    signed_for_other = request(body, url="https://evil.example/hooks/hubspot")
    moved = RawRequest("POST", URL, signed_for_other.headers, body, received_at=NOW)
    with pytest.raises(Refused):
        hw.verify(moved, SECRETS)


def test_percent_encoded_url_characters_are_decoded_before_signing():
    url = "https://hub.example.org/hooks/hubspot?x=a%3Ab"
    ts = "1733395201500"
    raw = RawRequest("POST", url, {"x-hubspot-request-timestamp": ts,
                                   "x-hubspot-signature-v3": sign(b"[]", ts, url="https://hub.example.org/hooks/hubspot?x=a:b")},
                     b"[]", received_at=NOW)
    hw.verify(raw, SECRETS)


def test_stale_timestamp_is_refused_even_when_signed():
    body = b"[]"
    stale = str(int((NOW - 301) * 1000))
    with pytest.raises(Refused, match="older than 5 minutes"):
        hw.verify(request(body, ts=stale), SECRETS)
    fresh = str(int((NOW - 299) * 1000))
    hw.verify(request(body, ts=fresh), SECRETS)
    with pytest.raises(Refused):
        hw.verify(request(body, ts=str(int((NOW + 301) * 1000))), SECRETS)


def test_wrong_secret_missing_headers_and_no_secret_are_refused():
    body = b"[]"
    with pytest.raises(Refused):
        hw.verify(request(body), Secrets(app_secret_source=lambda: "another-apps-secret"))
    with pytest.raises(Refused, match="no client secret"):
        hw.verify(request(body), Secrets())
    with pytest.raises(Refused, match="missing"):
        hw.verify(RawRequest("POST", URL, {"x-hubspot-request-timestamp": "1"}, body, received_at=NOW), SECRETS)
    with pytest.raises(Refused, match="Timestamp"):
        hw.verify(request(body, ts="soon"), SECRETS)


def test_split_sorts_by_occurrence_and_keys_by_portal_subscription_event():
    raw = request((FIXTURES / "mixed-portals.json").read_bytes())
    parts = hw.split(raw)
    assert all(isinstance(p, Delivery) for p in parts)
    assert [(p.account, p.key, p.ordering) for p in parts] == [
        ("77001", "77001:2187612:900", "deal:12"),           # occurred first
        ("62515", "62515:2187612:900", "deal:9401"),         # same eventId, other portal: another key
        ("77001", "77001:2187630:901", "contact:31")]
    assert json.loads(parts[0].body)["propertyValue"] == "closedlost"
    assert hw.account_key(raw) == "62515"


def test_a_bad_element_is_named_and_the_others_kept():
    events = json.loads((FIXTURES / "mixed-portals.json").read_text())
    del events[1]["portalId"]
    events.append("not an event")
    parts = hw.split(request(json.dumps(events).encode()))
    good = [p for p in parts if isinstance(p, Delivery)]
    bad = [p for p in parts if isinstance(p, MalformedPayload)]
    assert [p.key for p in good] == ["62515:2187612:900", "77001:2187630:901"]
    assert [b.field for b in bad] == ["[1].portalId", "[3]"]


@pytest.mark.parametrize("body, field", [
    (b'{"portalId": 1}', "body"),
    (b"[" + b",".join([b"{}"] * (hw.MAX_EVENTS + 1)) + b"]", "body"),
])
def test_a_body_that_is_no_array_is_malformed(body, field):
    with pytest.raises(MalformedPayload) as caught:
        hw.split(request(body))
    assert caught.value.field == field


def test_generic_event_needs_its_object_type():
    event = json.loads((FIXTURES / "task-completed.json").read_text())[0]
    del event["objectTypeId"]
    [bad] = hw.split(request(json.dumps([event]).encode()))
    assert isinstance(bad, MalformedPayload) and bad.field == "[0].objectTypeId"


# -- normalize from the event alone ----------------------------------------------------------------
def events_of(name: str, client=None):
    out = []
    for part in hw.split(request((FIXTURES / name).read_bytes())):
        out += CONNECTOR.webhooks.normalize(part, client)
    return out


def test_lifecycle_change_keeps_its_source_and_cause():
    changed, updated, created = None, None, None
    for e in events_of("contact-lifecycle-and-creation.json"):
        if e.kind == "person.lifecycle_changed":
            changed = e
        elif e.kind == "person.updated":
            updated = e
        elif e.kind == "person.created":
            created = e
    assert created.object_id == "1246978" and created.occurrence == "once"
    assert updated.object_id == changed.object_id == "1246965"
    assert changed.extra["to_lifecycle"] == "subscriber" and changed.extra["changeSource"] == "ACADEMY"
    assert changed.extra["cause"] == "other" and changed.object_type == "person"
    assert changed.version == "2016-05-02T19:11:47.945Z"
    assert changed.shows == {"lifecyclestage": "subscriber"}


@pytest.mark.parametrize("source, cause", [("CRM_UI", "person"), ("WORKFLOWS", "automation"),
                                           ("AUTOMATION_PLATFORM", "automation"), ("API", "integration"),
                                           ("INTEGRATION", "integration"), ("IMPORT", "import"),
                                           ("COMPANIES", "company_sync"), ("", "other"), (None, "other")])
def test_change_sources_map_to_neutral_causes(source, cause):
    assert hw.cause_of(source) == cause
    assert hw.moved_by(cause) == ("person" if cause == "person" else "automation")


def test_deal_stage_change_without_client():
    kinds = [(e.kind, e.to_stage_id, e.event_id) for e in events_of("deal-stage-changed.json")]
    assert kinds == [("deal.updated", None, "62515:2187612:1711300913"),
                     ("deal.stage_changed", "closedwon", "62515:2187612:1711300913:deal.stage_changed")]


def test_lead_events_in_occurrence_order_without_client():
    events = events_of("lead-stage-changed.json")
    assert [e.kind for e in events] == ["lead.added", "lead.stage_changed"]
    moved = events[1]
    assert (moved.to_stage_id, moved.extra["moved_by"], moved.extra["direction"]) == \
        ("attempting-stage-id", "person", "none")


def test_task_completed_and_deletion():
    [done] = events_of("task-completed.json")
    assert (done.kind, done.object_type, done.object_id) == ("task.completed", "task", "55001")
    deleted = [e for e in events_of("mixed-portals.json") if e.kind == "person.deleted"]
    assert deleted and deleted[0].object_id == "31"


def test_activity_without_client_is_no_event():
    assert events_of("reread/call-logged.json") == []


@pytest.mark.parametrize("ms, way", [
    ({"hs_email_direction": "EMAIL"}, [("outreach", "email", None)]),
    ({"hs_email_direction": "INCOMING_EMAIL"}, [("response", "email", None)]),
    ({"hs_call_disposition": hw.CONNECTED}, [("outreach", "call", "connected"), ("response", "call", "connected")]),
    ({"hs_call_disposition": "73a0d17f-1163-4015-bdd5-ec830791da20"}, [("outreach", "call", "no_answer")]),
])
def test_activity_directions(ms, way):
    name = "email" if "hs_email_direction" in ms else "call"
    assert hw.activity_kinds(name, ms) == way


def test_meeting_and_linkedin_directions():
    assert hw.activity_kinds("meeting", {"hs_meeting_source": "MEETINGS_PUBLIC"})[0][0] == "response"
    assert hw.activity_kinds("meeting", {"hs_meeting_source": "CRM_UI"})[0][0] == "outreach"
    assert hw.activity_kinds("communication", {"hs_communication_channel_type": "LINKEDIN_MESSAGE"}) == \
        [("outreach", "linkedin", None)]
    assert hw.activity_kinds("communication", {"hs_communication_channel_type": "SMS"}) == []


def test_direction_by_display_order():
    assert hw.direction({"displayOrder": 0}, {"displayOrder": 2}) == "forward"
    assert hw.direction({"displayOrder": 2}, {"displayOrder": 1}) == "back"
    assert hw.direction(None, {"displayOrder": 1}) == "none"
