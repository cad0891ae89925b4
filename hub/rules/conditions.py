"""Conditions: does a field of a CRM object hold a value? Used by a rule (on the object as the event
saw it, so a decision never depends on when its job runs) and by a step (on the object as the step
sees it: before a wait as the event saw it, after a wait as it is then).

A condition names a field by its key (`value`, a custom field's key, or `deal.value` with the
object's kind in front). The CRM's source reads the value (`CrmSource.value`); `comparable` is the
fallback for a source without a reader."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Callable

Value = Callable[[dict[str, Any], str], Any]      # (object data, field key) -> what a condition compares

OPERATORS = {
    "eq": "is", "ne": "is not", "gt": "greater than", "gte": "at least", "lt": "less than", "lte": "at most",
    "contains": "contains", "empty": "is empty", "not_empty": "is not empty",
}
NO_VALUE = frozenset({"empty", "not_empty"})


def describe(condition: dict[str, Any]) -> str:
    label = condition.get("label") or condition.get("field")
    op = OPERATORS.get(condition.get("op", ""), condition.get("op"))
    return f"{label} {op}" + ("" if condition.get("op") in NO_VALUE else f" {condition.get('value')!r}")


def _lookup(record: dict[str, Any], key: str) -> Any:
    if key in record and key != "custom_fields":
        return record[key]
    custom = record.get("custom_fields")
    if isinstance(custom, dict) and key in custom:
        return custom[key]
    fields = record.get("fields")
    if isinstance(fields, dict) and key in fields:
        return fields[key]
    return None


def comparable(record: dict[str, Any], key: str) -> Any:
    """The raw value of a standard or custom field, whichever shape the record came in."""
    value = _lookup(record, key)
    if value is None and "." in key:                     # `deal.value`: the object's own field
        value = _lookup(record, key.split(".", 1)[1])
    if isinstance(value, dict):
        if "amount" in value:                            # money {amount, currency}
            return value.get("amount")
        if "id" in value:                                # an option, a user, a person
            return value["id"]
        if "values" in value:                            # a set of options
            return [v.get("id") if isinstance(v, dict) else v for v in value["values"]]
        return value.get("value", value.get("formatted_address"))
    return value


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


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


def condition_holds(condition: dict[str, Any], record: dict[str, Any], value_of: Value | None = None) -> bool:
    """Does the condition hold on `record` (an object's data)? `value_of` reads the field the way
    its CRM stores it (the connector's `CrmSource.value`); without one, `comparable` does."""
    op = condition.get("op")
    key = str(condition.get("field", ""))
    value = None
    if value_of is not None:
        try:
            value = value_of(record or {}, key)
        except (LookupError, TypeError, ValueError):
            value = None
    if value is None:
        value = comparable(record or {}, key)
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
