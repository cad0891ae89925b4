"""The board: an installation's deals by pipeline stage, each card with the latest status of its
linked tasks (the most recently changed one when there are several, a count beside it; overdue
and gone shown as such).

Where the deals come from, and why: the hub's own object states (`ObjectState`, kept from every
deal event and from the reconciliation poll's baseline), not the CRM's API. A page view then costs
one indexed query and no provider call besides the cached pipeline catalog, whatever the number of
users looking; the CRM's "recent records" would cost calls on every view and see only a handful.
Each state is turned into a neutral `SourceRecord` by the CRM's own `CrmSource.load(current=...)`
(no API call when the state is given), so the pipeline and stage names come from the connector, for
any CRM. Bounded: the `SCAN` most recently changed deals plus up to `SCAN` deals with open linked
tasks; each column shows at most `per_stage` cards (its total is counted)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from ..connectors.contract.records import Carry
from ..errors import Fatal, NeedsReauth, Retriable
from ..rules import catalogs, connections
from ..rules.records import crm_source
from ..store import ObjectState
from ..store.models import RuleLink, TaskStatus
from .mirror import effective

SCAN = 1000                  # most recently changed deals considered (deals with tasks come on top)
PER_STAGE = 30
LABELS = {"not_viewed": "Not viewed", "viewed": "Viewed", "updated_by_other": "Updated by someone else",
          "in_progress": "In progress", "paused": "Paused", "awaiting_review": "Awaiting review",
          "deadline_changed": "Deadline changed", "summary_required": "Summary required", "overdue": "Overdue",
          "completed": "Completed", "deferred": "Deferred", "open": "Open", "gone": "Gone (deleted or no access)"}
LINK_STATUS = {"open": "open", "completed": "completed", "review": "awaiting_review", "gone": "gone"}


@dataclass
class TaskLine:
    status: str
    name: str
    url: str
    connector: str
    changed_at: datetime
    deadline: str


def _pipelines(loader: Any) -> list[dict[str, Any]]:
    """The CRM's pipelines with their stages in board order (`pipelines`), or one pipeline made of
    the flat `stages` list for a CRM without pipelines."""
    names = loader.names()
    if "pipelines" in names:
        return [{"id": str(p["id"]), "name": str(p["name"]),
                 "stages": [{"id": str(s["id"]), "name": str(s["name"])} for s in p.get("stages") or []]}
                for p in loader("pipelines") or []]
    if "stages" in names:
        return [{"id": "all", "name": "Deals",
                 "stages": [{"id": str(s["id"]), "name": str(s["name"])} for s in loader("stages") or []]}]
    return []


def _chunks(ids: list[str], size: int = 500):
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def task_lines(session, installation_id: int, object_type: str, object_ids: list[str], now: datetime
               ) -> dict[str, list[TaskLine]]:
    """object id -> its linked tasks with their mirrored status (the link's own before the mirror
    has a row; overdue as soon as the deadline passed, before the next check says so), most
    recently changed first."""
    out: dict[str, list[TaskLine]] = {}
    for chunk in _chunks(object_ids):
        query = (select(RuleLink, TaskStatus).outerjoin(TaskStatus, TaskStatus.link_id == RuleLink.id)
                 .where(RuleLink.installation_id == installation_id, RuleLink.object_type == object_type,
                        RuleLink.made == "task", RuleLink.object_id.in_(chunk)))
        for link, status in session.execute(query):
            if status is not None:
                shown = effective(status.status, status.due_at, now)
                changed = status.due_at if shown != status.status else status.status_changed_at
                line = TaskLine(shown, link.name, link.url, link.connector, changed, status.deadline)
            else:
                line = TaskLine(LINK_STATUS.get(link.status, "open"), link.name, link.url, link.connector,
                                link.completed_at or link.created_at, "")
            out.setdefault(link.object_id, []).append(line)
    for lines in out.values():
        lines.sort(key=lambda t: t.changed_at or datetime.min, reverse=True)
    return out


def _summary(lines: list[TaskLine]) -> dict[str, Any] | None:
    if not lines:
        return None
    latest = lines[0]
    return {"count": len(lines),
            "open": sum(t.status not in ("completed", "gone") for t in lines),
            "overdue": sum(t.status == "overdue" for t in lines),
            "gone": sum(t.status == "gone" for t in lines),
            "latest": {"status": latest.status, "label": LABELS.get(latest.status, latest.status),
                       "name": latest.name, "url": latest.url, "target": connections.title(latest.connector),
                       "changed_at": latest.changed_at.isoformat(timespec="seconds") + "Z" if latest.changed_at else None,
                       "deadline": latest.deadline or None}}


def build(services: Any, installation_id: int, pipeline_id: str | None = None, per_stage: int = PER_STAGE
          ) -> dict[str, Any]:
    """The board of one pipeline (the first when none is asked for)."""
    warnings: list[str] = []
    columns_of = (ObjectState.object_id, ObjectState.data, ObjectState.updated_at)
    with services.db.begin() as session:
        connection = connections.crm_connection(session, installation_id)
        session.expunge(connection)
        recent = session.execute(select(*columns_of).where(
            ObjectState.installation_id == installation_id, ObjectState.object_type == "deal",
            ObjectState.deleted.is_(False)).order_by(ObjectState.updated_at.desc()).limit(SCAN)).all()
        # deals with tasks still open, the most recently linked first, even when the deal is quiet
        with_open = list(session.scalars(select(RuleLink.object_id).where(
            RuleLink.installation_id == installation_id, RuleLink.object_type == "deal", RuleLink.made == "task",
            RuleLink.status.in_(("open", "review"))).group_by(RuleLink.object_id)
            .order_by(func.max(RuleLink.id).desc()).limit(SCAN)))
        seen = {r.object_id for r in recent}
        extra = []
        for chunk in _chunks([i for i in with_open if i not in seen]):
            extra += session.execute(select(*columns_of).where(
                ObjectState.installation_id == installation_id, ObjectState.object_type == "deal",
                ObjectState.deleted.is_(False), ObjectState.object_id.in_(chunk))).all()
        rows = list(recent) + list(extra)
        lines = task_lines(session, installation_id, "deal", [r.object_id for r in rows], services.queue.clock.now())
    try:
        pipelines = _pipelines(catalogs.Loader(services, connection))
    except (Fatal, NeedsReauth, Retriable) as exc:
        pipelines = []
        warnings.append(f"the CRM's pipelines could not be read: {exc}")
    source = crm_source(services, connection)
    cards: list[dict[str, Any]] = []
    for row in rows:
        if not row.data:
            continue      # a deal the hub knows only by id: nothing to place it with
        record_warnings: list[str] = []
        try:
            record = source.load("deal", row.object_id, dict(row.data), Carry(), record_warnings)
        except (Fatal, ValueError, KeyError, TypeError):
            continue
        tasks = _summary(lines.get(row.object_id, []))
        cards.append({"id": str(row.object_id), "title": record.title or f"Deal {row.object_id}", "url": record.url,
                      "amount": record.amount, "status": record.status, "owner": record.owner,
                      "pipeline": record.pipeline, "stage": record.stage, "tasks": tasks,
                      "_sort": ((tasks or {}).get("latest") or {}).get("changed_at") or "",
                      "_updated": row.updated_at})
    chosen = next((p for p in pipelines if p["id"] == pipeline_id), pipelines[0] if pipelines else None)
    if pipeline_id and (chosen is None or chosen["id"] != pipeline_id):
        raise LookupError("pipeline_id: no such pipeline in the CRM")
    single = len(pipelines) == 1 and pipelines[0]["id"] == "all"
    columns: list[dict[str, Any]] = []
    if chosen is not None:
        for stage in chosen["stages"]:
            columns.append({"id": stage["id"], "name": stage["name"], "cards": []})
    by_name = {c["name"]: c for c in columns}
    other = {"id": "", "name": "Other stages", "cards": []}
    for card in cards:
        if chosen is not None and not single and card["pipeline"] not in (None, chosen["name"]):
            continue
        (by_name.get(card["stage"]) or other)["cards"].append(card)
    if other["cards"]:
        columns.append(other)
    for column in columns:
        column["cards"].sort(key=lambda c: (c["_sort"], c["_updated"]), reverse=True)
        column["total"] = len(column["cards"])
        column["cards"] = [{k: v for k, v in c.items() if not k.startswith("_")} for c in column["cards"][:per_stage]]
    return {"pipelines": [{"id": p["id"], "name": p["name"]} for p in pipelines],
            "pipeline_id": chosen["id"] if chosen else None, "columns": columns, "warnings": warnings,
            "statuses": LABELS}
