"""Pipedrive webhook deliveries -> provider-neutral `CrmEvent`s, and the connector's `WEBHOOKS` part.

Verification: Pipedrive signs nothing; the hub registers every webhook with HTTP Basic credentials
of its own and checks them on delivery (FACTS §7).

Normalization accepts both payload formats:
- v2 (default since 2025-03): `{meta, data, previous}`; `previous` holds only the changed fields.
- v1 (legacy): `{v:1, meta:{action: added|updated|deleted|merged, object, id, timestamp...}, current,
  previous, event:"updated.deal", retry}`; `previous` is the full prior object, so it is reduced
  to the changed fields here and every handler sees v2 semantics.

What comes out (one dispatch table, `DISPATCH`, lists every (entity, action) we know):
- every deal change gives `deal.updated`, followed by the transitions it carries: `deal.stage_changed`
  when `stage_id` is in `previous` and differs, `deal.won` / `deal.lost` when `status` is in
  `previous` and differs. A won deal edited again (no `status` in `previous`, or won -> won) is only
  `deal.updated`; a reopen is only `deal.updated`.
- a deal *created* as won (or lost) gives `deal.created` and then `deal.won` (`deal.lost`): the deal
  reached that state without any change event, and a "when a deal is won" rule must still fire.
- leads: `lead.added` on create; lead change/delete have no hub kind yet and are listed as ignored.
- persons: created / updated / deleted. A delete caused by a merge carries `extra["merged_to_id"]`
  (the survivor), the survivor's change `extra["merged_from_id"]`, both as strings.
- activities: `task.completed` (object type `task`) when a change marks one done (`done` in
  `previous` and false, true in `data`); nothing else of an activity is used.

Every event carries its occurrence marker and what its transition leaves in the state (`marked`),
which the hub's event log dedupes and judges late deliveries by.

Ids: the first event of a payload carries the provider's event id (`meta.id` in v2; v1 has none, so
a deterministic id is derived from company, object, id, action and `timestamp_micro`, which stays
the same across redeliveries). Further events from the same payload get `<event id>:<kind>`, so
every CrmEvent has its own dedupe key and a redelivery reproduces them all. `version` is the object's
`update_time` in one canonical UTC form (`YYYY-MM-DDTHH:MM:SS.ffffffZ`), so versions of v1, v2 and
lead timestamps compare correctly as strings: the later version wins.

Unknown entities or actions give an empty list; a payload that is not Pipedrive-shaped raises
ValueError naming what is wrong."""
from __future__ import annotations

import base64
import binascii
import hmac
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping

from ..contract.webhooks import (CrmEvent, Delivery, MalformedPayload, RawRequest, Refused, Secrets, Snapshot,
                                 Subscription, Webhooks, canonical_time)
from . import subscriptions
from .subscriptions import SUBSCRIPTIONS

_V1_ACTIONS = {"added": "create", "updated": "change", "deleted": "delete", "merged": "merge"}
_V1_NAMESPACE = uuid.UUID("5b0d4c52-9f3e-4c1e-9a57-6f1f2d6c0a11")


# -- verification -----------------------------------------------------------------------------------

def verify(headers: Mapping[str, str], expected_user: str, expected_password: str) -> bool:
    """True when the delivery carries the Basic credentials the hub registered the webhook with.
    Both parts are compared in constant time (no early exit on the user name)."""
    if not expected_user or expected_password is None:
        return False   # a webhook registered without credentials can never be trusted
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if not value or not value[:6].lower() == "basic ":
        return False
    try:
        decoded = base64.b64decode(value[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    user, sep, password = decoded.partition(b":")
    user_ok = hmac.compare_digest(user, expected_user.encode())
    password_ok = hmac.compare_digest(password, expected_password.encode())
    return bool(sep) and user_ok and password_ok


# -- time helpers -----------------------------------------------------------------------------------

_EPOCH_MAX = 253402300799   # 9999-12-31T23:59:59Z: the last second a datetime can hold


def parse_time(value: Any, field: str = "timestamp") -> datetime | None:
    """Pipedrive's timestamps: RFC 3339 (with or without ms), v1 `YYYY-MM-DD HH:MM:SS` (UTC) and
    epoch seconds (v1 meta, older v2 user events). None for nothing or an unknown text form;
    MalformedPayload naming `field` for a number no clock shows (NaN, Infinity, 1e20, 20 digits)."""
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise MalformedPayload(field, f"malformed Pipedrive webhook: {field} is not a time")
    if isinstance(value, (int, float)):
        return _epoch(value, field)
    if not isinstance(value, str):
        raise MalformedPayload(field, f"malformed Pipedrive webhook: {field} is not a time")
    text = value.strip()
    if text.isascii() and text.isdigit():
        return _epoch(int(text) if len(text) <= 12 else math.inf, field)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None
    try:
        return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)
    except OverflowError:   # an offset that pushes year 1 or 9999 over the edge
        raise MalformedPayload(field, f"malformed Pipedrive webhook: {field} is out of range") from None


def _epoch(seconds: float, field: str) -> datetime:
    if not (isinstance(seconds, int) or math.isfinite(seconds)) or not 0 <= seconds <= _EPOCH_MAX:
        raise MalformedPayload(field, f"malformed Pipedrive webhook: {field} is not a time (epoch seconds "
                                      f"between 0 and {_EPOCH_MAX})")
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def canonical_version(value: Any, field: str = "update_time") -> str | None:
    """An `update_time` in a form that sorts correctly as a string, whatever surface it came from."""
    dt = parse_time(value, field)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if dt else None


def _sid(value: Any) -> str | None:
    return None if value is None else str(value)


# -- occurrences ------------------------------------------------------------------------------------

# the field that dates each transition, and what the object's state shows after it
_TRANSITION_TIME = {"deal.won": "won_time", "deal.lost": "lost_time", "deal.stage_changed": "stage_change_time",
                    "task.completed": "marked_as_done_time"}


def marked(event: CrmEvent) -> CrmEvent:
    """Set what makes deliveries the same occurrence, and what the transition leaves in the state.

    A win is the win at its `won_time` (a deal won, reopened and won again is two occurrences; the
    webhook and the poll of one win are one), a stage move the move to that stage at its
    `stage_change_time`; a creation or deletion happens once; anything else is one per version.
    These markers are the ones the hub has always stored: redeliveries of old events still match."""
    current = event.current or {}
    when = _TRANSITION_TIME.get(event.kind)
    stamp = canonical_time(current.get(when)) if when else ""
    if event.kind in ("deal.won", "deal.lost"):
        event.occurrence = stamp or event.version
        event.shows = {"status": event.kind.split(".")[1], when: current.get(when)}
    elif event.kind == "deal.stage_changed":
        event.occurrence = f"{event.to_stage_id}@{stamp or event.version}"
        event.shows = {"stage_id": event.to_stage_id, when: current.get(when)}
    elif event.kind == "task.completed":
        event.occurrence = stamp or event.version
        event.shows = {"done": True, when: current.get(when)}
    elif event.kind.endswith((".created", ".added")):
        event.occurrence, event.shows = "once", {}
    elif event.kind.endswith(".deleted"):
        event.occurrence = "once"
    else:
        event.occurrence = canonical_time(event.version) if event.version else event.event_id
    return event


# -- the envelope both formats reduce to --------------------------------------------------------------

@dataclass
class _Envelope:
    entity: str
    action: str                     # create | change | delete | merge (v1 only)
    object_id: str
    event_id: str
    occurred_at: datetime | None
    current: dict | None
    previous: dict | None           # v2 semantics: changed fields only (delete: last full state)
    extra: dict[str, Any]

    def event(self, kind: str, *, primary: bool = True, object_type: str | None = None, **kw: Any) -> CrmEvent:
        state = self.current if self.current is not None else self.previous or {}
        return marked(CrmEvent(kind=kind, object_type=object_type or self.entity, object_id=self.object_id,
                               event_id=self.event_id if primary else f"{self.event_id}:{kind}",
                               occurred_at=self.occurred_at, current=self.current, previous=self.previous,
                               version=canonical_version(state.get("update_time")), extra=dict(self.extra), **kw))


def _require(cond: bool, message: str, field: str = "body") -> None:
    if not cond:
        raise MalformedPayload(field, f"malformed Pipedrive webhook: {message}")


def _v2_envelope(payload: dict) -> _Envelope:
    meta = payload["meta"]
    for key in ("action", "entity", "id"):
        _require(isinstance(meta.get(key), str) and bool(meta[key]), f"meta.{key} must be a non-empty string", f"meta.{key}")
    data, previous = payload.get("data"), payload.get("previous")
    _require(data is None or isinstance(data, dict), "data must be an object or null", "data")
    _require(previous is None or isinstance(previous, dict), "previous must be an object or null", "previous")
    entity_id = meta.get("entity_id")
    if entity_id in (None, ""):
        entity_id = (data or previous or {}).get("id")
    extra = {k: meta[k] for k in ("company_id", "user_id", "change_source", "is_bulk_edit", "attempt",
                                  "webhook_id", "correlation_id") if k in meta}
    # a merge: the merged person's delete names the survivor, the survivor's change the merged one (ids
    # as strings, like entity_id); contact sync re-links instead of deleting (hub/sync/merges.py)
    extra.update({k: _sid(meta[k]) for k in ("merged_to_id", "merged_from_id") if meta.get(k) not in (None, "")})
    extra["format"] = "v2"
    return _Envelope(meta["entity"], meta["action"], _sid(entity_id) or "", meta["id"],
                     parse_time(meta.get("timestamp"), "meta.timestamp"), data, previous, extra)


def _changed(current: dict | None, previous: dict | None) -> dict | None:
    """v1 sends the whole prior object; keep only what differs (v2 semantics)."""
    if current is None or previous is None:
        return previous
    return {k: v for k, v in previous.items() if current.get(k) != v}


def _v1_envelope(payload: dict) -> _Envelope:
    meta = payload["meta"]
    action, entity = meta.get("action"), meta.get("object")
    if (not action or not entity) and isinstance(payload.get("event"), str) and "." in payload["event"]:
        action, entity = payload["event"].split(".", 1)
    _require(isinstance(action, str) and isinstance(entity, str) and bool(action and entity),
             "v1 payload needs meta.action and meta.object (or event like 'updated.deal')", "meta.action")
    current, previous = payload.get("current"), payload.get("previous")
    _require(current is None or isinstance(current, dict), "current must be an object or null", "current")
    _require(previous is None or isinstance(previous, dict), "previous must be an object or null", "previous")
    object_id = meta.get("id")
    if object_id in (None, ""):
        object_id = (current or previous or {}).get("id")
    _require(object_id not in (None, ""), "v1 payload without meta.id or object id", "meta.id")
    stamp = meta.get("timestamp_micro") or meta.get("timestamp")
    key = f"{meta.get('company_id')}:{entity}:{object_id}:{action}:{stamp}"
    extra = {k: meta[k] for k in ("company_id", "user_id", "change_source", "is_bulk_update", "webhook_id")
             if k in meta}
    extra.update(format="v1", attempt=_retries(payload.get("retry")) + 1)
    return _Envelope(entity, _V1_ACTIONS.get(action, action), str(object_id), f"v1:{uuid.uuid5(_V1_NAMESPACE, key)}",
                     parse_time(meta.get("timestamp"), "meta.timestamp"), current, _changed(current, previous), extra)


def _retries(value: Any) -> int:
    """v1's `retry`: how many times this delivery was tried before (a small count)."""
    if value in (None, ""):
        return 0
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 6:
        return int(value)
    _require(isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10**6,
             "retry must be a whole number of earlier attempts", "retry")
    return value


def _envelope(payload: Any) -> _Envelope:
    _require(isinstance(payload, dict), f"expected a JSON object, got {type(payload).__name__}")
    _require(isinstance(payload.get("meta"), dict), "missing 'meta' object", "meta")
    meta = payload["meta"]
    is_v1 = ("current" in payload or "event" in payload or str(meta.get("v", "")) == "1"
             or str(meta.get("version", "")).startswith("1"))
    return _v1_envelope(payload) if is_v1 else _v2_envelope(payload)


# -- handlers ---------------------------------------------------------------------------------------

def _need(obj: dict | None, what: str) -> dict:
    _require(isinstance(obj, dict), f"{what} must be an object", what)
    _require(obj.get("id") not in (None, ""), f"{what}.id is missing", f"{what}.id")
    return obj


def _status_transition(env: _Envelope, deal: dict, previous: dict | None) -> list[CrmEvent]:
    """won / lost only when `status` really changed (created counts as a change from nothing)."""
    status = deal.get("status")
    if previous is not None and ("status" not in previous or previous["status"] == status):
        return []
    if status in ("won", "lost"):
        return [env.event(f"deal.{status}", primary=False, pipeline_id=_sid(deal.get("pipeline_id")))]
    return []


def _deal_created(env: _Envelope) -> list[CrmEvent]:
    deal = _need(env.current, "data")
    return [env.event("deal.created", pipeline_id=_sid(deal.get("pipeline_id")))] + \
        _status_transition(env, deal, None)


def _deal_changed(env: _Envelope) -> list[CrmEvent]:
    deal = _need(env.current, "data")
    prev = env.previous or {}
    pipeline = _sid(deal.get("pipeline_id"))
    events = [env.event("deal.updated", pipeline_id=pipeline)]
    if "stage_id" in prev and prev["stage_id"] != deal.get("stage_id"):
        from_pipeline = _sid(prev.get("pipeline_id", deal.get("pipeline_id")))
        events.append(env.event("deal.stage_changed", primary=False, pipeline_id=pipeline,
                                from_stage_id=_sid(prev["stage_id"]), to_stage_id=_sid(deal.get("stage_id"))))
        events[-1].extra["from_pipeline_id"] = from_pipeline
    if env.previous is not None:
        events += _status_transition(env, deal, prev)
    return events


def _deal_deleted(env: _Envelope) -> list[CrmEvent]:
    last = env.previous or {}
    return [env.event("deal.deleted", pipeline_id=_sid(last.get("pipeline_id")))]


def _simple(kind: str, needs: str) -> Callable[[_Envelope], list[CrmEvent]]:
    def handle(env: _Envelope) -> list[CrmEvent]:
        if needs == "current":
            _need(env.current, "data")
        return [env.event(kind)]
    handle.__name__ = f"_{kind.replace('.', '_')}"
    return handle


def _activity_changed(env: _Envelope) -> list[CrmEvent]:
    """An activity marked done (`done` false -> true) is a task completed; other edits are not used.
    An activity created as done (a call logged after the fact) is a record of past work, not a
    completion, so only a change counts."""
    activity = _need(env.current, "data")
    prev = env.previous or {}
    if "done" in prev and not _done(prev["done"]) and _done(activity.get("done")):
        return [env.event("task.completed", object_type="task")]
    return []


def _done(value: Any) -> bool:
    return value is True or (isinstance(value, int) and not isinstance(value, bool) and value == 1)


def _ignored(env: _Envelope) -> list[CrmEvent]:
    return []


# Every (entity, action) Pipedrive sends that the hub knows about; anything else -> [].
DISPATCH: dict[tuple[str, str], Callable[[_Envelope], list[CrmEvent]]] = {
    ("deal", "create"): _deal_created,
    ("deal", "change"): _deal_changed,
    ("deal", "delete"): _deal_deleted,
    ("lead", "create"): _simple("lead.added", "current"),
    ("lead", "change"): _ignored,          # no hub kind yet (conversion to a deal arrives as deal.create)
    ("lead", "delete"): _ignored,
    ("person", "create"): _simple("person.created", "current"),
    ("person", "change"): _simple("person.updated", "current"),
    ("person", "delete"): _simple("person.deleted", "previous"),
    # v1 "merged": which side is which is not documented (FACTS §7); the survivor's own "updated"
    # event and the reconciliation poll carry the outcome, so nothing is guessed here.
    ("person", "merge"): _ignored,
    ("deal", "merge"): _ignored,
    ("activity", "change"): _activity_changed,
    ("activity", "create"): _ignored,      # created as done: past work logged, not a completion
    ("activity", "delete"): _ignored,
}


def normalize(payload: dict) -> list[CrmEvent]:
    """The hub events one delivery stands for (possibly none). Raises ValueError if malformed."""
    env = _envelope(payload)
    handler = DISPATCH.get((env.entity, env.action))
    if handler is None:
        return []
    _require(bool(env.object_id), "meta.entity_id is missing", "meta.entity_id")
    if env.action == "delete":
        _require(isinstance(env.previous, dict), "a delete needs the last state in 'previous'", "previous")
    return handler(env)


# -- reconciliation ---------------------------------------------------------------------------------

_TRANSITION_TIMES = {"won": "won_time", "lost": "lost_time"}


def reconcile_events(deal_before: dict | None, deal_now: dict) -> list[CrmEvent]:
    """Events implied by a deal's last known state and its state now (API v2 or webhook `data`),
    for the poll that catches what lost webhooks missed. Nothing happened unless `update_time`
    moved or a transition field (status, stage, pipeline, won/lost time) differs (other fields differ
    in form between the API and webhooks: custom fields, visible_to).

    A deal unknown before is `deal.created` (+ won/lost): the first poll of an install should store
    its baseline without emitting. Won -> won counts as a new win only when `won_time` moved (won,
    reopened and won again between two polls); the same for lost. Ids are derived from
    (deal id, kind, update_time), so the same comparison always yields the same ids."""
    _require(isinstance(deal_now, dict) and deal_now.get("id") not in (None, ""), "deal_now needs an id")
    deal_id = str(deal_now["id"])
    version = canonical_version(deal_now.get("update_time"))
    stamp = deal_now.get("update_time")

    def event(kind: str, previous: dict | None, **kw: Any) -> CrmEvent:
        return marked(CrmEvent(kind=kind, object_type="deal", object_id=deal_id,
                               event_id=f"pipedrive:reconcile:deal:{deal_id}:{kind}:{version or stamp}",
                               occurred_at=parse_time(stamp), current=deal_now, previous=previous,
                               pipeline_id=_sid(deal_now.get("pipeline_id")), version=version,
                               extra={"format": "reconcile"}, **kw))

    status = deal_now.get("status")
    if deal_before is None:
        events = [event("deal.created", None)]
        if status in _TRANSITION_TIMES and not deal_now.get("is_deleted"):
            events.append(event(f"deal.{status}", None))
        return events
    if deal_now.get("is_deleted") and not deal_before.get("is_deleted"):
        return [event("deal.deleted", {k: v for k, v in deal_before.items()})]
    watched = ("status", "stage_id", "pipeline_id", "won_time", "lost_time", "title", "value", "owner_id")
    previous = {k: deal_before.get(k) for k in watched if deal_before.get(k) != deal_now.get(k)}
    transitions = ("status", "stage_id", "pipeline_id", "won_time", "lost_time")
    if canonical_version(deal_before.get("update_time")) == version and not any(k in previous for k in transitions):
        # update_time has one-second resolution: a change within the second of the last known state
        # still shows in the transition fields, which compare alike in API and webhook data
        return []
    previous["update_time"] = deal_before.get("update_time")
    events = [event("deal.updated", previous)]
    if "stage_id" in previous:
        events.append(event("deal.stage_changed", previous, from_stage_id=_sid(deal_before.get("stage_id")),
                            to_stage_id=_sid(deal_now.get("stage_id"))))
        events[-1].extra["from_pipeline_id"] = _sid(deal_before.get("pipeline_id"))
    if status in _TRANSITION_TIMES:
        again = _TRANSITION_TIMES[status] in previous and deal_now.get(_TRANSITION_TIMES[status])
        if deal_before.get("status") != status or again:
            events.append(event(f"deal.{status}", previous))
    return events


def event_key(payload: Any) -> str:
    """The provider's id of this delivery's event (v2 `meta.id`; derived for v1), shared by retries.
    Raises ValueError for a payload that is not a Pipedrive webhook: the ingest answers 400."""
    return _envelope(payload).event_id


# -- the contract's Webhooks part ---------------------------------------------------------------------

def _verify(raw: RawRequest, secrets: Secrets) -> None:
    if not verify(raw.headers, secrets.user, secrets.password):
        raise Refused("Authorization: bad or missing credentials")


def _split(raw: RawRequest) -> list[Delivery]:
    """One event per request, stored as received."""
    payload = raw.json()
    env = _envelope(payload)
    return [Delivery(env.event_id, raw.body.decode("utf-8"), f"{env.entity}:{env.object_id}")]


def _normalize(delivery: Delivery, client: Any) -> list[CrmEvent]:
    return normalize(delivery.json())     # a delivery carries the object: no API call needed


def _poll(client: Any, since: datetime | None) -> Iterator[Snapshot]:
    """Deals changed since `since`, oldest change first (the runner checkpoints as it goes)."""
    for deal in client.iter_deals(updated_since=since):
        _require(isinstance(deal, dict) and deal.get("id") not in (None, ""), "a deal without an id", "data.id")
        yield Snapshot("deal", str(deal["id"]), deal.get("update_time"), bool(deal.get("is_deleted")), deal)


def _changes(known: dict | None, now: Snapshot) -> list[CrmEvent]:
    return reconcile_events(known, now.data)


WEBHOOKS = Webhooks(
    verify=_verify, split=_split, normalize=_normalize,
    kinds=frozenset({"deal.created", "deal.updated", "deal.won", "deal.lost", "deal.stage_changed", "deal.deleted",
                     "lead.added", "person.created", "person.updated", "person.deleted", "task.completed"}),
    routing="token",
    subscriptions=tuple(Subscription(action, obj) for action, obj in SUBSCRIPTIONS),
    subscribe=subscriptions.subscribe, unsubscribe=subscriptions.unsubscribe,
    poll=_poll, changes=_changes,
)
