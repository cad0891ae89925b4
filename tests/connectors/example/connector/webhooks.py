"""Example CRM deliveries -> neutral `CrmEvent`s; their signature checked on the raw body.

Verification (../API.md "Webhooks"): `X-Example-Signature: sha256=<hex>` is the HMAC-SHA256 of the
raw body keyed with the subscription's secret. The hub subscribes with the password it made for the
installation (`Credentials.password`), so that is what a delivery is checked against (`Secrets`);
the API secret never signs deliveries. Compared in constant time; anything else is refused.

Normalization, one delivery = one CRM change:
- `deal.created` -> deal.created (and deal.won / deal.lost for a deal created already closed);
- `deal.updated` -> deal.updated, then the transitions `previous` shows: deal.stage_changed when
  `stage_id` changed, deal.won / deal.lost when `status` changed to it;
- `deal.deleted` -> deal.deleted; `task.completed` -> task.completed.
The first event keeps the delivery's `id`; the transitions get `<id>:<kind>`, so a redelivery
reproduces the same ids. `version` is the object's `updated_at`. An unknown `type` gives no event;
a body that is not a delivery of this CRM raises MalformedPayload naming the field.

Reconciliation: `poll` reads the most recently updated deals; `changes` compares one with the state
the hub last knew and gives the transitions a lost delivery would have carried."""
from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone
from typing import Any, Iterable

from hub.connectors.contract.webhooks import (CrmEvent, Credentials, Delivery, Hook, MalformedPayload, RawRequest,
                                              Refused, Secrets, Snapshot, Subscribed, Subscription, Webhooks)

SIGNATURE_HEADER = "x-example-signature"
TYPES = ("deal.created", "deal.updated", "deal.deleted", "task.completed")
KINDS = frozenset({"deal.created", "deal.updated", "deal.won", "deal.lost", "deal.stage_changed", "deal.deleted",
                   "task.completed"})
SUBSCRIPTIONS = tuple(Subscription(action=t.split(".")[1], object=t.split(".")[0]) for t in TYPES)
POLL_LIMIT = 100


def verify(raw: RawRequest, secrets: Secrets) -> None:
    """Refused unless the body is signed with the installation's webhook secret."""
    if not secrets.password:
        raise Refused("X-Example-Signature: no secret to check it against")   # trust nothing unsigned
    sent = raw.header(SIGNATURE_HEADER) or ""
    if not sent.startswith("sha256="):
        raise Refused("X-Example-Signature: missing")
    wanted = hmac.new(secrets.password.encode(), raw.body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(sent[7:].strip().lower().encode(), wanted.encode()):
        raise Refused("X-Example-Signature: does not match the body")


def _require(cond: bool, field: str, message: str) -> None:
    if not cond:
        raise MalformedPayload(field, f"malformed Example CRM webhook: {field}: {message}")


def event_key(payload: Any) -> str:
    """The delivery's event id: the same on every redelivery of one change."""
    _require(isinstance(payload, dict), "body", "a JSON object")
    _require(isinstance(payload.get("id"), str) and 0 < len(payload["id"]) <= 200, "id",
             "a non-empty string of at most 200 characters")
    return payload["id"]


def split(raw: RawRequest) -> list[Delivery]:
    """One delivery per request; ordered per object so one deal's changes are taken in turn."""
    payload = raw.json()
    key = event_key(payload)
    kind, data = payload.get("type"), payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    ordering = f"{str(kind).split('.')[0]}:{obj.get('id')}" if isinstance(obj, dict) else ""
    return [Delivery.of_json(payload, key, ordering[:200])]


def _time(value: Any, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    _require(isinstance(value, str), field, "an RFC 3339 time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedPayload(field, f"malformed Example CRM webhook: {field}: an RFC 3339 time") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def events_of(payload: Any) -> list[CrmEvent]:
    event_id = event_key(payload)
    kind = payload.get("type")
    _require(isinstance(kind, str), "type", "a string")
    if kind not in TYPES:
        return []
    data = payload.get("data")
    _require(isinstance(data, dict), "data", "an object")
    obj, previous = data.get("object"), data.get("previous")
    _require(isinstance(obj, dict) and obj.get("id") not in (None, ""), "data.object", "an object with an id")
    _require(previous is None or isinstance(previous, dict), "data.previous", "an object")
    occurred = _time(payload.get("created_at"), "created_at")
    return _events(kind, obj, previous, event_id, occurred)


def _events(kind: str, obj: dict, previous: dict | None, event_id: str,
            occurred: datetime | None) -> list[CrmEvent]:
    object_type = kind.split(".", 1)[0]
    deleted = kind == "deal.deleted"
    stage = None if obj.get("stage_id") is None else str(obj["stage_id"])

    def event(what: str, primary: bool = False, shows: dict | None = None, **extra: Any) -> CrmEvent:
        return CrmEvent(kind=what, object_type=object_type, object_id=str(obj["id"]),
                        event_id=event_id if primary else f"{event_id}:{what}", occurred_at=occurred,
                        current=None if deleted else dict(obj), previous=dict(obj) if deleted else previous,
                        version=obj.get("updated_at"), shows=shows, **extra)

    if kind in ("deal.deleted", "task.completed"):
        return [event(kind, True, {"status": "completed"} if kind == "task.completed" else None)]
    events = [event(kind, True, {} if kind == "deal.created" else None, to_stage_id=stage)]
    changed = previous or {}
    if kind == "deal.updated" and "stage_id" in changed and changed["stage_id"] != obj.get("stage_id"):
        before = changed["stage_id"]
        events.append(event("deal.stage_changed", shows={"stage_id": obj.get("stage_id")}, to_stage_id=stage,
                            from_stage_id=None if before is None else str(before)))
    status = obj.get("status")
    if status in ("won", "lost") and (kind == "deal.created" or changed.get("status", status) != status):
        events.append(event(f"deal.{status}", shows={"status": status}, to_stage_id=stage))
    return events


def normalize(delivery: Delivery, client: Any) -> list[CrmEvent]:
    """The delivery carries the whole object: no API call, whatever `client` is."""
    return events_of(delivery.json())


# -- subscriptions ----------------------------------------------------------------------------------
def _types() -> list[str]:
    return [f"{s.object}.{s.action}" for s in SUBSCRIPTIONS]


def subscribe(client: Any, url: str, credentials: Credentials, ours: str) -> Subscribed:
    """One webhook for every type at `url`, signed with the hub's password; ours elsewhere go.
    The CRM never shows a webhook's secret, so a kept one is trusted to carry the current password
    only because the hub makes that password once per installation."""
    done = Subscribed()
    wanted = sorted(_types())
    for hook in client.webhooks():
        as_hook = Hook(remote_id=str(hook["id"]), action="*", object="*")
        if hook["url"] == url and sorted(hook["events"]) == wanted and not done.kept:
            done.kept.append(as_hook)
        elif hook["url"].startswith(ours):
            client.unsubscribe(hook["id"])
            done.deleted += 1
    if not done.kept:
        made = client.subscribe(url, credentials.password, wanted)
        done.created.append(Hook(remote_id=str(made["id"]), action="*", object="*"))
    return done


def unsubscribe(client: Any, remote_id: str) -> None:
    client.unsubscribe(remote_id)


# -- reconciliation ---------------------------------------------------------------------------------
def poll(client: Any, since: datetime | None) -> Iterable[Snapshot]:
    if since is not None and since.tzinfo is None:      # the core's cursor is naive UTC
        since = since.replace(tzinfo=timezone.utc)
    for deal in client.deals(POLL_LIMIT):
        updated = _time(deal.get("updated_at"), "updated_at")
        if since is not None and updated is not None and updated <= since:
            break   # newest first: the rest are older still
        yield Snapshot("deal", str(deal["id"]), deal.get("updated_at"), False, deal)


def changes(known: dict[str, Any] | None, now: Snapshot) -> list[CrmEvent]:
    """What the hub missed between its last known state and `now` (a won deal, a moved one)."""
    obj = now.data
    key = f"poll:{now.object_type}:{now.object_id}:{now.version}"
    if known is None:
        return _events("deal.created", obj, None, key, None)
    previous = {k: known.get(k) for k in ("stage_id", "status") if known.get(k) != obj.get(k)}
    return _events("deal.updated", obj, previous, key, None) if previous else []


WEBHOOKS = Webhooks(verify=verify, split=split, normalize=normalize, kinds=KINDS, routing="token",
                    subscriptions=SUBSCRIPTIONS, subscribe=subscribe, unsubscribe=unsubscribe,
                    poll=poll, changes=changes)
