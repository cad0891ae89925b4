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

`changeSource` is kept in `extra` and mapped once (sources.py) to the neutral cause of a lifecycle
change and whether a person or automation moved a lead."""
from __future__ import annotations

from typing import Any

from ..contract.webhooks import CrmEvent, Delivery, MalformedPayload, RawRequest, Webhooks, canonical_time
from .activities import ACTIVITIES, CALL_OUTCOMES, CONNECTED, activity_kinds, logged
from .objects import (NEUTRAL, OBJECT_TYPES, _Reread, _moment, deal_outcome, direction, flat, lead_state,
                      stage_of, version_of)
from .reconcile import changes, poll
from .signature import signature_v3, signed_uri, verify
from .sources import cause_of, moved_by

__all__ = ["WEBHOOKS", "verify", "split", "account_key", "normalize_event", "cause_of", "moved_by", "signature_v3",
           "signed_uri", "activity_kinds", "CALL_OUTCOMES", "CONNECTED", "direction", "deal_outcome", "lead_state",
           "flat", "poll", "changes"]

MAX_EVENTS = 1000                      # HubSpot sends up to 100 [U]; more is not one of its requests


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


DISPATCH = {"deal": _deal, "contact": _contact, "lead": _lead, "task": _task,
            **{name: logged for name in ACTIVITIES}}


def normalize_event(event: Any, client: Any = None) -> list[CrmEvent]:
    """The hub events one HubSpot event stands for (possibly none: an object or change the hub
    does not use). `client`: re-reads the object; None uses the event alone."""
    event = check_event(event)
    e = _Event(event, client)
    handler = DISPATCH.get(e.name)
    return handler(e) if handler else []


def _normalize(delivery: Delivery, client: Any) -> list[CrmEvent]:
    return normalize_event(delivery.json(), client)


KINDS = frozenset({"deal.created", "deal.updated", "deal.won", "deal.lost", "deal.stage_changed", "deal.deleted",
                   "person.created", "person.updated", "person.deleted", "person.lifecycle_changed",
                   "lead.added", "lead.stage_changed", "lead.disqualified", "activity.logged", "task.completed"})

WEBHOOKS = Webhooks(
    verify=verify, split=split, normalize=_normalize, kinds=KINDS, routing="account", account_key=account_key,
    poll=poll, changes=changes,
)
