"""The run log: each event's path (received, normalized, matched rules, jobs, provider calls,
result or error) on a page and in the JSON API, with replay of a failed webhook or a dead job."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import or_, select

from ..inputs import optional_int
from ..store import HubEvent, InboxEvent, Job, RunLog
from ..web.access import admin
from .processing import replay_inbox

bp = Blueprint("runlog", __name__, template_folder=str(Path(__file__).parent / "templates"))


def services():
    return current_app.extensions["hub"]


def _limit() -> int:
    """`?limit=`: a whole number, kept within 1 to 500 (100 when left out); InputError (400) otherwise."""
    value = optional_int(request.args.get("limit"), "limit")
    return 100 if value is None else max(1, min(500, value))


def _before() -> int | None:
    """`?before=`: the job id a page of older dead jobs ends at; InputError (400) when not one."""
    return optional_int(request.args.get("before"), "before", low=1)


def _dead_jobs(installation_id: int, limit: int = 200, before: int | None = None) -> list[Job]:
    """This installation's dead letter, newest first, filtered in SQL: no tenant's junk can push
    another's dead jobs off the page."""
    return services().queue.list_jobs(installation_id=installation_id, status="dead", before_id=before, limit=limit)


def _trace(installation_id: int, hub_event: HubEvent | None = None, inbox_id: int | None = None) -> list[RunLog]:
    """The path of an event: its webhook's receipt (from the inbox row), then the run log steps."""
    inbox_id = inbox_id or (hub_event.inbox_event_id if hub_event is not None else None)
    conditions = []
    if hub_event is not None:
        conditions.append(RunLog.hub_event_id == hub_event.id)
        if hub_event.inbox_event_id:
            conditions.append(RunLog.inbox_event_id == hub_event.inbox_event_id)
    if inbox_id is not None:
        conditions.append(RunLog.inbox_event_id == inbox_id)
    with services().db.begin() as session:
        steps = list(session.scalars(select(RunLog).where(RunLog.installation_id == installation_id, or_(*conditions))
                                     .order_by(RunLog.id)))
        inbox = session.get(InboxEvent, inbox_id) if inbox_id else None
    if inbox is not None:
        steps.insert(0, RunLog(id=0, installation_id=installation_id, inbox_event_id=inbox.id, step="received",
                               status="ok", message=f"{inbox.provider} webhook {inbox.event_key}", detail={},
                               created_at=inbox.received_at))
    return steps


def _event_json(e: HubEvent) -> dict:
    return {"id": e.id, "kind": e.kind, "object_type": e.object_type, "object_id": e.object_id, "source": e.source,
            "occurrence": e.occurrence, "inbox_event_id": e.inbox_event_id, "stale": (e.data or {}).get("stale"),
            "occurred_at": e.occurred_at.isoformat() + "Z" if e.occurred_at else None,
            "created_at": e.created_at.isoformat() + "Z"}


def _log_json(r: RunLog) -> dict:
    return {"id": r.id, "at": r.created_at.isoformat() + "Z", "step": r.step, "status": r.status, "message": r.message,
            "hub_event_id": r.hub_event_id, "inbox_event_id": r.inbox_event_id, "rule_id": r.rule_id,
            "sync_id": r.sync_id, "job_id": r.job_id, "detail": r.detail}


def _inbox_json(i: InboxEvent) -> dict:
    return {"id": i.id, "event_key": i.event_key, "status": i.status, "error": i.error,
            "received_at": i.received_at.isoformat() + "Z",
            "processed_at": i.processed_at.isoformat() + "Z" if i.processed_at else None}


def _job_json(j: Job) -> dict:
    return {"id": j.id, "kind": j.kind, "status": j.status, "attempts": j.attempts, "last_error": j.last_error,
            "finished_at": j.finished_at.isoformat() + "Z" if j.finished_at else None}


# -- pages ------------------------------------------------------------------------------------------
@bp.get("/i/<int:installation_id>/events")
def events_page(installation_id: int):
    from flask import g
    limit = _limit()
    with services().db.begin() as session:
        events = session.scalars(select(HubEvent).where(HubEvent.installation_id == installation_id)
                                 .order_by(HubEvent.id.desc()).limit(limit)).all()
        inbox = session.scalars(select(InboxEvent).where(InboxEvent.installation_id == installation_id,
                                                         InboxEvent.status.in_(("failed", "received")))
                                .order_by(InboxEvent.id.desc()).limit(limit)).all()
        log = session.scalars(select(RunLog).where(RunLog.installation_id == installation_id)
                              .order_by(RunLog.id.desc()).limit(limit)).all()
    return render_template("webhooks/events.html", installation=g.installation, events=events, inbox=inbox,
                           dead=_dead_jobs(installation_id, limit, _before()), dead_limit=limit, log=log)


@bp.get("/i/<int:installation_id>/events/<int:event_id>")
def event_page(installation_id: int, event_id: int):
    from flask import g
    with services().db.begin() as session:
        event = session.get(HubEvent, event_id)
    if event is None or event.installation_id != installation_id:
        abort(404, "no such event")
    return render_template("webhooks/event.html", installation=g.installation, event=event,
                           trace=_trace(installation_id, hub_event=event))


@bp.post("/i/<int:installation_id>/inbox/<int:inbox_id>/replay")
@admin
def replay_inbox_page(installation_id: int, inbox_id: int):
    if not replay_inbox(services(), installation_id, inbox_id):
        abort(400, "Only a failed or unprocessed webhook of this installation can be replayed.")
    flash(f"Webhook {inbox_id} queued again.")
    return redirect(url_for("runlog.events_page", installation_id=installation_id))


def _replay_job(installation_id: int, job_id: int) -> bool:
    return services().queue.replay(job_id, installation_id=installation_id)


@bp.post("/i/<int:installation_id>/jobs/<int:job_id>/replay")
@admin
def replay_job_page(installation_id: int, job_id: int):
    if not _replay_job(installation_id, job_id):
        abort(400, "Only a dead job of this installation can be replayed.")
    flash(f"Job {job_id} queued again.")
    return redirect(url_for("runlog.events_page", installation_id=installation_id))


# -- JSON API ---------------------------------------------------------------------------------------
API = "/api/v1/installations/<int:installation_id>"


@bp.get(f"{API}/events")
def events_api(installation_id: int):
    with services().db.begin() as session:
        rows = session.scalars(select(HubEvent).where(HubEvent.installation_id == installation_id)
                               .order_by(HubEvent.id.desc()).limit(_limit())).all()
    return jsonify({"events": [_event_json(e) for e in rows]})


@bp.get(f"{API}/events/<int:event_id>")
def event_api(installation_id: int, event_id: int):
    with services().db.begin() as session:
        event = session.get(HubEvent, event_id)
    if event is None or event.installation_id != installation_id:
        return jsonify({"error": "not_found", "message": "event_id: no such event"}), 404
    body = _event_json(event)
    body["data"] = event.data
    body["trace"] = [_log_json(r) for r in _trace(installation_id, hub_event=event)]
    return jsonify(body)


@bp.get(f"{API}/inbox")
def inbox_api(installation_id: int):
    status = request.args.get("status")
    with services().db.begin() as session:
        query = select(InboxEvent).where(InboxEvent.installation_id == installation_id)
        if status:
            query = query.where(InboxEvent.status == status)
        rows = session.scalars(query.order_by(InboxEvent.id.desc()).limit(_limit())).all()
    return jsonify({"inbox": [_inbox_json(i) for i in rows]})


@bp.post(f"{API}/inbox/<int:inbox_id>/replay")
@admin
def replay_inbox_api(installation_id: int, inbox_id: int):
    if not replay_inbox(services(), installation_id, inbox_id):
        return jsonify({"error": "invalid", "message": "inbox_id: not a failed or unprocessed webhook of this installation"}), 400
    return jsonify({"ok": True})


@bp.get(f"{API}/jobs/dead")
def dead_jobs_api(installation_id: int):
    """Paged by id: `next_before` is the `before` of the next (older) page, null on the last one."""
    limit = _limit()
    jobs = _dead_jobs(installation_id, limit, _before())
    return jsonify({"jobs": [_job_json(j) for j in jobs],
                    "next_before": jobs[-1].id if len(jobs) == limit else None})


@bp.post(f"{API}/jobs/<int:job_id>/replay")
@admin
def replay_job_api(installation_id: int, job_id: int):
    if not _replay_job(installation_id, job_id):
        return jsonify({"error": "invalid", "message": "job_id: not a dead job of this installation"}), 400
    return jsonify({"ok": True})


@bp.get(f"{API}/runlog")
def runlog_api(installation_id: int):
    with services().db.begin() as session:
        rows = session.scalars(select(RunLog).where(RunLog.installation_id == installation_id)
                               .order_by(RunLog.id.desc()).limit(_limit())).all()
    return jsonify({"log": [_log_json(r) for r in rows]})
