"""The settings page's rule editor as a form: the form's fields as a rule body (the API's shape),
and the step list's buttons (add a step of a kind, move a step up or down, remove it), which change
the form's values without saving, so the admin sees the result and saves when it is right."""
from __future__ import annotations

import json
from typing import Any

from ..inputs import InputError, optional_int
from . import kinds, schemas

UNITS = {"minutes": 60, "hours": 3600, "days": 86400}
CARRY = ("value", "contacts", "notes", "attachments")


def _form_int(value: str | None, name: str) -> Any:
    """A form's id: digits 0-9, or nothing; anything else is passed on as typed, for the rule's
    schema to refuse naming the field."""
    try:
        return optional_int(value, name, low=1, high=schemas.MAX_ID)
    except InputError:
        return value


def _setting(text: str) -> Any:
    """A setting as typed: several values are written as JSON (a list or a mapping)."""
    text = text.strip()
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return text          # refused by the rule's schema, naming the setting
    return text


def _delay(form, n: int) -> Any:
    amount = form.get(f"step_{n}_delay_amount", "").strip()
    if not amount:
        return 0
    try:
        value = optional_int(amount, f"steps.{n}.delay_seconds", low=0, high=10**6) or 0
    except InputError:
        return amount
    return value * UNITS.get(form.get(f"step_{n}_delay_unit", "days"), 86400)


def delay_parts(seconds: int) -> tuple[int | str, str]:
    """A delay as the form shows it: the largest unit it is a whole number of."""
    if not seconds:
        return "", "days"
    for unit in ("days", "hours", "minutes"):
        if seconds % UNITS[unit] == 0:
            return seconds // UNITS[unit], unit
    return round(seconds / 60), "minutes"


def _step(form, n: int) -> dict[str, Any]:
    kind = kinds.get(form.get(f"step_{n}_kind", ""))
    p = f"step_{n}_"
    step: dict[str, Any] = {"id": form.get(p + "id") or None, "kind": form.get(p + "kind", ""),
                            "connection_id": _form_int(form.get(p + "connection_id"), f"steps.{n}.connection_id"),
                            "settings": {}, "templates": {}, "carry": {}, "field_mappings": [], "condition": None,
                            "delay_seconds": _delay(form, n), "due_in_days": None}
    for key in form:
        if key.startswith(p + "setting_") and form.get(key, "").strip():
            step["settings"][key[len(p + "setting_"):]] = _setting(form.get(key))
        elif key.startswith(p + "tpl_"):
            step["templates"][key[len(p + "tpl_"):]] = form.get(key, "")
    step["carry"] = {k: bool(form.get(f"{p}carry_{k}")) for k in CARRY}
    for value in form.getlist(p + "map"):
        source, _, field_key = value.partition(":")
        if field_key:
            step["field_mappings"].append({"source": source, "key": field_key})
    field_name = form.get(p + "cond_field", "").strip()
    if field_name:
        step["condition"] = {"field": field_name, "op": form.get(p + "cond_op", "eq"),
                             "value": form.get(p + "cond_value", "")}
    due = form.get(p + "due_in_days", "").strip()
    if due:
        try:
            step["due_in_days"] = optional_int(due, f"steps.{n}.due_in_days", low=0, high=3650)
        except InputError:
            step["due_in_days"] = due
    if kind is not None and not kind.carries:
        step.pop("carry")
        step.pop("field_mappings")
    return step


def form_params(form, kind: str) -> dict[str, Any]:
    """The chosen trigger's other params from the form (`param_<name>`): a multi-select's values
    as a list (any of them), a text field's as one value."""
    from .triggers import triggers

    trigger = next((t for t in triggers().values() if t.kind == kind), None)
    out: dict[str, Any] = {}
    for param in trigger.other_params if trigger else ():
        values = [v.strip() for v in form.getlist(f"param_{param}") if v.strip()]
        if len(values) == 1 and not form.get(f"param_{param}_many") and "," in values[0]:
            values = [v.strip() for v in values[0].split(",") if v.strip()]
        if len(values) == 1 and not form.get(f"param_{param}_many"):
            out[param] = values[0]
        elif values:
            out[param] = values
    return out


def form_body(form) -> dict[str, Any]:
    """The editor's form as a rule body (the API's shape)."""
    conditions = []
    rows = optional_int(form.get("condition_rows"), "condition_rows", low=0, high=10**6) or 0
    for n in range(min(rows, 50)):
        field_name = form.get(f"cond_field_{n}", "").strip()
        if field_name:
            conditions.append({"field": field_name, "op": form.get(f"cond_op_{n}", "eq"),
                               "value": form.get(f"cond_value_{n}", "")})
    count = optional_int(form.get("step_count"), "step_count", low=0, high=10**6) or 0
    return {"name": form.get("name", ""), "trigger": form.get("trigger", ""),
            "pipeline_id": form.get("pipeline_id") or None, "stage_id": form.get("stage_id") or None,
            "params": form_params(form, form.get("trigger", "")),
            "fires": form.get("fires") or None, "conditions": conditions,
            "steps": [_step(form, n) for n in range(min(count, 20))]}


def blank_step(kind: str) -> dict[str, Any]:
    found = kinds.get(kind)
    return {"id": None, "kind": kind, "connection_id": None, "settings": {},
            "templates": {slot: "" for slot in (found.templates if found else ())},
            "carry": {"value": True, "contacts": True, "notes": False, "attachments": False},
            "field_mappings": [], "condition": None, "delay_seconds": 86400 if kind == "wait" else 0,
            "due_in_days": None}


def step_action(values: dict[str, Any], do: str, new_kind: str) -> dict[str, Any]:
    """`step_add`, `step_up:<n>`, `step_down:<n>`, `step_remove:<n>` applied to the form's values."""
    steps = list(values.get("steps") or [])
    action, _, number = do.partition(":")
    if action == "step_add":
        if kinds.get(new_kind) is None:
            raise InputError({"new_step_kind": "pick the kind of step to add"})
        if len(steps) >= 20:
            raise InputError({"steps": "a rule has at most 20 steps"})
        steps.append(blank_step(new_kind))
    else:
        n = optional_int(number, "do", low=0, high=len(steps) - 1) if steps else None
        if n is None:
            raise InputError({"do": "no such step"})
        if action == "step_up" and n > 0:
            steps[n - 1], steps[n] = steps[n], steps[n - 1]
        elif action == "step_down" and n < len(steps) - 1:
            steps[n + 1], steps[n] = steps[n], steps[n + 1]
        elif action == "step_remove":
            steps.pop(n)
        elif action not in ("step_up", "step_down"):
            raise InputError({"do": "unknown step action"})
    return {**values, "steps": steps}
