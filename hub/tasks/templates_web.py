"""Task templates in the hub: settings page sections, the set editor, applying a set by hand, the
team calendar, next-task suggestions; and the same in the JSON API (/api/v1/installations/<id>/tasks,
described in the OpenAPI document from `OPERATIONS` and schemas.py).

Admins change types, statuses, sharing, sets, post-sale sets and next-task rules; any member
applies a set, reads the calendar (as their sharing allows), and answers their own suggestions.
The e-mail's accept link is public: its signature is its authority (suggestions.py)."""
from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from flask import (Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request,
                   url_for)

from ..errors import Fatal, NeedsReauth, Retriable
from ..inputs import InputError, optional_int
from ..rules import connections
from ..rules.records import recent
from ..web.access import admin, current_user, member, public, requires
from ..web.bodies import json_body
from . import calendar, config, sets, suggestions
from .apply import enqueue
from .templates_schemas import OPERATIONS as _OPS

bp = Blueprint("task_templates", __name__, template_folder=str(Path(__file__).parent / "templates"))
API = "/api/v1/installations/<int:installation_id>/tasks"
BASE, TAG, OPERATIONS = "/api/v1/installations/{installation_id}/tasks", "tasks", _OPS
RECORD_KINDS = ("deal", "person", "organization", "lead", "space")


def services():
    return current_app.extensions["hub"]


def viewer(installation_id: int) -> calendar.Viewer:
    user = current_user()
    with services().db.begin() as session:
        return calendar.viewer_of(session, installation_id, user.crm_user_id if user else "")


def _body() -> Any:
    data = json_body()
    if data is None:
        raise InputError.of("body", "a JSON body (Content-Type: application/json)")
    return data


def _missing(exc: Exception):
    return jsonify({"error": "not_found", "message": str(exc)}), 404


def _provider_error(exc: Exception):
    code = 503 if isinstance(exc, Retriable) else 502
    return jsonify({"error": "bad_gateway" if code == 502 else "unavailable", "message": str(exc)}), code


# -- search list of records (applying by hand) --------------------------------------------------------
def record_choices(installation_id: int, kind: str, query: str) -> tuple[list[dict[str, str]], str | None]:
    """Recent records of `kind` whose title holds `query` (the CRM source's `search(kind, query)`
    when it has one, else its `recent(kind)` filtered here)."""
    if kind not in RECORD_KINDS:
        raise InputError.of("kind", "one of " + ", ".join(RECORD_KINDS))
    if len(query) > 200:
        raise InputError.of("q", "at most 200 characters")
    try:
        with services().db.begin() as session:
            crm = connections.crm_connection(session, installation_id)
            session.expunge(crm)
        from ..rules.records import crm_source
        source = crm_source(services(), crm)
        search = getattr(source, "search", None)
        found = search(kind, query) if search is not None and query else recent(services(), crm, kind)
    except (Fatal, Retriable, NeedsReauth) as exc:
        return [], f"the CRM could not list {kind}s: {exc}"
    except (KeyError, ValueError, NotImplementedError, LookupError):
        return [], f"the CRM offers no {kind}s here"
    out = []
    for r in found:
        title = str(r.title or r.data.get("title") or r.data.get("name") or r.id)
        if query.lower() in title.lower():
            out.append({"id": str(r.id), "title": title, "kind": kind})
    return out[:50], None


# -- pages ------------------------------------------------------------------------------------------
def _page(template: str, **context: Any):
    return render_template(template, installation=g.installation, **context)


@bp.get("/i/<int:installation_id>/tasks/templates")
@admin
def settings_page(installation_id: int):
    from ..rules.validation import Crm
    pipelines = Crm(services(), installation_id).pipelines() or []
    return _page("tasks/settings.html", view=config.view(services(), installation_id),
                 sets=sets.listing(services(), installation_id), post_sale=sets.post_sale_view(services(), installation_id),
                 pipelines=pipelines, modes=config.SHARING_LABELS)


@bp.post("/i/<int:installation_id>/tasks/templates")
@admin
def settings_save(installation_id: int):
    form, what = request.form, request.form.get("what", "")
    try:
        if what == "general":
            config.update(services(), installation_id, {"timezone": form.get("timezone", ""),
                                                        "sharing": form.get("sharing", ""),
                                                        "statuses_enabled": form.get("statuses_enabled") == "1"})
        elif what == "add_type":
            config.add_type(services(), installation_id, {"name": form.get("name", ""),
                                                          "sharing": form.get("sharing") or None})
        elif what == "type":
            type_id = optional_int(form.get("type_id"), "type_id")
            if form.get("remove"):
                config.remove_type(services(), installation_id, type_id)
            else:
                config.change_type(services(), installation_id, type_id,
                                   {"name": form.get("name", ""), "sharing": form.get("sharing") or None})
        elif what == "statuses":
            lines = [line.strip() for line in form.get("statuses", "").splitlines() if line.strip()]
            config.set_statuses(services(), installation_id, {"statuses": [
                {"name": line.removesuffix("*").strip(), "closes": line.endswith("*")} for line in lines]})
        elif what == "post_sale":
            for key, value in form.items():
                if key.startswith("ps:"):
                    _, outcome, pipeline = key.split(":", 2)
                    sets.set_post_sale(services(), installation_id, {
                        "pipeline_id": pipeline, "outcome": outcome,
                        "set_id": optional_int(value, key) if value else None})
        elif what == "next":
            for key, value in form.items():
                if key.startswith("next:"):
                    type_id = optional_int(key.split(":", 1)[1], key)
                    config.set_next_task(services(), installation_id, {
                        "from_type_id": type_id, "template_id": optional_int(value, key) if value else None,
                        "mode": form.get(f"mode:{type_id}", "suggest")})
        else:
            abort(400, "Unknown form.")
    except InputError as exc:
        flash("Not saved: " + "; ".join(f"{k}: {v}" for k, v in exc.fields.items()))
        return redirect(url_for("task_templates.settings_page", installation_id=installation_id) + f"#{what}")
    except LookupError as exc:
        abort(404, str(exc))
    flash("Saved.")
    return redirect(url_for("task_templates.settings_page", installation_id=installation_id) + f"#{what}")


def _set_from_form(form) -> dict[str, Any]:
    """The set editor's rows (t-<n>-field) as the API's body."""
    rows = sorted({int(k.split("-")[1]) for k in form if k.startswith("t-") and k.split("-")[1].isdigit()})
    templates = []
    for n in rows:
        def f(name: str, default: str = "") -> str:
            return form.get(f"t-{n}-{name}", default)
        if not f("title").strip() and not f("id"):
            continue
        target = f("target")
        connection_id, _, kind = target.partition("|")
        settings = {}
        for part in f("settings").replace("\n", ";").split(";"):
            key, sep, value = part.partition("=")
            if sep and key.strip():
                settings[key.strip()] = value.strip()
        delay = f("delay_days", "0").strip()
        templates.append({
            "id": int(f("id")) if f("id").isdigit() else None, "title": f("title"), "description": f("description"),
            "type_id": int(f("type_id")) if f("type_id").isdigit() else None,
            "responsible": f("responsible").strip() or "owner",
            "delay_days": int(delay) if delay.isascii() and delay.isdigit() and len(delay) < 6 else delay,
            "day_kind": f("day_kind", "working"), "time_of_day": f("time_of_day", "09:00"), "kind": kind,
            "connection_id": int(connection_id) if connection_id.isdigit() else None, "settings": settings})
    return {"name": form.get("name", ""), "templates": templates}


def _targets(installation_id: int) -> list[tuple[str, str]]:
    with services().db.begin() as session:
        return [(f"{c.id}|{k.kind}", f"{k.label} · {c.account_name or c.account_email or c.account_id}")
                for k in sets.task_kinds().values() for c in connections.usable(session, installation_id, k.connector)]


@bp.route("/i/<int:installation_id>/tasks/sets/<set_id>", methods=["GET", "POST"])
@admin
def set_page(installation_id: int, set_id: str):
    errors: dict[str, str] = {}
    data = None
    if set_id != "new" and not (set_id.isascii() and set_id.isdigit() and len(set_id) < 19):
        abort(404)
    if request.method == "POST":
        data = _set_from_form(request.form)
        try:
            saved = sets.create(services(), installation_id, data) if set_id == "new" else \
                sets.replace(services(), installation_id, int(set_id), data)
            flash(f"Template set “{saved['name']}” saved.")
            return redirect(url_for("task_templates.set_page", installation_id=installation_id, set_id=saved["id"]))
        except InputError as exc:
            errors = exc.fields
        except LookupError:
            abort(404)
    elif set_id != "new":
        try:
            data = sets.get(services(), installation_id, int(set_id))
        except LookupError:
            abort(404)
    data = data or {"name": "", "templates": []}
    rows = list(data["templates"]) + [{"id": None, "title": "", "description": "", "type_id": None,
                                       "responsible": "owner", "delay_days": 0, "day_kind": "working",
                                       "time_of_day": "09:00", "kind": "", "connection_id": None, "settings": {}}]
    return _page("tasks/set.html", set_id=set_id, data=data, rows=rows, errors=errors,
                 types=config.view(services(), installation_id)["types"], targets=_targets(installation_id),
                 kinds=sets.task_kinds()), 400 if errors else 200


@bp.post("/i/<int:installation_id>/tasks/sets/<int:set_id>/delete")
@admin
def set_delete(installation_id: int, set_id: int):
    try:
        sets.remove(services(), installation_id, set_id)
        flash("Template set deleted.")
    except InputError as exc:
        flash("Not deleted: " + "; ".join(exc.fields.values()))
    except LookupError:
        abort(404)
    return redirect(url_for("task_templates.settings_page", installation_id=installation_id) + "#sets")


@bp.route("/i/<int:installation_id>/tasks/apply", methods=["GET", "POST"])
@member
def apply_page(installation_id: int):
    if request.method == "POST":
        try:
            queued = _apply(installation_id, {"set_id": optional_int(request.form.get("set_id"), "set_id"),
                                              "object_type": request.form.get("kind", ""),
                                              "object_id": request.form.get("record", ""),
                                              "key": request.form.get("key", "")})
            flash(f"The set's tasks are being made for {queued['object_type']} {queued['object_id']}.")
        except InputError as exc:
            flash("Not applied: " + "; ".join(f"{k}: {v}" for k, v in exc.fields.items()))
        return redirect(url_for("task_templates.apply_page", installation_id=installation_id,
                                kind=request.form.get("kind", "deal")))
    kind = request.args.get("kind", "deal")
    query = request.args.get("q", "")
    choices, problem = record_choices(installation_id, kind, query) if kind in RECORD_KINDS else ([], None)
    return _page("tasks/apply.html", kinds=RECORD_KINDS, kind=kind, q=query, choices=choices, problem=problem,
                 sets=sets.listing(services(), installation_id), key=secrets.token_urlsafe(12))


def _apply(installation_id: int, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InputError.of("body", "a JSON object with set_id, object_type, object_id")
    object_type, object_id = data.get("object_type"), data.get("object_id")
    if object_type not in RECORD_KINDS:
        raise InputError.of("object_type", "one of " + ", ".join(RECORD_KINDS))
    if isinstance(object_id, int) and not isinstance(object_id, bool):
        object_id = str(object_id)
    if not isinstance(object_id, str) or not object_id.strip() or len(object_id) > 100 or \
            not object_id.replace("-", "").replace("_", "").isalnum():
        raise InputError.of("object_id", "the id of the record (pick it from the list)")
    key = data.get("key") or secrets.token_urlsafe(12)
    if not isinstance(key, str) or not key.replace("-", "").replace("_", "").isalnum() or len(key) > 40:
        raise InputError.of("key", "letters, digits, - and _ (at most 40): the same key applies once")
    set_id = data.get("set_id")
    with services().db.begin() as session:
        try:
            set_row = sets._set(session, installation_id, set_id if isinstance(set_id, int) else -1)
        except LookupError:
            raise InputError.of("set_id", "a template set of this installation") from None
        ids = [t.id for t in sets.templates_of(session, installation_id, set_row.id)]
        job_id = enqueue(services(), session, installation_id, key=f"m{key}", template_ids=ids,
                         object_type=object_type, object_id=object_id, origin="manual")
    return {"queued": job_id is not None, "key": key, "set_id": set_row.id, "object_type": object_type,
            "object_id": object_id}


@bp.get("/i/<int:installation_id>/tasks/calendar")
@member
def calendar_page(installation_id: int):
    me = viewer(installation_id)
    try:
        week = calendar.week_view(services(), installation_id, me, request.args.get("week") or None)
    except InputError:
        week = calendar.week_view(services(), installation_id, me, None)
    return _page("tasks/calendar.html", week=week)


@bp.post("/i/<int:installation_id>/tasks/calendar/<int:task_id>")
@member
def calendar_edit(installation_id: int, task_id: int):
    me = viewer(installation_id)
    try:
        if request.form.get("action") == "complete":
            calendar.complete(services(), installation_id, task_id, me)
            flash("Task completed.")
        else:
            calendar.reschedule(services(), installation_id, task_id, me, request.form.get("due", ""))
            flash("Deadline moved.")
    except LookupError:
        abort(404)
    except PermissionError as exc:
        abort(403, str(exc))
    except InputError as exc:
        flash("Not changed: " + "; ".join(exc.fields.values()))
    except (Fatal, Retriable, NeedsReauth) as exc:
        flash(f"The target refused: {exc}")
    return redirect(url_for("task_templates.calendar_page", installation_id=installation_id, week=request.form.get("week")))


@bp.get("/i/<int:installation_id>/tasks/suggestions")
@member
def suggestions_page(installation_id: int):
    me = viewer(installation_id)
    with services().db.begin() as session:
        items = suggestions.open_for(session, installation_id, me.key)
    return _page("tasks/suggestions.html", items=items)


@bp.post("/i/<int:installation_id>/tasks/suggestions/<int:suggestion_id>")
@member
def suggestion_decide(installation_id: int, suggestion_id: int):
    me = viewer(installation_id)
    with services().db.begin() as session:
        if request.form.get("action") == "dismiss":
            done = suggestions.dismiss(session, installation_id, suggestion_id, me.key)
            flash("Suggestion dismissed." if done else "This suggestion was already answered.")
        else:
            outcome = suggestions.accept(services(), session, suggestion_id, installation_id=installation_id,
                                         user=me.key)
            flash({"accepted": "Accepted: the task is being made.", "already": "This suggestion was already answered.",
                   "expired": "This suggestion has expired."}.get(outcome, "No such suggestion."))
    return redirect(url_for("task_templates.suggestions_page", installation_id=installation_id))


@bp.route("/tasks/suggestions/<int:suggestion_id>/accept", methods=["GET", "POST"])
@requires(GET="public", POST="public")   # the link's signature is its authority
def accept_link(suggestion_id: int):
    """The e-mail's one-click link. GET changes nothing (mail scanners fetch links before people
    do): its page sends the POST that accepts at once in a browser, or offers the button without
    scripts."""
    token = str(request.values.get("token", ""))[:200]
    with services().db.begin() as session:
        outcome = suggestions.accept(services(), session, suggestion_id, token=token,
                                     check_only=request.method == "GET")
    if outcome == "open":
        return render_template("tasks/accept.html", token=token)
    messages = {"accepted": ("Next task accepted", "The task is being made; it appears in its target shortly."),
                "already": ("Already answered", "This suggestion was accepted or dismissed before: nothing more "
                                                "is made."),
                "expired": ("This link has expired", "Suggestions can be accepted for seven days."),
                "invalid": ("This link is not valid", "It may be incomplete: open it from the e-mail again.")}
    title, text = messages[outcome]
    return render_template("hub/message.html", title=title, message=text), 200 if outcome != "invalid" else 404


# -- API ----------------------------------------------------------------------------------------------
def _api(fn, *args, status: int = 200):
    try:
        out = fn(*args)
    except LookupError as exc:
        return _missing(exc)
    except PermissionError as exc:
        return jsonify({"error": "forbidden", "message": str(exc)}), 403
    except (Fatal, Retriable, NeedsReauth) as exc:
        return _provider_error(exc)
    if out is None:
        return "", 204
    return jsonify(out), status


@bp.get(API + "/options")
@member
def api_settings(installation_id: int):
    return _api(config.view, services(), installation_id)


@bp.patch(API + "/options")
@admin
def api_settings_change(installation_id: int):
    return _api(config.update, services(), installation_id, _body())


@bp.post(API + "/types")
@admin
def api_type_add(installation_id: int):
    return _api(config.add_type, services(), installation_id, _body(), status=201)


@bp.patch(API + "/types/<int:type_id>")
@admin
def api_type_change(installation_id: int, type_id: int):
    return _api(config.change_type, services(), installation_id, type_id, _body())


@bp.delete(API + "/types/<int:type_id>")
@admin
def api_type_remove(installation_id: int, type_id: int):
    return _api(config.remove_type, services(), installation_id, type_id)


@bp.put(API + "/statuses")
@admin
def api_statuses(installation_id: int):
    return _api(config.set_statuses, services(), installation_id, _body())


@bp.put(API + "/next-tasks")
@admin
def api_next_task(installation_id: int):
    return _api(config.set_next_task, services(), installation_id, _body())


@bp.get(API + "/sets")
@member
def api_sets(installation_id: int):
    return _api(lambda: {"sets": sets.listing(services(), installation_id)})


@bp.post(API + "/sets")
@admin
def api_set_create(installation_id: int):
    return _api(sets.create, services(), installation_id, _body(), status=201)


@bp.get(API + "/sets/<int:set_id>")
@member
def api_set(installation_id: int, set_id: int):
    return _api(sets.get, services(), installation_id, set_id)


@bp.put(API + "/sets/<int:set_id>")
@admin
def api_set_replace(installation_id: int, set_id: int):
    return _api(sets.replace, services(), installation_id, set_id, _body())


@bp.delete(API + "/sets/<int:set_id>")
@admin
def api_set_remove(installation_id: int, set_id: int):
    return _api(sets.remove, services(), installation_id, set_id)


@bp.get(API + "/post-sale")
@member
def api_post_sale(installation_id: int):
    return _api(lambda: {"post_sale": sets.post_sale_view(services(), installation_id)})


@bp.put(API + "/post-sale")
@admin
def api_post_sale_set(installation_id: int):
    return _api(lambda: {"post_sale": sets.set_post_sale(services(), installation_id, _body())})


@bp.get(API + "/records")
@member
def api_records(installation_id: int):
    choices, problem = record_choices(installation_id, request.args.get("kind", "deal"), request.args.get("q", ""))
    return jsonify({"records": choices, "problem": problem})


@bp.post(API + "/apply")
@member
def api_apply(installation_id: int):
    return _api(_apply, installation_id, _body(), status=202)


@bp.get(API + "/calendar")
@member
def api_calendar(installation_id: int):
    person = request.args.get("person") or None
    if person is not None and len(person) > 300:
        raise InputError.of("person", "at most 300 characters")
    return _api(calendar.week_view, services(), installation_id, viewer(installation_id),
                request.args.get("week") or None, person)


@bp.post(API + "/calendar/<int:task_id>/complete")
@member
def api_calendar_complete(installation_id: int, task_id: int):
    return _api(calendar.complete, services(), installation_id, task_id, viewer(installation_id))


@bp.patch(API + "/calendar/<int:task_id>")
@member
def api_calendar_move(installation_id: int, task_id: int):
    body = _body()
    if not isinstance(body, dict):
        raise InputError.of("body", "a JSON object with due")
    return _api(calendar.reschedule, services(), installation_id, task_id, viewer(installation_id), body.get("due"))


@bp.get(API + "/suggestions")
@member
def api_suggestions(installation_id: int):
    me = viewer(installation_id)
    with services().db.begin() as session:
        return jsonify({"suggestions": suggestions.open_for(session, installation_id, me.key)})


@bp.post(API + "/suggestions/<int:suggestion_id>/accept")
@member
def api_suggestion_accept(installation_id: int, suggestion_id: int):
    me = viewer(installation_id)
    with services().db.begin() as session:
        outcome = suggestions.accept(services(), session, suggestion_id, installation_id=installation_id, user=me.key)
    if outcome == "invalid":
        return _missing(LookupError("no such suggestion of yours"))
    return jsonify({"id": suggestion_id, "outcome": outcome}), 202 if outcome == "accepted" else 409


@bp.post(API + "/suggestions/<int:suggestion_id>/dismiss")
@member
def api_suggestion_dismiss(installation_id: int, suggestion_id: int):
    me = viewer(installation_id)
    with services().db.begin() as session:
        done = suggestions.dismiss(session, installation_id, suggestion_id, me.key)
    if not done:
        return _missing(LookupError("no open suggestion of yours with this id"))
    return jsonify({"id": suggestion_id, "outcome": "dismissed"})
