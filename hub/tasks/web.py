"""The board page (`/i/<id>/board`), the task settings card on the settings page, and their JSON
API (`/api/v1/installations/<id>/board`, `.../tasks/settings`). Access is the hub's one check
(hub/web/access.py): members see the board and the settings, only admins change them."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, request, url_for

from ..errors import Fatal, NeedsReauth, Retriable
from ..inputs import optional_int
from ..rules.connections import NoConnection
from ..web.access import admin, current_user, member
from ..web.bodies import json_body
from . import board, settings

bp = Blueprint("tasks", __name__, template_folder="templates")
API = "/api/v1/installations/<int:installation_id>"


def services() -> Any:
    return current_app.extensions["hub"]


def _invalid(fields: dict[str, str], status: int = 400):
    return jsonify({"error": "invalid" if status == 400 else "not_found",
                    "message": "; ".join(f"{k}: {v}" for k, v in fields.items()), "fields": fields}), status


def _board(installation_id: int) -> dict[str, Any]:
    """Raises LookupError (an unknown pipeline) and InputError (per_stage) for a 4xx."""
    per_stage = optional_int(request.args.get("per_stage"), "per_stage", low=1, high=200) or board.PER_STAGE
    pipeline = (request.args.get("pipeline_id") or "").strip()[:100] or None
    return board.build(services(), installation_id, pipeline, per_stage)


@bp.app_context_processor
def task_helpers() -> dict[str, Any]:
    """`task_settings(installation_id)` for the settings page's card."""
    def task_settings(installation_id: int) -> dict[str, Any]:
        with services().db.begin() as session:
            return settings.read(session, installation_id)
    return {"task_settings": task_settings}


@bp.get("/i/<int:installation_id>/board")
@member
def board_page(installation_id: int):
    problem = None
    try:
        data = _board(installation_id)
    except LookupError:
        return redirect(url_for("tasks.board_page", installation_id=installation_id))
    except (NoConnection, NeedsReauth, Retriable, Fatal) as exc:
        data, problem = {"pipelines": [], "pipeline_id": None, "columns": [], "warnings": []}, str(exc)
    return render_template("tasks/board.html", installation=g.installation, board=data, problem=problem,
                           labels=board.LABELS)


@bp.get(API + "/board")
@member
def api_board(installation_id: int):
    try:
        return jsonify(_board(installation_id))
    except LookupError as exc:
        field, _, message = str(exc).partition(": ")
        return _invalid({field: message}, 404)
    except NoConnection as exc:
        return jsonify({"error": "unavailable", "message": str(exc)}), 503


@bp.get(API + "/tasks/settings")
@member
def api_settings(installation_id: int):
    with services().db.begin() as session:
        return jsonify(settings.read(session, installation_id))


@bp.patch(API + "/tasks/settings")
@admin
def api_settings_change(installation_id: int):
    try:
        values = settings.validate(json_body())
    except settings.SettingsInputError as exc:
        return _invalid(exc.fields)
    with services().db.begin() as session:
        return jsonify(settings.change(session, installation_id, current_user().actor, values))


@bp.post("/i/<int:installation_id>/tasks/settings")
@admin
def settings_form(installation_id: int):
    """The settings page's form: an unchecked box is not sent, so both are always set."""
    values = {key: request.form.get(key) == "on" for key in settings.FIELDS}
    with services().db.begin() as session:
        settings.change(session, installation_id, current_user().actor, values)
    flash("Task settings saved.")
    return redirect(url_for("pages.settings", installation_id=installation_id) + "#tasks")
