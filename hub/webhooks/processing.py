"""The job that turns a stored webhook into hub events (and replays of failed ones)."""
from __future__ import annotations

import json
import logging

from ..errors import Fatal
from ..events import record, trace
from ..jobs import JobContext, handler
from ..store import InboxEvent
from .providers import provider_webhooks

log = logging.getLogger("hub.webhooks")


@handler("webhook.process")
def process(ctx: JobContext) -> None:
    services = ctx.app.extensions["hub"]
    session = ctx.session
    inbox = session.get(InboxEvent, ctx.payload["inbox_event_id"])
    if inbox is None or inbox.status == "processed":
        return
    module = provider_webhooks(inbox.provider)
    try:
        events = module.normalize(json.loads(inbox.body))
    except ValueError as exc:
        # a payload we cannot read will not improve: keep it visible and replayable, don't retry
        with ctx.db.begin() as own:
            row = own.get(InboxEvent, inbox.id)
            row.status, row.error = "failed", str(exc)[:2000]
            trace(own, inbox.installation_id, "error", f"could not normalize: {exc}", status="error",
                  inbox_event_id=inbox.id, job_id=ctx.job_id)
        raise Fatal(f"inbox event {inbox.id}: {exc}") from None
    recorded = 0
    for event in events:
        if record(services, session, inbox.installation_id, event, source="webhook", inbox_event_id=inbox.id):
            recorded += 1
    if not events:
        trace(session, inbox.installation_id, "ignored", "no event the hub uses", status="info",
              inbox_event_id=inbox.id, job_id=ctx.job_id)
    inbox.status = "processed" if events else "ignored"
    inbox.error = None
    inbox.processed_at = services.queue.clock.now()


def replay_inbox(services, installation_id: int, inbox_event_id: int) -> bool:
    """Run a failed (or ignored) webhook through the pipeline again; processed ones are left alone."""
    with services.db.begin() as session:
        inbox = session.get(InboxEvent, inbox_event_id)
        if inbox is None or inbox.installation_id != installation_id or inbox.status == "processed":
            return False
        inbox.status = "received"
        services.queue.enqueue(session, "webhook.process", {"inbox_event_id": inbox.id, "installation_id": installation_id})
        trace(session, installation_id, "replayed", f"inbox event {inbox.id} replayed", inbox_event_id=inbox.id)
        return True
