"""Example CRM deliveries -> neutral `CrmEvent`s; verification of their signature on the raw body.

Verification (../API.md "Webhooks"): `X-Example-Signature: sha256=<hex>` is the HMAC-SHA256 of
the raw body keyed with the subscription's secret, which the hub chose when it subscribed (so the
API secret never has to sign deliveries). Compared in constant time; anything else is refused.

Normalization, one delivery = one CRM change:
- `deal.created` -> deal.created (and deal.won / deal.lost for a deal created already closed);
- `deal.updated` -> deal.updated, then the transitions `previous` shows: deal.stage_changed when
  `stage_id` changed, deal.won / deal.lost when `status` changed to it;
- `deal.deleted` -> deal.deleted; `task.completed` -> task.completed.
The first event keeps the delivery's `id`; the transitions get `<id>:<kind>`, so a redelivery
reproduces the same ids. `version` is the object's `updated_at` (RFC 3339 UTC with microseconds,
which sorts as text). An unknown `type` gives no event; a body that is not a delivery of this CRM
raises MalformedPayload naming the field."""
from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone
from typing import Any, Mapping

from hub.connectors.base import CrmEvent, MalformedPayload

SIGNATURE_HEADER = "X-Example-Signature"
TYPES = ("deal.created", "deal.updated", "deal.deleted", "task.completed")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def verify_signature(headers: Mapping[str, str], body: bytes, secret: str | None) -> bool:
    """True when the delivery is signed with `secret` (a missing secret trusts nothing)."""
    if not secret:
        return False
    sent = _header(headers, SIGNATURE_HEADER) or ""
    if not sent.startswith("sha256="):
        return False
    wanted = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(sent[7:].strip().lower().encode(), wanted.encode())


def _require(cond: bool, field: str, message: str) -> None:
    if not cond:
        raise MalformedPayload(field, f"malformed Example CRM webhook: {field}: {message}")


def event_key(payload: Any) -> str:
    """The delivery's event id: the same on every redelivery of one change."""
    _require(isinstance(payload, dict), "body", "a JSON object")
    _require(isinstance(payload.get("id"), str) and bool(payload["id"]), "id", "a non-empty string")
    return payload["id"]


def _time(value: Any, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    _require(isinstance(value, str), field, "an RFC 3339 time")
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedPayload(field, f"malformed Example CRM webhook: {field}: an RFC 3339 time") from None
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def normalize(payload: Any) -> list[CrmEvent]:
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
    object_type = kind.split(".", 1)[0]
    deleted = kind == "deal.deleted"

    def event(what: str, primary: bool = False, **extra: Any) -> CrmEvent:
        return CrmEvent(kind=what, object_type=object_type, object_id=str(obj["id"]),
                        event_id=event_id if primary else f"{event_id}:{what}", occurred_at=occurred,
                        current=None if deleted else dict(obj), previous=dict(obj) if deleted else previous,
                        version=obj.get("updated_at"), **extra)

    if kind in ("deal.deleted", "task.completed"):
        return [event(kind, True)]
    stage = str(obj["stage_id"]) if obj.get("stage_id") is not None else None
    first = event(kind, True, to_stage_id=stage)
    events = [first]
    changed = previous or {}
    if kind == "deal.updated" and "stage_id" in changed and changed["stage_id"] != obj.get("stage_id"):
        events.append(event("deal.stage_changed", to_stage_id=stage,
                            from_stage_id=None if changed["stage_id"] is None else str(changed["stage_id"])))
    status = obj.get("status")
    reached = kind == "deal.created" or ("status" in changed and changed["status"] != status)
    if reached and status in ("won", "lost"):
        events.append(event(f"deal.{status}", to_stage_id=stage))
    return events
