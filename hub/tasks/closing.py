"""Closing a deal (won, lost) or a lead (converted, closed) completes its open linked tasks, in
whatever target each was made, unless the installation turned it off. A task under control goes to
review ("awaiting_review") instead.

Once: the event is recorded once per occurrence (a redelivery or the reconciliation poll finds it
known and calls no subscriber), the job has a dedupe key per event, and each task's link is marked
as soon as the target answers, so a retry completes only the rest. Tasks made by rules of the same
event (a rule that creates the invoice task when the deal is won) are left open. The job shares
its ordering key with the record's rule runs, so it never completes a task while a rule of the same
record is completing it. The run log, under the event, says what was completed or why not."""
from __future__ import annotations

from typing import Any

from ..connectors.retry import BudgetExhausted, renew_budget
from ..errors import Fatal, NeedsReauth
from ..events import subscribe, trace
from ..jobs import JobContext, handler
from ..rules import connections
from ..rules.steps.complete import complete_one, completer, open_links
from ..rules.steps.make import make_target
from ..store import HubEvent, Installation
from ..store.models import RuleLink
from . import mirror, settings

CLOSING = {"deal.won": "deal", "deal.lost": "deal", "lead.converted": "lead", "lead.closed": "lead"}
JOB_KIND = "tasks.close"


@subscribe
def on_closed(services: Any, session, event: HubEvent) -> None:
    if CLOSING.get(event.kind) != event.object_type:
        return
    links = open_links(session, event.installation_id, event.object_type, event.object_id,
                       not_from_event=event.id)
    if not links:
        return
    what = f"{event.kind} {event.object_type} {event.object_id}"
    if not settings.closes(session, event.installation_id, event.object_type):
        trace(session, event.installation_id, "tasks.close_off",
              f"{what}: its {len(links)} open linked task(s) stay open (turned off in the settings)",
              status="info", hub_event_id=event.id)
        return
    job_id = services.queue.enqueue(
        session, JOB_KIND, {"hub_event_id": event.id}, installation_id=event.installation_id,
        ordering_key=f"rules:{event.installation_id}:{event.object_type}:{event.object_id}",
        dedupe_key=f"{JOB_KIND}:{event.id}")
    trace(session, event.installation_id, "tasks.close_queued",
          f"{what}: completing its {len(links)} open linked task(s)", status="info", hub_event_id=event.id,
          job_id=job_id)


@handler(JOB_KIND)
def close_tasks(ctx: JobContext) -> None:
    services = ctx.app.extensions["hub"]
    event_id = int(ctx.payload["hub_event_id"])
    with services.db.begin() as session:
        event = session.get(HubEvent, event_id)
        installation = session.get(Installation, event.installation_id) if event is not None else None
        if event is None or installation is None or installation.status != "active":
            return
        installation_id, object_type, object_id, kind = (event.installation_id, event.object_type,
                                                         event.object_id, event.kind)
        what = f"{kind} {object_type} {object_id}"
        if not settings.closes(session, installation_id, object_type):
            trace(session, installation_id, "tasks.close_off", f"{what}: turned off in the settings before the "
                  "tasks were completed; they stay open", status="info", hub_event_id=event_id, job_id=ctx.job_id)
            return
        links = open_links(session, installation_id, object_type, object_id, not_from_event=event_id)

    def log(step: str, message: str, status: str = "ok") -> None:
        with services.db.begin() as session:
            trace(session, installation_id, step, f"{what}: {message}"[:4000], status=status, hub_event_id=event_id,
                  job_id=ctx.job_id)

    refused: set[int | None] = set()      # connections that need a reconnection: their tasks wait
    for link in links:
        who = connections.title(link.connector)
        task = f"{who} {link.made} {link.external_id} ({link.name})"
        kind_ = completer(link.connector, link.made)
        if kind_ is None:
            log("tasks.close_skipped", f"{task} cannot be completed by the hub", "info")
            continue
        if link.connection_id in refused:
            continue
        try:
            with services.db.begin() as session:
                connection = connections.step_connection(session, installation_id, link.connection_id, link.connector)
                session.expunge(connection)
            status = complete_one(services, link, make_target(services, kind_, connection))
        except NeedsReauth as exc:
            refused.add(link.connection_id)
            log("tasks.close_failed", f"{task} not completed: {exc} (reconnect the account)", "error")
            continue
        except BudgetExhausted:
            raise
        except Fatal as exc:
            if getattr(exc, "status", None) in (403, 404, 410):     # deleted, or no longer visible: gone
                with services.db.begin() as session:
                    row = session.get(RuleLink, link.id)
                    if row is not None:
                        mirror.apply(session, row, services.queue.clock.now(), status="gone", detail=str(exc)[:200],
                                     checked=True)
                log("tasks.close_skipped", f"{task} is gone (deleted or no access): {exc}", "info")
            else:
                log("tasks.close_failed", f"{task} not completed: {exc}", "error")
            continue
        log("tasks.closed", f"{task}: {status.replace('_', ' ')}")
        renew_budget()   # that task is done: the next one has a fresh retry budget
