"""Livespace webhooks -> neutral `CrmEvent`s.

Subscriptions: Livespace has no API for them (FACTS §4): an administrator creates one in Account
settings -> Webhooks with the hub's endpoint URL for this installation (routing "token") and the
secret the hub shows them, which is the installation's webhook password (`Secrets.password`).
Saving or re-activating it sends the handshake: a POST with an EMPTY body that must be answered
200/204 within 3 seconds. The core routes by the URL's token first (an unknown token is 404), so an
empty body reaching `handshake` is the handshake of a known installation: answered 204, nothing
stored. Anything else must be a signed delivery; a body with nothing in it that is not exactly
empty is refused (401 unsigned, 400 once signed: it is no delivery).

Verification: `X-Livespace-Signature` is the hex HMAC-SHA256, keyed with the subscription's secret,
of the full endpoint URL and the raw body. HOW the two are joined is not published: the choice
lives in `signed_message` alone (PROVISIONAL: URL immediately followed by the body) so that one
line changes when it is confirmed. Compared in constant time, before the body is parsed.

Deliveries: `{"version", "name", "id", "timestamp", "webhook_delivery_attempt", "data"}`; `id` is
the webhook's UUID, the same on every attempt (the dedupe key); `data` is the object as it is now.
Normalization, one delivery = one change:
- deal.created -> deal.created (and deal.won / deal.lost for a deal created closed);
- deal.status_changed -> deal.won / deal.lost, or deal.updated when reopened;
- deal.stage_changed -> deal.stage_changed (to the deal's stage: its furthest checked step);
- deal.updated -> deal.updated; deal.deleted -> deal.deleted;
- todo.created -> task.created; todo.completed -> task.completed, with `task_type` (the todo's type
  name), `completed_by` ({"id", "email"}) and `links` ({"deal": [ids], "contact": [...],
  "company": [...]}) in `extra`.
Trigger names other than deal.created are not listed publicly [U]; unknown ones give no event.
The first event of a delivery keeps its `id`; a transition gets `<id>:<kind>`."""
from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone
from typing import Any, Iterable

from hub.connectors.contract.webhooks import (CrmEvent, Delivery, MalformedPayload, RawRequest, Refused, Reply,
                                              Secrets, Snapshot, Webhooks)
from hub.errors import Fatal

SIGNATURE_HEADER = "x-livespace-signature"
NAMES = ("deal.created", "deal.updated", "deal.status_changed", "deal.stage_changed", "deal.deleted",
         "todo.created", "todo.completed")
KINDS = frozenset({"deal.created", "deal.updated", "deal.won", "deal.lost", "deal.stage_changed", "deal.deleted",
                   "task.created", "task.completed"})


def signed_message(url: str, body: bytes) -> bytes:
    """PROVISIONAL (FACTS §4 [U]): the documented inputs are the full endpoint URL and the raw
    body; their layout is unconfirmed. The URL immediately followed by the body, no separator."""
    return url.encode() + body


def signature(secret: str, url: str, body: bytes) -> str:
    return hmac.new(secret.encode(), signed_message(url, body), hashlib.sha256).hexdigest()


def verify(raw: RawRequest, secrets: Secrets) -> None:
    """Refused unless signed with the installation's webhook secret over this URL and body."""
    if not secrets.password:
        raise Refused("X-Livespace-Signature: no secret to check it against")
    sent = (raw.header(SIGNATURE_HEADER) or "").strip().lower()
    if sent.startswith("sha256="):
        sent = sent[7:]
    if not sent:
        raise Refused("X-Livespace-Signature: missing")
    if not hmac.compare_digest(sent.encode(), signature(secrets.password, raw.url, raw.body).encode()):
        raise Refused("X-Livespace-Signature: does not match the URL and body")


def handshake(raw: RawRequest) -> Reply | None:
    """The activation ping of this installation's subscription: answered at once, nothing stored."""
    if raw.method == "POST" and raw.body == b"":
        return Reply(status=204)
    return None


def _require(cond: bool, field: str, message: str) -> None:
    if not cond:
        raise MalformedPayload(field, f"malformed Livespace webhook: {field}: {message}")


def _payload(value: Any) -> dict:
    _require(isinstance(value, dict), "body", "a JSON object")
    _require(isinstance(value.get("id"), str) and 0 < len(value["id"]) <= 200, "id",
             "a non-empty string of at most 200 characters")
    _require(isinstance(value.get("name"), str) and value["name"], "name", "the trigger's name")
    _require(isinstance(value.get("data"), dict), "data", "an object")
    attempt = value.get("webhook_delivery_attempt", 1)
    _require(isinstance(attempt, int) and not isinstance(attempt, bool) and attempt >= 1,
             "webhook_delivery_attempt", "a whole number from 1")
    return value


def split(raw: RawRequest) -> list[Delivery]:
    """One delivery per request, ordered per object (one deal's changes are taken in turn)."""
    _require(raw.body.strip() != b"", "body", "empty (only the handshake is empty, and it is answered first)")
    payload = _payload(raw.json())
    kind = payload["name"].split(".", 1)[0]
    object_id = payload["data"].get("id")
    ordering = f"{kind}:{object_id}" if object_id not in (None, "") else ""
    return [Delivery(payload["id"], raw.body.decode("utf-8"), ordering[:200])]


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace(" ", "T").replace("Z", "+00:00"))
    except ValueError:
        raise MalformedPayload("timestamp", "malformed Livespace webhook: timestamp: an RFC 3339 time") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def deal_events(name: str, deal: dict, event_id: str, occurred: datetime | None) -> list[CrmEvent]:
    deleted = name == "deal.deleted"
    stage = _text(deal.get("stage_id"))
    version = _text(deal.get("modified"))
    status = deal.get("status")

    def event(kind: str, primary: bool, shows: dict | None, occurrence: str | None = None, **extra: Any) -> CrmEvent:
        return CrmEvent(kind=kind, object_type="deal", object_id=str(deal["id"]),
                        event_id=event_id if primary else f"{event_id}:{kind}", occurred_at=occurred,
                        current=None if deleted else dict(deal), previous=dict(deal) if deleted else None,
                        pipeline_id=_text(deal.get("process_id")), to_stage_id=stage, version=version,
                        occurrence=occurrence, shows=shows,
                        extra={"process_name": deal.get("process_name"), "stage_name": deal.get("stage_name"),
                               "status": status, **extra})

    closed_at = _text(deal.get("status_change_date")) or version or event_id
    if name == "deal.created":
        events = [event("deal.created", True, {})]
        if status in ("won", "lost"):
            events.append(event(f"deal.{status}", False, {"status": status}, f"{status}:{closed_at}"))
        return events
    if name == "deal.status_changed":
        if status in ("won", "lost"):
            reason = deal.get(f"{status}_reason_name")
            return [event(f"deal.{status}", True, {"status": status}, f"{status}:{closed_at}", reason=reason)]
        return [event("deal.updated", True, None, reopened=True)]
    if name == "deal.stage_changed":
        return [event("deal.stage_changed", True, {"stage_id": deal.get("stage_id")}, f"stage:{stage}:{version}")]
    if name == "deal.deleted":
        return [event("deal.deleted", True, None)]
    return [event("deal.updated", True, None)]


def _links(todo: dict) -> dict[str, list[str]]:
    links: dict[str, list[str]] = {}
    for item in todo.get("objects") or ():
        if isinstance(item, dict) and item.get("object_type") and item.get("object_id"):
            links.setdefault(str(item["object_type"]), []).append(str(item["object_id"]))
    return links


def _email_of(client: Any, user_id: str | None) -> str:
    """The completing user's e-mail (one read of the account's users; "" when it cannot be had)."""
    if not user_id or client is None:
        return ""
    try:
        users = client.users()
    except Fatal:
        return ""
    return next((u.get("email") or "" for u in users if str(u.get("id")) == user_id), "")


def todo_events(name: str, todo: dict, event_id: str, occurred: datetime | None, client: Any) -> list[CrmEvent]:
    links = _links(todo)
    extra: dict[str, Any] = {"task_type": todo.get("type_name"), "task_type_id": _text(todo.get("type_id")),
                             "links": links, "deal_id": (links.get("deal") or [None])[0]}
    common = dict(object_type="task", object_id=str(todo["id"]), event_id=event_id, occurred_at=occurred,
                  current=dict(todo), previous=None, version=_text(todo.get("modified")))
    if name == "todo.created":
        return [CrmEvent(kind="task.created", shows={}, extra=extra, **common)]
    by = _text(todo.get("completed_by_id"))
    extra["completed_by"] = {"id": by, "email": _email_of(client, by)}
    done_at = _text(todo.get("completed_date")) or common["version"] or event_id
    return [CrmEvent(kind="task.completed", shows={"is_completed": "1"}, occurrence=f"completed:{done_at}",
                     extra=extra, **common)]


def events_of(payload: Any, client: Any = None) -> list[CrmEvent]:
    payload = _payload(payload)
    name, data = payload["name"], payload["data"]
    if name not in NAMES:
        return []
    _require(data.get("id") not in (None, ""), "data.id", "the object's id")
    occurred = _time(payload.get("timestamp"))
    if name.startswith("deal."):
        return deal_events(name, data, payload["id"], occurred)
    return todo_events(name, data, payload["id"], occurred, client)


def normalize(delivery: Delivery, client: Any) -> list[CrmEvent]:
    """The delivery carries the whole object; the client is touched only for who completed a task."""
    return events_of(delivery.json(), client)


# -- reconciliation ---------------------------------------------------------------------------------
POLL_PAGE = 100
POLL_MAX = 2000
EVER = "1970-01-01 00:00:00"


def poll(client: Any, since: datetime | None) -> Iterable[Snapshot]:
    """Deals changed since `since` (the newest `modified` the hub saw, so the account's own clock)."""
    changed = since.strftime("%Y-%m-%d %H:%M:%S") if since is not None else EVER
    for offset in range(0, POLL_MAX, POLL_PAGE):
        page = client.deals(POLL_PAGE, offset, modified_from=changed)
        for deal in page:
            if deal.get("id") not in (None, ""):
                yield Snapshot("deal", str(deal["id"]), _text(deal.get("modified")), False, deal)
        if len(page) < POLL_PAGE:
            return


def changes(known: dict[str, Any] | None, now: Snapshot) -> list[CrmEvent]:
    """What a lost delivery would have said: a new deal, a new stage, a win or a loss. The
    occurrence markers are the webhook's, so a late delivery and the poll make one event."""
    deal = now.data
    key = f"poll:deal:{now.object_id}:{now.version}"
    if known is None:
        return deal_events("deal.created", deal, key, None)
    events: list[CrmEvent] = []
    if known.get("stage_id") != deal.get("stage_id") and deal.get("stage_id"):
        events += deal_events("deal.stage_changed", deal, f"{key}:stage", None)
    if known.get("status") != deal.get("status"):
        events += deal_events("deal.status_changed", deal, f"{key}:status", None)
    return events


MANUAL_SETUP = ("Livespace has no API for webhook subscriptions: in Livespace open Account settings → Webhooks, "
                "add a subscription with the endpoint URL and the secret below, choose the deal and task "
                "triggers (deal.created, deal.status_changed, deal.stage_changed, deal.updated, todo.created, "
                "todo.completed) and activate it.")

WEBHOOKS = Webhooks(verify=verify, split=split, normalize=normalize, kinds=KINDS, routing="token",
                    handshake=handshake, manual_setup=MANUAL_SETUP, poll=poll, changes=changes)
