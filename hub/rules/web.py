"""Rules on the settings page and in the JSON API (same service underneath, same answers).

Pages (server-rendered, CSRF-protected forms):
  /i/<id>/rules                         list, create from a ready automation
  /i/<id>/rules/<rule>                  edit: live dropdowns, preview, save as draft, activate
  /i/<id>/rules/<rule>/runs             run log of one rule (runs, links, trace) with retry
API (JSON; writes need X-CSRF-Token): /api/v1/installations/<id>/rules..., described in the OpenAPI
document (hub.web.openapi) from `OPERATIONS` and the marshmallow schemas in schemas.py."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from marshmallow import ValidationError

from ..errors import Fatal, NeedsReauth, Retriable
from ..inputs import InputError, optional_int
from ..web.access import admin, current_user
from ..web.bodies import json_body
from ..web.returns import safe_return_target
from . import schemas, service
from .actions import ACTIONS
from .presets import PRESETS
from .triggers import FIRES, OPERATORS, TRIGGERS

log = logging.getLogger("hub.rules")
bp = Blueprint("rules", __name__, template_folder=str(Path(__file__).parent / "templates"))
API = "/api/v1/installations/<int:installation_id>/rules"


def services():
    return current_app.extensions["hub"]


def actor() -> str:
    user = current_user()
    return user.crm_user_id if user else ""


# -- shared views of the data ---------------------------------------------------------------------
def catalog_view(installation_id: int, *, refresh: bool = False, connection_id: int | None = None) -> dict[str, Any]:
    """Everything the editor's dropdowns offer (and the API's /rules/catalog answers)."""
    conns = service.asana_connections(services(), installation_id)
    ids = [c.id for c in conns] if connection_id is None else [connection_id]
    cat = service.load_catalogs(services(), installation_id, refresh=refresh, asana_ids=ids)
    asana = []
    for c in conns:
        if c.id not in ids:
            continue
        workspaces = cat.asana.get(c.id)
        asana.append({"id": c.id, "name": c.account_name or c.account_email, "status": c.status,
                      "error": cat.errors.get(f"asana:{c.id}"),
                      "workspaces": [{"gid": w.gid, "name": w.name, "is_organization": w.is_organization,
                                      "teams": [{"id": t.gid, "name": t.name} for t in w.teams],
                                      "projects": [{"id": p.gid, "name": p.name} for p in w.projects],
                                      "users": [{"id": u.gid, "name": u.name + (f" <{u.email}>" if u.email else "")}
                                                for u in w.users]} for w in workspaces or []]})
    return {"triggers": [{"kind": t.kind, "label": t.label, "object_type": t.object_type,
                          "needs_pipeline": t.needs_pipeline, "needs_stage": t.needs_stage, "repeats": t.repeats,
                          "default_fires": t.default_fires} for t in TRIGGERS.values()],
            "actions": [{"kind": a.kind, "label": a.label, "target_type": a.target_type,
                         "attachments": a.attachments} for a in ACTIONS.values()],
            "operators": dict(OPERATORS), "pipelines": cat.pipelines or [], "deal_fields": cat.deal_fields or [],
            "person_fields": cat.person_fields or [], "asana": asana, "errors": dict(cat.errors)}


# -- pages ----------------------------------------------------------------------------------------
@bp.app_context_processor
def rules_helpers() -> dict[str, Any]:
    """`rules_summary(installation_id)` for the settings page's rules card."""
    def rules_summary(installation_id: int) -> dict[str, Any]:
        from sqlalchemy import func, select

        from ..store.models import Rule
        with services().db.begin() as session:
            rows = dict(session.execute(select(Rule.status, func.count()).where(
                Rule.installation_id == installation_id).group_by(Rule.status)).all())
            failing = session.scalars(select(Rule.name).where(Rule.installation_id == installation_id,
                                                              Rule.last_error.is_not(None))).all()
        return {"active": rows.get("active", 0), "draft": rows.get("draft", 0), "failing": list(failing)}
    return {"rules_summary": rules_summary}


@bp.get("/i/<int:installation_id>/rules")
def rules_page(installation_id: int):
    return render_template("rules/list.html", installation=g.installation,
                           rules=service.listing(services(), installation_id), presets=list(PRESETS.values()),
                           triggers=TRIGGERS, actions=ACTIONS)


@bp.post("/i/<int:installation_id>/rules/new")
@admin
def new_rule(installation_id: int):
    preset = request.form.get("preset", "")
    try:
        rule = service.create(services(), installation_id, {"preset": preset}, actor())
    except service.Invalid as exc:
        abort(400, "; ".join(f"{k}: {v}" for k, v in exc.errors.items()))
    flash(f"Draft “{rule['name']}” created from the ready automation. Pick the details, then activate it.")
    return redirect(url_for("rules.edit_page", installation_id=installation_id, rule_id=rule["id"]))


def _form_int(value: str | None) -> Any:
    """A form's id: digits 0-9, or nothing; anything else is passed on as typed, for the rule's
    schema to refuse naming the field (`target.connection_id`)."""
    try:
        return optional_int(value, "connection_id", low=1, high=schemas.MAX_ID)
    except InputError:
        return value


def form_body(form) -> dict[str, Any]:
    """The editor's form as a rule body (the API's shape)."""
    conditions = []
    rows = optional_int(form.get("condition_rows"), "condition_rows", low=0, high=10**6) or 0
    for n in range(min(rows, 50)):
        field_name = form.get(f"cond_field_{n}", "").strip()
        if field_name:
            conditions.append({"field": field_name, "op": form.get(f"cond_op_{n}", "eq"),
                               "value": form.get(f"cond_value_{n}", "")})
    mappings = [{"source": "deal", "key": k} for k in form.getlist("map_deal")] + \
               [{"source": "person", "key": k} for k in form.getlist("map_person")]
    return {"name": form.get("name", ""), "trigger": form.get("trigger", ""),
            "pipeline_id": form.get("pipeline_id") or None, "stage_id": form.get("stage_id") or None,
            "fires": form.get("fires") or None,
            "conditions": conditions,
            "carry": {k: bool(form.get(f"carry_{k}")) for k in ("value", "contacts", "notes", "attachments")},
            "action": form.get("action", ""),
            "target": {"connection_id": _form_int(form.get("connection_id")),
                       **{k: form.get(k) or None for k in ("workspace_gid", "project_gid", "team_gid", "assignee_gid")}},
            "name_template": form.get("name_template", ""), "description_template": form.get("description_template", ""),
            "field_mappings": mappings}


def _editor(installation_id: int, rule: dict[str, Any], values: dict[str, Any], *, errors: dict[str, str] | None = None,
            preview: dict | None = None, refresh: bool = False, status: int = 200, object_id: str = ""):
    catalog = catalog_view(installation_id, refresh=refresh)
    connection_id = values.get("target", {}).get("connection_id")
    connection = next((c for c in catalog["asana"] if c["id"] == connection_id), None)
    if connection is None and len(catalog["asana"]) == 1:
        connection = catalog["asana"][0]
    mapped = {(m["source"], m["key"]) for m in values.get("field_mappings", [])}
    return render_template("rules/edit.html", installation=g.installation, rule=rule, values=values,
                           errors=errors or {}, catalog=catalog, connection=connection, mapped=mapped,
                           preview=preview, triggers=TRIGGERS, actions=ACTIONS, operators=OPERATORS, fires=FIRES,
                           object_id=object_id,
                           trigger=TRIGGERS.get(values.get("trigger")), action=ACTIONS.get(values.get("action"))), status


def _rule_or_404(installation_id: int, rule_id: int) -> dict[str, Any]:
    try:
        return service.get(services(), installation_id, rule_id)
    except service.NotFound as exc:
        abort(404, str(exc))


@bp.get("/i/<int:installation_id>/rules/<int:rule_id>")
def edit_page(installation_id: int, rule_id: int):
    rule = _rule_or_404(installation_id, rule_id)
    return _editor(installation_id, rule, rule, refresh=bool(request.args.get("refresh")))


@bp.post("/i/<int:installation_id>/rules/<int:rule_id>")
@admin
def edit_submit(installation_id: int, rule_id: int):
    rule = _rule_or_404(installation_id, rule_id)
    values = form_body(request.form)
    do = request.form.get("do", "save")
    object_id = request.form.get("preview_object_id", "").strip()
    if do == "refresh":
        return _editor(installation_id, rule, values, refresh=True, object_id=object_id)
    if do == "preview":
        try:
            result = service.preview(services(), installation_id, values, object_id)
        except service.Invalid as exc:
            return _editor(installation_id, rule, values, errors=exc.errors, status=400, object_id=object_id)
        except (Fatal, Retriable, NeedsReauth) as exc:
            return _editor(installation_id, rule, values, errors={"preview_object_id": f"Pipedrive: {exc}"},
                           status=502, object_id=object_id)
        return _editor(installation_id, rule, values, preview=result, object_id=object_id)
    status = "active" if do == "activate" else "draft"
    try:
        saved = service.update(services(), installation_id, rule_id, {**values, "status": status}, actor(),
                               partial=False)
    except service.Invalid as exc:
        return _editor(installation_id, rule, values, errors=exc.errors, status=400, object_id=object_id)
    for notice in saved["notices"]:
        flash(notice)
    flash("Rule saved and active: new events are handled from now on." if status == "active"
          else "Rule saved as a draft (it handles no events until it is activated).")
    return redirect(url_for("rules.edit_page", installation_id=installation_id, rule_id=rule_id))


@bp.post("/i/<int:installation_id>/rules/<int:rule_id>/activate")
@admin
def activate_page(installation_id: int, rule_id: int):
    rule = _rule_or_404(installation_id, rule_id)
    try:
        service.set_status(services(), installation_id, rule_id, "active", actor())
    except service.Invalid as exc:
        return _editor(installation_id, rule, rule, errors=exc.errors, status=400)
    flash(f"“{rule['name']}” is active.")
    return redirect(safe_return_target(request.form.get("next"),
                                       url_for("rules.rules_page", installation_id=installation_id)))


@bp.post("/i/<int:installation_id>/rules/<int:rule_id>/deactivate")
@admin
def deactivate_page(installation_id: int, rule_id: int):
    rule = _rule_or_404(installation_id, rule_id)
    service.set_status(services(), installation_id, rule_id, "draft", actor())
    flash(f"“{rule['name']}” is deactivated (a draft again).")
    return redirect(url_for("rules.rules_page", installation_id=installation_id))


@bp.post("/i/<int:installation_id>/rules/<int:rule_id>/delete")
@admin
def delete_page(installation_id: int, rule_id: int):
    rule = _rule_or_404(installation_id, rule_id)
    service.remove(services(), installation_id, rule_id, actor())
    flash(f"“{rule['name']}” was deleted. The tasks it created stay in Asana.")
    return redirect(url_for("rules.rules_page", installation_id=installation_id))


@bp.get("/i/<int:installation_id>/rules/<int:rule_id>/runs")
def runs_page(installation_id: int, rule_id: int):
    rule = _rule_or_404(installation_id, rule_id)
    data = service.runs(services(), installation_id, rule_id)
    return render_template("rules/runs.html", installation=g.installation, rule=rule, runs=data["runs"],
                           trace=data["trace"])


@bp.post("/i/<int:installation_id>/rules/<int:rule_id>/runs/<int:run_id>/retry")
@admin
def retry_page(installation_id: int, rule_id: int, run_id: int):
    try:
        service.retry(services(), installation_id, rule_id, run_id, actor())
    except service.NotFound as exc:
        abort(404, str(exc))
    except service.Invalid as exc:
        abort(400, "; ".join(exc.errors.values()))
    flash(f"Run {run_id} will be tried again.")
    return redirect(url_for("rules.runs_page", installation_id=installation_id, rule_id=rule_id))


# -- JSON API -------------------------------------------------------------------------------------
def invalid(errors: dict[str, str]):
    return jsonify({"error": "invalid", "message": "; ".join(f"{k}: {v}" for k, v in errors.items()),
                    "fields": errors}), 400


def not_found(message: str):
    return jsonify({"error": "not_found", "message": message}), 404


def provider_error(exc: Exception):
    status = 503 if isinstance(exc, (Retriable, NeedsReauth)) else 502
    return jsonify({"error": "provider", "message": str(exc)}), status


def _json_body() -> Any:
    return json_body()


def _api(fn):
    """Map the service's outcomes to the API's answers."""
    from functools import wraps

    @wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except service.Invalid as exc:
            return invalid(exc.errors)
        except service.NotFound as exc:
            return not_found(str(exc))
        except InputError as exc:
            return invalid(exc.fields)
        except (Fatal, Retriable, NeedsReauth) as exc:
            return provider_error(exc)
    return run


@bp.get(API)
@_api
def api_list(installation_id: int):
    return jsonify({"rules": service.listing(services(), installation_id)})


@bp.post(API)
@admin
@_api
def api_create(installation_id: int):
    body = _json_body()
    if not isinstance(body, dict):
        return invalid({"body": "expected a JSON object"})
    if body.get("preset"):
        try:
            schemas.RuleCreate(partial=True).load(body)
        except ValidationError as exc:
            return invalid(service.flatten(exc.messages))
    return jsonify(service.create(services(), installation_id, body, actor())), 201


@bp.get(API + "/presets")
def api_presets(installation_id: int):
    return jsonify({"presets": [p.as_dict() for p in PRESETS.values()]})


@bp.get(API + "/catalog")
@_api
def api_catalog(installation_id: int):
    connection_id = optional_int(request.args.get("connection_id"), "connection_id", low=1, high=service.MAX_ID)
    if connection_id is not None and connection_id not in {c.id for c in service.asana_connections(services(),
                                                                                                     installation_id)}:
        return invalid({"connection_id": "no connected Asana account with this id"})
    return jsonify(catalog_view(installation_id, refresh=request.args.get("refresh") in ("1", "true"),
                                connection_id=connection_id))


@bp.post(API + "/preview")
@admin
@_api
def api_preview(installation_id: int):
    body = _json_body()
    if not isinstance(body, dict):
        return invalid({"body": "expected a JSON object"})
    body = {**body, "rule": service.strip_read_only(body.get("rule"))}
    try:
        data = schemas.PreviewIn().load(body)
    except ValidationError as exc:
        return invalid(service.flatten(exc.messages))
    return jsonify(service.preview(services(), installation_id, body["rule"], data["object_id"]))


@bp.get(API + "/<int:rule_id>")
@_api
def api_get(installation_id: int, rule_id: int):
    return jsonify(service.get(services(), installation_id, rule_id))


@bp.put(API + "/<int:rule_id>")
@admin
@_api
def api_update(installation_id: int, rule_id: int):
    body = _json_body()
    if not isinstance(body, dict):
        return invalid({"body": "expected a JSON object"})
    return jsonify(service.update(services(), installation_id, rule_id, body, actor()))


@bp.delete(API + "/<int:rule_id>")
@admin
@_api
def api_delete(installation_id: int, rule_id: int):
    service.remove(services(), installation_id, rule_id, actor())
    return jsonify({"ok": True})


@bp.post(API + "/<int:rule_id>/activate")
@admin
@_api
def api_activate(installation_id: int, rule_id: int):
    return jsonify(service.set_status(services(), installation_id, rule_id, "active", actor()))


@bp.post(API + "/<int:rule_id>/deactivate")
@admin
@_api
def api_deactivate(installation_id: int, rule_id: int):
    return jsonify(service.set_status(services(), installation_id, rule_id, "draft", actor()))


@bp.get(API + "/<int:rule_id>/runs")
@_api
def api_runs(installation_id: int, rule_id: int):
    return jsonify(service.runs(services(), installation_id, rule_id))


@bp.post(API + "/<int:rule_id>/runs/<int:run_id>/retry")
@admin
@_api
def api_retry(installation_id: int, rule_id: int, run_id: int):
    return jsonify(service.retry(services(), installation_id, rule_id, run_id, actor()))


# -- OpenAPI --------------------------------------------------------------------------------------
# (method, path, summary, request schema, (status, response schema), query parameters)
OPERATIONS: list[tuple[str, str, str, Any, tuple[int, Any], list[dict]]] = [
    ("get", "", "List the rules", None, (200, schemas.RuleList), []),
    ("post", "", "Create a rule (from a ready automation with `preset`)", schemas.RuleCreate, (201, schemas.RuleOut), []),
    ("get", "/presets", "The ready automations", None, (200, schemas.PresetList), []),
    ("get", "/catalog", "Dropdown data: triggers, pipelines and stages, fields, Asana workspaces", None,
     (200, schemas.Catalog),
     [{"name": "refresh", "in": "query", "schema": {"type": "string", "enum": ["0", "1"]},
       "description": "1: reload from the providers instead of the cache"},
      {"name": "connection_id", "in": "query", "schema": {"type": "integer", "format": "int64", "minimum": 1},
       "description": "only this Asana connection"}]),
    ("post", "/preview", "Render a (saved or unsaved) rule against a real deal or lead", schemas.PreviewIn,
     (200, schemas.PreviewOut), []),
    ("get", "/{rule_id}", "One rule", None, (200, schemas.RuleOut), []),
    ("put", "/{rule_id}", "Change a rule (fields left out keep their values)", schemas.RuleChange,
     (200, schemas.RuleOut), []),
    ("delete", "/{rule_id}", "Delete a rule (its runs and links stay)", None, (200, schemas.Ok), []),
    ("post", "/{rule_id}/activate", "Activate (the rule must be complete)", None, (200, schemas.RuleOut), []),
    ("post", "/{rule_id}/deactivate", "Deactivate (back to draft)", None, (200, schemas.RuleOut), []),
    ("get", "/{rule_id}/runs", "Runs of the rule with their links, and its trace", None, (200, schemas.RunList), []),
    ("post", "/{rule_id}/runs/{run_id}/retry", "Retry a failed run", None, (200, schemas.Run), []),
]


BASE, TAG = "/api/v1/installations/{installation_id}/rules", "rules"   # for hub.web.openapi
# a new rule comes from a ready automation, or names what every rule needs
OPENAPI_PATCHES = {"RuleCreate": {"anyOf": [
    {"required": ["preset"], "properties": {"preset": {"type": "string"}}},
    {"required": ["name", "trigger", "action", "name_template"]}]}}
