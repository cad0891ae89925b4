"""Field mapping between the source's persons and the store's contacts, through a neutral record.

A mapping row is `{"crm": <source field>, "store": <store field>}`. Source fields are the standard
`name`, `emails`, `phones`, `org_name` (the person's organization, by name) or a custom field's key
(the source's field catalog lists them); store fields are `name`, `emails`, `phones`,
`organization`, `title`, `notes` or `custom:<key>` (a custom field of the store).

The record is keyed by the store field of each row and holds normalised values, so both sides can be
compared field by field against the last synced values (the 3-way merge):

    name            [given, family]
    emails          [[value, label], ...]    primary first, e-mail case-folded for comparison
    phones          [[value, label], ...]
    organization    "ACME"
    title, notes    "Head of Procurement"
    custom:<key>    "value"
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from hub.connectors.contract.contacts import (CUSTOM_PREFIX, EMAILS, NAME, ORGANIZATION, PHONES, Contact)

# store field -> the one source field it takes; the others take a text custom field of the person
FIXED_TARGETS = {"name": NAME, "emails": EMAILS, "phones": PHONES, "organization": ORGANIZATION}
TEXT_TARGETS = ("title", "notes")
DEFAULT_FIELD_MAP = [{"crm": NAME, "store": "name"}, {"crm": EMAILS, "store": "emails"},
                     {"crm": PHONES, "store": "phones"}, {"crm": ORGANIZATION, "store": "organization"}]
LIST_FIELDS = ("emails", "phones")
STORE_TARGETS = list(FIXED_TARGETS) + list(TEXT_TARGETS)


class MappingError(ValueError):
    """`field` names the offending part of the mapping, for the page and the API."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def validate_field_map(rows: Any, custom_fields: Mapping[str, str] | None = None,
                       source_title: str = "the CRM") -> list[dict[str, str]]:
    """A clean mapping or MappingError. `custom_fields` (key -> name) are the source's custom person
    fields when known; a custom key must be one of them."""
    if not isinstance(rows, list) or not rows:
        raise MappingError("field_map", "give at least one mapping row")
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        where = f"field_map[{i}]"
        if not isinstance(row, Mapping):
            raise MappingError(where, "expected {crm, store}")
        crm, store = str(row.get("crm") or "").strip(), str(row.get("store") or "").strip()
        if not crm or not store:
            raise MappingError(where, "both crm and store are required")
        if store in seen:
            raise MappingError(where, f"{store} is mapped twice")
        if store in FIXED_TARGETS:
            if crm != FIXED_TARGETS[store]:
                raise MappingError(where, f"{store} takes the CRM field {FIXED_TARGETS[store]}")
        elif store in TEXT_TARGETS or store.startswith(CUSTOM_PREFIX):
            if store.startswith(CUSTOM_PREFIX) and not store[len(CUSTOM_PREFIX):].strip():
                raise MappingError(where, "a custom field needs a key (custom:<key>)")
            if crm in FIXED_TARGETS.values():
                raise MappingError(where, f"{store} takes a text custom field of the person")
            if custom_fields is not None and crm not in custom_fields:
                raise MappingError(where, f"{crm} is not a person field in {source_title}")
        else:
            raise MappingError(where, f"unknown contact field {store}")
        seen.add(store)
        out.append({"crm": crm, "store": store})
    return out


def fingerprint(record: Mapping[str, Any]) -> str:
    """Hash of a neutral record; equal hashes = nothing a user could have edited changed."""
    raw = json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _pairs(items: Any, *, fold: bool) -> list[list[str]]:
    items = [i for i in (items or []) if isinstance(i, Mapping) and str(i.get("value") or "").strip()]
    first = next((n for n, i in enumerate(items) if i.get("primary")), 0)
    ordered = [items[first], *items[:first], *items[first + 1:]] if items else []
    out = []
    for item in ordered:
        value = str(item["value"]).strip()
        out.append([value.casefold() if fold else value, str(item.get("label") or "work").strip().lower() or "work"])
    return out


def _names(c: Contact) -> list[str]:
    first, last = c.given_name.strip(), c.family_name.strip()
    return [first or (c.name.strip() if not last else ""), last]


def _values(pairs: Any) -> list[dict[str, Any]]:
    return [{"value": v, "label": label, "primary": n == 0} for n, (v, label) in enumerate(pairs or [])]


@dataclass
class FieldMap:
    rows: list[dict[str, str]]

    @property
    def targets(self) -> list[str]:
        return [r["store"] for r in self.rows]

    @property
    def source_fields(self) -> tuple[str, ...]:
        return tuple(r["crm"] for r in self.rows)

    @property
    def store_fields(self) -> tuple[str, ...]:
        return tuple(self.targets)

    def maps(self, source_field: str) -> bool:
        return source_field in self.source_fields

    # -- reading ------------------------------------------------------------------------------------
    def from_source(self, c: Contact) -> dict[str, Any]:
        record: dict[str, Any] = {}
        for row in self.rows:
            crm, target = row["crm"], row["store"]
            if crm == NAME:
                record[target] = _names(c)
            elif crm in (EMAILS, PHONES):
                record[target] = _pairs(c.emails if crm == EMAILS else c.phones, fold=crm == EMAILS)
            elif crm == ORGANIZATION:
                record[target] = c.organization.strip()
            else:
                record[target] = str(c.custom.get(crm) or "").strip()
        return record

    def from_store(self, c: Contact) -> dict[str, Any]:
        record: dict[str, Any] = {}
        for target in self.targets:
            if target == "name":
                record[target] = _names(c)
            elif target in LIST_FIELDS:
                record[target] = _pairs(c.emails if target == "emails" else c.phones, fold=target == "emails")
            elif target in ("organization", "title", "notes"):
                record[target] = str(getattr(c, target) or "").strip()
            else:
                record[target] = str(c.custom.get(target[len(CUSTOM_PREFIX):]) or "").strip()
        return record

    # -- writing ------------------------------------------------------------------------------------
    def to_source(self, record: Mapping[str, Any]) -> Contact:
        """The values to write to the source (its mapped fields only are written)."""
        c = Contact()
        for row in self.rows:
            crm, value = row["crm"], record.get(row["store"])
            if crm == NAME:
                c.given_name, c.family_name = (value or ["", ""])
            elif crm == EMAILS:
                c.emails = _values(value)
            elif crm == PHONES:
                c.phones = _values(value)
            elif crm == ORGANIZATION:
                c.organization = value or ""
            else:
                c.custom[crm] = value or ""
        return c

    def to_store(self, record: Mapping[str, Any], marker: str | None) -> Contact:
        """The values to write to the store, stamped with the source id (`marker`)."""
        c = Contact(marker=marker)
        for target in self.targets:
            value = record.get(target)
            if target == "name":
                c.given_name, c.family_name = (value or ["", ""])
            elif target in LIST_FIELDS:
                setattr(c, target, _values(value))
            elif target in ("organization", "title", "notes"):
                setattr(c, target, value or "")
            else:
                c.custom[target[len(CUSTOM_PREFIX):]] = value or ""
        return c

    def display(self, record: Mapping[str, Any]) -> str:
        names = record.get("name") or []
        name = " ".join(n for n in names if n).strip()
        emails = record.get("emails") or []
        return name or (emails[0][0] if emails else "")


def merge(base: Mapping[str, Any] | None, crm: Mapping[str, Any], store: Mapping[str, Any], targets: Iterable[str],
          *, policy: str, crm_newer: bool) -> tuple[dict[str, Any], list[tuple[str, Any, Any, str]]]:
    """Per-field 3-way merge. A field changed on one side only takes that side's value; changed on
    both (to different values) is a conflict, won by the policy (`newest`: the side whose record
    changed last). Returns the merged record and the conflicts (field, crm, store, winner)."""
    merged: dict[str, Any] = {}
    conflicts: list[tuple[str, Any, Any, str]] = []
    for field in targets:
        c, g = crm.get(field), store.get(field)
        b = base.get(field) if base is not None else None
        if c == g:
            merged[field] = c
        elif base is not None and field in base and g == b:
            merged[field] = c
        elif base is not None and field in base and c == b:
            merged[field] = g
        else:
            winner = "crm" if policy == "crm" else "store" if policy == "store" else ("crm" if crm_newer else "store")
            merged[field] = c if winner == "crm" else g
            conflicts.append((field, c, g, winner))
    return merged, conflicts
