"""Triggers and conditions: does a rule apply to a hub event?

A trigger kind is one entry of `TRIGGERS` (adding one is a local change: a `Trigger` with its event
kind, the CRM object it reads and whether it needs a pipeline and a stage). Conditions compare
fields of the object as it was when the event happened (the event's `current` state), so a rule's
decision never depends on when its job runs."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

OPERATORS = {
    "eq": "is", "ne": "is not", "gt": "greater than", "gte": "at least", "lt": "less than", "lte": "at most",
    "contains": "contains", "empty": "is empty", "not_empty": "is not empty",
}
NO_VALUE = frozenset({"empty", "not_empty"})


@dataclass(frozen=True)
class Trigger:
    kind: str                 # the hub event kind it listens to
    label: str
    object_type: str          # deal | lead
    needs_pipeline: bool
    needs_stage: bool = False
    files: bool = True        # the CRM keeps files on this object type
    repeats: bool = True      # can happen again to the same object (won, reopened, won again)
    default_fires: str = "every"   # for new rules: "every" time it happens, or "once" per object

    def mismatch(self, rule: Any, data: dict[str, Any]) -> str | None:
        """Why the event does not fit the rule (None: it fits). `data` is HubEvent.data."""
        current = data.get("current") or {}
        if self.needs_pipeline:
            pipeline = data.get("pipeline_id") or current.get("pipeline_id")
            if rule.pipeline_id and str(pipeline) != str(rule.pipeline_id):
                return f"pipeline {pipeline} is not the rule's pipeline {rule.pipeline_id}"
        if self.needs_stage and rule.stage_id and str(data.get("to_stage_id")) != str(rule.stage_id):
            return f"moved to stage {data.get('to_stage_id')}, not to stage {rule.stage_id}"
        for n, condition in enumerate(rule.conditions or []):
            if not condition_holds(condition, current):
                return f"condition {n + 1} ({describe(condition)}) does not hold"
        return None


TRIGGERS: dict[str, Trigger] = {t.kind: t for t in (
    # a deal won again after a reopen is a new win (a renewal, a corrected loss): every time
    Trigger("deal.won", "Deal won", "deal", needs_pipeline=True),
    Trigger("deal.lost", "Deal lost", "deal", needs_pipeline=True),
    # a deal moved back and forth between stages would get the same task again: once per deal
    Trigger("deal.stage_changed", "Deal moved to a stage", "deal", needs_pipeline=True, needs_stage=True,
            default_fires="once"),
    Trigger("lead.added", "Lead added", "lead", needs_pipeline=False, files=False, repeats=False,
            default_fires="once"),
)}
FIRES = {"every": "every time", "once": "once per deal (or lead)"}


def describe(condition: dict[str, Any]) -> str:
    label = condition.get("label") or condition.get("field")
    op = OPERATORS.get(condition.get("op", ""), condition.get("op"))
    return f"{label} {op}" + ("" if condition.get("op") in NO_VALUE else f" {condition.get('value')!r}")


def comparable(record: dict[str, Any], key: str) -> Any:
    """The raw value of a standard or custom field, whichever shape the record came in."""
    if key in record and key != "custom_fields":
        value = record[key]
    else:
        value = (record.get("custom_fields") or {}).get(key) if isinstance(record.get("custom_fields"), dict) else None
    if isinstance(value, dict):
        if "amount" in value:                                  # lead value {amount, currency}
            return value.get("amount")
        if "id" in value:                                      # webhook enum/user/people/org
            return value["id"]
        if "values" in value:                                  # webhook set
            return [v.get("id") if isinstance(v, dict) else v for v in value["values"]]
        return value.get("value", value.get("formatted_address"))
    return value


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        return Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None


def _texts(value: Any, options: dict[str, str]) -> list[str]:
    """The value as lower-case texts: ids and, for options, their labels too."""
    items = value if isinstance(value, list) else ([v for v in value.split(",")] if isinstance(value, str)
                                                   and options else [value])
    out = []
    for item in items:
        text = str(item).strip()
        out.append(text.lower())
        if text in options:
            out.append(options[text].lower())
    return out


def condition_holds(condition: dict[str, Any], record: dict[str, Any]) -> bool:
    op = condition.get("op")
    value = comparable(record or {}, str(condition.get("field", "")))
    empty = value in (None, "", [])
    if op == "empty":
        return empty
    if op == "not_empty":
        return not empty
    if empty:
        return op == "ne"
    wanted = str(condition.get("value", "")).strip()
    options = {str(k): str(v) for k, v in (condition.get("options") or {}).items()}
    if op in ("gt", "gte", "lt", "lte"):
        left, right = _number(value), _number(wanted)
        if left is None or right is None:
            return False
        return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[op]
    texts = _texts(value, options)
    if op == "contains":
        return any(wanted.lower() in t for t in texts)
    left_n, right_n = _number(value), _number(wanted)
    same = (left_n is not None and right_n is not None and not isinstance(value, list) and left_n == right_n) \
        or wanted.lower() in texts
    return same if op == "eq" else not same if op == "ne" else False
