"""The job that turns a stored webhook into hub events; replays of failed webhooks and of recorded events."""
from __future__ import annotations

import logging
from uuid import uuid4

from sqlalchemy import bindparam, select

from ..connectors.contract.webhooks import Delivery, MalformedPayload, Snapshot
from ..errors import Fatal
from ..events import record_all, subscribers, trace
from ..inputs import InputError
from ..jobs import JobContext, handler
from ..oauth.connections import audit
from ..rules.engine import RULE_VERSIONS, active_rule_versions
from ..rules.replay import requeue_runs
from ..store import HubEvent, InboxEvent, fast
from ..store.db import transaction_memo
from ..store.models import RuleRun
from .providers import LazyClient, connector_webhooks, crm_api

log = logging.getLogger("hub.webhooks")


_INBOX = InboxEvent.__table__
_PROCESSED = _INBOX.update().where(_INBOX.c.id == bindparam("b_id")).values(
    status=bindparam("b_status"), error=None, processed_at=bindparam("b_at"))
# the delivery, read and marked processed in one statement (the job's transaction keeps or undoes it)
_TAKE_INBOX = _INBOX.update().where(_INBOX.c.id == bindparam("b_id"), _INBOX.c.status != "processed").values(
    status="processed", error=None, processed_at=bindparam("b_at")).returning(
    _INBOX.c.id, _INBOX.c.installation_id, _INBOX.c.provider, _INBOX.c.event_key, _INBOX.c.body)
# PostgreSQL: with the ids and row versions of the installation's active rules, so matching uses the
# rules this process has read already instead of reading them again (hub/rules/engine.py)
_TAKE_INBOX_PG = _TAKE_INBOX.returning(active_rule_versions(_INBOX.c.installation_id).label("rule_versions"))


@handler("webhook.process")
def process(ctx: JobContext) -> None:
    services = ctx.app.extensions["hub"]
    # read (and marked processed: one statement, not a read now and an update at the end) in the
    # job's own transaction; if the connector needs the API (a delivery that carries just an id),
    # that transaction is rolled back first (the mark with it), so no transaction waits on the
    # network, and the job's writes, the mark again, go in a new one after the call
    session = ctx.session
    postgres = services.db.is_postgres
    inbox = fast.execute(session.connection(), _TAKE_INBOX_PG if postgres else _TAKE_INBOX,
                         {"b_id": ctx.payload["inbox_event_id"], "b_at": services.queue.clock.now()}).first()
    if inbox is None:       # gone, or processed already
        return
    if postgres:
        transaction_memo(session, RULE_VERSIONS)[inbox.installation_id] = \
            tuple(tuple(pair) for pair in inbox.rule_versions or ())
    inbox_id, installation_id, provider = inbox.id, inbox.installation_id, inbox.provider
    hooks = connector_webhooks(provider)

    def api():
        session.rollback()
        return crm_api(services, installation_id)

    # its errors retry the job like any provider call (Retriable, NeedsReauth)
    client = LazyClient(api)
    try:
        if hooks is None:
            raise ValueError(f"no connector {provider!r} takes webhooks")
        events = hooks.normalize(Delivery(inbox.event_key, inbox.body), client)
    except ValueError as exc:
        if client.made and not isinstance(exc, (MalformedPayload, InputError)):
            raise   # an odd API answer, not the delivery's fault: the job retries
        # a payload we cannot read will not improve: keep it visible and replayable, don't retry
        session.rollback()
        with ctx.db.begin() as failed:
            failed.connection().execute(_INBOX.update().where(_INBOX.c.id == inbox_id).values(
                status="failed", error=str(exc)[:2000]))
            trace(failed, installation_id, "error", f"could not normalize: {exc}", status="error",
                  inbox_event_id=inbox_id, job_id=ctx.job_id)
        raise Fatal(f"inbox event {inbox_id}: {exc}") from None
    run: list = []          # events in a row are recorded together (record_all: one INSERT of their rows)
    for event in [*events, None]:
        if run and (event is None or isinstance(event, Snapshot)):
            record_all(services, session, installation_id, run, source="webhook", inbox_event_id=inbox_id)
            run = []
        if isinstance(event, Snapshot):   # the object read now: compared with its known state
            from .reconcile import compare
            compare(services, session, installation_id, hooks, event, "webhook", inbox_id)
        elif event is not None:
            run.append(event)
    if not events:
        trace(session, installation_id, "ignored", "no event the hub uses", status="info",
              inbox_event_id=inbox_id, job_id=ctx.job_id)
    session.flush()
    if client.made or not events:   # the first mark was rolled back before the call, or it is "ignored"
        fast.execute(session.connection(), _PROCESSED, {"b_id": inbox_id, "b_status": "processed" if events else "ignored",
                                                  "b_at": services.queue.clock.now()})


def replay_inbox(services, installation_id: int, inbox_event_id: int) -> bool:
    """Run a failed (or ignored) webhook through the pipeline again; processed ones are left alone."""
    with services.db.begin() as session:
        inbox = session.get(InboxEvent, inbox_event_id)
        if inbox is None or inbox.installation_id != installation_id or inbox.status == "processed":
            return False
        inbox.status = "received"
        services.queue.enqueue(session, "webhook.process", {"inbox_event_id": inbox.id, "installation_id": installation_id},
                               installation_id=installation_id)
        trace(session, installation_id, "replayed", f"inbox event {inbox.id} replayed", inbox_event_id=inbox.id)
        return True


def replay_event(services, installation_id: int, event_id: int, actor: str) -> dict | None:
    """Run a recorded event through matching again, and its finished rule runs (None: no such
    event of this installation). Nothing is done twice: a run keeps its effect key and each step
    its own (hub/rules/replay.py), and matching adds a run only for a rule that has none for this
    occurrence (a rule made or fixed since). An event that arrived late and was superseded
    (`data.stale.acted` false) is not matched again: the newer state already decided."""
    with services.db.begin() as session:
        event = session.get(HubEvent, event_id)
        if event is None or event.installation_id != installation_id:
            return None
        before = set(session.scalars(select(RuleRun.id).where(RuleRun.installation_id == installation_id,
                                                              RuleRun.hub_event_id == event.id)))
        again = requeue_runs(services, session, event, uuid4().hex[:12])
        stale = (event.data or {}).get("stale") or {}
        superseded = bool(stale) and not stale.get("acted")
        trace(session, installation_id, "replayed",
              f"replayed by {actor or 'an admin'}: " + (
                  "a newer state superseded it, so rules are not matched again" if superseded else
                  "rules matched again") + f"; {len(again)} finished run(s) queued again",
              hub_event_id=event.id, actor=actor)
        if not superseded:
            for fn in subscribers():
                fn(services, session, event)
        session.flush()
        new = sorted(set(session.scalars(select(RuleRun.id).where(RuleRun.installation_id == installation_id,
                                                                  RuleRun.hub_event_id == event.id))) - before)
        audit(session, installation_id, actor, "event.replayed", event_id=event.id, requeued=again, new_runs=new)
        return {"ok": True, "requeued": again, "new_runs": new, "matched_again": not superseded}


def object_flags(services, installation_id: int, object_type: str, object_id: str) -> list[dict]:
    """What automations keep about one object of the installation's CRM (its flags, in words)."""
    from ..events import flags
    from ..store import Installation
    with services.db.begin() as session:
        installation = session.get(Installation, installation_id)
        rows = flags.of(session, installation_id, installation.provider, object_type, object_id) if installation else {}
        return [flags.flag_json(row) for row in rows.values()]


def switch_auto_advance(services, installation_id: int, object_type: str, object_id: str, on: bool,
                        actor: str) -> bool:
    """An admin switches auto-advance on (or off) for one object: set, traced and audited in one
    transaction. False when it already was so."""
    from ..events import flags
    from ..store import Installation
    _check_object(object_type, object_id)
    with services.db.begin() as session:
        installation = session.get(Installation, installation_id)
        word = "on" if on else "off"
        changed = flags.set_flag(session, installation_id, installation.provider, object_type, object_id,
                                 flags.AUTO_ADVANCE, on, reason=f"switched {word} by {actor or 'an admin'}",
                                 set_by=actor or "admin")
        if changed:
            trace(session, installation_id, "flag.set",
                  f"auto-advance switched {word} for {object_type} {object_id} by {actor or 'an admin'}",
                  status="info", key=flags.AUTO_ADVANCE, value=on, object_type=object_type, object_id=object_id)
            audit(session, installation_id, actor, f"object.auto_advance_{word}", object_type=object_type,
                  object_id=object_id)
        return changed


def _check_object(object_type: str, object_id: str) -> None:
    if not object_type or len(object_type) > 40 or not object_type.replace("_", "").isalnum():
        raise InputError.of("object_type", "an object type (deal, lead, person ...), at most 40 letters")
    if not object_id or len(object_id) > 100 or any(ch in object_id for ch in "\x00\r\n"):
        raise InputError.of("object_id", "an object id (1 to 100 characters)")
