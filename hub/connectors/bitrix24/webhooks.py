"""Bitrix24's event deliveries -> neutral events, and the connector's `WEBHOOKS` part (FACTS §3).

Deliveries are form-encoded POSTs to one app-wide URL: `event` (ONCRMDEALUPDATE ...),
`event_handler_id`, `data[...]` (ids only), `ts`, `auth[...]` (`member_id` names the portal, the
account; `application_token` proves the sender). There is no signature: `verify` compares
`auth[application_token]` with the token the hub keeps for the installation, which a delivery with
a working access token hands over first (`claim`; the install event ONAPPINSTALL replaces it on a
reinstall). ONAPPUNINSTALL, verified like the rest, ends the installation.

Only what the hub needs is stored (event, ts, handler id, data, member id and domain): the tokens a
delivery carries never reach the inbox.

Events carry ids only, so `normalize` reads the object and hands it back as a `Snapshot`; the core
compares it with the state it knows through `changes`, exactly as the reconciliation poll does
(deals, leads and tasks changed since the cursor). One comparison, two ways in: a transition
reported by a webhook and found again by a poll is one event (Bitrix24 never retries a delivery,
so the poll is what makes a dropped one good).

Transitions (`changes(known, now)`):
- deal: `deal.created` the first time; `deal.stage_changed` when STAGE_ID moved; `deal.won` /
  `deal.lost` when STAGE_SEMANTIC_ID became S / F; `deal.updated` for any newer version;
- lead: `lead.added`; `lead.stage_changed` (STATUS_ID); `lead.converted` / `lead.closed` when
  STATUS_SEMANTIC_ID became S / F;
- task: `task.created`; `task.status_changed` when its neutral status (statuses.py) changed or its
  deadline moved (`deadline_changed`); `task.completed` when it became completed. Task events carry
  `extra["status"]`, the `deal_id` / `lead_id` it is bound to (UF_CRM_TASK), its `deadline` and
  `responsible`.
Occurrence markers date each transition by the object's own clock (MOVED_TIME for stages, the
task's status change date), so a webhook and a poll of one transition share a row."""
from __future__ import annotations

import heapq
import hmac
import json
import secrets
from datetime import datetime, timezone
from typing import Any, Iterator

from ..contract.webhooks import (CrmEvent, Delivery, MalformedPayload, RawRequest, Refused, Secrets, Snapshot,
                                 Subscription, TokenClaim, Webhooks, canonical_time)
from . import statuses, subscriptions

# event -> (object type, what happened)
EVENTS: dict[str, tuple[str, str]] = {
    "ONCRMDEALADD": ("deal", "add"), "ONCRMDEALUPDATE": ("deal", "update"), "ONCRMDEALDELETE": ("deal", "delete"),
    "ONCRMLEADADD": ("lead", "add"), "ONCRMLEADUPDATE": ("lead", "update"), "ONCRMLEADDELETE": ("lead", "delete"),
    "ONTASKADD": ("task", "add"), "ONTASKUPDATE": ("task", "update"), "ONTASKDELETE": ("task", "delete"),
    "ONAPPINSTALL": ("app", "install"), "ONAPPUNINSTALL": ("app", "uninstall"),
}
_READ = {"deal": "deal", "lead": "lead", "task": "task"}
_MAX_ID = 10 ** 18


def _bad(field: str, message: str) -> MalformedPayload:
    return MalformedPayload(field, f"not a Bitrix24 event: {message}")


# -- the form body ------------------------------------------------------------------------------------

def nested(form: dict[str, str]) -> dict[str, Any]:
    """`data[FIELDS][ID]=7` -> {"data": {"FIELDS": {"ID": "7"}}} (the shape the docs show)."""
    out: dict[str, Any] = {}
    for key, value in form.items():
        head, _, rest = key.partition("[")
        path = [head] + ([p for p in rest.rstrip("]").split("][")] if rest else [])
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if not isinstance(node.get(path[-1]), dict):
            node[path[-1]] = value
    return out


def parse(raw: RawRequest) -> dict[str, Any]:
    if "json" in (raw.content_type or "").lower():
        raise _bad("body", "deliveries are form-encoded (application/x-www-form-urlencoded)")
    form = raw.form
    body = nested(form)
    event = body.get("event")
    if not isinstance(event, str) or not event.strip():
        raise _bad("event", "the form has no event")
    auth = body.get("auth")
    if not isinstance(auth, dict) or not str(auth.get("member_id") or "").strip():
        raise _bad("auth[member_id]", "the form names no portal (auth[member_id])")
    body["event"] = event.strip().upper()
    return body


def account_key(raw: RawRequest) -> str | None:
    return str(parse(raw)["auth"]["member_id"]).strip()


def _object_id(body: dict[str, Any]) -> tuple[str, str]:
    """(object type, id) the delivery is about; ("app", "") for the app's own events."""
    kind, _ = EVENTS.get(body["event"], ("other", ""))
    if kind in ("app", "other"):
        return kind, ""
    data = body.get("data")
    if not isinstance(data, dict):
        raise _bad("data", f"{body['event']} carries no data")
    if kind == "task":   # the side that is not "undefined" (an add has no before, a delete no after)
        holder = next((h for h in (data.get("FIELDS_AFTER"), data.get("FIELDS_BEFORE")) if isinstance(h, dict)), None)
    else:
        holder = data.get("FIELDS")
    where = "data[FIELDS][ID]" if kind != "task" else "data[FIELDS_AFTER][ID]"
    ident = holder.get("ID") if isinstance(holder, dict) else None
    text = str(ident or "").strip()
    if not text.isdigit() or not 0 < int(text) < _MAX_ID:
        raise _bad(where, f"{body['event']} names no {kind} id")
    return kind, str(int(text))


# -- verification ---------------------------------------------------------------------------------------

def verify(raw: RawRequest, secrets: Secrets) -> None:
    try:
        sent = str(parse(raw)["auth"].get("application_token") or "")
    except MalformedPayload:
        raise Refused("auth[application_token]: not a Bitrix24 delivery") from None
    if not secrets.token:
        raise Refused("auth[application_token]: the hub holds no token for this portal yet")
    if not sent or not hmac.compare_digest(sent.encode(), secrets.token.encode()):
        raise Refused("auth[application_token]: does not match this portal's")


def claim(raw: RawRequest) -> TokenClaim | None:
    """A delivery with an access token offers its application token (ONAPPINSTALL: a new one)."""
    body = parse(raw)
    auth = body["auth"]
    token, access = str(auth.get("application_token") or ""), str(auth.get("access_token") or "")
    if not token or not access:
        return None
    proof = {"access_token": access, "member_id": str(auth.get("member_id") or "")}
    return TokenClaim(token=token, proof=proof, replaces=body["event"] == "ONAPPINSTALL")


def ends_installation(raw: RawRequest) -> bool:
    return parse(raw)["event"] == "ONAPPUNINSTALL"


def split(raw: RawRequest) -> list[Delivery]:
    """One event per request, stored without the tokens it carried."""
    body = parse(raw)
    kind, ident = _object_id(body)
    kept = {"event": body["event"], "ts": str(body.get("ts") or ""),
            "event_handler_id": str(body.get("event_handler_id") or ""),
            "data": body.get("data") if isinstance(body.get("data"), dict) else {},
            "auth": {k: str(body["auth"].get(k) or "") for k in ("member_id", "domain")}}
    text = json.dumps(kept, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    # Bitrix24 gives a delivery no id and never retries one, and two changes of one object within a
    # second send identical bodies: each request is its own delivery (a repeat costs one read that
    # finds nothing new, since normalize compares with the known state)
    key = f"{body['event']}:{ident or '-'}:{kept['ts']}:{secrets.token_hex(8)}"
    return [Delivery(key[:200], text, f"{kind}:{ident}" if ident else kind)]


# -- normalize -------------------------------------------------------------------------------------------

def _version(kind: str, data: dict[str, Any]) -> str | None:
    if kind == "task":
        value = statuses._get(data, "changedDate")
    else:
        value = data.get("DATE_MODIFY")
    return canonical_time(value) or None


def snapshot(kind: str, data: dict[str, Any]) -> Snapshot:
    ident = data.get("ID") if kind != "task" else statuses._get(data, "id")
    if ident in (None, ""):
        raise MalformedPayload(f"{kind}.ID", f"a Bitrix24 {kind} without an id")
    return Snapshot(kind, str(ident), _version(kind, data), False, dict(data))


def normalize(delivery: Delivery, client: Any) -> list[CrmEvent | Snapshot]:
    try:
        body = json.loads(delivery.body)
    except ValueError:
        raise MalformedPayload("body", "a stored Bitrix24 delivery is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("event"), str):
        raise MalformedPayload("event", "a stored Bitrix24 delivery names no event")
    kind, action = EVENTS.get(body["event"], ("other", ""))
    if kind in ("app", "other"):
        return []
    _, ident = _object_id(body)
    occurred = _ts(body.get("ts"))
    if action == "delete":
        if kind == "task":
            return [_gone_task(ident, delivery.key, occurred)]
        return [CrmEvent(kind=f"{kind}.deleted", object_type=kind, object_id=ident, event_id=delivery.key,
                         occurred_at=occurred, current=None, previous=None, occurrence="once")]
    data = getattr(client, _READ[kind])(ident)
    if data is None:
        return [_gone_task(ident, delivery.key, occurred)] if kind == "task" else []
    return [snapshot(kind, data)]


def _gone_task(ident: str, event_id: str, occurred: datetime | None) -> CrmEvent:
    """A task deleted, or no longer visible to the hub: linked tasks show `gone`."""
    return CrmEvent(kind="task.status_changed", object_type="task", object_id=ident, event_id=event_id,
                    occurred_at=occurred, current=None, previous=None, extra={"status": "gone"},
                    occurrence="gone", shows=None)


def _ts(value: Any) -> datetime | None:
    text = str(value or "").strip()
    if text.isdigit() and len(text) <= 11:
        return datetime.fromtimestamp(int(text), tz=timezone.utc)
    return None


# -- changes: the known state against the state now --------------------------------------------------

def _when(data: dict[str, Any], *names: str) -> datetime | None:
    for name in names:
        value = data.get(name) if name in data else statuses._get(data, name)
        if value:
            try:
                moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                continue
            return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return None


def _crm_event(kind: str, snap: Snapshot, known: dict | None, **kw: Any) -> CrmEvent:
    data = snap.data
    stamp = canonical_time(data.get("MOVED_TIME")) or snap.version or ""
    event = CrmEvent(kind=kind, object_type=snap.object_type, object_id=snap.object_id,
                     event_id=f"bitrix24:{snap.object_type}:{snap.object_id}:{kind}:{snap.version or stamp}",
                     occurred_at=_when(data, "MOVED_TIME", "DATE_MODIFY"), current=data, previous=known,
                     version=snap.version, **kw)
    what = kind.split(".", 1)[1]
    if what in ("created", "added"):
        event.occurrence, event.shows = "once", {}
    elif what in ("won", "lost", "converted", "closed"):
        field = "STAGE_ID" if snap.object_type == "deal" else "STATUS_ID"
        event.occurrence = f"{data.get(field)}@{stamp}"
        semantic = "STAGE_SEMANTIC_ID" if snap.object_type == "deal" else "STATUS_SEMANTIC_ID"
        event.shows = {semantic: data.get(semantic), "MOVED_TIME": data.get("MOVED_TIME")}
    elif what == "stage_changed":
        event.occurrence = f"{event.to_stage_id}@{stamp}"
        field = "STAGE_ID" if snap.object_type == "deal" else "STATUS_ID"
        event.shows = {field: event.to_stage_id, "MOVED_TIME": data.get("MOVED_TIME")}
    else:
        event.occurrence = snap.version or event.event_id
    return event


def _deal_changes(known: dict | None, snap: Snapshot) -> list[CrmEvent]:
    now = snap.data
    pipeline = str(now.get("CATEGORY_ID") if now.get("CATEGORY_ID") not in (None, "") else "0")
    semantic = str(now.get("STAGE_SEMANTIC_ID") or "")
    outcome = {"S": "deal.won", "F": "deal.lost"}.get(semantic)
    if known is None:
        events = [_crm_event("deal.created", snap, None, pipeline_id=pipeline, to_stage_id=now.get("STAGE_ID"))]
        if outcome:
            events.append(_crm_event(outcome, snap, None, pipeline_id=pipeline, to_stage_id=now.get("STAGE_ID")))
        return events
    events: list[CrmEvent] = []
    moved = str(known.get("STAGE_ID") or "") != str(now.get("STAGE_ID") or "")
    if snap.version != _version("deal", known) or moved:
        events.append(_crm_event("deal.updated", snap, known, pipeline_id=pipeline))
    if moved:
        event = _crm_event("deal.stage_changed", snap, known, pipeline_id=pipeline,
                           from_stage_id=_s(known.get("STAGE_ID")), to_stage_id=_s(now.get("STAGE_ID")))
        event.extra["from_pipeline_id"] = _s(known.get("CATEGORY_ID"))
        events.append(event)
    was = str(known.get("STAGE_SEMANTIC_ID") or "")
    if outcome and was != semantic:       # won at one final stage, moved to another won one: no new win
        events.append(_crm_event(outcome, snap, known, pipeline_id=pipeline, from_stage_id=_s(known.get("STAGE_ID")),
                                 to_stage_id=_s(now.get("STAGE_ID"))))
    return events


def _lead_changes(known: dict | None, snap: Snapshot) -> list[CrmEvent]:
    now = snap.data
    semantic = str(now.get("STATUS_SEMANTIC_ID") or "")
    outcome = {"S": "lead.converted", "F": "lead.closed"}.get(semantic)
    if known is None:
        events = [_crm_event("lead.added", snap, None, to_stage_id=_s(now.get("STATUS_ID")))]
        if outcome:
            events.append(_crm_event(outcome, snap, None, to_stage_id=_s(now.get("STATUS_ID"))))
        return events
    events = []
    if str(known.get("STATUS_ID") or "") != str(now.get("STATUS_ID") or ""):
        events.append(_crm_event("lead.stage_changed", snap, known, from_stage_id=_s(known.get("STATUS_ID")),
                                 to_stage_id=_s(now.get("STATUS_ID"))))
        if outcome and str(known.get("STATUS_SEMANTIC_ID") or "") != semantic:
            events.append(_crm_event(outcome, snap, known, from_stage_id=_s(known.get("STATUS_ID")),
                                     to_stage_id=_s(now.get("STATUS_ID"))))
    return events


def _task_event(kind: str, snap: Snapshot, known: dict | None, status: str) -> CrmEvent:
    data = snap.data
    when = _when(data, "statusChangedDate", "changedDate") if kind != "task.created" else _when(data, "createdDate")
    stamp = canonical_time(when) if when else (snap.version or "")
    responsible = statuses._get(data, "responsible")
    extra = {"status": status, **statuses.links(data), "deadline": statuses._get(data, "deadline") or None,
             "responsible": str((responsible.get("name") if isinstance(responsible, dict) else "")
                                or statuses._get(data, "responsibleId") or "")}
    event = CrmEvent(kind=kind, object_type="task", object_id=snap.object_id,
                     event_id=f"bitrix24:task:{snap.object_id}:{kind}:{snap.version or stamp}",
                     occurred_at=when, current=data, previous=known, version=snap.version, extra=extra)
    real = statuses.real_status(data)
    if kind == "task.created":
        event.occurrence, event.shows = "once", {}
    elif kind == "task.completed":
        closed = canonical_time(statuses._get(data, "closedDate")) or stamp
        event.occurrence, event.shows = closed, {"status": real}
    else:
        event.occurrence = f"{status}@{snap.version or stamp}"
        event.shows = None
    return event


def _task_changes(known: dict | None, snap: Snapshot) -> list[CrmEvent]:
    now = snap.data
    status = statuses.neutral(now)
    if known is None:
        events = [_task_event("task.created", snap, None, status)]
        if status == "completed":
            events.append(_task_event("task.completed", snap, None, status))
        return events
    before = statuses.neutral(known)
    deadline_moved = (canonical_time(statuses._get(known, "deadline")) != canonical_time(statuses._get(now, "deadline")))
    events = []
    if before != status:
        events.append(_task_event("task.status_changed", snap, known, status))
    elif deadline_moved and statuses.real_status(now) in statuses.OPEN_STATUSES and status != "overdue":
        events.append(_task_event("task.status_changed", snap, known, "deadline_changed"))
    if status == "completed" and before != "completed":
        events.append(_task_event("task.completed", snap, known, status))
    return events


def changes(known: dict | None, now: Snapshot) -> list[CrmEvent]:
    if now.object_type == "deal":
        return _deal_changes(known, now)
    if now.object_type == "lead":
        return _lead_changes(known, now)
    if now.object_type == "task":
        return _task_changes(known, now)
    return []


def _s(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


# -- poll ---------------------------------------------------------------------------------------------

def poll(client: Any, since: datetime | None) -> Iterator[Snapshot]:
    """Deals, leads and tasks changed since `since`, merged oldest change first, so the runner's
    cursor (the newest version it checkpointed) never passes an object it has not read."""
    streams = [(snapshot("deal", d) for d in client.changed("crm.deal.list", since)),
               (snapshot("lead", d) for d in client.changed("crm.lead.list", since)),
               (snapshot("task", t) for t in client.tasks_changed(since))]
    yield from heapq.merge(*streams, key=lambda s: s.version or "")


WEBHOOKS = Webhooks(
    verify=verify, split=split, normalize=normalize,
    kinds=frozenset({"deal.created", "deal.updated", "deal.won", "deal.lost", "deal.stage_changed", "deal.deleted",
                     "lead.added", "lead.stage_changed", "lead.converted", "lead.closed",
                     "task.created", "task.status_changed", "task.completed"}),
    routing="account", account_key=account_key,
    subscriptions=tuple(Subscription(e, "event") for e in subscriptions.EVENTS),
    subscribe=subscriptions.subscribe, unsubscribe=subscriptions.unsubscribe,
    poll=poll, changes=changes, claim=claim, ends_installation=ends_installation,
)
