"""Pipedrive field values in their three shapes (FACTS §13), read two ways: `comparable` for
conditions (ids, numbers, lists) and `readable` for templates (labels, formatted money).

A value arrives as API v2 (`custom_fields.<hash>`: `123`, `[1, 2]`, `{value, currency}`), as a
webhook v2 (`{type, value | id | values}`) or as API v1 flat (`"123"`, `"1,2"`, `<hash>_currency`:
leads). Both readers accept all three, so a rule decides and renders the same whether its event
came from a webhook or from the reconciliation poll."""
from __future__ import annotations

from typing import Any

from ..contract.records import FieldInfo, format_money, format_number  # noqa: F401 (records uses f.format_money)

# Pipedrive field_type -> the contract's neutral type
TYPES = {"varchar": "text", "text": "text", "varchar_auto": "text", "phone": "text", "address": "text",
         "time": "text", "timerange": "text", "daterange": "date", "date": "date", "double": "number",
         "int": "number", "monetary": "money", "enum": "enum", "set": "set", "user": "user",
         "people": "text", "org": "text", "visible_to": "enum", "status": "enum", "stage": "enum"}

STATUS_OPTIONS = (("open", "Open"), ("won", "Won"), ("lost", "Lost"), ("deleted", "Deleted"))


def raw(data: dict, key: str) -> tuple[Any, str | None]:
    """The stored value of `key` and, for the v1 flat shape, a currency beside it."""
    if key in data and key != "custom_fields":
        return data[key], data.get(f"{key}_currency")
    custom = data.get("custom_fields")
    if isinstance(custom, dict) and key in custom:
        return custom[key], None
    return None, None


def _ids(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return [str(v.get("id") if isinstance(v, dict) else v) for v in value]
    return [str(value)]


def comparable(data: dict, key: str, kind: str = "") -> Any:
    """The value a condition compares: ids for options (a list for set), plain numbers for money."""
    value, _ = raw(data or {}, key)
    if isinstance(value, dict):
        kind = value.get("type") or kind
        if "amount" in value:                                  # lead value {amount, currency}
            return value.get("amount")
        if "id" in value:                                      # webhook enum/user/people/org
            return value["id"]
        if "values" in value:                                  # webhook set
            return [v.get("id") if isinstance(v, dict) else v for v in value["values"]]
        if "from" in value:                                    # webhook daterange
            return value.get("from")
        return value.get("formatted_address") or value.get("value") if kind == "address" \
            else value.get("value", value.get("formatted_address"))
    if kind == "set" and isinstance(value, str):               # v1 flat "1,2"
        return _ids(value)
    if isinstance(value, list) and value and isinstance(value[0], dict) and "value" in value[0]:
        return [v.get("value") for v in value]                 # emails / phones
    return value


def readable(data: dict, entry: dict) -> str | None:
    """Readable text of one field (a catalog entry: key, type, options), None when empty; enum and
    set ids become their labels."""
    key, kind = entry["key"], entry.get("type", "")
    options = {str(o["id"]): str(o["label"]) for o in entry.get("options") or []}
    value, v1_currency = raw(data or {}, key)
    if isinstance(value, dict):                       # webhook v2 {type, ...} or API v2 objects
        kind = value.get("type") or kind
        if kind == "monetary" or "currency" in value:
            return format_money(value.get("value", value.get("amount")), value.get("currency"))
        if kind in ("enum", "people", "org", "user") and "id" in value:
            value = value["id"]
        elif kind == "set" and "values" in value:
            value = value["values"]
        elif kind == "daterange" or "until" in value:
            start, end = value.get("from", value.get("value")), value.get("until")
            return " – ".join(str(v) for v in (start, end) if v) or None
        elif kind == "address":
            value = value.get("formatted_address") or value.get("value")
        elif "value" in value:
            value = value.get("value")
        else:
            value = ", ".join(f"{k}: {v}" for k, v in value.items() if v not in (None, ""))
    if value in (None, "", []):
        return None
    if kind in ("enum", "set"):
        return ", ".join(options.get(i, i) for i in _ids(value)) or None
    if kind == "monetary":
        return format_money(value, v1_currency)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and kind in ("double", "int", "monetary", ""):
        return format_number(value)
    if isinstance(value, list):
        parts = [str(v.get("value") if isinstance(v, dict) else v) for v in value]
        return ", ".join(p for p in parts if p) or None
    return str(value)


def field_info(entry: dict) -> FieldInfo:
    """A catalog entry (catalogs.deal_fields) as the contract's FieldInfo."""
    return FieldInfo(key=entry["key"], label=entry["label"], type=TYPES.get(entry.get("type", ""), "text"),
                     options=tuple((str(o["id"]), str(o["label"])) for o in entry.get("options") or []),
                     custom=bool(entry.get("custom")))
