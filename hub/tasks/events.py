"""A CRM's task events (`task.created|task.status_changed|task.completed`, object_type "task",
extra `status` in neutral words, `deadline` and `responsible` when the connector knows them) update
the mirror of the tasks the hub linked: the CRM's own tasks that a rule step made there."""
from __future__ import annotations

from typing import Any

from ..connectors.contract.targets import TASK_STATUSES
from ..events import subscribe, trace
from ..store import HubEvent, Installation
from . import mirror

KINDS = ("task.created", "task.status_changed", "task.completed")


def status_of(event: HubEvent) -> str | None:
    extra = (event.data or {}).get("extra") or {}
    status = extra.get("status") or ("completed" if event.kind == "task.completed" else None)
    if status is None and event.kind == "task.created":
        status = "open"
    return status if status in TASK_STATUSES else None


@subscribe
def on_task_event(services: Any, session, event: HubEvent) -> None:
    if event.object_type != "task" or event.kind not in KINDS:
        return
    installation = session.get(Installation, event.installation_id)
    if installation is None:
        return
    links = mirror.links_of_task(session, event.installation_id, installation.provider, event.object_id)
    if not links:
        return   # a task the hub did not make: rules may still react to it, the mirror does not
    status = status_of(event)
    if status is None:
        trace(session, event.installation_id, "tasks.status",
              f"{event.kind} task {event.object_id}: no neutral status in the event; the check will read it",
              status="info", hub_event_id=event.id)
        return
    extra = (event.data or {}).get("extra") or {}
    now = services.queue.clock.now()
    for link in links:
        row = mirror.apply(session, link, now, status=status,
                           deadline=extra["deadline"] if "deadline" in extra else ...,
                           changed_at=event.occurred_at, responsible=extra.get("responsible"),
                           detail=extra.get("detail"))
        trace(session, event.installation_id, "tasks.status",
              f"task {event.object_id} of {link.object_type} {link.object_id}: {row.status}", status="info",
              hub_event_id=event.id)
