"""Complete the tasks steps made for a record (links of this rule, or of every rule; earlier
steps of this run included), each through its own connector's `TaskTarget.complete`. Each
completed link is recorded as it happens, so a retry completes only the rest (and completing twice
is harmless anyway). A task under control answers "awaiting_review": it waits for a person's
approval and is not sent again.

The same pieces (`open_links`, `completer`, `complete_one`) complete a closed deal's or lead's
tasks (hub/tasks/closing.py), so there is one way to complete a linked task."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select

from ... import connectors
from ...store import fast
from ...store.models import RuleLink, RuleRun
from .. import connections
from .make import target_for


@dataclass(frozen=True)
class OpenLink:
    id: int
    connector: str
    connection_id: int | None
    made: str
    external_id: str
    name: str


def open_links(session, installation_id: int, object_type: str, object_id: str, *, rule_id: int | None = None,
               not_from_event: int | None = None) -> list[OpenLink]:
    """The record's linked tasks still open (not completed, under review or gone). `not_from_event`
    leaves out tasks made by the runs of that event (a rule that makes a task when a deal is won)."""
    session.flush()
    query = _open_links_query(rule_id is not None, not_from_event is not None)
    return [OpenLink(*row) for row in fast.execute(session.connection(), query, {
        "b_installation": installation_id, "b_type": object_type, "b_id": str(object_id), "b_rule": rule_id,
        "b_event": not_from_event})]


@functools.lru_cache(maxsize=4)
def _open_links_query(by_rule: bool, not_from_event: bool):
    """Core, built once per shape: every closing event asks (most records have none)."""
    links = RuleLink.__table__
    query = select(links.c.id, links.c.connector, links.c.connection_id, links.c.made, links.c.external_id,
                   links.c.name).where(links.c.installation_id == bindparam("b_installation"),
                                       links.c.object_type == bindparam("b_type"),
                                       links.c.object_id == bindparam("b_id"), links.c.made == "task",
                                       links.c.status == "open")
    if by_rule:
        query = query.where(links.c.rule_id == bindparam("b_rule"))
    if not_from_event:
        query = query.where(links.c.run_id.not_in(select(RuleRun.id).where(RuleRun.hub_event_id == bindparam("b_event"))))
    return query.order_by(links.c.id)


def completer(connector: str, made: str) -> Any:
    """The connector's step kind whose objects of type `made` can be completed."""
    from ..kinds import connector_kinds

    if connector not in connectors.available():
        return None
    return next((k for k in connector_kinds().values()
                 if k.connector == connector and k.makes == made and k.completes), None)


def complete_one(services: Any, link: OpenLink, target: Any) -> str:
    """Complete one linked task; its link and status mirror say so at once (a retry skips it)."""
    from ...tasks import mirror

    status = str(target.complete(link.external_id))
    with services.db.begin() as session:
        mirror.completed(session, link.id, status, services.queue.clock.now())
    return status


def run(ex: Any, step: Any, state: Any) -> None:
    p = ex.plan
    scope = step.settings.get("scope") or "record"
    with ex.services.db.begin() as session:
        links = open_links(session, p.installation_id, p.object_type, p.object_id,
                           rule_id=p.rule_id if scope == "rule" else None)
    done: dict[str, str] = state.detail.setdefault("completed", {})
    for link in links:
        if str(link.id) in done:
            continue
        kind = completer(link.connector, link.made)
        who = connections.title(link.connector)
        if kind is None:
            ex.note(f"{step.label}: {who} {link.made} {link.external_id} cannot be completed by the hub")
            continue
        target = target_for(ex, kind, ex.connection(link.connection_id, link.connector))
        status = complete_one(ex.services, link, target)
        done[str(link.id)] = status
        ex.made.append(f"{who} {link.made} {link.external_id} {status}")
        ex.save(state, now=True, trace_step="rule.completed",
                message=f"{who} {link.made} {link.external_id} ({link.name}): {status}"[:4000])
    if not links:
        ex.note(f"{step.label}: no open tasks were made for this {p.object_type}")
