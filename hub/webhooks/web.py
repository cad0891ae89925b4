"""The run log: each event's path (received, normalized, matched rules, jobs, provider calls,
result or error) on a page and in the JSON API, in words; paged by id, filtered by rule, outcome,
object and time, searched by object id and title (runlog.py); replay of any recorded event, of a
failed webhook or of a dead job (admins)."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import or_, select

from ..inputs import optional_int
from ..store import HubEvent, InboxEvent, Job, RunLog
from ..store.models import Rule, RuleLink, RuleRun
from ..web.access import admin, current_user
from . import runlog, words
from .processing import object_flags, replay_event, replay_inbox, switch_auto_advance

bp = Blueprint("runlog", __name__, template_folder=str(Path(__file__).parent / "templates"))


def services():
    return current_app.extensions["hub"]


def _limit() -> int:
    """`?limit=`: a whole number, kept within 1 to 500 (100 when left out); InputError (400) otherwise."""
    value = optional_int(request.args.get("limit"), "limit")
    return 100 if value is None else max(1, min(500, value))


def _id_arg(name: str) -> int | None:
    """`?before=` / `?after=`: an id a page ends at; InputError (400) when not one."""
    return optional_int(request.args.get(name), name, low=1)


def _provider() -> str | None:
    installation = g.get("installation")
    return installation.provider if installation is not None else None


def _actor() -> str:
    user = current_user()
    return user.crm_user_id if user else ""


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


def _links(session, installation_id: int, event_id: int) -> list[dict]:
    """What the event's rule runs made (a task, a project ...), with where to open it."""
    run_ids = select(RuleRun.id).where(RuleRun.installation_id == installation_id, RuleRun.hub_event_id == event_id)
    out = []
    for link in session.scalars(select(RuleLink).where(RuleLink.installation_id == installation_id,
                                                       RuleLink.run_id.in_(run_ids)).order_by(RuleLink.id)):
        out.append({"rule_id": link.rule_id, "run_id": link.run_id, "made": link.made, "name": link.name or "",
                    "url": link.url or ""})
    return out


def _iso(moment) -> str | None:
    return moment.isoformat() + "Z" if moment else None


def _event_json(e: HubEvent, summary: runlog.Summary | None = None) -> dict:
    body = {"id": e.id, "kind": e.kind, "label": words.kind_label(e.kind, _provider()), "object_type": e.object_type,
            "object_id": e.object_id, "title": runlog.title_of(e.data), "source": e.source,
            "occurrence": e.occurrence, "inbox_event_id": e.inbox_event_id, "stale": (e.data or {}).get("stale"),
            "occurred_at": _iso(e.occurred_at), "created_at": _iso(e.created_at)}
    if summary is not None:
        body.update(outcome=summary.outcome, outcome_label=words.outcome_label(summary.outcome), rules=[
            {"rule_id": r.rule_id, "name": r.name, "status": r.status, "status_label": words.status_label(r.status),
             "reason": r.reason} for r in summary.rules])
    return body


def _log_json(r: RunLog) -> dict:
    return {"id": r.id, "at": _iso(r.created_at), "step": r.step, "label": words.step_label(r.step),
            "status": r.status, "status_label": words.status_label(r.status), "message": r.message,
            "hub_event_id": r.hub_event_id, "inbox_event_id": r.inbox_event_id, "rule_id": r.rule_id,
            "sync_id": r.sync_id, "job_id": r.job_id, "detail": r.detail}


def _inbox_json(i: InboxEvent) -> dict:
    return {"id": i.id, "event_key": i.event_key, "status": i.status, "error": i.error,
            "received_at": _iso(i.received_at), "processed_at": _iso(i.processed_at)}


def _job_json(j: Job) -> dict:
    return {"id": j.id, "kind": j.kind, "status": j.status, "attempts": j.attempts, "last_error": j.last_error,
            "finished_at": _iso(j.finished_at)}


def _events(installation_id: int, limit: int):
    """One page of events as the filters in the query string ask, with what each came to."""
    filters = runlog.Filters.from_args(request.args)
    before, after = _id_arg("before"), _id_arg("after")
    with services().db.begin() as session:
        found = runlog.page(session, installation_id, filters, limit, before, after)
        summaries = runlog.summaries(session, installation_id, found.events)
        session.expunge_all()
    return filters, found, summaries


# -- pages ------------------------------------------------------------------------------------------
@bp.get("/i/<int:installation_id>/events")
def events_page(installation_id: int):
    limit = optional_int(request.args.get("limit"), "limit")
    limit = 50 if limit is None else max(1, min(500, limit))
    filters, found, summaries = _events(installation_id, limit)
    dead_before = _id_arg("dead_before")
    with services().db.begin() as session:
        inbox = session.scalars(select(InboxEvent).where(InboxEvent.installation_id == installation_id,
                                                         InboxEvent.status.in_(("failed", "received")))
                                .order_by(InboxEvent.id.desc()).limit(100)).all()
        rules = session.execute(select(Rule.id, Rule.name).where(Rule.installation_id == installation_id)
                                .order_by(Rule.name, Rule.id)).all()
        object_types = sorted(session.scalars(select(HubEvent.object_type).distinct()
                                              .where(HubEvent.installation_id == installation_id)))
        other = session.scalars(select(RunLog).where(RunLog.installation_id == installation_id,
                                                     RunLog.hub_event_id.is_(None), RunLog.inbox_event_id.is_(None))
                                .order_by(RunLog.id.desc()).limit(20)).all()
    keep = {k: v for k, v in filters.raw.items()}
    if limit != 50:
        keep["limit"] = limit
    return render_template("webhooks/events.html", installation=g.installation, events=found.events,
                           summaries=summaries, page=found, filters=filters, keep=keep, rules=rules,
                           object_types=object_types, outcomes=runlog.OUTCOMES, inbox=inbox,
                           dead=_dead_jobs(installation_id, 100, dead_before), dead_limit=100, other=other,
                           words=words, provider=_provider(), title_of=runlog.title_of)


@bp.get("/i/<int:installation_id>/events/<int:event_id>")
def event_page(installation_id: int, event_id: int):
    with services().db.begin() as session:
        event = session.get(HubEvent, event_id)
        if event is None or event.installation_id != installation_id:
            abort(404, "no such event")
        summary = runlog.summaries(session, installation_id, [event])[event.id]
        links = _links(session, installation_id, event.id)
        session.expunge_all()
    return render_template("webhooks/event.html", installation=g.installation, event=event, summary=summary,
                           links=links, trace=_trace(installation_id, hub_event=event), words=words,
                           provider=_provider(), title=runlog.title_of(event.data),
                           flags=object_flags(services(), installation_id, event.object_type, event.object_id))


@bp.post("/i/<int:installation_id>/objects/<object_type>/<object_id>/auto-advance")
@admin
def auto_advance_page(installation_id: int, object_type: str, object_id: str):
    """Switch auto-advance back on (or off) for one object, from its trace; back to that trace."""
    on = request.form.get("on", "1") not in ("0", "false", "")
    event_id = optional_int(request.form.get("event_id"), "event_id", low=1)
    changed = switch_auto_advance(services(), installation_id, object_type, object_id, on, _actor())
    flash(f"Auto-advance is {'on' if on else 'off'} for {object_type} {object_id}"
          + ("." if changed else " (it already was)."))
    if event_id is not None:
        return redirect(url_for("runlog.event_page", installation_id=installation_id, event_id=event_id))
    return redirect(url_for("runlog.events_page", installation_id=installation_id, q=object_id))


@bp.post("/i/<int:installation_id>/events/<int:event_id>/replay")
@admin
def replay_event_page(installation_id: int, event_id: int):
    done = replay_event(services(), installation_id, event_id, _actor())
    if done is None:
        abort(404, "no such event")
    flash(f"Event {event_id} replayed: " + (
        "rules matched again" if done["matched_again"] else "a newer state superseded it, rules not matched again")
        + f", {len(done['new_runs'])} new run(s), {len(done['requeued'])} finished run(s) queued again. "
          "Nothing already done is repeated.")
    return redirect(url_for("runlog.event_page", installation_id=installation_id, event_id=event_id))


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
    """Paged by id: `next_before` is the `before` of the next (older) page, `newer_after` the
    `after` of the newer one; null at either end."""
    _, found, summaries = _events(installation_id, _limit())
    return jsonify({"events": [_event_json(e, summaries.get(e.id)) for e in found.events],
                    "next_before": found.next_before, "newer_after": found.newer_after})


@bp.get(f"{API}/events/<int:event_id>")
def event_api(installation_id: int, event_id: int):
    with services().db.begin() as session:
        event = session.get(HubEvent, event_id)
        if event is None or event.installation_id != installation_id:
            return jsonify({"error": "not_found", "message": "event_id: no such event"}), 404
        summary = runlog.summaries(session, installation_id, [event])[event.id]
        links = _links(session, installation_id, event.id)
        session.expunge_all()
    body = _event_json(event, summary)
    body["data"] = event.data
    body["links"] = links
    body["trace"] = [_log_json(r) for r in _trace(installation_id, hub_event=event)]
    return jsonify(body)


@bp.post(f"{API}/events/<int:event_id>/replay")
@admin
def replay_event_api(installation_id: int, event_id: int):
    done = replay_event(services(), installation_id, event_id, _actor())
    if done is None:
        return jsonify({"error": "not_found", "message": "event_id: no such event"}), 404
    return jsonify(done)


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
    jobs = _dead_jobs(installation_id, limit, _id_arg("before"))
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
    """Every step, newest first, paged by id like the events (`before`, `next_before`)."""
    limit, before = _limit(), _id_arg("before")
    query = select(RunLog).where(RunLog.installation_id == installation_id)
    if before is not None:
        query = query.where(RunLog.id < before)
    with services().db.begin() as session:
        rows = session.scalars(query.order_by(RunLog.id.desc()).limit(limit + 1)).all()
    return jsonify({"log": [_log_json(r) for r in rows[:limit]],
                    "next_before": rows[limit - 1].id if len(rows) > limit else None})
