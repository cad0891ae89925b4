"""The automation settings page: behaviours an admin switches on per entry of a CRM catalog (each
lead pipeline), built from the connector's presets that declare `per` (contract: triggers.Preset).

Saving writes ordinary rules (so the run log, replay and exactly-once come with them), one per
entry and preset, marked with their origin `automation:<catalog>:<entry>:<preset>`: saving again
updates the rule it wrote (only what the page fills: the rule's other steps and edits stay), a
behaviour switched off deactivates its rule, and the rule editor says where a rule comes from.
Every rule is checked before any is saved, so a refused form changes nothing."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from .. import connectors
from ..errors import Fatal, NeedsReauth, Retriable
from ..inputs import InputError, optional_int
from ..store.models import Rule
from ..web.access import admin, current_user
from . import catalogs, kinds, service
from .editor import UNITS, delay_parts
from .validation import Crm, Invalid, parse, provider_problem, step_input

bp = Blueprint("automation", __name__, template_folder=str(Path(__file__).parent / "templates"))
PREFIX = "automation:"


@dataclass
class Behaviour:
    """One preset for one catalog entry, as the page shows it."""

    preset: Any
    origin: str
    rule: dict[str, Any] | None                     # the rule it wrote (None: never switched on)
    values: list[Any] = field(default_factory=list)  # per fill: what the form shows
    options: list[list[dict[str, str]] | None] = field(default_factory=list)   # per fill: its choices

    @property
    def on(self) -> bool:
        return self.rule is not None and self.rule["status"] == "active"


@dataclass
class Entry:
    id: str
    name: str
    behaviours: list[Behaviour]


@dataclass
class Section:
    """The behaviours configured per entry of one catalog (lead pipelines)."""

    catalog: str
    label: str
    entries: list[Entry]
    error: str | None = None


def origin_of(catalog: str, entry_id: str, preset_key: str) -> str:
    return f"{PREFIX}{catalog}:{entry_id}:{preset_key}"[:200]


def per_presets(provider: str | None) -> dict[str, list[Any]]:
    """The CRM connector's presets that are configured per catalog entry, by catalog."""
    out: dict[str, list[Any]] = {}
    try:
        c = connectors.connector(provider) if provider else None
    except KeyError:
        return out
    for preset in (c.presets if c is not None else ()):
        if getattr(preset, "per", None):
            out.setdefault(preset.per, []).append(preset)
    return out


def offered(services: Any, installation_id: int) -> bool:
    """Whether the installation's CRM ships behaviours for this page (its nav entry shows then)."""
    return bool(per_presets(Crm(services, installation_id).provider))


def title(catalog: str, label: str) -> str:
    return "Lead automation" if catalog.startswith("lead") else f"Automation per {label.lower().rstrip('s')}"


# -- paths in a rule body ("params.cause", "steps.0.settings.to_stage_id") ---------------------------
def get_path(body: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(body, list) and part.isdigit() and int(part) < len(body):
            body = body[int(part)]
        elif isinstance(body, dict):
            body = body.get(part)
        else:
            return None
    return body


def set_path(body: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    here: Any = body
    for n, part in enumerate(parts[:-1]):
        nxt = here[int(part)] if isinstance(here, list) and part.isdigit() and int(part) < len(here) else (
            here.setdefault(part, {} if not parts[n + 1].isdigit() else []) if isinstance(here, dict) else None)
        if nxt is None:
            raise InputError.of(path, "the preset names a place its rule does not have")
        here = nxt
    if isinstance(here, list):
        raise InputError.of(path, "the preset names a place its rule does not have")
    here[parts[-1]] = value


# -- what the page shows --------------------------------------------------------------------------
def _entries(loader: Any, catalog: str) -> list[dict[str, Any]]:
    value = loader(catalog)
    return [e for e in value if isinstance(e, dict) and kinds._ident(e) is not None] if isinstance(value, list) else []


def _options(loader: Any, fill: Any, entry: dict[str, Any]) -> list[dict[str, str]] | None:
    """A fill's choices: fixed ones, the entry's own list ("lead_pipelines.stages"), or a
    catalog's entries (named with their pipeline where they have one)."""
    if fill.kind != "choice":
        return None
    if fill.choices:
        return [{"id": str(v), "name": str(label), "parent": ""} for v, label in fill.choices]
    if not fill.catalog:
        return None
    name, _, inner = fill.catalog.partition(".")
    raw = entry.get(inner) if inner else loader(name)
    if not isinstance(raw, list):
        return []
    raw = [{**r, "name": f"{r['pipeline']}: {r.get('name') or r.get('label') or ''}"}
           if isinstance(r, dict) and r.get("pipeline") and not inner else r for r in raw]
    return kinds.options(kinds.Setting(name, name, catalog=name), raw) or []


def paths(fill: Any) -> tuple[str, ...]:
    return (fill.at,) if isinstance(fill.at, str) else tuple(fill.at)


def rules_by_origin(services: Any, installation_id: int) -> dict[str, dict[str, Any]]:
    with services.db.begin() as session:
        ids = session.scalars(select(Rule.id).where(Rule.installation_id == installation_id,
                                                    Rule.origin.startswith(PREFIX))).all()
    out = {}
    for rule_id in ids:
        rule = service.get(services, installation_id, rule_id)
        out[rule["origin"]] = rule
    return out


def _shown(value: Any, fill: Any) -> Any:
    if fill.many:
        return [str(v) for v in value] if isinstance(value, list) else ([str(value)] if value not in (None, "") else [])
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return "" if value is None else value


def sections(services: Any, installation_id: int, refresh: bool = False) -> list[Section]:
    crm = Crm(services, installation_id, refresh=refresh)
    grouped = per_presets(crm.provider)
    if not grouped:
        return []
    existing = rules_by_origin(services, installation_id)
    out = []
    for catalog, presets in grouped.items():
        c = connectors.connector(crm.provider)
        label = c.catalogs[catalog].label if catalog in c.catalogs else catalog.replace("_", " ").capitalize()
        section = Section(catalog, label, [])
        try:
            loader = catalogs.Loader(services, crm.connection(), refresh)
            for entry in _entries(loader, catalog):
                entry_id = kinds._ident(entry)
                behaviours = []
                for preset in presets:
                    origin = origin_of(catalog, entry_id, preset.key)
                    rule = existing.get(origin)
                    body = rule if rule is not None else service.preset_body(preset.rule or {})
                    b = Behaviour(preset, origin, rule)
                    for fill in preset.fills:
                        value = get_path(body, paths(fill)[0])
                        if value in (None, "", []) and rule is None and fill.default is not None:
                            value = fill.default
                        b.values.append(_shown(value, fill))
                        b.options.append(_options(loader, fill, entry))
                    behaviours.append(b)
                section.entries.append(Entry(entry_id, str(entry.get("name") or entry.get("label") or entry_id),
                                             behaviours))
        except (Fatal, Retriable, NeedsReauth) as exc:
            section.error = f"{crm.title()}: {provider_problem(exc)}"
        out.append(section)
    return out


# -- saving ---------------------------------------------------------------------------------------
def _value(form: Any, name: str, fill: Any) -> Any:
    if fill.many:
        return [v.strip() for v in form.getlist(name) if v.strip()]
    if fill.kind == "seconds":
        amount = optional_int(form.get(name), name, low=0, high=366 * 86400)
        unit = form.get(name + "_unit", "days")
        if unit not in UNITS:
            raise InputError.of(name + "_unit", f"one of {', '.join(UNITS)}")
        return (amount or 0) * UNITS[unit]
    return (form.get(name) or "").strip()


def _body(services: Any, installation_id: int, b: Behaviour, entry: Entry) -> dict[str, Any]:
    """The rule body to save: the rule it wrote (as the API takes it), or a new one from the preset."""
    if b.rule is not None:
        rule = b.rule
        return {"name": rule["name"], "trigger": rule["trigger"], "pipeline_id": rule["pipeline_id"],
                "stage_id": rule["stage_id"], "params": dict(rule.get("params") or {}), "fires": rule["fires"],
                "conditions": [{k: c[k] for k in ("field", "op", "value") if k in c} for c in rule["conditions"]],
                "steps": [step_input(s) for s in rule["steps"]]}
    body = service.from_preset(services, installation_id, b.preset.key)
    body["name"] = f"{b.preset.title} · {entry.name}"[:200]
    return body


def save(services: Any, installation_id: int, form: Any, actor: str) -> tuple[list[str], dict[str, str]]:
    """Write the form's behaviours as rules: (what was done, errors by form field). With errors
    nothing is saved."""
    done: list[str] = []
    errors: dict[str, str] = {}
    plans: list[tuple[Behaviour, Entry, dict[str, Any] | None]] = []
    for s_n, section in enumerate(sections(services, installation_id)):
        if section.error:
            errors[f"s{s_n}"] = section.error
            continue
        for e_n, entry in enumerate(section.entries):
            if form.get(f"s{s_n}e{e_n}") not in (None, entry.id):
                errors[f"s{s_n}e{e_n}"] = "the list changed while you edited it: reload the page"
                continue
            for p_n, b in enumerate(entry.behaviours):
                name = f"s{s_n}e{e_n}p{p_n}"
                on = bool(form.get(f"{name}on"))
                if not on:
                    if b.rule is not None and b.rule["status"] == "active":
                        plans.append((b, entry, None))
                    continue
                try:
                    body = _body(services, installation_id, b, entry)
                    for f_n, fill in enumerate(b.preset.fills):
                        value = entry.id if fill.kind == "entry" else _value(form, f"{name}f{f_n}", fill)
                        b.values[f_n] = _shown(value, fill)
                        if fill.required and value in (None, "", []) and fill.kind != "seconds":
                            errors[f"{name}f{f_n}"] = f"{fill.label}: fill this in"
                            continue
                        offered_ids = {o["id"] for o in b.options[f_n] or []}
                        chosen = value if isinstance(value, list) else [value]
                        if b.options[f_n] is not None and any(v not in offered_ids for v in chosen if v != ""):
                            errors[f"{name}f{f_n}"] = f"{fill.label}: pick from the list ({entry.name})"
                            continue
                        for at in paths(fill):
                            set_path(body, at, value)
                    body["status"] = "active"
                    data, _ = parse(body)
                    data.pop("status")
                    service._checked(services, installation_id, data, False, complete=True)
                except InputError as exc:
                    errors.update({f"{name}.{k}": v for k, v in exc.fields.items()})
                    continue
                except Invalid as exc:
                    errors.update({f"{name}.{k}": v for k, v in exc.errors.items()})
                    continue
                plans.append((b, entry, body))
    if errors:
        return [], errors
    for b, entry, body in plans:
        label = f"{b.preset.title} ({entry.name})"
        if body is None:
            service.set_status(services, installation_id, b.rule["id"], "draft", actor)
            done.append(f"{label}: switched off")
        elif b.rule is not None:
            service.update(services, installation_id, b.rule["id"], body, actor, partial=False)
            done.append(f"{label}: updated")
        else:
            service.create(services, installation_id, {**body, "preset": b.preset.key}, actor, origin=b.origin)
            done.append(f"{label}: switched on")
    return done, errors


# -- the page -------------------------------------------------------------------------------------
def services():
    return current_app.extensions["hub"]


def _page(installation_id: int, found: list[Section], errors: dict[str, str] | None = None, status: int = 200):
    errors = errors or {}
    general = [v for k, v in errors.items() if re.fullmatch(r"s\d+(e\d+)?", k)]
    return render_template("rules/automation.html", installation=g.installation, sections=found,
                           errors=errors, general_errors=general, title=title, delay_parts=delay_parts,
                           units=UNITS), status


@bp.get("/i/<int:installation_id>/automation")
@admin
def page(installation_id: int):
    return _page(installation_id, sections(services(), installation_id, bool(request.args.get("refresh"))))


@bp.post("/i/<int:installation_id>/automation")
@admin
def submit(installation_id: int):
    user = current_user()
    done, errors = save(services(), installation_id, request.form, user.crm_user_id if user else "")
    if errors:
        found = sections(services(), installation_id)
        _keep_form(found, request.form)
        return _page(installation_id, found, errors, 400)
    flash("Saved: " + ("; ".join(done) if done else "nothing changed") + ".")
    return redirect(url_for("automation.page", installation_id=installation_id))


def _keep_form(found: list[Section], form: Any) -> None:
    """A refused form shows what the admin typed, not what is saved."""
    for s_n, section in enumerate(found):
        for e_n, entry in enumerate(section.entries):
            for p_n, b in enumerate(entry.behaviours):
                name = f"s{s_n}e{e_n}p{p_n}"
                b.rule = dict(b.rule or {}, status="active" if form.get(f"{name}on") else "draft")
                for f_n, fill in enumerate(b.preset.fills):
                    key = f"{name}f{f_n}"
                    if fill.many:
                        b.values[f_n] = form.getlist(key)
                    elif fill.kind == "seconds":
                        try:
                            b.values[f_n] = (optional_int(form.get(key), key) or 0) * UNITS.get(
                                form.get(key + "_unit", "days"), 86400)
                        except InputError:
                            b.values[f_n] = 0
                    elif fill.kind != "entry":
                        b.values[f_n] = form.get(key, "")


@bp.app_context_processor
def automation_helpers() -> dict[str, Any]:
    """`automation_offered(installation_id)` for the settings page's nav entry."""
    def automation_offered(installation_id: int) -> bool:
        try:
            return offered(services(), installation_id)
        except Exception:       # the nav never breaks a page
            return False
    return {"automation_offered": automation_offered}
