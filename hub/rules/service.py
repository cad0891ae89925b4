"""Rules as the pages and the API see them: create (from a ready automation), validate, save,
activate, deactivate, delete, preview, runs and their retry. One implementation for both, so the
form and the API accept and refuse exactly the same things.

Validation has two levels. A draft must be well-formed (known trigger and action, templates that
parse and render safely, ids that exist where they can be checked); an active rule must also be
complete (pipeline, stage for "moved", a connected Asana account, workspace, project or team) and
is checked against live catalogs, so activation fails with a field error instead of the first
event failing later."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import delete, select

from ..connectors.ids import InvalidId, check_id, check_ids
from ..errors import Fatal, NeedsReauth, Retriable
from ..mappings import Carry, Limits, Mapping, TargetRenderer, TemplateProblem
from ..oauth.installs import audit
from ..store import Connection, Installation, RunLog, utcnow
from ..store.models import Rule, RuleFieldMapping, RuleLink, RuleRun
from . import connections, schemas
from .actions import ACTIONS
from .presets import PRESETS
from .triggers import NO_VALUE, OPERATORS, TRIGGERS

log = logging.getLogger("hub.rules")


class Invalid(Exception):
    """Field errors ({"target.project_gid": "pick the project ..."}), nothing saved."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class NotFound(Exception):
    pass


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() + "Z" if moment else None


def flatten(messages: Any, prefix: str = "") -> dict[str, str]:
    """Marshmallow's nested messages as {"target.workspace_gid": "..."}."""
    out: dict[str, str] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                name = prefix or "body"
            out.update(flatten(value, name))
    elif isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages):
        out[prefix or "body"] = messages[0]
    elif isinstance(messages, list):
        for n, value in enumerate(messages):
            out.update(flatten(value, f"{prefix}.{n}"))
    else:
        out[prefix or "body"] = str(messages)
    return out


# -- reading --------------------------------------------------------------------------------------
def rule_dict(rule: Rule, mappings: list[RuleFieldMapping], notices: list[str] | None = None) -> dict[str, Any]:
    carry = Carry.from_dict(rule.carry).as_dict()
    return {"id": rule.id, "name": rule.name, "status": rule.status, "preset": rule.preset, "trigger": rule.trigger,
            "pipeline_id": rule.pipeline_id, "stage_id": rule.stage_id, "fires": rule.fires,
            "conditions": [{k: c[k] for k in ("field", "op", "value", "label") if k in c} for c in rule.conditions or []],
            "carry": {"title": True, **carry}, "action": rule.action,
            "target": {"connection_id": rule.target_connection_id, **{k: (rule.target or {}).get(k) for k in
                                                                     ("workspace_gid", "project_gid", "team_gid",
                                                                      "assignee_gid")}},
            "name_template": rule.name_template, "description_template": rule.description_template,
            "field_mappings": [{"source": m.source, "key": m.field_key, "label": m.label, "type": m.field_type}
                               for m in sorted(mappings, key=lambda m: m.position)],
            "version": rule.version, "last_error": rule.last_error, "created_at": _iso(rule.created_at),
            "updated_at": _iso(rule.updated_at), "activated_at": _iso(rule.activated_at), "notices": notices or []}


MAX_ID = schemas.MAX_ID   # a URL may carry any integer; the database ids are 64-bit


def _rule(session, installation_id: int, rule_id: int) -> Rule:
    rule = session.get(Rule, rule_id) if 0 < rule_id <= MAX_ID else None
    if rule is None or rule.installation_id != installation_id:
        raise NotFound(f"rule_id: no rule {rule_id} in this installation")
    return rule


def _mappings(session, rule_id: int) -> list[RuleFieldMapping]:
    return list(session.scalars(select(RuleFieldMapping).where(RuleFieldMapping.rule_id == rule_id)
                                .order_by(RuleFieldMapping.position)))


def get(services: Any, installation_id: int, rule_id: int) -> dict[str, Any]:
    with services.db.begin() as session:
        rule = _rule(session, installation_id, rule_id)
        return rule_dict(rule, _mappings(session, rule.id))


def listing(services: Any, installation_id: int) -> list[dict[str, Any]]:
    with services.db.begin() as session:
        rules = session.scalars(select(Rule).where(Rule.installation_id == installation_id).order_by(Rule.id)).all()
        out = []
        for rule in rules:
            item = rule_dict(rule, _mappings(session, rule.id))
            last = session.scalar(select(RuleRun).where(RuleRun.rule_id == rule.id).order_by(RuleRun.id.desc()).limit(1))
            item["last_run"] = {"status": last.status, "at": _iso(last.updated_at)} if last else None
            out.append(item)
        return out


def asana_connections(services: Any, installation_id: int) -> list[Connection]:
    with services.db.begin() as session:
        return list(session.scalars(select(Connection).where(
            Connection.installation_id == installation_id, Connection.role == "target",
            Connection.provider == "asana", Connection.status != "disconnected").order_by(Connection.id)))


# -- catalogs -------------------------------------------------------------------------------------
@dataclass
class Catalogs:
    """Live dropdown data; None where it could not be loaded (the reason in `errors`)."""

    pipelines: list[dict] | None = None
    deal_fields: list[dict] | None = None
    person_fields: list[dict] | None = None
    asana: dict[int, list] = field(default_factory=dict)       # connection id -> workspaces
    errors: dict[str, str] = field(default_factory=dict)


def _provider_problem(exc: Exception) -> str:
    if isinstance(exc, NeedsReauth):
        return f"the connection needs to be reconnected ({exc})"
    if isinstance(exc, Retriable):
        return f"did not answer ({exc}); try again in a minute"
    return str(exc)


def load_catalogs(services: Any, installation_id: int, *, refresh: bool = False, asana_ids: list[int] | None = None,
                  crm: bool = True) -> Catalogs:
    cat = Catalogs()
    if crm:
        try:
            with services.db.begin() as session:
                conn = connections.crm_connection(session, installation_id)
            cat.pipelines = connections.pipelines(services, conn, refresh)
            cat.deal_fields = connections.deal_fields(services, conn, refresh)
            cat.person_fields = connections.person_fields(services, conn, refresh)
        except (Fatal, Retriable, NeedsReauth) as exc:
            cat.errors["pipedrive"] = f"Pipedrive: {_provider_problem(exc)}"
    ids = asana_ids if asana_ids is not None else [c.id for c in asana_connections(services, installation_id)]
    for connection_id in ids:
        try:
            with services.db.begin() as session:
                conn = connections.target_connection(session, installation_id, connection_id)
            cat.asana[connection_id] = connections.asana_workspaces(services, conn, refresh)
        except (Fatal, Retriable, NeedsReauth) as exc:
            cat.errors[f"asana:{connection_id}"] = f"Asana: {_provider_problem(exc)}"
    return cat


# -- validation -----------------------------------------------------------------------------------
READ_ONLY = ("id", "version", "last_error", "created_at", "updated_at", "activated_at", "notices", "preset", "last_run")


def strip_read_only(body: Any) -> Any:
    """A rule as GET returns it may be sent back: its read-only parts are ignored (anything else
    unknown is still refused, so a misspelt field never passes silently)."""
    if not isinstance(body, dict):
        return body
    body = {k: v for k, v in body.items() if k not in READ_ONLY}
    if isinstance(body.get("conditions"), list):
        body["conditions"] = [{k: v for k, v in c.items() if k != "label"} if isinstance(c, dict) else c
                              for c in body["conditions"]]
    if isinstance(body.get("field_mappings"), list):
        body["field_mappings"] = [{k: v for k, v in m.items() if k not in ("label", "type")} if isinstance(m, dict)
                                  else m for m in body["field_mappings"]]
    return body


def parse(body: Any, *, partial_of: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check the shape of a rule body (API JSON or the form, already a dict); Invalid on errors.
    With `partial_of`, keys left out keep that rule's values."""
    if not isinstance(body, dict):
        raise Invalid({"body": "expected a JSON object"})
    body = strip_read_only(body)
    if partial_of is not None:
        base = {k: v for k, v in partial_of.items() if k in schemas.RuleIn().fields and k != "status"}
        base["carry"] = dict(base.get("carry", {}))
        base["conditions"] = [{k: c[k] for k in ("field", "op", "value") if k in c} for c in base["conditions"]]
        base["field_mappings"] = [{"source": m["source"], "key": m["key"]} for m in base["field_mappings"]]
        if body.get("trigger", base.get("trigger")) != base.get("trigger"):
            base.pop("fires", None)   # another trigger, and no choice given: that trigger's default
        body = {**base, **body}
    try:
        return schemas.RuleIn().load(body)
    except ValidationError as exc:
        raise Invalid(flatten(exc.messages)) from None


@dataclass
class Previous:
    """What a saved rule knew about its fields, used while Pipedrive's catalogs are unavailable."""

    mappings: dict[tuple[str, str], Mapping] = field(default_factory=dict)
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, services: Any, installation_id: int, rule_id: int) -> "Previous":
        with services.db.begin() as session:
            rule = _rule(session, installation_id, rule_id)
            return cls({(m.source, m.field_key): Mapping(m.source, m.field_key, m.label, m.field_type,
                                                         dict(m.options or {})) for m in _mappings(session, rule_id)},
                       {c["field"]: c for c in rule.conditions or [] if isinstance(c, dict) and "field" in c})


def check(services: Any, installation_id: int, data: dict[str, Any], *, complete: bool,
          catalogs: Catalogs | None = None,
          previous: Previous | None = None) -> tuple[dict[str, str], list[str], list[Mapping]]:
    """Field errors, notices and the resolved field mappings of a parsed rule; also normalizes
    `data` in place (ids a trigger does not use are cleared, attachments switched off where they
    cannot go, labels of fields filled in)."""
    previous = previous or Previous()
    errors: dict[str, str] = {}
    notices: list[str] = []
    trigger, action = TRIGGERS[data["trigger"]], ACTIONS[data["action"]]
    if not trigger.needs_pipeline:
        data["pipeline_id"] = None
    if not trigger.needs_stage:
        data["stage_id"] = None
    if not trigger.repeats or not data.get("fires"):
        data["fires"] = trigger.default_fires
    carry = data["carry"]
    if carry.get("attachments") and not action.attachments:
        carry["attachments"] = False
        notices.append(f"Attachments were switched off: {action.label.lower()} cannot carry files.")
    if carry.get("attachments") and not trigger.files:
        carry["attachments"] = False
        notices.append(f"Attachments were switched off: {trigger.label.lower()} has no files to carry.")
    data["target"] = {k: (v if k == "connection_id" or k in action.keys else None) for k, v in data["target"].items()}
    id_errors = _id_errors(services, installation_id, data, action)

    renderer = TargetRenderer(Limits.from_settings(services.settings))
    errors.update(renderer.check(data["name_template"], data["description_template"]))
    if not data["name_template"].strip():
        errors["name_template"] = "the name template is empty"

    cat = catalogs or load_catalogs(services, installation_id, asana_ids=[data["target"]["connection_id"]]
                                    if data["target"].get("connection_id") else [])
    # pipeline and stage
    if trigger.needs_pipeline:
        if not data["pipeline_id"]:
            if complete:
                errors["pipeline_id"] = "pick the pipeline (every deal trigger needs one)"
        elif cat.pipelines is not None:
            pipeline = next((p for p in cat.pipelines if p["id"] == data["pipeline_id"]), None)
            if pipeline is None:
                errors["pipeline_id"] = "no such pipeline in Pipedrive"
            elif data["stage_id"] and data["stage_id"] not in {s["id"] for s in pipeline["stages"]}:
                errors["stage_id"] = f"this stage is not in the pipeline {pipeline['name']}"
        elif complete:
            errors["pipeline_id"] = cat.errors.get("pipedrive", "Pipedrive pipelines are unavailable")
    if trigger.needs_stage and not data["stage_id"] and complete:
        errors["stage_id"] = "pick the stage deals move to"

    # conditions (on the deal's fields)
    by_key = {f["key"]: f for f in cat.deal_fields or []}
    for n, condition in enumerate(data["conditions"]):
        if condition["op"] not in NO_VALUE and condition.get("value", "") == "":
            errors[f"conditions.{n}.value"] = f"give a value to compare with ({OPERATORS[condition['op']]})"
        info = by_key.get(condition["field"])
        if cat.deal_fields is None and condition["field"] in previous.conditions:
            known = previous.conditions[condition["field"]]
            condition.update({k: known[k] for k in ("label", "options") if k in known})
        if cat.deal_fields is not None and info is None:
            errors[f"conditions.{n}.field"] = f"no deal field {condition['field']!r} in Pipedrive"
        if info is not None:
            condition["label"] = info["label"]
            if info.get("options"):
                condition["options"] = {str(o["id"]): o["label"] for o in info["options"]}

    # field mappings, stored by key with the label seen now
    mappings: list[Mapping] = []
    seen: set[tuple[str, str]] = set()
    for n, item in enumerate(data["field_mappings"]):
        source, key = item["source"], item["key"]
        if (source, key) in seen:
            errors[f"field_mappings.{n}.key"] = "this field is mapped twice"
            continue
        seen.add((source, key))
        catalog = cat.deal_fields if source == "deal" else cat.person_fields
        info = next((f for f in catalog or [] if f["key"] == key), None)
        if catalog is not None and info is None:
            errors[f"field_mappings.{n}.key"] = f"no {source} field {key!r} in Pipedrive"
            continue
        mappings.append(Mapping.from_catalog(source, info) if info else
                        previous.mappings.get((source, key)) or Mapping(source, key, key))
    if data["field_mappings"] and cat.deal_fields is None and complete:
        errors.setdefault("field_mappings", cat.errors.get("pipedrive", "Pipedrive fields are unavailable"))

    # the target
    connection_id = data["target"].get("connection_id")
    if not connection_id:
        if complete:
            errors["target.connection_id"] = "connect an Asana account and pick it"
    else:
        with services.db.begin() as session:
            try:
                connections.target_connection(session, installation_id, connection_id, action.provider)
            except Fatal as exc:
                errors["target.connection_id"] = str(exc)
        if "target.connection_id" not in errors:
            workspaces = cat.asana.get(connection_id)
            if workspaces is None and complete:
                errors["target.workspace_gid"] = cat.errors.get(f"asana:{connection_id}", "Asana is unavailable")
            errors.update({k: v for k, v in action.validate(data["target"], workspaces, complete).items()
                           if k not in errors})
    errors.update(id_errors)   # "not an id at all" says more than "not in the catalog"
    return errors, notices, mappings


# which kind of provider id each rule field holds (checked by the provider's own `ids` module)
CRM_ID_KINDS = {"pipeline_id": "pipeline", "stage_id": "stage"}
TARGET_ID_KINDS = {"workspace_gid": "workspace", "project_gid": "project", "team_gid": "team", "assignee_gid": "user"}


def _crm_provider(services: Any, installation_id: int) -> str | None:
    with services.db.begin() as session:
        installation = session.get(Installation, installation_id)
        return installation.provider if installation is not None else None


def _id_errors(services: Any, installation_id: int, data: dict[str, Any], action: Any) -> dict[str, str]:
    """Ids in a rule are checked by the provider that issued them before they are stored or sent
    anywhere (they end up in API paths and bodies); valid ones are put in canonical form."""
    errors: dict[str, str] = {}
    crm = _crm_provider(services, installation_id)
    if crm is not None:
        good, bad = check_ids(crm, {k: (kind, data.get(k)) for k, kind in CRM_ID_KINDS.items()})
        data.update(good)
        errors.update(bad)
    target = data["target"]
    good, bad = check_ids(action.provider, {f"target.{k}": (kind, target.get(k)) for k, kind in TARGET_ID_KINDS.items()
                                            if k in action.keys})
    target.update({k.split(".", 1)[1]: v for k, v in good.items()})
    errors.update(bad)
    return errors


def _store(session, rule: Rule, data: dict[str, Any], mappings: list[Mapping]) -> None:
    rule.name = data["name"].strip()
    rule.trigger, rule.action = data["trigger"], data["action"]
    rule.pipeline_id, rule.stage_id, rule.fires = data["pipeline_id"], data["stage_id"], data["fires"]
    rule.conditions = [dict(c) for c in data["conditions"]]
    rule.carry = {k: bool(v) for k, v in data["carry"].items() if k != "title"}
    rule.target_connection_id = data["target"].get("connection_id")
    rule.target = {k: v for k, v in data["target"].items() if k != "connection_id" and v}
    rule.name_template, rule.description_template = data["name_template"], data["description_template"]
    rule.updated_at = utcnow()
    session.execute(delete(RuleFieldMapping).where(RuleFieldMapping.rule_id == rule.id))
    for n, m in enumerate(mappings):
        session.add(RuleFieldMapping(rule_id=rule.id, position=n, source=m.source, field_key=m.key, label=m.label,
                                     field_type=m.type, options=m.options))


# -- writing --------------------------------------------------------------------------------------
def from_preset(services: Any, installation_id: int, key: str) -> dict[str, Any]:
    """The body of a new draft from a ready automation, prefilled where the choice is obvious."""
    preset = PRESETS.get(key)
    if preset is None:
        raise Invalid({"preset": f"unknown ready automation; one of {', '.join(PRESETS)}"})
    body: dict[str, Any] = {"name": preset.title, "trigger": preset.trigger, "action": preset.action,
                            "carry": dict(preset.carry), "name_template": preset.name_template,
                            "description_template": preset.description_template, "target": {}}
    cat = load_catalogs(services, installation_id, asana_ids=[])
    if TRIGGERS[preset.trigger].needs_pipeline and cat.pipelines:
        first = cat.pipelines[0]
        body["pipeline_id"] = first["id"]
        if TRIGGERS[preset.trigger].needs_stage and first["stages"]:
            body["stage_id"] = first["stages"][-1]["id"]
    asana = asana_connections(services, installation_id)
    if len(asana) == 1:
        body["target"]["connection_id"] = asana[0].id
    return body


def create(services: Any, installation_id: int, body: dict[str, Any], actor: str) -> dict[str, Any]:
    body = dict(body)
    preset = body.pop("preset", None)
    if preset:
        body = {**from_preset(services, installation_id, preset), **body}
    data = parse(body)
    status = data.pop("status") or "draft"
    errors, notices, mappings = check(services, installation_id, data, complete=status == "active")
    if errors:
        raise Invalid(errors)
    with services.db.begin() as session:
        now = utcnow()
        rule = Rule(installation_id=installation_id, name=data["name"], status=status, preset=preset or "",
                    trigger=data["trigger"], action=data["action"], version=1, created_by=actor, created_at=now,
                    updated_at=now, activated_at=now if status == "active" else None, conditions=[], carry={},
                    target={}, name_template="", description_template="")
        session.add(rule)
        session.flush()
        _store(session, rule, data, mappings)
        audit(session, installation_id, actor, "rule.created", rule_id=rule.id, name=rule.name, status=status)
        session.flush()
        return rule_dict(rule, _mappings(session, rule.id), notices)


def update(services: Any, installation_id: int, rule_id: int, body: dict[str, Any], actor: str, *,
           partial: bool = True) -> dict[str, Any]:
    current = get(services, installation_id, rule_id)
    data = parse(body, partial_of=current if partial else None)
    status = data.pop("status") or current["status"]
    errors, notices, mappings = check(services, installation_id, data, complete=status == "active",
                                      previous=Previous.of(services, installation_id, rule_id))
    if errors:
        raise Invalid(errors)
    with services.db.begin() as session:
        rule = _rule(session, installation_id, rule_id)
        _store(session, rule, data, mappings)
        rule.version += 1
        rule.last_error = None
        if status == "active" and rule.status != "active":
            rule.activated_at = utcnow()
        rule.status = status
        audit(session, installation_id, actor, "rule.updated", rule_id=rule.id, name=rule.name, status=status,
              version=rule.version)
        session.flush()
        return rule_dict(rule, _mappings(session, rule.id), notices)


def set_status(services: Any, installation_id: int, rule_id: int, status: str, actor: str) -> dict[str, Any]:
    if status == "active":
        current = get(services, installation_id, rule_id)
        data = parse({}, partial_of=current)
        data.pop("status")
        errors, _, _ = check(services, installation_id, data, complete=True,
                             previous=Previous.of(services, installation_id, rule_id))
        if errors:
            raise Invalid(errors)
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
        return rule_dict(rule, _mappings(session, rule.id))


def remove(services: Any, installation_id: int, rule_id: int, actor: str) -> None:
    """The rule and its mappings go; its runs and links stay as the record of what was done."""
    with services.db.begin() as session:
        rule = _rule(session, installation_id, rule_id)
        session.execute(delete(RuleFieldMapping).where(RuleFieldMapping.rule_id == rule.id))
        audit(session, installation_id, actor, "rule.deleted", rule_id=rule.id, name=rule.name)
        session.delete(rule)


# -- runs -----------------------------------------------------------------------------------------
def run_dict(run: RuleRun, link: RuleLink | None) -> dict[str, Any]:
    return {"id": run.id, "rule_id": run.rule_id, "hub_event_id": run.hub_event_id, "object_type": run.object_type,
            "object_id": run.object_id, "status": run.status, "attempts": run.attempts, "error": run.error,
            "detail": dict(run.detail or {}),
            "link": {"object_type": link.object_type, "object_id": link.object_id, "target_type": link.target_type,
                     "target_gid": link.target_gid, "target_name": link.target_name, "target_url": link.target_url}
            if link else None,
            "created_at": _iso(run.created_at), "finished_at": _iso(run.finished_at)}


def runs(services: Any, installation_id: int, rule_id: int, limit: int = 100) -> dict[str, Any]:
    with services.db.begin() as session:
        _rule(session, installation_id, rule_id)
        rows = session.scalars(select(RuleRun).where(RuleRun.installation_id == installation_id,
                                                     RuleRun.rule_id == rule_id)
                               .order_by(RuleRun.id.desc()).limit(limit)).all()
        links = {link.run_id: link for link in session.scalars(
            select(RuleLink).where(RuleLink.run_id.in_([r.id for r in rows])))} if rows else {}
        trace = session.scalars(select(RunLog).where(RunLog.installation_id == installation_id,
                                                     RunLog.rule_id == rule_id)
                                .order_by(RunLog.id.desc()).limit(300)).all()
        return {"runs": [run_dict(r, links.get(r.id)) for r in rows],
                "trace": [{"at": _iso(t.created_at), "step": t.step, "status": t.status, "message": t.message,
                           "hub_event_id": t.hub_event_id} for t in trace]}


def retry(services: Any, installation_id: int, rule_id: int, run_id: int, actor: str) -> dict[str, Any]:
    """Run a failed run again with the rule as it is now (after the admin fixed it)."""
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
        return run_dict(run, session.scalar(select(RuleLink).where(RuleLink.run_id == run.id)))


# -- preview --------------------------------------------------------------------------------------
def preview(services: Any, installation_id: int, body: dict[str, Any], object_id: str) -> dict[str, Any]:
    """Render a rule (saved or not) against a real deal or lead, without creating anything."""
    from .sources import PipedriveSource

    data = parse(body)
    data.pop("status")
    trigger = TRIGGERS[data["trigger"]]
    if not object_id:
        raise Invalid({"object_id": f"give the id of a {trigger.object_type} to preview with"})
    crm = _crm_provider(services, installation_id)
    if crm is not None:   # the id goes into an API path: the CRM's connector says what a valid one is
        try:
            object_id = check_id(crm, trigger.object_type, object_id, "object_id")
        except InvalidId as exc:
            raise Invalid({exc.field: exc.message}) from None
    errors, notices, mappings = check(services, installation_id, data, complete=False)
    template_errors = {k: v for k, v in errors.items() if k in ("name_template", "description_template")}
    if template_errors:
        raise Invalid(template_errors)
    trigger, action = TRIGGERS[data["trigger"]], ACTIONS[data["action"]]
    carry = Carry.from_dict(data["carry"])
    warnings: list[str] = list(notices)
    with services.db.begin() as session:
        conn = connections.crm_connection(session, installation_id)
    source = PipedriveSource(services, conn)
    try:
        record = source.load(trigger.object_type, str(object_id), None, carry, warnings)
    except Fatal as exc:
        if exc.status in (400, 404, 410):
            raise Invalid({"object_id": f"no {trigger.object_type} {object_id} in Pipedrive"}) from None
        raise
    renderer = TargetRenderer(Limits.from_settings(services.settings))
    try:
        rendered = renderer.render(data["name_template"], data["description_template"], record, carry, mappings,
                                   target=action.target_type, event={"kind": trigger.kind},
                                   rule_name=data["name"])
    except TemplateProblem as exc:
        field_name, _, message = str(exc).partition(": ")
        raise Invalid({field_name: message}) from None
    fake = _RuleView(data)
    mismatch = None
    if trigger.object_type == "deal":
        event_data = {"current": record.data, "pipeline_id": record.data.get("pipeline_id"),
                      "to_stage_id": record.data.get("stage_id")}
        mismatch = trigger.mismatch(fake, event_data)
    limit = min(int(services.settings["rules.attachment_max_bytes"]), 100 * 1024 * 1024)
    return {"object_type": trigger.object_type, "object_id": str(object_id), "title": record.title,
            "name": rendered.name, "html_notes": rendered.html_notes, "warnings": warnings + rendered.warnings,
            "matches": mismatch is None, "mismatch": mismatch,
            "files": [{"name": f.get("name") or f.get("file_name"), "size": f.get("file_size"),
                       "too_large": (f.get("file_size") or 0) > limit} for f in record.files]}


class _RuleView:
    """The attributes `Trigger.mismatch` reads, from an unsaved rule body."""

    def __init__(self, data: dict[str, Any]):
        self.pipeline_id, self.stage_id, self.conditions = data["pipeline_id"], data["stage_id"], data["conditions"]
