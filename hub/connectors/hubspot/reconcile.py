"""Reconciliation: deals, contacts and leads modified since a moment (search by
hs_lastmodifieddate), and what a lost webhook missed between the known state and the state now."""
from __future__ import annotations

import heapq
from datetime import datetime, timezone
from typing import Any, Iterator

from ..contract.webhooks import CrmEvent, MalformedPayload, Snapshot, canonical_time
from .objects import NEUTRAL, _READ, _ms, flat, modified_property, version_of

_POLLED = (("deal", "deals"), ("contact", "contacts"), ("lead", "leads"))


def poll(client: Any, since: datetime | None) -> Iterator[Snapshot]:
    """Deals, contacts and leads modified since `since`, oldest change first across all three (the
    runner checkpoints the newest version it has seen after each batch, so no type may run ahead)."""
    streams = [_changed(client, name, path, since) for name, path in _POLLED]
    return heapq.merge(*streams, key=lambda snapshot: snapshot.version or "")


def _changed(client: Any, name: str, path: str, since: datetime | None) -> Iterator[Snapshot]:
    modified = modified_property(path)
    body: dict[str, Any] = {"sorts": [{"propertyName": modified, "direction": "ASCENDING"}],
                            "properties": list(_READ[name])}
    if since is not None:
        moment = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        body["filterGroups"] = [{"filters": [{"propertyName": modified, "operator": "GTE",
                                              "value": str(int(moment.timestamp() * 1000))}]}]
    for record in client.iter_search(path, body):
        data = flat(record)
        if data is None or data.get("id") in (None, "None"):
            raise MalformedPayload("results.id", "a HubSpot record without an id")
        version = version_of(_ms(data.get(modified) or data.get("updatedAt")))
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
