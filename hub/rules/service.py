"""Rules as the pages and the API see them: create (from a ready automation), save, activate,
deactivate, delete, preview, runs and their retry. One implementation for both, so the form and
the API accept and refuse exactly the same things (what they accept: validation.py)."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from .. import connectors
from ..connectors.ids import InvalidId, check_id
from ..errors import Fatal
from ..mappings import (Carry, Limits, Mapping, TargetRenderer, TemplateProblem, clean_html, file_name, file_size,
                        title_of)
from ..oauth.installs import audit
from ..store import RunLog, utcnow
from ..store.models import Rule, RuleLink, RuleRun, RuleStep, RuleStepRun
from . import connections, kinds, schemas
from .steps.email import recipients
from .triggers import PARAMS, triggers as crm_triggers
from .validation import (Crm, Invalid, Previous, check, flatten, parse, shorthand_errors, step_input,
                         strip_read_only)

log = logging.getLogger("hub.rules")
__all__ = ["Invalid", "NotFound", "flatten", "step_input", "strip_read_only"]


class NotFound(Exception):
    pass


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() + "Z" if moment else None


# -- reading --------------------------------------------------------------------------------------
def step_dict(row: RuleStep) -> dict[str, Any]:
    kind = kinds.get(row.kind)
    condition = row.condition or None
    return {"id": row.uid, "kind": row.kind, "label": kind.label if kind else row.kind,
            "connection_id": row.connection_id, "settings": dict(row.settings or {}),
            "templates": {k: str(v) for k, v in (row.templates or {}).items()},
            "carry": {"title": True, **Carry.from_dict(row.carry).as_dict()},
            "field_mappings": [{"source": m.get("source"), "key": m.get("key"), "label": m.get("label", ""),
                                "type": m.get("type", "")} for m in row.mappings or []],
            "condition": {k: condition[k] for k in ("field", "op", "value", "label") if k in condition}
            if condition else None,
            "delay_seconds": row.delay_seconds or 0, "due_in_days": row.due_in_days}


def rule_dict(rule: Rule, steps: list[RuleStep], notices: list[str] | None = None,
              warnings: list[str] | None = None) -> dict[str, Any]:
    return {"id": rule.id, "name": rule.name, "status": rule.status, "preset": rule.preset, "trigger": rule.trigger,
            "pipeline_id": rule.pipeline_id, "stage_id": rule.stage_id, "params": dict(rule.params or {}),
            "origin": rule.origin or "", "fires": rule.fires,
            "conditions": [{k: c[k] for k in ("field", "op", "value", "label") if k in c} for c in rule.conditions or []],
            "steps": [step_dict(s) for s in sorted(steps, key=lambda s: s.position)],
            "version": rule.version, "last_error": rule.last_error, "created_at": _iso(rule.created_at),
            "updated_at": _iso(rule.updated_at), "activated_at": _iso(rule.activated_at), "notices": notices or [],
            "warnings": warnings or []}


MAX_ID = schemas.MAX_ID   # a URL may carry any integer; the database ids are 64-bit


def _rule(session, installation_id: int, rule_id: int) -> Rule:
    rule = session.get(Rule, rule_id) if 0 < rule_id <= MAX_ID else None
    if rule is None or rule.installation_id != installation_id:
        raise NotFound(f"rule_id: no rule {rule_id} in this installation")
    return rule


def _steps(session, rule_id: int) -> list[RuleStep]:
    return list(session.scalars(select(RuleStep).where(RuleStep.rule_id == rule_id)
                                .order_by(RuleStep.position, RuleStep.id)))


def get(services: Any, installation_id: int, rule_id: int) -> dict[str, Any]:
    with services.db.begin() as session:
        rule = _rule(session, installation_id, rule_id)
        return rule_dict(rule, _steps(session, rule.id))


def listing(services: Any, installation_id: int) -> list[dict[str, Any]]:
    with services.db.begin() as session:
        rules = session.scalars(select(Rule).where(Rule.installation_id == installation_id).order_by(Rule.id)).all()
        out = []
        for rule in rules:
            item = rule_dict(rule, _steps(session, rule.id))
            last = session.scalar(select(RuleRun).where(RuleRun.rule_id == rule.id).order_by(RuleRun.id.desc()).limit(1))
            item["last_run"] = {"status": last.status, "at": _iso(last.updated_at)} if last else None
            out.append(item)
        return out


def _previous(services: Any, installation_id: int, rule_id: int) -> Previous:
    with services.db.begin() as session:
        rule = _rule(session, installation_id, rule_id)
        return Previous.of({}, _steps(session, rule.id), rule.conditions)


# -- writing --------------------------------------------------------------------------------------
def _store(session, rule: Rule, data: dict[str, Any]) -> None:
    rule.name = data["name"].strip()
    rule.trigger = data["trigger"]
    rule.pipeline_id, rule.stage_id, rule.fires = data["pipeline_id"], data["stage_id"], data["fires"]
    rule.params = dict(data.get("params") or {}) or None
    rule.conditions = [dict(c) for c in data["conditions"]]
    rule.updated_at = utcnow()
    session.execute(delete(RuleStep).where(RuleStep.rule_id == rule.id))
    for n, step in enumerate(data["steps"]):
        session.add(RuleStep(rule_id=rule.id, position=n, uid=step["id"], kind=step["kind"],
                             connection_id=step.get("connection_id"), settings=dict(step["settings"]),
                             templates=dict(step["templates"]),
                             carry={k: bool(v) for k, v in step["carry"].items() if k != "title"},
                             mappings=list(step.get("mappings") or []),
                             condition=dict(step["condition"]) if step.get("condition") else None,
                             delay_seconds=int(step.get("delay_seconds") or 0), due_in_days=step.get("due_in_days")))


def _checked(services: Any, installation_id: int, data: dict[str, Any], shorthand: bool, *, complete: bool,
             previous: Previous | None = None) -> tuple[list[str], list[str]]:
    """(notices, warnings) of a rule that may be saved; Invalid otherwise."""
    warnings: list[str] = []
    errors, notices = check(services, installation_id, data, complete=complete, previous=previous,
                            warnings=warnings)
    if errors:
        raise Invalid(shorthand_errors(errors) if shorthand and len(data["steps"]) == 1 else errors)
    return notices, warnings


def presets(services: Any, installation_id: int) -> list[Any]:
    """The ready automations the connectors ship: the installation's CRM's, and those of the targets
    the installation has connected (a target's presets need an account of it to run)."""
    crm = Crm(services, installation_id)
    out: dict[str, Any] = {}
    with services.db.begin() as session:
        connected = {c.name for c in connectors.connectors()
                     if c.name != crm.provider and (c.has("task_target") or c.has("project_target"))
                     and connections.usable(session, installation_id, c.name)}
    for c in connectors.connectors():
        for preset in c.presets:
            if c.name == crm.provider or c.name in connected:
                out.setdefault(preset.key, preset)
    offered = crm_triggers(crm.provider)
    return [p for p in out.values() if preset_body(p.rule or {}).get("trigger") in offered]


def preset_dict(preset: Any) -> dict[str, Any]:
    rule = preset_body(preset.rule or {})
    return {"key": preset.key, "title": preset.title, "summary": preset.description, "trigger": rule.get("trigger"),
            "steps": [str(s.get("kind")) for s in rule.get("steps") or [] if isinstance(s, dict)]}


def _resolve_kind(services: Any, installation_id: int, kind: str) -> tuple[str, int | None]:
    """A preset's step kind: `<connector>.<what>`, or `*.<what>` for the connector of the one
    account that offers it. With exactly one usable account, it is picked for the step."""
    connector, _, what = kind.partition(".")
    with services.db.begin() as session:
        if connector != "*":
            found = connections.usable(session, installation_id, connector) if what else []
            return kind, found[0].id if len(found) == 1 else None
        offering = sorted({k.connector for k in kinds.connector_kinds().values() if k.kind.endswith(f".{what}")})
        for name in offering:
            found = connections.usable(session, installation_id, name)
            if found:
                return f"{name}.{what}", found[0].id if len(found) == 1 else None
    return (f"{offering[0]}.{what}" if offering else kind), None


def preset_body(rule: dict[str, Any]) -> dict[str, Any]:
    """A preset's rule (the contract's shape: `trigger` {kind, params}, step templates `name` and
    `notes`, `delay` in seconds) in the rule API's shape."""
    body = {k: v for k, v in rule.items() if k in ("name", "fires", "conditions", "pipeline_id", "stage_id")}
    trigger = rule.get("trigger")
    if isinstance(trigger, dict):
        body["trigger"] = trigger.get("kind")
        for param, value in (trigger.get("params") or {}).items():
            if value in (None, "", []):
                continue
            if param in PARAMS:
                body[PARAMS[param][0]] = str(value)
            else:
                body.setdefault("params", {})[param] = [str(v) for v in value] if isinstance(value, (list, tuple)) \
                    else str(value)
    elif trigger is not None:
        body["trigger"] = trigger
    steps = []
    for given in rule.get("steps") or []:
        step = {k: v for k, v in dict(given).items() if k != "delay"}
        templates = dict(step.get("templates") or {})
        if "notes" in templates:
            templates.setdefault("description", templates.pop("notes"))
        step["templates"] = templates
        if isinstance(given.get("delay"), int) and not isinstance(given.get("delay"), bool):
            step.setdefault("delay_seconds", given["delay"])
        steps.append(step)
    body["steps"] = steps
    return body


def from_preset(services: Any, installation_id: int, key: str) -> dict[str, Any]:
    """The body of a new draft from a ready automation, prefilled where the choice is obvious."""
    found = {p.key: p for p in presets(services, installation_id)}
    preset = found.get(key)
    if preset is None:
        raise Invalid({"preset": f"unknown ready automation; one of {', '.join(found) or 'none'}"})
    shaped = preset_body(preset.rule or {})
    body: dict[str, Any] = {"name": preset.title, **{k: v for k, v in shaped.items() if k != "steps"}}
    steps = []
    for step in shaped["steps"]:
        if "." in str(step.get("kind", "")):
            step["kind"], connection_id = _resolve_kind(services, installation_id, str(step["kind"]))
            if connection_id is not None and not step.get("connection_id"):
                step["connection_id"] = connection_id
        steps.append(step)
    body["steps"] = steps
    trigger = crm_triggers(Crm(services, installation_id).provider).get(body.get("trigger"))
    if trigger is not None and trigger.needs_pipeline and not body.get("pipeline_id"):
        pipelines = Crm(services, installation_id).pipelines(trigger.pipeline_catalog)
        if pipelines:
            body["pipeline_id"] = pipelines[0]["id"]
            if trigger.needs_stage and pipelines[0]["stages"] and not body.get("stage_id"):
                body["stage_id"] = pipelines[0]["stages"][-1]["id"]
    return body


def create(services: Any, installation_id: int, body: dict[str, Any], actor: str, *,
           origin: str = "") -> dict[str, Any]:
    """A new rule; `origin` names the page that writes it (automation.py), "" for the editor's."""
    body = dict(body)
    preset = body.pop("preset", None)
    if preset:
        base = from_preset(services, installation_id, preset)
        shorthand = ("action", "target", "name_template", "description_template")
        if any(k in body for k in shorthand) and "steps" not in body:
            base.pop("steps", None)
            body = {**base, **body}
            if "action" not in body:
                raise Invalid({"action": "give the step kind with the shorthand, or the steps"})
        else:
            body = {**base, **body}
    data, shorthand = parse(body)
    status = data.pop("status") or "draft"
    notices, warnings = _checked(services, installation_id, data, shorthand, complete=status == "active")
    with services.db.begin() as session:
        now = utcnow()
        rule = Rule(installation_id=installation_id, name=data["name"], status=status, preset=preset or "",
                    origin=origin, trigger=data["trigger"], version=1, created_by=actor, created_at=now, updated_at=now,
                    activated_at=now if status == "active" else None, conditions=[])
        session.add(rule)
        session.flush()
        _store(session, rule, data)
        audit(session, installation_id, actor, "rule.created", rule_id=rule.id, name=rule.name, status=status)
        session.flush()
        return rule_dict(rule, _steps(session, rule.id), notices, warnings)


def update(services: Any, installation_id: int, rule_id: int, body: dict[str, Any], actor: str, *,
           partial: bool = True) -> dict[str, Any]:
    current = get(services, installation_id, rule_id)
    data, shorthand = parse(body, partial_of=current if partial else None)
    status = data.pop("status") or current["status"]
    notices, warnings = _checked(services, installation_id, data, shorthand, complete=status == "active",
                       previous=_previous(services, installation_id, rule_id))
    with services.db.begin() as session:
        rule = _rule(session, installation_id, rule_id)
        _store(session, rule, data)
        rule.version += 1
        rule.last_error = None
        if status == "active" and rule.status != "active":
            rule.activated_at = utcnow()
        rule.status = status
        audit(session, installation_id, actor, "rule.updated", rule_id=rule.id, name=rule.name, status=status,
              version=rule.version)
        session.flush()
        return rule_dict(rule, _steps(session, rule.id), notices, warnings)


def set_status(services: Any, installation_id: int, rule_id: int, status: str, actor: str) -> dict[str, Any]:
    if status == "active":
        current = get(services, installation_id, rule_id)
        data, _ = parse({}, partial_of=current)
        data.pop("status")
        _checked(services, installation_id, data, False, complete=True,
                 previous=_previous(services, installation_id, rule_id))
    with services.db.begin() as session:
        rule = _rule(session, installation_id, rule_id)
        if rule.status != status:
            rule.status = status
            rule.version += 1
            rule.updated_at = utcnow()
            if status == "active":
                rule.activated_at = utcnow()
                rule.last_error = None
            audit(session, installation_id, actor, f"rule.{'activated' if status == 'active' else 'deactivated'}",
                  rule_id=rule.id, name=rule.name)
        return rule_dict(rule, _steps(session, rule.id))


def remove(services: Any, installation_id: int, rule_id: int, actor: str) -> None:
    """The rule and its steps go; its runs and links stay as the record of what was done."""
    with services.db.begin() as session:
        rule = _rule(session, installation_id, rule_id)
        session.execute(delete(RuleStep).where(RuleStep.rule_id == rule.id))
        audit(session, installation_id, actor, "rule.deleted", rule_id=rule.id, name=rule.name)
        session.delete(rule)


# -- runs -----------------------------------------------------------------------------------------
def run_dict(run: RuleRun, steps: list[RuleStepRun], links: list[RuleLink]) -> dict[str, Any]:
    return {"id": run.id, "rule_id": run.rule_id, "hub_event_id": run.hub_event_id, "object_type": run.object_type,
            "object_id": run.object_id, "status": run.status, "attempts": run.attempts, "error": run.error,
            "wake_at": _iso(run.wake_at), "detail": dict(run.detail or {}),
            "steps": [{"step_id": s.step_uid, "position": s.position, "kind": s.kind, "status": s.status,
                       "external_id": s.external_id, "wake_at": _iso(s.wake_at), "detail": dict(s.detail or {})}
                      for s in sorted(steps, key=lambda s: (s.position, s.id))],
            "links": [{"step_id": link.step_uid, "object_type": link.object_type, "object_id": link.object_id,
                       "connector": link.connector, "made": link.made, "external_id": link.external_id,
                       "name": link.name, "url": link.url, "status": link.status} for link in links],
            "created_at": _iso(run.created_at), "finished_at": _iso(run.finished_at)}


def _run_parts(session, run_ids: list[int]) -> tuple[dict[int, list], dict[int, list]]:
    steps: dict[int, list] = {}
    links: dict[int, list] = {}
    if run_ids:
        for s in session.scalars(select(RuleStepRun).where(RuleStepRun.run_id.in_(run_ids))):
            steps.setdefault(s.run_id, []).append(s)
        for link in session.scalars(select(RuleLink).where(RuleLink.run_id.in_(run_ids)).order_by(RuleLink.id)):
            links.setdefault(link.run_id, []).append(link)
    return steps, links


def runs(services: Any, installation_id: int, rule_id: int, limit: int = 100) -> dict[str, Any]:
    with services.db.begin() as session:
        _rule(session, installation_id, rule_id)
        rows = session.scalars(select(RuleRun).where(RuleRun.installation_id == installation_id,
                                                     RuleRun.rule_id == rule_id)
                               .order_by(RuleRun.id.desc()).limit(limit)).all()
        steps, links = _run_parts(session, [r.id for r in rows])
        trace = session.scalars(select(RunLog).where(RunLog.installation_id == installation_id,
                                                     RunLog.rule_id == rule_id)
                                .order_by(RunLog.id.desc()).limit(300)).all()
        return {"runs": [run_dict(r, steps.get(r.id, []), links.get(r.id, [])) for r in rows],
                "trace": [{"at": _iso(t.created_at), "step": t.step, "status": t.status, "message": t.message,
                           "hub_event_id": t.hub_event_id} for t in trace]}


def retry(services: Any, installation_id: int, rule_id: int, run_id: int, actor: str) -> dict[str, Any]:
    """Run a failed run again with the rule as it is now (after the admin fixed it); the steps it
    completed are not repeated."""
    from .engine import enqueue_run

    with services.db.begin() as session:
        _rule(session, installation_id, rule_id)
        run = session.get(RuleRun, run_id) if 0 < run_id <= MAX_ID else None
        if run is None or run.rule_id != rule_id:
            raise NotFound(f"run_id: no run {run_id} of this rule")
        if run.status != "failed":
            raise Invalid({"run_id": f"only failed runs can be retried; this one is {run.status}"})
        run.status, run.error, run.updated_at, run.finished_at = "queued", None, utcnow(), None
        enqueue_run(services, session, run, retry_of=run.attempts)
        audit(session, installation_id, actor, "rule.run_retried", rule_id=rule_id, run_id=run_id)
        session.flush()
        steps, links = _run_parts(session, [run.id])
        return run_dict(run, steps.get(run.id, []), links.get(run.id, []))


# -- preview --------------------------------------------------------------------------------------
class _RuleView:
    """The attributes `Trigger.mismatch` reads, from an unsaved rule body."""

    def __init__(self, data: dict[str, Any]):
        self.pipeline_id, self.stage_id, self.conditions = data["pipeline_id"], data["stage_id"], data["conditions"]
        self.params = data.get("params") or {}


def preview(services: Any, installation_id: int, body: dict[str, Any], object_id: str,
            step_index: int | None = None) -> dict[str, Any]:
    """Render a step of a rule (saved or not) against a real CRM object, without creating anything."""
    from .records import crm_source

    data, shorthand = parse(body)
    data.pop("status")
    crm = Crm(services, installation_id)
    trigger = crm_triggers(crm.provider).get(data["trigger"])
    if trigger is None:
        raise Invalid({"rule.trigger": f"not a trigger {crm.title()} emits"})
    if not object_id:
        raise Invalid({"object_id": f"give the id of a {trigger.object_type} to preview with"})
    if crm.provider is not None:   # the id goes into an API path: the CRM's connector says what a valid one is
        try:
            object_id = check_id(crm.provider, trigger.object_type, object_id, "object_id")
        except InvalidId as exc:
            raise Invalid({exc.field: exc.message}) from None
        except KeyError:
            pass
    checked: list[str] = []
    errors, notices = check(services, installation_id, data, complete=False, crm=crm, warnings=checked)
    template_errors = {k: v for k, v in errors.items() if ".templates." in k}
    if template_errors:
        raise Invalid(shorthand_errors(template_errors) if shorthand else template_errors)
    candidates = [n for n, s in enumerate(data["steps"]) if s["templates"]]
    index = step_index if step_index is not None else (candidates[0] if candidates else None)
    if index is not None and (index >= len(data["steps"]) or not data["steps"][index]["templates"]):
        raise Invalid({"step": "this step has nothing to render"})
    step = data["steps"][index] if index is not None else None
    carry = Carry.from_dict(step["carry"]) if step else Carry()
    mappings = [Mapping(m["source"], m["key"], m.get("label", ""), m.get("type", ""), dict(m.get("options") or {}))
                for m in (step or {}).get("mappings") or []]
    warnings: list[str] = list(notices) + checked
    try:
        record = crm_source(services, crm.connection()).load(trigger.object_type, str(object_id), None, carry,
                                                             warnings)
    except Fatal as exc:
        if exc.status in (400, 404, 410):
            raise Invalid({"object_id": f"no {trigger.object_type} {object_id} in {crm.title()}"}) from None
        raise
    renderer = TargetRenderer(Limits.from_settings(services.settings))
    out: dict[str, Any] = {"name": "", "html_notes": "", "to": []}
    try:
        if step is not None and step["kind"] == "email":
            texts = renderer.render_texts(step["templates"], record, carry, mappings, event={"kind": trigger.kind},
                                          rule_name=data["name"])
            out = {"name": " ".join(texts["subject"].split()), "html_notes": clean_html(texts["body"].replace(
                "&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")), "to": recipients(texts["to"])}
        elif step is not None:
            rendered = renderer.render(step["templates"].get("name", ""), step["templates"].get("description", ""),
                                       record, carry, mappings, event={"kind": trigger.kind}, rule_name=data["name"])
            out = {"name": rendered.name, "html_notes": rendered.html_notes, "to": []}
            warnings += rendered.warnings
    except TemplateProblem as exc:
        slot, _, message = str(exc).partition(": ")
        field_name = f"steps.{index}.templates.{slot}"
        raise Invalid(shorthand_errors({field_name: message}) if shorthand else {field_name: message}) from None
    event_data = {"current": record.data, "pipeline_id": record.data.get("pipeline_id"),
                  "to_stage_id": record.data.get("stage_id")}
    mismatch = trigger.mismatch(_RuleView(data), event_data)
    limit = int(services.settings["rules.attachment_max_bytes"])
    files = record.files if carry.attachments else []
    return {"object_type": trigger.object_type, "object_id": str(object_id), "title": title_of(record),
            "step": index, **out, "warnings": warnings, "matches": mismatch is None, "mismatch": mismatch,
            "files": [{"name": file_name(f), "size": file_size(f), "too_large": (file_size(f) or 0) > limit}
                      for f in files]}

