"""Rules on the settings page and in the JSON API (same service underneath, same answers).

Pages (server-rendered, CSRF-protected forms):
  /i/<id>/rules                         list, create from a ready automation
  /i/<id>/rules/<rule>                  edit: trigger, conditions, steps (add, reorder, remove), live
                                        dropdowns, preview, save as draft, activate
  /i/<id>/rules/<rule>/runs             run log of one rule (runs, their steps and links, trace) with retry
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
from ..mappings.fields import BUILT_IN
from ..web.access import admin, current_user
from ..web.bodies import json_body
from ..web.returns import safe_return_target
from . import catalogs, connections, kinds, schemas, service
from .conditions import OPERATORS
from .editor import delay_parts, form_body, step_action
from .triggers import FIRES, triggers as crm_triggers
from .validation import Crm, provider_problem

log = logging.getLogger("hub.rules")
bp = Blueprint("rules", __name__, template_folder=str(Path(__file__).parent / "templates"))
API = "/api/v1/installations/<int:installation_id>/rules"


def services():
    return current_app.extensions["hub"]


def actor() -> str:
    user = current_user()
    return user.crm_user_id if user else ""


# -- shared views of the data ---------------------------------------------------------------------
def kind_dict(kind: kinds.Kind) -> dict[str, Any]:
    return {"kind": kind.kind, "label": kind.label, "connector": kind.connector, "templates": list(kind.templates),
            "settings": [{"key": s.key, "label": s.label, "catalog": s.catalog, "path": s.path, "parent": s.parent,
                          "required": s.required, "many": s.many, "choices": [list(c) for c in s.choices]}
                         for s in kind.settings],
            "makes": kind.makes, "attachments": kind.attachments, "completes": kind.completes, "carries": kind.carries}


def step_connections(installation_id: int) -> list[Any]:
    """The installation's connections whose connector offers steps."""
    offering = {k.connector for k in kinds.connector_kinds().values()}
    with services().db.begin() as session:
        return [c for name in sorted(offering) for c in connections.usable(session, installation_id, name)]


def catalog_view(installation_id: int, *, refresh: bool = False, connection_id: int | None = None) -> dict[str, Any]:
    """Everything the editor's dropdowns offer (and the API's /rules/catalog answers)."""
    crm = Crm(services(), installation_id, refresh=refresh)
    offered = crm_triggers(crm.provider)
    object_types = sorted({t.object_type for t in offered.values()} | ({"person"} if offered else set()))
    fields = {}
    for object_type in object_types:
        found = crm.fields(object_type)
        if found is not None:
            fields[object_type] = found
    pipelines: list[dict] | None = None
    for name in dict.fromkeys(t.pipeline_catalog for t in offered.values() if t.needs_pipeline):
        found = crm.pipelines(name)      # every pipeline catalog the triggers name (deals', leads' ...)
        if found is not None:
            pipelines = (pipelines or []) + [p for p in found if p["id"] not in {q["id"] for q in pipelines or []}]
    all_kinds = kinds.all_kinds()
    wanted: dict[str, set[str]] = {}
    for kind in all_kinds.values():
        if kind.connector:
            wanted.setdefault(kind.connector, set()).update(s.catalog for s in kind.settings
                                                            if s.catalog and not s.many)
    out_connections = []
    errors = {k: v for k, v in crm.errors.items()}
    for c in step_connections(installation_id):
        if connection_id is not None and c.id != connection_id:
            continue
        loader = catalogs.Loader(services(), c, refresh)
        values: dict[str, Any] = {}
        error = None
        for name in sorted(wanted.get(c.provider, ())):
            try:
                values[name] = loader(name)
            except (Fatal, Retriable, NeedsReauth, KeyError) as exc:
                error = f"{connections.title(c.provider)}: {provider_problem(exc)}"
                errors[f"connection:{c.id}"] = error
                break
        out_connections.append({"id": c.id, "connector": c.provider, "name": c.account_name or c.account_email,
                                "status": c.status, "catalogs": values, "error": error})
    param_choices = _param_choices(crm, offered.values(), errors)
    return {"triggers": [{"kind": t.kind, "label": t.label, "object_type": t.object_type, "params": list(t.params),
                          "needs_pipeline": t.needs_pipeline, "needs_stage": t.needs_stage, "repeats": t.repeats,
                          "default_fires": t.default_fires, "choices": {p: c for p, c in t.choices}}
                         for t in offered.values()],
            "param_choices": param_choices,
            "kinds": [kind_dict(k) for k in all_kinds.values()], "operators": dict(OPERATORS),
            "pipelines": pipelines or [], "fields": fields, "connections": out_connections, "errors": errors}


def _param_choices(crm: Crm, offered: Any, errors: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """The options of the triggers' other params that name a catalog ({param: [{id, name}]})."""
    wanted = {catalog for t in offered for p, catalog in t.choices if p in t.other_params}
    out: dict[str, list[dict[str, str]]] = {}
    if not wanted:
        return out
    try:
        loader = catalogs.Loader(services(), crm.connection(), crm.refresh)
        for name in sorted(wanted):
            if name in loader.names():
                out[name] = kinds.options(kinds.Setting(name, name, catalog=name), loader(name)) or []
    except connections.NoConnection:
        pass
    except (Fatal, Retriable, NeedsReauth) as exc:
        errors["crm"] = f"{crm.title()}: {provider_problem(exc)}"
    return out


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
    provider = Crm(services(), installation_id).provider
    return render_template("rules/list.html", installation=g.installation,
                           rules=service.listing(services(), installation_id),
                           presets=[service.preset_dict(p) for p in service.presets(services(), installation_id)],
                           triggers=crm_triggers(provider), kinds=kinds.all_kinds())


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


def picker_fields(catalog: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    """Per object type, what the editor's field picker inserts into a template ({insert, label}):
    the object's own fields under its name (the namespace the render context gives the trigger's
    object), then the linked person's and organization's."""
    out: dict[str, list[dict[str, str]]] = {}
    for object_type, fields in catalog["fields"].items():
        items = [{"insert": f"{{{{ {object_type}.{f['key']} }}}}" if f["key"].isidentifier()
                  else f"{{{{ {object_type}[{f['key']!r}] }}}}", "label": f["label"]} for f in fields]
        known = {f["key"] for f in fields}
        items += [{"insert": f"{{{{ {object_type}.{key} }}}}", "label": label}
                  for key, label in (("stage", "Stage name"), ("pipeline", "Pipeline name"), ("owner", "Owner name"),
                                     ("url", "Link to it")) if key not in known]
        if object_type not in ("person", "org", "organization"):
            items += [{"insert": "{{ person.%s }}" % k, "label": f"Person: {k}"} for k in ("name", "email", "phone")]
        items += [{"insert": "{{ org.%s }}" % k, "label": f"Organization: {k}"} for k in ("name", "address")]
        out[object_type] = items
    return out


def _recent(installation_id: int, object_type: str, refresh: bool) -> tuple[list[dict[str, str]], str | None]:
    """Recent records for the preview's picker, or why there are none."""
    from .records import NoSource, recent_choices
    crm = Crm(services(), installation_id)
    try:
        return recent_choices(services(), crm.connection(), object_type, refresh=refresh), None
    except (NoSource, connections.NoConnection) as exc:
        return [], str(exc)
    except (Fatal, Retriable, NeedsReauth) as exc:
        return [], f"{crm.title()}: {provider_problem(exc)}"


def _editor(installation_id: int, rule: dict[str, Any], values: dict[str, Any], *, errors: dict[str, str] | None = None,
            preview: dict | None = None, refresh: bool = False, status: int = 200, object_id: str = ""):
    catalog = catalog_view(installation_id, refresh=refresh)
    provider = Crm(services(), installation_id).provider
    offered = crm_triggers(provider)
    trigger = offered.get(values.get("trigger"))
    recent, recent_error = _recent(installation_id, trigger.object_type if trigger else "deal", refresh)
    return render_template("rules/edit.html", installation=g.installation, rule=rule, values=values,
                           errors=errors or {}, catalog=catalog, preview=preview, triggers=offered,
                           kinds=kinds.all_kinds(), operators=OPERATORS, fires=FIRES, object_id=object_id,
                           delay_parts=delay_parts, setting_options=kinds.options, builtin=BUILT_IN,
                           trigger=trigger, picker=picker_fields(catalog), recent=recent,
                           recent_error=recent_error,
                           trigger_objects={t.kind: t.object_type for t in offered.values()}), status


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
    object_id = request.form.get("preview_object_id", "").strip() or request.form.get("preview_pick", "").strip()
    if do == "refresh":
        return _editor(installation_id, rule, values, refresh=True, object_id=object_id)
    if do.startswith("step_"):
        try:
            values = step_action(values, do, request.form.get("new_step_kind", ""))
        except InputError as exc:
            return _editor(installation_id, rule, values, errors=exc.fields, status=400, object_id=object_id)
        return _editor(installation_id, rule, values, object_id=object_id)
    if do == "preview":
        try:
            step = optional_int(request.form.get("preview_step"), "preview_step", low=0, high=19)
            result = service.preview(services(), installation_id, values, object_id, step)
        except InputError as exc:
            return _editor(installation_id, rule, values, errors=exc.fields, status=400, object_id=object_id)
        except service.Invalid as exc:
            return _editor(installation_id, rule, values, errors=exc.errors, status=400, object_id=object_id)
        except (Fatal, Retriable, NeedsReauth) as exc:
            return _editor(installation_id, rule, values, errors={"preview_object_id": f"{exc}"},
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
    for warning in saved["warnings"]:
        flash(f"Warning: {warning}")
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
    flash(f"“{rule['name']}” was deleted. What its steps made stays where it was made.")
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
    return jsonify({"presets": [service.preset_dict(p) for p in service.presets(services(), installation_id)]})


@bp.get(API + "/catalog")
@_api
def api_catalog(installation_id: int):
    connection_id = optional_int(request.args.get("connection_id"), "connection_id", low=1, high=service.MAX_ID)
    if connection_id is not None and connection_id not in {c.id for c in step_connections(installation_id)}:
        return invalid({"connection_id": "no connected account with this id offers steps"})
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
    return jsonify(service.preview(services(), installation_id, body["rule"], data["object_id"], data.get("step")))


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
    ("get", "/catalog", "Dropdown data: triggers, step kinds, pipelines and stages, fields, each account's lists",
     None,
     (200, schemas.Catalog),
     [{"name": "refresh", "in": "query", "schema": {"type": "string", "enum": ["0", "1"]},
       "description": "1: reload from the providers instead of the cache"},
      {"name": "connection_id", "in": "query", "schema": {"type": "integer", "format": "int64", "minimum": 1},
       "description": "only this account's lists"}]),
    ("post", "/preview", "Render a step of a (saved or unsaved) rule against a real CRM object", schemas.PreviewIn,
     (200, schemas.PreviewOut), []),
    ("get", "/{rule_id}", "One rule", None, (200, schemas.RuleOut), []),
    ("put", "/{rule_id}", "Change a rule (fields left out keep their values)", schemas.RuleChange,
     (200, schemas.RuleOut), []),
    ("delete", "/{rule_id}", "Delete a rule (its runs and links stay)", None, (200, schemas.Ok), []),
    ("post", "/{rule_id}/activate", "Activate (the rule must be complete)", None, (200, schemas.RuleOut), []),
    ("post", "/{rule_id}/deactivate", "Deactivate (back to draft)", None, (200, schemas.RuleOut), []),
    ("get", "/{rule_id}/runs", "Runs of the rule with their steps and links, and its trace", None,
     (200, schemas.RunList), []),
    ("post", "/{rule_id}/runs/{run_id}/retry", "Retry a failed run (its completed steps are not repeated)", None,
     (200, schemas.Run), []),
]


BASE, TAG = "/api/v1/installations/{installation_id}/rules", "rules"   # for hub.web.openapi
# a new rule comes from a ready automation, or names what every rule needs (steps, or the shorthand)
OPENAPI_PATCHES = {"RuleCreate": {"anyOf": [
    {"required": ["preset"], "properties": {"preset": {"type": "string"}}},
    {"required": ["name", "trigger", "steps"]},
    {"required": ["name", "trigger", "action", "name_template"]}]},
    "Target": {"additionalProperties": True}}
