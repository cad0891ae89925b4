"""What a rule body must be: its shape (schemas.py), and what it names must exist.

Two levels. A draft must be well-formed (a trigger the CRM emits, step kinds a connector or the
hub offers, templates that parse and render safely, ids that exist where they can be checked); an
active rule must also be complete (pipeline and stage where the trigger needs them, each step's
account and settings) and is checked against live catalogs, so activation fails with a field error
instead of the first event failing later.

Rules made before steps had one action; the API still takes that shorthand (`action`, `target`,
`carry`, `name_template`, `description_template`, `field_mappings`) as a rule of one step, and
names its errors the shorthand's way."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError

from ..connectors.ids import check_ids, id_kinds
from ..errors import Fatal, NeedsReauth, Retriable
from ..mappings import Limits, Mapping, TargetRenderer
from ..store import Installation
from . import catalogs, connections, kinds, records, schemas, template_names
from .conditions import NO_VALUE, OPERATORS, type_problems
from .triggers import triggers as crm_triggers

SHORTHAND = ("action", "target", "carry", "name_template", "description_template", "field_mappings")
READ_ONLY = ("id", "version", "last_error", "created_at", "updated_at", "activated_at", "notices", "preset", "origin",
             "last_run", "warnings")
HTML_SLOTS = frozenset({"description"})
DROPPED = "\x00"


class Invalid(Exception):
    """Field errors ({"steps.0.settings.project": "pick the project ..."}), nothing saved."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def flatten(messages: Any, prefix: str = "") -> dict[str, str]:
    """Marshmallow's nested messages as {"steps.0.kind": "..."}."""
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


# -- shape ----------------------------------------------------------------------------------------
def strip_read_only(body: Any) -> Any:
    """A rule as GET returns it may be sent back: its read-only parts are ignored (anything else
    unknown is still refused, so a misspelt field never passes silently)."""
    if not isinstance(body, dict):
        return body
    body = {k: v for k, v in body.items() if k not in READ_ONLY}

    def clean(items: Any, drop: tuple[str, ...]) -> Any:
        return [{k: v for k, v in i.items() if k not in drop} if isinstance(i, dict) else i for i in items] \
            if isinstance(items, list) else items

    body["conditions"] = clean(body.get("conditions", []), ("label",)) if "conditions" in body else DROPPED
    body["field_mappings"] = clean(body.get("field_mappings"), ("label", "type")) if "field_mappings" in body \
        else DROPPED
    if isinstance(body.get("steps"), list):
        steps = []
        for step in body["steps"]:
            if isinstance(step, dict):
                step = {k: v for k, v in step.items() if k != "label"}
                if isinstance(step.get("condition"), dict):
                    step["condition"] = {k: v for k, v in step["condition"].items() if k != "label"}
                if "field_mappings" in step:
                    step["field_mappings"] = clean(step["field_mappings"], ("label", "type"))
            steps.append(step)
        body["steps"] = steps
    return {k: v for k, v in body.items() if v is not DROPPED}


def step_input(step: dict[str, Any]) -> dict[str, Any]:
    """A step as rule_dict returns it, in the shape the API takes."""
    return {"id": step["id"], "kind": step["kind"], "connection_id": step.get("connection_id"),
            "settings": dict(step.get("settings") or {}), "templates": dict(step.get("templates") or {}),
            "carry": {k: v for k, v in (step.get("carry") or {}).items() if k != "title"},
            "field_mappings": [{"source": m["source"], "key": m["key"]} for m in step.get("field_mappings") or []],
            "condition": {k: step["condition"][k] for k in ("field", "op", "value") if k in step["condition"]}
            if step.get("condition") else None,
            "delay_seconds": step.get("delay_seconds", 0), "due_in_days": step.get("due_in_days")}


def _shorthand_step(data: dict[str, Any], base: dict[str, Any] | None, errors: dict[str, str]) -> dict[str, Any]:
    """The one step the shorthand describes (on top of the rule's first step, for a change)."""
    step = dict(base or {"id": None, "kind": "", "connection_id": None, "settings": {}, "templates": {},
                         "carry": schemas.Carry().load({}), "field_mappings": [], "condition": None,
                         "delay_seconds": 0, "due_in_days": None})
    if "action" in data:
        step["kind"] = data["action"]
    if "target" in data:
        target = dict(data["target"])
        step["connection_id"] = target.pop("connection_id", None)
        settings = {}
        for key, value in target.items():
            if value is None or value == "":
                continue
            if isinstance(value, bool) or not isinstance(value, (str, int)) or len(str(value)) > 500 or len(key) > 60:
                errors[f"target.{key}"] = "expected an id (a string or an integer, at most 500 characters)"
                continue
            settings[key] = str(value)
        step["settings"] = settings
    templates = dict(step.get("templates") or {})
    if "name_template" in data:
        templates["name"] = data["name_template"]
    if "description_template" in data:
        templates["description"] = data["description_template"]
    step["templates"] = templates
    for key in ("carry", "field_mappings"):
        if key in data:
            step[key] = data[key]
    return step


def parse(body: Any, *, partial_of: dict[str, Any] | None = None) -> tuple[dict[str, Any], bool]:
    """(the checked shape of a rule body, whether it used the one-step shorthand); Invalid on
    errors. With `partial_of` (a rule as rule_dict gives it), keys left out keep its values."""
    if not isinstance(body, dict):
        raise Invalid({"body": "expected a JSON object"})
    body = strip_read_only(body)
    shorthand = any(k in body for k in SHORTHAND)
    if shorthand and "steps" in body:
        raise Invalid({"steps": "give the steps, or the one-step shorthand (action, target ...), not both"})
    base_steps: list[dict[str, Any]] = []
    if partial_of is not None:
        base = {k: partial_of[k] for k in ("name", "trigger", "pipeline_id", "stage_id", "fires")}
        base["params"] = dict(partial_of.get("params") or {})
        base["conditions"] = [{k: c[k] for k in ("field", "op", "value") if k in c} for c in partial_of["conditions"]]
        base_steps = [step_input(s) for s in partial_of["steps"]]
        if body.get("trigger", base["trigger"]) != base["trigger"]:
            base.pop("fires", None)   # another trigger, and no choice given: that trigger's default
        if not shorthand:
            base["steps"] = base_steps
        body = {**base, **body}
    try:
        loaded = schemas.RuleIn().load(body)
    except ValidationError as exc:
        raise Invalid(flatten(exc.messages)) from None
    errors: dict[str, str] = {}
    data = {k: v for k, v in loaded.items() if k not in SHORTHAND}
    if shorthand:
        if partial_of is None:
            for required in ("action", "name_template"):
                if required not in loaded:
                    errors[required] = "Missing data for required field."
            data["steps"] = [_shorthand_step(loaded, None, errors)]
        else:
            try:
                first = schemas.Step().load(base_steps[0]) if base_steps else None
            except ValidationError:
                first = None
            data["steps"] = [_shorthand_step(loaded, first, errors)] + base_steps[1:]
    elif "steps" not in loaded:
        errors["steps"] = "Missing data for required field."
    if errors:
        raise Invalid(errors)
    data.setdefault("fires", None)
    return data, shorthand


SHORTHAND_NAMES = (("steps.0.kind", "action"), ("steps.0.connection_id", "target.connection_id"),
                   ("steps.0.settings.", "target."), ("steps.0.templates.name", "name_template"),
                   ("steps.0.templates.description", "description_template"), ("steps.0.carry", "carry"),
                   ("steps.0.field_mappings", "field_mappings"), ("steps.0", "action"), ("steps", "action"))


def shorthand_errors(errors: dict[str, str]) -> dict[str, str]:
    """Errors of a one-step rule named as its shorthand names them (`target.project` ...)."""
    out: dict[str, str] = {}
    for key, message in errors.items():
        for long, short in SHORTHAND_NAMES:
            if key == long or key.startswith(long if long.endswith(".") else long + "."):
                key = short + key[len(long):]
                break
        out.setdefault(key, message)
    return out


# -- what it names --------------------------------------------------------------------------------
@dataclass
class Crm:
    """The CRM's side for checks and the editor, loaded on first use; None where it could not be
    loaded (the reason in `errors`)."""

    services: Any
    installation_id: int
    refresh: bool = False
    provider: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    _connection: Any = None
    _fields: dict[str, list | None] = field(default_factory=dict)
    _pipelines: Any = DROPPED

    def __post_init__(self) -> None:
        with self.services.db.begin() as session:
            installation = session.get(Installation, self.installation_id)
            self.provider = installation.provider if installation is not None else None

    def title(self) -> str:
        return connections.title(self.provider or "crm")

    def _problem(self, exc: Exception) -> None:
        self.errors.setdefault("crm", f"{self.title()}: {provider_problem(exc)}")

    def connection(self) -> Any:
        if self._connection is None:
            with self.services.db.begin() as session:
                self._connection = connections.crm_connection(session, self.installation_id)
                session.expunge(self._connection)
        return self._connection

    def pipelines(self, catalog: str = "pipelines") -> list[dict] | None:
        """The CRM's pipelines with their stages, from the catalog a trigger names for its
        `pipeline_id` (`pipelines`, or `deal_pipelines`, `lead_pipelines` ...)."""
        if not isinstance(self._pipelines, dict):
            self._pipelines = {}
        if catalog not in self._pipelines:
            self._pipelines[catalog] = None
            try:
                loader = catalogs.Loader(self.services, self.connection(), self.refresh)
                if catalog in loader.names():
                    self._pipelines[catalog] = [
                        {"id": str(p["id"]), "name": str(p["name"]),
                         "stages": [{"id": str(s["id"]), "name": str(s["name"])} for s in p.get("stages") or []]}
                        for p in loader(catalog)]
            except (Fatal, Retriable, NeedsReauth) as exc:
                self._problem(exc)
        return self._pipelines[catalog]

    def choices(self, name: str) -> set[str] | None:
        """The ids in the CRM's catalog `name` (None: it could not be loaded)."""
        try:
            loader = catalogs.Loader(self.services, self.connection(), self.refresh)
            found = kinds.options(kinds.Setting(name, name, catalog=name), loader(name)) \
                if name in loader.names() else None
        except (Fatal, Retriable, NeedsReauth) as exc:
            self._problem(exc)
            return None
        return {o["id"] for o in found} if found is not None else None

    def fields(self, kind: str) -> list[dict] | None:
        if kind not in self._fields:
            try:
                self._fields[kind] = records.fields(self.services, self.connection(), kind, refresh=self.refresh)
            except (Fatal, Retriable, NeedsReauth) as exc:
                self._problem(exc)
                self._fields[kind] = None
        return self._fields[kind]


def provider_problem(exc: Exception) -> str:
    if isinstance(exc, NeedsReauth):
        return f"the connection needs to be reconnected ({exc})"
    if isinstance(exc, Retriable):
        return f"did not answer ({exc}); try again in a minute"
    return str(exc)


@dataclass
class Previous:
    """What a saved rule knew about its fields, used while the CRM's catalogs are unavailable."""

    mappings: dict[tuple[str, str], Mapping] = field(default_factory=dict)
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, rule: dict[str, Any], stored_steps: list[Any], stored_conditions: list[Any]) -> "Previous":
        found = cls()
        for row in stored_steps:
            for m in row.mappings or []:
                found.mappings[(m.get("source"), m.get("key"))] = Mapping(m.get("source"), m.get("key"),
                                                                          m.get("label", ""), m.get("type", ""),
                                                                          dict(m.get("options") or {}))
            if row.condition and "field" in row.condition:
                found.conditions.setdefault(row.condition["field"], row.condition)
        for c in stored_conditions or []:
            if isinstance(c, dict) and "field" in c:
                found.conditions[c["field"]] = c
        return found


def new_uid(taken: set[str]) -> str:
    while True:
        uid = secrets.token_hex(4)
        if uid not in taken:
            taken.add(uid)
            return uid


def check_condition(condition: dict[str, Any], fields: list[dict] | None, previous: Previous, prefix: str,
                    kind: str, crm: Crm, errors: dict[str, str], warnings: list[str] | None = None) -> None:
    """A condition's field exists on the trigger's object, its operator fits the field's type and its
    value parses for it (a number, a date, one of the options); the field's label and option labels
    are stored with it. Without the CRM's field list it is saved unchecked, with a warning."""
    if condition["op"] not in NO_VALUE and condition.get("value", "") == "":
        errors[f"{prefix}.value"] = f"give a value to compare with ({OPERATORS[condition['op']]})"
    info = next((f for f in fields or [] if f["key"] == condition["field"]), None)
    if fields is None and condition["field"] in previous.conditions:
        known = previous.conditions[condition["field"]]
        condition.update({k: known[k] for k in ("label", "options") if k in known})
    if fields is None and warnings is not None:
        warnings.append(f"{prefix}: saved without checking the field {condition['field']!r} and its value: "
                        f"{crm.errors.get('crm', f'{crm.title()} fields could not be loaded')}")
    if fields is not None and info is None:
        errors[f"{prefix}.field"] = f"no {kind} field {condition['field']!r} in {crm.title()}"
    if info is not None:
        for part, message in type_problems(condition, info).items():
            errors.setdefault(f"{prefix}.{part}", message)
        condition["label"] = info["label"]
        if info.get("options"):
            condition["options"] = {str(o["id"]): o["label"] for o in info["options"]}


def check(services: Any, installation_id: int, data: dict[str, Any], *, complete: bool,
          previous: Previous | None = None, crm: Crm | None = None,
          warnings: list[str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Field errors and notices of a parsed rule; also normalizes `data` in place (params a trigger
    does not use cleared, data toggles switched off where they cannot go, settings a step kind does
    not use dropped, field labels filled in, step ids given). What may be wrong but does not stop a
    save (names a template will not find, checks skipped while the CRM is unreachable) goes to
    `warnings`."""
    warnings = [] if warnings is None else warnings
    previous = previous or Previous()
    crm = crm or Crm(services, installation_id)
    errors: dict[str, str] = {}
    notices: list[str] = []
    offered = crm_triggers(crm.provider)
    trigger = offered.get(data["trigger"])
    if trigger is None:
        errors["trigger"] = f"not a trigger {crm.title()} emits; one of {', '.join(sorted(offered)) or 'none'}"
        return errors, notices
    for param in ("pipeline_id", "stage_id"):
        if param not in trigger.rule_params:
            data[param] = None
    if not trigger.repeats or not data.get("fires"):
        data["fires"] = trigger.default_fires
    errors.update(_crm_id_errors(crm, data))
    if trigger.needs_pipeline:
        if not data["pipeline_id"]:
            if complete:
                errors["pipeline_id"] = f"pick the pipeline ({trigger.label.lower()} needs one)"
        elif crm.pipelines(trigger.pipeline_catalog) is not None:
            pipeline = next((p for p in crm.pipelines(trigger.pipeline_catalog) if p["id"] == data["pipeline_id"]),
                            None)
            if pipeline is None:
                errors.setdefault("pipeline_id", f"no such pipeline in {crm.title()}")
            elif data["stage_id"] and data["stage_id"] not in {s["id"] for s in pipeline["stages"]}:
                errors.setdefault("stage_id", f"this stage is not in the pipeline {pipeline['name']}")
        elif complete:
            errors["pipeline_id"] = crm.errors.get("crm", f"{crm.title()} pipelines are unavailable")
    if trigger.needs_stage and not data["stage_id"] and complete:
        errors["stage_id"] = f"pick the stage ({trigger.label.lower()})"
    errors.update(_check_params(crm, trigger, data, warnings))
    for n, condition in enumerate(data["conditions"]):
        fields = crm.fields(trigger.object_type)
        check_condition(condition, fields, previous, f"conditions.{n}", trigger.object_type, crm, errors, warnings)
    _check_steps(services, installation_id, data, trigger, crm, previous, complete, errors, notices, warnings)
    return errors, notices


def _check_params(crm: Crm, trigger: Any, data: dict[str, Any], warnings: list[str]) -> dict[str, str]:
    """The trigger's other params: each one the trigger has, each value one of its catalog's
    entries where it names one (unchecked, with a warning, while the CRM cannot be reached)."""
    errors: dict[str, str] = {}
    kept: dict[str, Any] = {}
    for key, value in (data.get("params") or {}).items():
        if key not in trigger.other_params:
            errors[f"params.{key}"] = (f"{trigger.label.lower()} cannot be narrowed by {key!r}; by "
                                       f"{', '.join(trigger.other_params) or 'nothing else'}")
            continue
        if value in (None, "", []):
            continue
        kept[key] = value
        catalog = trigger.catalog_of(key)
        if catalog is None:
            continue
        known = crm.choices(catalog)
        if known is None:
            warnings.append(f"params.{key}: saved without checking its values: "
                            f"{crm.errors.get('crm', f'{crm.title()} {catalog} could not be loaded')}")
            continue
        bad = [v for v in (value if isinstance(value, list) else [value]) if v not in known]
        if bad:
            errors[f"params.{key}"] = f"not in {crm.title()}'s {catalog.replace('_', ' ')}: {', '.join(bad)}"
    data["params"] = kept
    return errors


def _crm_id_errors(crm: Crm, data: dict[str, Any]) -> dict[str, str]:
    """Ids in a rule are checked by the connector that issued them before they are stored or sent
    anywhere (they end up in API paths and bodies); valid ones are put in canonical form."""
    if crm.provider is None:
        return {}
    try:
        known = id_kinds(crm.provider)
    except (KeyError, ModuleNotFoundError, AttributeError):
        return {}
    wanted = {k: (kind, data.get(k)) for k, kind in (("pipeline_id", "pipeline"), ("stage_id", "stage"))
              if kind in known}
    good, bad = check_ids(crm.provider, wanted)
    data.update(good)
    return bad


def _check_steps(services: Any, installation_id: int, data: dict[str, Any], trigger: Any, crm: Crm,
                 previous: Previous, complete: bool, errors: dict[str, str], notices: list[str],
                 warnings: list[str]) -> None:
    steps = data["steps"]
    taken = {s["id"] for s in steps if s.get("id")}
    seen: set[str] = set()
    for step in steps:
        if not step.get("id") or step["id"] in seen:
            step["id"] = new_uid(taken)
        seen.add(step["id"])
    templates: dict[str, tuple[bool, str]] = {}
    for n, step in enumerate(steps):
        prefix = f"steps.{n}"
        kind = kinds.get(step["kind"])
        if kind is None:
            errors[f"{prefix}.kind"] = (f"no connector offers the step kind {step['kind']!r}; one of "
                                        f"{', '.join(sorted(kinds.all_kinds()))}")
            continue
        declared = {s.key: s for s in kind.settings}
        step["settings"] = {k: v for k, v in step["settings"].items() if k in declared and v not in (None, "")}
        step["templates"] = {slot: step["templates"].get(slot, "") for slot in kind.templates}
        for slot in kind.templates:
            templates[f"{n}.{slot}"] = (slot in HTML_SLOTS, step["templates"][slot])
        if not kind.carries:
            step["carry"], step["field_mappings"] = schemas.Carry().load({}), []
        if kind.makes != "task":
            step["due_in_days"] = None
        carry = step["carry"]
        if carry.get("attachments") and not kind.attachments:
            carry["attachments"] = False
            notices.append(f"Step {n + 1}: attachments were switched off: {kind.label.lower()} cannot carry files.")
        if carry.get("attachments") and not trigger.files:
            carry["attachments"] = False
            notices.append(f"Step {n + 1}: attachments were switched off: {trigger.label.lower()} has no files "
                           "to carry.")
        if step.get("condition"):
            check_condition(step["condition"], crm.fields(trigger.object_type), previous, f"{prefix}.condition",
                            trigger.object_type, crm, errors, warnings)
        if step["kind"] == "wait" and step["delay_seconds"] <= 0:
            errors[f"{prefix}.delay_seconds"] = "say how long to wait (more than 0 seconds)"
        if kind.connector is None:
            _check_core(step, steps, n, prefix, errors)
            if step["kind"] == "templates":
                from ..tasks.checks import check_step
                check_step(services, installation_id, step, prefix, complete, errors)
        else:
            _check_connector(services, installation_id, step, kind, prefix, complete, errors)
        step["mappings"] = _mappings(step, trigger, crm, previous, prefix, complete, errors, warnings)
    renderer = TargetRenderer(Limits.from_settings(services.settings))
    for key, problem in renderer.check_templates(templates).items():
        n, slot = key.split(".", 1)
        errors[f"steps.{n}.templates.{slot}"] = problem
    fields = crm.fields(trigger.object_type) if any(t for _, t in templates.values()) else None
    for key, (_, source) in templates.items():
        n, slot = key.split(".", 1)
        if f"steps.{n}.templates.{slot}" not in errors:
            warnings += [f"Step {int(n) + 1}, {slot}: {problem}"
                         for problem in template_names.problems(source, trigger.object_type, fields)]
    for n, step in enumerate(steps):
        kind = kinds.get(step["kind"])
        required = {"to": "say whom to send it to", "subject": "the subject is empty"}
        if kind is not None and kind.makes in ("task", "project"):
            required["name"] = "the name template is empty"
        for slot in kind.templates if kind else ():
            if slot in required and not step["templates"][slot].strip():
                errors.setdefault(f"steps.{n}.templates.{slot}", required[slot])


def _check_core(step: dict[str, Any], steps: list[dict], n: int, prefix: str, errors: dict[str, str]) -> None:
    settings = step["settings"]
    if step["kind"] == "branch":
        later = {s["id"] for s in steps[n + 1:]}
        for key in ("if_true", "if_false"):
            value = str(settings.get(key) or "next")
            if value not in ("next", "stop") and value not in later:
                errors[f"{prefix}.settings.{key}"] = "continue with the next step, stop, or skip to a later step"
            settings[key] = value
    elif step["kind"] == "complete_linked":
        scope = settings.get("scope") or "record"
        if scope not in ("record", "rule"):
            errors[f"{prefix}.settings.scope"] = "record (tasks any rule made for the record) or rule (this rule's)"
        settings["scope"] = scope


def _check_connector(services: Any, installation_id: int, step: dict[str, Any], kind: Any, prefix: str,
                     complete: bool, errors: dict[str, str]) -> None:
    """The step's account belongs to the installation and its connector; its settings pass the
    connector's own validation, against live catalogs where they load."""
    connection_id = step.get("connection_id")
    connection = None
    if not connection_id:
        if complete:
            errors[f"{prefix}.connection_id"] = f"connect a {connections.title(kind.connector)} account and pick it"
    else:
        with services.db.begin() as session:
            try:
                connection = connections.step_connection(session, installation_id, connection_id, kind.connector)
                session.expunge(connection)
            except Fatal as exc:
                errors[f"{prefix}.connection_id"] = str(exc)
    id_errors = _setting_id_errors(step["settings"], kind.connector, prefix)
    found: dict[str, str] = {}
    try:
        loader = catalogs.Loader(services, connection) if connection is not None else None
        found = kind.step.validate(dict(step["settings"]), loader, complete) or {}
    except (Fatal, Retriable, NeedsReauth) as exc:
        if complete:
            errors.setdefault(f"{prefix}.connection_id", f"{connections.title(kind.connector)}: "
                                                         f"{provider_problem(exc)}")
        found = kind.step.validate(dict(step["settings"]), None, complete) or {}
    for key, message in found.items():
        name = key.split(".", 1)[1] if key.startswith(("settings.", "target.")) else key
        errors.setdefault(f"{prefix}.settings.{name}", message)
    errors.update(id_errors)       # "not an id at all" says more than "not in the list"


def _setting_id_errors(settings: dict[str, Any], connector: str, prefix: str) -> dict[str, str]:
    """Settings that hold ids (`<thing>_id`, `<thing>_gid`) are checked by the connector's own ids
    module before they are stored or sent anywhere (they end up in API paths); valid ones are put
    in canonical form."""
    try:
        known = id_kinds(connector)
    except (KeyError, ModuleNotFoundError, AttributeError):
        return {}
    wanted = {}
    for key, value in settings.items():
        stem = kinds.setting_stem(key)
        thing = kinds.ID_WORDS.get(stem, stem)
        if stem != key and thing in known and isinstance(value, (str, int)) and not isinstance(value, bool):
            wanted[key] = (thing, value)
    good, bad = check_ids(connector, wanted)
    settings.update(good)
    return {f"{prefix}.settings.{key}": message for key, message in bad.items()}


def _mappings(step: dict[str, Any], trigger: Any, crm: Crm, previous: Previous, prefix: str, complete: bool,
              errors: dict[str, str], warnings: list[str]) -> list[dict[str, Any]]:
    """The step's field mappings, stored by key with the label and options seen now."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for n, item in enumerate(step.get("field_mappings") or []):
        source, key = item["source"], item["key"]
        if (source, key) in seen:
            errors[f"{prefix}.field_mappings.{n}.key"] = "this field is mapped twice"
            continue
        seen.add((source, key))
        kind = "person" if source == "person" else trigger.object_type
        catalog = crm.fields(kind)
        info = next((f for f in catalog or [] if f["key"] == key), None)
        if catalog is not None and info is None:
            errors[f"{prefix}.field_mappings.{n}.key"] = f"no {kind} field {key!r} in {crm.title()}"
            continue
        if catalog is None and (source, key) not in previous.mappings and not complete:
            warnings.append(f"{prefix}.field_mappings.{n}: saved without checking the field {key!r}: "
                            f"{crm.errors.get('crm', f'{crm.title()} fields could not be loaded')}")
        mapping = Mapping.from_catalog(source, info) if info else \
            previous.mappings.get((source, key)) or Mapping(source, key, key)
        out.append(mapping.as_dict())
    if step.get("field_mappings") and crm.fields(trigger.object_type) is None and complete:
        errors.setdefault(f"{prefix}.field_mappings",
                          crm.errors.get("crm", f"{crm.title()} fields are unavailable"))
    return out
