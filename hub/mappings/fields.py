"""Field mappings: which CRM fields a rule carries, and how a stored value becomes readable text.

Custom fields are identified by their 40-char hash key (different in every company) and shown by
their label. A value arrives in one of three shapes depending on where the record came from
(Pipedrive FACTS §13): API v2 (`custom_fields.<hash>`: `123`, `[1, 2]`, `{value, currency}`),
webhook v2 (`{type, value | id | values}`) or API v1 flat (`"123"`, `"1,2"`, `<hash>_currency`).
`field_value` accepts all three, so a rule renders the same text whether its event came from a
webhook or from the reconciliation poll. Enum and set option ids become their labels with the
options saved with the mapping (no API call per event)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from ..connectors.contract.records import format_money, format_number  # noqa: F401 (re-exported)

# What the hub itself shows for a deal; everything else is offered as a mapping.
BUILT_IN = frozenset({"title", "value", "currency", "person_id", "org_id", "pipeline_id", "stage_id", "status"})
MAPPABLE_SOURCES = ("deal", "person")


@dataclass
class Mapping:
    """One mapped field of a step (stored in `RuleStep.mappings`)."""

    source: str
    key: str
    label: str
    type: str = ""
    options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_catalog(cls, source: str, info: dict) -> "Mapping":
        return cls(source, info["key"], info.get("label") or info["key"], info.get("type", ""),
                   {str(o["id"]): str(o.get("label", "")) for o in info.get("options") or []})

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "key": self.key, "label": self.label, "type": self.type,
                "options": dict(self.options)}


def _raw(record: dict, key: str) -> tuple[Any, str | None]:
    """The stored value of `key` and, for the v1 flat shape, a currency beside it."""
    if key in record and key != "custom_fields":
        return record[key], record.get(f"{key}_currency")
    custom = record.get("custom_fields")
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


def field_value(record: dict, mapping: Mapping) -> str | None:
    """Readable text of one mapped field, or None when it is empty."""
    value, v1_currency = _raw(record or {}, mapping.key)
    kind = mapping.type
    if isinstance(value, dict):                       # webhook v2 {type, ...} or API v2 objects
        kind = value.get("type") or kind
        if kind == "monetary":
            return format_money(value.get("value"), value.get("currency"))
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
    if kind == "enum":
        return ", ".join(mapping.options.get(i, i) for i in _ids(value))
    if kind == "set":
        return ", ".join(mapping.options.get(i, i) for i in _ids(value)) or None
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


def mapped_values(records: dict[str, dict | None], mappings: Iterable[Mapping]) -> list[tuple[Mapping, str]]:
    """(mapping, text) for every mapped field that has a value, in the mapping's order."""
    out = []
    for m in mappings:
        text = field_value(records.get(m.source) or {}, m)
        if text is not None:
            out.append((m, text))
    return out


def alias(label: str, taken: set[str]) -> str:
    """A template-friendly name for a field label ("Contract number" -> contract_number)."""
    base = "".join(c.lower() if c.isalnum() else "_" for c in label).strip("_")
    base = "_".join(p for p in base.split("_") if p) or "field"
    if base[0].isdigit():
        base = f"f_{base}"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def catalog_choices(catalog: list[dict]) -> list[dict]:
    """The fields an admin may map: every catalog field except those the hub always shows."""
    return [f for f in catalog if f["key"] not in BUILT_IN]
