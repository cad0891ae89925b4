"""Conditions: does a field of a CRM object hold a value? Used by a rule (on the object as the event
saw it, so a decision never depends on when its job runs) and by a step (on the object as the step
sees it: before a wait as the event saw it, after a wait as it is then).

A condition names a field by its key (`value`, a custom field's key, or `deal.value` with the
object's kind in front). The CRM's source reads the value (`CrmSource.value`); `comparable` is the
fallback for a source without a reader."""
from __future__ import annotations

from datetime import date
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


def _date(value: Any) -> date | None:
    """A date written as ISO (`2024-05-01`, or a timestamp whose date part is that)."""
    text = str(value).strip() if isinstance(value, (str, date)) else ""
    if len(text) < 10 or text[10:11] not in ("", " ", "T"):
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _ordered(value: Any) -> Decimal | date | None:
    """What `gt`/`lt` compare: a number, or else a date."""
    number = _number(value)
    return number if number is not None else _date(value)


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
        left, right = _ordered(value), _ordered(wanted)
        if right is None:
            return f"the rule compares {label} with {wanted!r}, which is not a number"
        if left is None or type(left) is not type(right):
            return f"{label} {shown} is not a {'date' if isinstance(right, date) else 'number'}"
        if isinstance(left, date):
            return f"{label} {left.isoformat()} {_FAILED[op]} {right.isoformat()}"
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
        left, right = _ordered(value), _ordered(wanted)
        if left is None or right is None or type(left) is not type(right):
            return False
        return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[op]
    texts = _texts(value, options)
    if op == "contains":
        return any(wanted.lower() in t for t in texts)
    left_n, right_n = _number(value), _number(wanted)
    same = (left_n is not None and right_n is not None and not isinstance(value, list) and left_n == right_n) \
        or wanted.lower() in texts
    return same if op == "eq" else not same if op == "ne" else False


# -- what a condition may say about a field of a type (checked when a rule is saved) ------------------
ORDERED_TYPES = frozenset({"number", "money", "date"})
TYPE_WORDS = {"number": "a number", "money": "an amount of money", "date": "a date", "enum": "a choice",
              "set": "a set of choices", "user": "a user", "bool": "yes or no", "text": "text"}
TRUTH = {"true": "true", "yes": "true", "false": "false", "no": "false"}


def operators_for(kind: str) -> list[str]:
    """The operators that make sense on a field of type `kind` (FieldInfo.type)."""
    ops = ["eq", "ne"]
    if kind in ORDERED_TYPES:
        ops += ["gt", "gte", "lt", "lte"]
    if kind in ("text", "set", "enum", "user", ""):
        ops.append("contains")
    return ops + ["empty", "not_empty"]


def type_problems(condition: dict[str, Any], info: dict[str, Any]) -> dict[str, str]:
    """{"op" | "value": what is wrong, in words} for a condition on a field (`info`: key, label, type,
    options [{id, label}]); an enum value given by its label is put as its option's id."""
    kind, op = str(info.get("type") or "text"), condition.get("op")
    label = info.get("label") or info.get("key")
    if op not in operators_for(kind):
        allowed = ", ".join(OPERATORS[o] for o in operators_for(kind))
        return {"op": f"{label} is {TYPE_WORDS.get(kind, kind)}: it cannot be compared with "
                      f"“{OPERATORS.get(op, op)}”; use one of: {allowed}"}
    if op in NO_VALUE:
        return {}
    value = str(condition.get("value", "")).strip()
    if value == "":
        return {}
    if kind in ("number", "money") and _number(value) is None:
        return {"value": f"{label} is {TYPE_WORDS[kind]}: {value!r} is not a number (write it like 1000 or 1250.50)"}
    if kind == "date" and _date(value) is None:
        return {"value": f"{label} is a date: {value!r} is not a date (write it as YYYY-MM-DD, e.g. 2025-03-31)"}
    if kind == "bool":
        if value.lower() not in TRUTH:
            return {"value": f"{label} is yes or no: write true or false, not {value!r}"}
        condition["value"] = TRUTH[value.lower()]
    options = [(str(o.get("id")), str(o.get("label", ""))) for o in info.get("options") or []]
    if kind in ("enum", "set") and options and op in ("eq", "ne"):
        by_label = {name.lower(): ident for ident, name in options}
        ids = {ident for ident, _ in options}
        if value not in ids and value.lower() not in by_label:
            shown = ", ".join(name for _, name in options[:12]) + (" ..." if len(options) > 12 else "")
            return {"value": f"{label} has no choice {value!r}; one of: {shown}"}
        condition["value"] = value if value in ids else by_label[value.lower()]
    return {}
