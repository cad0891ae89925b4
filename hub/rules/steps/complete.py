"""Complete the tasks steps made for this record (links of this rule, or of every rule; earlier
steps of this run included), each through its own connector's `TaskTarget.complete`. Each
completed link is recorded as it happens, so a retry completes only the rest (and completing twice
is harmless anyway)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from ... import connectors
from ...store import utcnow
from ...store.models import RuleLink
from .. import connections
from .make import target_for


def _completer(connector: str, made: str) -> Any:
    """The connector's step kind whose objects of type `made` can be completed."""
    from ..kinds import connector_kinds

    return next((k for k in connector_kinds().values()
                 if k.connector == connector and k.makes == made and k.completes), None)


def run(ex: Any, step: Any, state: Any) -> None:
    p = ex.plan
    scope = step.settings.get("scope") or "record"
    with ex.services.db.begin() as session:
        query = select(RuleLink).where(RuleLink.installation_id == p.installation_id,
                                       RuleLink.object_type == p.object_type, RuleLink.object_id == p.object_id,
                                       RuleLink.made == "task", RuleLink.status == "open")
        if scope == "rule":
            query = query.where(RuleLink.rule_id == p.rule_id)
        links = [(link.id, link.connector, link.connection_id, link.made, link.external_id, link.name)
                 for link in session.scalars(query.order_by(RuleLink.id))]
    done: dict[str, str] = state.detail.setdefault("completed", {})
    for link_id, connector, connection_id, made, external_id, name in links:
        if str(link_id) in done:
            continue
        kind = _completer(connector, made) if connector in connectors.available() else None
        who = connections.title(connector)
        if kind is None:
            ex.note(f"{step.label}: {who} {made} {external_id} cannot be completed by the hub")
            continue
        target = target_for(ex, kind, ex.connection(connection_id, connector))
        status = target.complete(external_id)
        done[str(link_id)] = str(status)
        ex.made.append(f"{who} {made} {external_id} {status}")
        ex.save(state, now=True, trace_step="rule.completed",
                message=f"{who} {made} {external_id} ({name}): {status}"[:4000])
        with ex.services.db.begin() as session:
            session.execute(update(RuleLink).where(RuleLink.id == link_id).values(status="completed",
                                                                                  completed_at=utcnow()))
    if not links:
        ex.note(f"{step.label}: no open tasks were made for this {p.object_type}")
