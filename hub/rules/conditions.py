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


def _read(condition: dict[str, Any], record: dict[str, Any], value_of: Value | None) -> Any:
    key = str(condition.get("field", ""))
    value = None
    if value_of is not None:
        try:
            value = value_of(record or {}, key)
        except (LookupError, TypeError, ValueError):
            value = None
    if value is None:
        value = comparable(record or {}, key)
    return value


def condition_holds(condition: dict[str, Any], record: dict[str, Any], value_of: Value | None = None) -> bool:
    """Does the condition hold on `record` (an object's data)? `value_of` reads the field the way
    its CRM stores it (the connector's `CrmSource.value`); without one, `comparable` does."""
    return _holds(condition, _read(condition, record, value_of))


def why_not(condition: dict[str, Any], record: dict[str, Any], value_of: Value | None = None) -> str | None:
    """Why the condition does not hold on `record`, in words with the value it found ("value 900
    is less than 1000"); None when it holds. For the run log and the editor's preview."""
    value = _read(condition, record, value_of)
    if _holds(condition, value):
        return None
    op = condition.get("op")
    label = condition.get("label") or condition.get("field")
    options = {str(k): str(v) for k, v in (condition.get("options") or {}).items()}
    wanted = str(condition.get("value", "")).strip()
    shown, wanted_shown = _shown(value, options), options.get(wanted, wanted)
    if op == "empty":
        return f"{label} is {shown}, not empty"
    if value in (None, "", []):
        return f"{label} is empty"
    if op in _FAILED:
        left, right = _number(value), _number(wanted)
        if right is None:
            return f"the rule compares {label} with {wanted!r}, which is not a number"
        if left is None:
            return f"{label} {shown} is not a number"
        return f"{label} {_plain(left)} {_FAILED[op]} {_plain(right)}"
    if op == "contains":
        return f"{label} “{shown}” does not contain “{wanted}”"
    if op == "eq":
        return f"{label} is {shown}, not {wanted_shown}"
    if op == "ne":
        return f"{label} is {wanted_shown}"
    return f"{describe(condition)} does not hold"


# what a failed comparison found: `gte 1000` on 900 -> "900 is less than 1000"
_FAILED = {"gt": "is not greater than", "gte": "is less than", "lt": "is not less than", "lte": "is greater than"}


def _plain(number: Decimal) -> str:
    return format(number.normalize(), "f") if number == number.to_integral_value() else str(number)


def _shown(value: Any, options: dict[str, str]) -> str:
    items = value if isinstance(value, list) else [value]
    return ", ".join(options.get(str(v), str(v)) for v in items)


def _holds(condition: dict[str, Any], value: Any) -> bool:
    op = condition.get("op")
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
