"""HubSpot webhook deliveries -> provider-neutral `CrmEvent`s, and the connector's `WEBHOOKS` part.

One app-wide URL takes every installed account's events (routing "account"): a request is a JSON
array of events, possibly of several portals, objects and subscriptions (FACTS §2). It is verified
with signature v3 (FACTS §3), split into one delivery per event (its portal is its account, its key
portal + subscription + `eventId`, since `eventId` alone is not unique, its ordering key the
object), sorted by `occurredAt` so one object's events are processed in the order they happened.

An event carries one property at most, never the object's other fields nor the value before the
change; `normalize` reads the object again (the lazy client) with the changed property's history,
which gives the value before, and the source of each change. The event's own value and time win
over the re-read state (a later change may already show there); `version` is `occurredAt`, so the
hub's event log drops a transition a newer state contradicts. Without a client, or for an object
gone since, the event alone is used.

`changeSource` is kept in `extra` and mapped once (`cause_of`) to the neutral cause of a lifecycle
change and whether a person or automation moved a lead."""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

from ..contract.webhooks import (CrmEvent, Delivery, MalformedPayload, RawRequest, Refused, Secrets, Snapshot,
                                 Webhooks, canonical_time)
from .manifest import SIGNATURE_MAX_AGE_SECONDS

MAX_EVENTS = 1000                      # HubSpot sends up to 100 [U]; more is not one of its requests
# objectTypeId -> (neutral name used here, API path segment)
OBJECT_TYPES = {"0-1": ("contact", "contacts"), "0-2": ("company", "companies"), "0-3": ("deal", "deals"),
                "0-136": ("lead", "leads"), "0-27": ("task", "tasks"), "0-49": ("email", "emails"),
                "0-48": ("call", "calls"), "0-47": ("meeting", "meetings"), "0-18": ("communication", "communications")}
_BY_NAME = {name: path for name, path in OBJECT_TYPES.values()}
# what the hub's events call each object
NEUTRAL = {"contact": "person", "company": "organization", "deal": "deal", "lead": "lead", "task": "task"}
ACTIVITIES = ("email", "call", "meeting", "communication")


# -- the one place HubSpot's change sources are interpreted ---------------------------------------
# [U] the source of a lifecycle stage copied down from the contact's company is undocumented (an SDK
# lists COMPANIES); these are the spellings taken as that sync.
COMPANY_SYNC_SOURCES = frozenset({"COMPANIES", "COMPANY", "COMPANY_SYNC", "COMPANY_INHERITANCE",
                                  "CRM_UI_COMPANY_SYNC", "OBJECT_SYNC"})
_CAUSES = {
    "person": {"CRM_UI", "CRM_UI_BULK_ACTION", "CRM", "MOBILE_IOS", "MOBILE_ANDROID", "SALES", "EMAIL",
               "CONTACTS_WEB", "BOARD_VIEW", "USER"},
    "automation": {"AUTOMATION_PLATFORM", "WORKFLOWS", "WORKFLOW", "AUTOMATION", "SEQUENCES", "BOT",
                   "LEAD_AUTOMATION", "CALCULATED"},
    "integration": {"API", "INTEGRATION", "APP", "INTEGRATIONS_PLATFORM", "CRM_OBJECTS_API", "MIGRATION"},
    "import": {"IMPORT"},
}


def cause_of(source: str | None) -> str:
    """person | automation | integration | import | company_sync | other, from a `changeSource`
    (or a property history's `sourceType`)."""
    value = str(source or "").strip().upper()
    if not value:
        return "other"
    if value in COMPANY_SYNC_SOURCES:
        return "company_sync"
    for cause, sources in _CAUSES.items():
        if value in sources:
            return cause
    return "other"


def moved_by(cause: str) -> str:
    """A lead stage move by a person in HubSpot, or by anything automatic (workflows, the hub's own
    steps through the API, imports)."""
    return "person" if cause == "person" else "automation"


# -- verification (signature v3) -------------------------------------------------------------------
# HubSpot decodes these before signing the URI (FACTS §3 [U exact list])
_DECODE = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'", "%28": "(",
           "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def signed_uri(url: str) -> str:
    out = url
    for encoded, plain in _DECODE.items():
        out = out.replace(encoded, plain).replace(encoded.lower(), plain)
    return out


def signature_v3(secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    message = method.upper().encode() + signed_uri(url).encode("utf-8") + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()).decode()


def verify(raw: RawRequest, secrets: Secrets, now: float | None = None) -> None:
    """Refused unless the v3 signature is HubSpot's for this method, URL, body and timestamp, and
    the timestamp is at most 5 minutes old (or ahead). `now` (epoch seconds): the hub's clock."""
    signature = (raw.header("x-hubspot-signature-v3") or "").strip()
    stamp = (raw.header("x-hubspot-request-timestamp") or "").strip()
    if not signature:
        raise Refused("X-HubSpot-Signature-v3: missing")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 16):
        raise Refused("X-HubSpot-Request-Timestamp: missing or not epoch milliseconds")
    moment = now if now is not None else (raw.received_at if raw.received_at is not None else time.time())
    if abs(moment * 1000 - int(stamp)) > SIGNATURE_MAX_AGE_SECONDS * 1000:
        raise Refused("X-HubSpot-Request-Timestamp: older than 5 minutes (or in the future)")
    secret = secrets.app_secret()
    if not secret:
        raise Refused("X-HubSpot-Signature-v3: the hub has no client secret for HubSpot to check it with")
    expected = signature_v3(secret, raw.method, raw.url, raw.body, stamp)
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise Refused("X-HubSpot-Signature-v3: does not match")


# -- reading one event -----------------------------------------------------------------------------
def _positive(event: dict, key: str, where: str) -> int:
    value = event.get(key)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2 ** 63:
        raise MalformedPayload(f"{where}.{key}", f"malformed HubSpot event: {where}.{key} must be a whole number")
    return value


def object_of(event: dict, where: str = "event") -> tuple[str, str]:
    """(object name as used here: contact, deal, lead ..., its id) of an event; unknown types keep
    their HubSpot name (`0-5`, `product`)."""
    kind = event.get("subscriptionType")
    if not isinstance(kind, str) or "." not in kind:
        raise MalformedPayload(f"{where}.subscriptionType", "malformed HubSpot event: subscriptionType must be "
                                                            "like contact.propertyChange")
    prefix = kind.split(".", 1)[0]
    if prefix == "object":
        type_id = event.get("objectTypeId")
        if not isinstance(type_id, str) or not type_id:
            raise MalformedPayload(f"{where}.objectTypeId", "malformed HubSpot event: a generic event needs "
                                                            "objectTypeId")
        name = OBJECT_TYPES.get(type_id, (type_id, ""))[0]
    else:
        name = prefix
    id_key = "fromObjectId" if kind.endswith("associationChange") and "objectId" not in event else "objectId"
    return name, str(_positive(event, id_key, where))


def check_event(event: Any, where: str = "event") -> dict:
    """The event, or MalformedPayload naming the field (`[3].portalId`)."""
    if not isinstance(event, dict):
        raise MalformedPayload(where, f"malformed HubSpot event: {where} must be an object")
    for key in ("portalId", "eventId", "subscriptionId", "occurredAt"):
        _positive(event, key, where)
    object_of(event, where)
    return event


def _key(event: dict) -> str:
    return f"{event['portalId']}:{event['subscriptionId']}:{event['eventId']}"


def account_key(raw: RawRequest) -> str | None:
    """The portal of the request's first event (each event's own portal routes it: `split`)."""
    events = raw.json()
    if not isinstance(events, list):
        raise MalformedPayload("body", "malformed HubSpot delivery: expected a JSON array of events")
    for event in events:
        if isinstance(event, dict) and event.get("portalId") not in (None, ""):
            return str(event["portalId"])
    return None


def split(raw: RawRequest) -> list[Delivery | MalformedPayload]:
    """One delivery per event, oldest first; an element that is not an event is returned as its
    MalformedPayload (the others are stored)."""
    events = raw.json()
    if not isinstance(events, list):
        raise MalformedPayload("body", "malformed HubSpot delivery: expected a JSON array of events")
    if len(events) > MAX_EVENTS:
        raise MalformedPayload("body", f"malformed HubSpot delivery: more than {MAX_EVENTS} events")
    good: list[tuple[int, int, Delivery]] = []
    bad: list[MalformedPayload] = []
    for index, event in enumerate(events):
        try:
            check_event(event, f"[{index}]")
            name, object_id = object_of(event, f"[{index}]")
        except MalformedPayload as exc:
            bad.append(exc)
            continue
        delivery = Delivery.of_json(event, _key(event), f"{name}:{object_id}", str(event["portalId"]))
        good.append((int(event["occurredAt"]), index, delivery))
    return [d for _, _, d in sorted(good, key=lambda x: (x[0], x[1]))] + bad


# -- time and versions -----------------------------------------------------------------------------
def _moment(ms: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def version_of(ms: Any) -> str | None:
    moment = _moment(ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z" if moment else None


def _ms(value: Any) -> int | None:
    """A history timestamp (ISO text or epoch ms) as epoch ms."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


# -- reading the object again ----------------------------------------------------------------------
def flat(record: dict | None) -> dict[str, Any] | None:
    """A HubSpot record as the hub keeps objects: `id` and its properties side by side."""
    if not isinstance(record, dict):
        return None
    out = {k: v for k, v in (record.get("properties") or {}).items()}
    out["id"] = str(record.get("id"))
    for key in ("createdAt", "updatedAt", "archived"):
        if key in record:
            out[key] = record[key]
    if isinstance(record.get("associations"), dict):
        out["associations"] = {name: [str(r.get("id") or r.get("toObjectId")) for r in (value or {}).get("results") or []]
                               for name, value in record["associations"].items()}
    return out


_READ = {
    "deal": ("dealname", "amount", "pipeline", "dealstage", "hubspot_owner_id", "closedate", "hs_lastmodifieddate"),
    "contact": ("firstname", "lastname", "email", "lifecyclestage", "hubspot_owner_id", "hs_lastmodifieddate"),
    "lead": ("hs_lead_name", "hs_pipeline", "hs_pipeline_stage", "hubspot_owner_id", "hs_lead_disqualification_reason",
             "hs_lead_type", "hs_lead_label", "hs_lastmodifieddate"),
    "task": ("hs_task_subject", "hs_task_status", "hs_timestamp", "hubspot_owner_id", "hs_task_type",
             "hs_task_priority", "hs_lastmodifieddate", "hs_task_completion_date"),
    "company": ("name", "domain", "lifecyclestage", "hubspot_owner_id", "hs_lastmodifieddate"),
}
_ASSOCIATIONS = {"deal": ("contacts", "companies"), "lead": ("contacts", "companies"),
                 "task": ("contacts", "deals", "companies"), "contact": ("companies",)}


class _Reread:
    """The object as HubSpot holds it now, read at most once per normalize."""

    def __init__(self, client: Any, name: str, object_id: str, history: str | None = None):
        self.client, self.name, self.object_id, self.history = client, name, object_id, history
        self.record: dict | None = None
        self.done = False

    def get(self) -> dict | None:
        if not self.done:
            self.done = True
            path = _BY_NAME.get(self.name)
            if self.client is not None and path:
                props = list(_READ.get(self.name, ()))
                if self.history and self.history not in props:
                    props.append(self.history)
                self.record = self.client.find(path, self.object_id, properties=props or None,
                                               associations=_ASSOCIATIONS.get(self.name),
                                               history=[self.history] if self.history else None)
        return self.record

    def previous_value(self, prop: str, occurred: int, value: Any) -> tuple[Any, str | None]:
        """(the value before the change to `value` at `occurred`, that change's sourceType) from
        the property's history (newest first in HubSpot's answer; sorted here to be sure)."""
        record = self.get() or {}
        history = ((record.get("propertiesWithHistory") or {}).get(prop)) or []
        entries = sorted((e for e in history if isinstance(e, dict)), key=lambda e: _ms(e.get("timestamp")) or 0)
        at = None
        for n, entry in enumerate(entries):
            stamp = _ms(entry.get("timestamp")) or 0
            if str(entry.get("value")) == str(value) and stamp <= occurred + 1000:
                at = n
        if at is None:
            return None, None
        before = entries[at - 1].get("value") if at > 0 else None
        return before, entries[at].get("sourceType")


def _cache(client: Any) -> dict:
    cache = getattr(client, "_hubspot_cache", None)
    if cache is None:
        cache = {}
        try:
            setattr(client, "_hubspot_cache", cache)
        except AttributeError:
            pass
    return cache


def pipelines(client: Any, object_type: str) -> list[dict]:
    """Pipelines of deals or leads with their stages, read once per client (one job)."""
    if client is None:
        return []
    cache = _cache(client)
    if object_type not in cache:
        cache[object_type] = client.pipelines(object_type)
    return cache[object_type]


def stage_of(client: Any, object_type: str, stage_id: Any) -> tuple[dict | None, dict | None]:
    """(pipeline, stage) of a stage id (stage ids are unique across an account's pipelines)."""
    if stage_id in (None, ""):
        return None, None
    for pipeline in pipelines(client, object_type):
        for stage in pipeline.get("stages") or []:
            if str(stage.get("id")) == str(stage_id):
                return pipeline, stage
    return None, None


def deal_outcome(stage: dict | None) -> str | None:
    """won | lost | None from a deal stage's metadata (`isClosed`, `probability` 1.0 / 0.0)."""
    meta = (stage or {}).get("metadata") or {}
    if str(meta.get("isClosed", "")).lower() != "true":
        return None
    try:
        probability = float(meta.get("probability"))
    except (TypeError, ValueError):
        return None
    return "won" if probability >= 1.0 else "lost" if probability <= 0.0 else None


# [U] how a lead pipeline marks its disqualified and qualified stages: the default ids (FACTS §6),
# or a stage metadata `leadState`/`state` when the account's pipeline carries one
_DISQUALIFIED_IDS = frozenset({"unqualified-stage-id", "disqualified-stage-id"})
_QUALIFIED_IDS = frozenset({"qualified-stage-id"})


def lead_state(stage_id: Any, stage: dict | None) -> str:
    """open | qualified | disqualified."""
    meta = (stage or {}).get("metadata") or {}
    state = str(meta.get("leadState") or meta.get("state") or "").upper()
    if str(stage_id) in _DISQUALIFIED_IDS or state in ("DISQUALIFIED", "UNQUALIFIED"):
        return "disqualified"
    if str(stage_id) in _QUALIFIED_IDS or state == "QUALIFIED":
        return "qualified"
    return "open"


def direction(from_stage: dict | None, to_stage: dict | None) -> str:
    """forward | back | none by the stages' displayOrder (unknown stages: none)."""
    try:
        before, after = int(from_stage["displayOrder"]), int(to_stage["displayOrder"])
    except (TypeError, KeyError, ValueError):
        return "none"
    return "forward" if after > before else "back" if after < before else "none"


# -- events ---------------------------------------------------------------------------------------
class _Event:
    """One HubSpot event being turned into CrmEvents."""

    def __init__(self, event: dict, client: Any):
        self.raw = event
        self.client = client
        self.name, self.object_id = object_of(event)
        self.action = event["subscriptionType"].split(".", 1)[1]
        self.prop = event.get("propertyName") if isinstance(event.get("propertyName"), str) else None
        self.value = event.get("propertyValue")
        self.occurred = int(event["occurredAt"])
        self.reread = _Reread(client, self.name, self.object_id, self.prop)
        self.source = event.get("changeSource")
        self.extra = {k: event[k] for k in ("changeSource", "sourceId", "changeFlag", "attemptNumber", "portalId",
                                            "subscriptionType", "propertyName", "propertyValue")
                      if event.get(k) not in (None, "")}

    @property
    def event_id(self) -> str:
        return f"{self.raw['portalId']}:{self.raw['subscriptionId']}:{self.raw['eventId']}"

    def current(self) -> dict[str, Any]:
        """The object as re-read, with this event's own value (its moment's truth) laid over it."""
        state = flat(self.reread.get()) or {"id": self.object_id}
        if self.prop:
            state[self.prop] = self.value
        return state

    def make(self, kind: str, *, object_type: str | None = None, primary: bool = True, current: dict | None = None,
             occurrence: str | None = None, shows: dict | None = None, extra: dict | None = None,
             **kw: Any) -> CrmEvent:
        state = current if current is not None else self.current()
        event = CrmEvent(kind=kind, object_type=object_type or NEUTRAL.get(self.name, self.name),
                         object_id=self.object_id, event_id=self.event_id if primary else f"{self.event_id}:{kind}",
                         occurred_at=_moment(self.occurred), current=state,
                         previous=None, version=version_of(self.occurred),
                         extra={**self.extra, **(extra or {})}, **kw)
        if occurrence is not None:
            event.occurrence = occurrence
        elif kind.endswith((".created", ".added", ".deleted")):
            event.occurrence = "once"
        event.shows = shows if shows is not None else ({} if kind.endswith((".created", ".added")) else None)
        return event


def _deal(e: _Event) -> list[CrmEvent]:
    if e.action == "deletion":
        return [e.make("deal.deleted", current={"id": e.object_id}, pipeline_id=None)]
    state = e.current()
    pipeline_id = state.get("pipeline")
    stamp = canonical_time(version_of(e.occurred))
    if e.action == "creation":
        events = [e.make("deal.created", current=state, pipeline_id=pipeline_id)]
        outcome = deal_outcome(stage_of(e.client, "deals", state.get("dealstage"))[1])
        if outcome:
            events.append(e.make(f"deal.{outcome}", primary=False, current=state, pipeline_id=pipeline_id,
                                 occurrence=stamp, shows={"dealstage": state.get("dealstage")}))
        return events
    if e.action != "propertyChange":
        return []
    events = [e.make("deal.updated", current=state, pipeline_id=pipeline_id)]
    if e.prop == "dealstage" and e.value not in (None, ""):
        before, _ = e.reread.previous_value("dealstage", e.occurred, e.value)
        if str(before) == str(e.value):
            return events
        pipeline, stage = stage_of(e.client, "deals", e.value)
        pipeline_id = (pipeline or {}).get("id") or pipeline_id
        shows = {"dealstage": e.value}
        events.append(e.make("deal.stage_changed", primary=False, current=state, pipeline_id=pipeline_id,
                             from_stage_id=None if before in (None, "") else str(before), to_stage_id=str(e.value),
                             occurrence=f"{e.value}@{stamp}", shows=shows))
        outcome = deal_outcome(stage)
        _, before_stage = stage_of(e.client, "deals", before)
        if outcome and deal_outcome(before_stage) != outcome:
            events.append(e.make(f"deal.{outcome}", primary=False, current=state, pipeline_id=pipeline_id,
                                 occurrence=stamp, shows=shows))
    return events


def _contact(e: _Event) -> list[CrmEvent]:
    if e.action == "deletion":
        return [e.make("person.deleted", current={"id": e.object_id})]
    if e.action == "creation":
        return [e.make("person.created")]
    if e.action != "propertyChange":
        return []
    state = e.current()
    events = [e.make("person.updated", current=state)]
    if e.prop == "lifecyclestage":
        before, history_source = e.reread.previous_value("lifecyclestage", e.occurred, e.value)
        if str(before or "") == str(e.value or ""):
            return events
        cause = cause_of(e.source or history_source)
        stamp = canonical_time(version_of(e.occurred))
        events.append(e.make("person.lifecycle_changed", primary=False, current=state,
                             occurrence=f"{e.value}@{stamp}", shows={"lifecyclestage": e.value},
                             extra={"from_lifecycle": before if before not in (None, "") else None,
                                    "to_lifecycle": e.value, "cause": cause,
                                    "change_source": e.source or history_source}))
    return events


def _lead(e: _Event) -> list[CrmEvent]:
    if e.action == "deletion":
        return []
    state = e.current()
    if e.action == "creation":
        return [e.make("lead.added", current=state, pipeline_id=state.get("hs_pipeline"),
                       to_stage_id=state.get("hs_pipeline_stage"))]
    if e.action != "propertyChange" or e.prop != "hs_pipeline_stage" or e.value in (None, ""):
        return []
    before, history_source = e.reread.previous_value("hs_pipeline_stage", e.occurred, e.value)
    if str(before) == str(e.value):
        return []
    pipeline, to_stage = stage_of(e.client, "leads", e.value)
    _, from_stage = stage_of(e.client, "leads", before)
    pipeline_id = (pipeline or {}).get("id") or state.get("hs_pipeline")
    cause = cause_of(e.source or history_source)
    stamp = canonical_time(version_of(e.occurred))
    shows = {"hs_pipeline_stage": e.value}
    common = dict(current=state, pipeline_id=pipeline_id, from_stage_id=None if before in (None, "") else str(before),
                  to_stage_id=str(e.value))
    events = [e.make("lead.stage_changed", occurrence=f"{e.value}@{stamp}", shows=shows,
                     extra={"moved_by": moved_by(cause), "cause": cause, "direction": direction(from_stage, to_stage)},
                     **common)]
    if lead_state(e.value, to_stage) == "disqualified":
        events.append(e.make("lead.disqualified", primary=False, occurrence=stamp, shows=shows,
                             extra={"reason": state.get("hs_lead_disqualification_reason") or None,
                                    "moved_by": moved_by(cause), "cause": cause}, **common))
    return events


_DONE = "COMPLETED"


def _task(e: _Event) -> list[CrmEvent]:
    if e.action != "propertyChange" or e.prop != "hs_task_status" or str(e.value).upper() != _DONE:
        return []
    stamp = canonical_time(version_of(e.occurred))
    return [e.make("task.completed", occurrence=stamp, shows={"hs_task_status": _DONE})]


# -- logged activities -> activity.logged on each open lead of the contact -----------------------
CONNECTED = "f240bbac-87c9-4f6e-bf70-924b57d47db7"       # HubSpot's default "Connected" call outcome
CALL_OUTCOMES = {CONNECTED: "connected", "73a0d17f-1163-4015-bdd5-ec830791da20": "no_answer",
                 "9d9162e7-6cf3-4944-bf63-4dff82258764": "busy", "b2cf5968-551e-4856-9783-52b3da59a7d0": "left_voicemail",
                 "a4c4c377-d246-4b32-a13b-75a56a4cd0ff": "left_live_message",
                 "17b47fee-58de-441e-a44c-c6300d46f273": "wrong_number"}
_ACTIVITY_PROPS = {
    "email": ("hs_email_direction", "hs_email_subject", "hs_timestamp"),
    "call": ("hs_call_disposition", "hs_call_direction", "hs_call_title", "hs_timestamp"),
    "meeting": ("hs_meeting_source", "hs_meeting_outcome", "hs_meeting_title", "hs_timestamp"),
    "communication": ("hs_communication_channel_type", "hs_communication_logged_from", "hs_timestamp"),
}
_BOOKED_BY_CONTACT = {"MEETINGS_PUBLIC", "BOOKING_PAGE", "SCHEDULING_PAGE"}


def activity_kinds(name: str, props: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """[(direction, activity, outcome)] an activity stands for: an e-mail sent (outreach) or
    received (response), a LinkedIn message (outreach), a call (outreach; with outcome connected
    also a response), a meeting booked by a user (outreach) or by the contact (response)."""
    if name == "email":
        way = str(props.get("hs_email_direction") or "").upper()
        if way == "INCOMING_EMAIL":
            return [("response", "email", None)]
        return [("outreach", "email", None)] if way in ("EMAIL", "FORWARDED_EMAIL", "") else []
    if name == "call":
        disposition = str(props.get("hs_call_disposition") or "")
        outcome = CALL_OUTCOMES.get(disposition, disposition.lower() or None)
        out = [("outreach", "call", outcome)]
        if outcome == "connected":
            out.append(("response", "call", outcome))
        return out
    if name == "meeting":
        source = str(props.get("hs_meeting_source") or "").upper()
        outcome = str(props.get("hs_meeting_outcome") or "").lower() or None
        return [("response" if source in _BOOKED_BY_CONTACT else "outreach", "meeting", outcome)]
    if name == "communication":
        channel = str(props.get("hs_communication_channel_type") or "").upper()
        return [("outreach", "linkedin", None)] if channel.startswith("LINKEDIN") else []
    return []


def _activity(e: _Event) -> list[CrmEvent]:
    """A logged activity (its creation; a call's outcome set later counts as a response when it is
    connected). Its occurrence marker is the activity and direction, so the creation and the outcome
    event of one connected call make one response."""
    later_outcome = e.action == "propertyChange" and e.name == "call" and e.prop == "hs_call_disposition"
    if (e.action != "creation" and not later_outcome) or e.client is None:
        return []
    record = e.client.find(_BY_NAME[e.name], e.object_id, properties=list(_ACTIVITY_PROPS[e.name]),
                           associations=["contacts"])
    if record is None:
        return []
    props = record.get("properties") or {}
    if later_outcome:
        props = {**props, "hs_call_disposition": e.value}
    kinds = activity_kinds(e.name, props)
    if later_outcome:
        kinds = [k for k in kinds if k[0] == "response"]
    if not kinds:
        return []
    contacts = flat(record).get("associations", {}).get("contacts") or []
    events: list[CrmEvent] = []
    for contact in sorted(set(contacts)):
        for lead_id in sorted(set(e.client.associated("contacts", contact, "leads")), key=_numeric):
            lead = e.client.find("leads", lead_id, properties=list(_READ["lead"]))
            if lead is None:
                continue
            state = flat(lead)
            stage_id = state.get("hs_pipeline_stage")
            pipeline, stage = stage_of(e.client, "leads", stage_id)
            if lead_state(stage_id, stage) != "open":
                continue
            for way, activity, outcome in kinds:
                events.append(CrmEvent(
                    kind="activity.logged", object_type="lead", object_id=str(lead_id),
                    event_id=f"{e.event_id}:{lead_id}:{way}", occurred_at=_moment(e.occurred), current=state,
                    previous=None, pipeline_id=(pipeline or {}).get("id") or state.get("hs_pipeline"),
                    to_stage_id=str(stage_id) if stage_id else None, version=version_of(e.occurred),
                    extra={**e.extra, "direction": way, "activity": activity, "outcome": outcome,
                           "activity_type": e.name, "activity_id": e.object_id, "contact_id": contact,
                           "stage_id": str(stage_id) if stage_id else None},
                    occurrence=f"{e.name}:{e.object_id}:{way}", shows=None))
    return events


def _numeric(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (0, value)


DISPATCH = {"deal": _deal, "contact": _contact, "lead": _lead, "task": _task,
            **{name: _activity for name in ACTIVITIES}}


def normalize_event(event: Any, client: Any = None) -> list[CrmEvent]:
    """The hub events one HubSpot event stands for (possibly none: an object or change the hub
    does not use). `client`: re-reads the object; None uses the event alone."""
    event = check_event(event)
    e = _Event(event, client)
    handler = DISPATCH.get(e.name)
    return handler(e) if handler else []


def _normalize(delivery: Delivery, client: Any) -> list[CrmEvent]:
    return normalize_event(delivery.json(), client)


# -- reconciliation: deals, contacts and leads modified since ---------------------------------------
_POLLED = (("deal", "deals"), ("contact", "contacts"), ("lead", "leads"))


def poll(client: Any, since: datetime | None) -> Iterator[Snapshot]:
    """Objects modified since `since`, oldest change first per object type (search by
    hs_lastmodifieddate; the runner checkpoints as it goes)."""
    for name, path in _POLLED:
        body: dict[str, Any] = {"sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                                "properties": list(_READ[name])}
        if since is not None:
            moment = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
            body["filterGroups"] = [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE",
                                                  "value": str(int(moment.timestamp() * 1000))}]}]
        for record in client.iter_search(path, body):
            data = flat(record)
            if data is None or data.get("id") in (None, "None"):
                raise MalformedPayload("results.id", "a HubSpot record without an id")
            version = version_of(_ms(data.get("hs_lastmodifieddate") or data.get("updatedAt")))
            yield Snapshot(NEUTRAL[name], data["id"], version, bool(data.get("archived")), data)


_WATCHED = {"deal": "dealstage", "person": "lifecyclestage", "lead": "hs_pipeline_stage"}


def changes(known: dict[str, Any] | None, now: Snapshot) -> list[CrmEvent]:
    """What a lost webhook missed, from the last known state and the state now: a stage (or
    lifecycle stage) that differs. The first sight of an object is its baseline, not an event."""
    prop = _WATCHED.get(now.object_type)
    if known is None or prop is None or str(known.get(prop) or "") == str(now.data.get(prop) or ""):
        return []
    data, value, before = now.data, now.data.get(prop), known.get(prop)
    stamp = canonical_time(now.version)
    base = dict(object_type=now.object_type, object_id=now.object_id, occurred_at=None, current=data,
                previous={prop: before}, version=now.version)
    ident = f"reconcile:{now.object_type}:{now.object_id}:{value}@{now.version}"
    extra = {"format": "reconcile"}
    if now.object_type == "deal":
        return [CrmEvent(kind="deal.stage_changed", event_id=ident, pipeline_id=data.get("pipeline"),
                         from_stage_id=before, to_stage_id=value, extra=extra, occurrence=f"{value}@{stamp}",
                         shows={prop: value}, **base)]
    if now.object_type == "person":
        return [CrmEvent(kind="person.lifecycle_changed", event_id=ident, occurrence=f"{value}@{stamp}",
                         shows={prop: value}, extra={**extra, "from_lifecycle": before, "to_lifecycle": value,
                                                     "cause": "other"}, **base)]
    return [CrmEvent(kind="lead.stage_changed", event_id=ident, pipeline_id=data.get("hs_pipeline"),
                     from_stage_id=before, to_stage_id=value, occurrence=f"{value}@{stamp}", shows={prop: value},
                     extra={**extra, "moved_by": "automation", "cause": "other", "direction": "none"}, **base)]


KINDS = frozenset({"deal.created", "deal.updated", "deal.won", "deal.lost", "deal.stage_changed", "deal.deleted",
                   "person.created", "person.updated", "person.deleted", "person.lifecycle_changed",
                   "lead.added", "lead.stage_changed", "lead.disqualified", "activity.logged", "task.completed"})

WEBHOOKS = Webhooks(
    verify=verify, split=split, normalize=_normalize, kinds=KINDS, routing="account", account_key=account_key,
    poll=poll, changes=changes,
)
