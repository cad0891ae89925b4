"""Field mapping between Pipedrive persons and Google people, through a neutral record.

The neutral record is keyed by the Google target of each mapping row and holds normalised values,
so both sides can be compared field by field against the last synced values (the 3-way merge):

    names                 [given, family]
    emailAddresses        [[value, label], ...]    primary first, e-mail case-folded for comparison
    phoneNumbers          [[value, label], ...]
    organizations.name    "ACME"
    organizations.title   "Head of Procurement"
    userDefined:<key>     "value"                  (a Google custom field)

A mapping row is `{"crm": <crm field>, "google": <target>}`; CRM fields are `name`, `emails`,
`phones`, `org_name` (the person's organization, by name) or a person custom field's code."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from hub.connectors.google.contacts import ContactMapping, google_to_person, person_to_google

FIXED_TARGETS = {"names": "name", "emailAddresses": "emails", "phoneNumbers": "phones",
                 "organizations.name": "org_name"}
TITLE_TARGET = "organizations.title"
CUSTOM_PREFIX = "userDefined:"
DEFAULT_FIELD_MAP = [{"crm": "name", "google": "names"}, {"crm": "emails", "google": "emailAddresses"},
                     {"crm": "phones", "google": "phoneNumbers"}, {"crm": "org_name", "google": "organizations.name"}]
LIST_FIELDS = ("emailAddresses", "phoneNumbers")


class MappingError(ValueError):
    """`field` names the offending part of the mapping, for the page and the API."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def validate_field_map(rows: Any, custom_fields: Mapping[str, str] | None = None) -> list[dict[str, str]]:
    """A clean mapping or MappingError. `custom_fields` (code -> name) are the CRM's person custom
    fields when known; a custom code must be one of them."""
    if not isinstance(rows, list) or not rows:
        raise MappingError("field_map", "give at least one mapping row")
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        where = f"field_map[{i}]"
        if not isinstance(row, Mapping):
            raise MappingError(where, "expected {crm, google}")
        crm, google = str(row.get("crm") or "").strip(), str(row.get("google") or "").strip()
        if not crm or not google:
            raise MappingError(where, "both crm and google are required")
        if google in seen:
            raise MappingError(where, f"{google} is mapped twice")
        if google in FIXED_TARGETS:
            if crm != FIXED_TARGETS[google]:
                raise MappingError(where, f"{google} takes the CRM field {FIXED_TARGETS[google]}")
        elif google == TITLE_TARGET or google.startswith(CUSTOM_PREFIX):
            if google.startswith(CUSTOM_PREFIX) and not google[len(CUSTOM_PREFIX):].strip():
                raise MappingError(where, "a Google custom field needs a label (userDefined:<label>)")
            if crm in FIXED_TARGETS.values():
                raise MappingError(where, f"{google} takes a text custom field of the person")
            if custom_fields is not None and crm not in custom_fields:
                raise MappingError(where, f"{crm} is not a person field in Pipedrive")
        else:
            raise MappingError(where, f"unknown Google field {google}")
        seen.add(google)
        out.append({"crm": crm, "google": google})
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


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Mapping):  # v2 custom fields of some types are objects: keep their value
        value = value.get("value", "")
    return str(value).strip()


@dataclass
class FieldMap:
    rows: list[dict[str, str]]
    group: str = ""
    contact_mapping: ContactMapping = ContactMapping()

    @property
    def targets(self) -> list[str]:
        return [r["google"] for r in self.rows]

    def update_mask(self) -> list[str]:
        """People fields an update replaces: only mapped ones (and our marker in clientData)."""
        mask = []
        for target in self.targets:
            name = target.split(".")[0].split(":")[0]
            if name not in mask:
                mask.append(name)
        return mask + ["clientData"]

    def read_mask(self) -> list[str]:
        return sorted(set(self.update_mask()) | {"names", "memberships", "metadata", "clientData"})

    # -- reading ------------------------------------------------------------------------------------
    def from_crm(self, person: Mapping[str, Any], org_names: Mapping[int, str]) -> dict[str, Any]:
        record: dict[str, Any] = {}
        custom = person.get("custom_fields") or {}
        for row in self.rows:
            crm, target = row["crm"], row["google"]
            if crm == "name":
                first, last = _text(person.get("first_name")), _text(person.get("last_name"))
                if not first and not last:
                    first = _text(person.get("name"))
                record[target] = [first, last]
            elif crm == "emails":
                record[target] = _pairs(person.get("emails"), fold=True)
            elif crm == "phones":
                record[target] = _pairs(person.get("phones"), fold=False)
            elif crm == "org_name":
                org = person.get("org_id")
                if isinstance(org, Mapping):
                    org = org.get("value") or org.get("id")
                record[target] = org_names.get(int(org), "") if org else ""
            else:
                record[target] = _text(custom.get(crm))
        return record

    def from_google(self, google_person: Mapping[str, Any]) -> dict[str, Any]:
        p = google_to_person(google_person, self.contact_mapping)
        custom = {str(u.get("key")): _text(u.get("value")) for u in google_person.get("userDefined") or []}
        record: dict[str, Any] = {}
        for target in self.targets:
            if target == "names":
                first, last = p["first_name"].strip(), p["last_name"].strip()
                record[target] = [first or (p["name"].strip() if not last else ""), last]
            elif target in LIST_FIELDS:
                values = p["emails"] if target == "emailAddresses" else p["phones"]
                record[target] = _pairs(values, fold=target == "emailAddresses")
            elif target == "organizations.name":
                record[target] = p["organization"].strip()
            elif target == TITLE_TARGET:
                record[target] = p["job_title"].strip()
            else:
                record[target] = custom.get(target[len(CUSTOM_PREFIX):], "")
        return record

    # -- writing ------------------------------------------------------------------------------------
    def to_google(self, record: Mapping[str, Any], crm_id: str, current: Mapping[str, Any] | None) -> dict[str, Any]:
        """A People API body for create (`current` None) or update (`current` = contact as last read)."""
        cur = google_to_person(current, self.contact_mapping) if current else None
        names = record.get("names") or ([cur["first_name"], cur["last_name"]] if cur else ["", ""])
        neutral = {
            "crm_id": crm_id, "first_name": names[0], "last_name": names[1],
            "emails": [{"value": v, "label": label, "primary": n == 0}
                       for n, (v, label) in enumerate(record.get("emailAddresses") or [])],
            "phones": [{"value": v, "label": label, "primary": n == 0}
                       for n, (v, label) in enumerate(record.get("phoneNumbers") or [])],
            "organization": record["organizations.name"] if "organizations.name" in record else (cur or {}).get("organization", ""),
            "job_title": record[TITLE_TARGET] if TITLE_TARGET in record else (cur or {}).get("job_title", ""),
        }
        mapping = ContactMapping(marker_key=self.contact_mapping.marker_key,
                                 groups=(self.group,) if self.group and current is None else ())
        body = person_to_google(neutral, mapping, current=current)
        customs = {t[len(CUSTOM_PREFIX):]: record.get(t, "") for t in self.targets if t.startswith(CUSTOM_PREFIX)}
        if customs:
            foreign = [{"key": u["key"], "value": u.get("value", "")} for u in (current or {}).get("userDefined") or []
                       if u.get("key") not in customs]
            body["userDefined"] = foreign + [{"key": k, "value": v} for k, v in customs.items() if v]
        keep = set(self.update_mask()) | {"resourceName", "etag", "memberships"}
        return {k: v for k, v in body.items() if k in keep}

    def to_crm(self, record: Mapping[str, Any], org_ids: Mapping[str, int]) -> dict[str, Any]:
        """A Pipedrive v2 person body. `org_ids` maps organization names to ids (resolved by the engine)."""
        body: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for row in self.rows:
            crm, target = row["crm"], row["google"]
            value = record.get(target)
            if crm == "name":
                first, last = (value or ["", ""])
                if first and last:
                    body["first_name"], body["last_name"] = first, last
                else:
                    body["name"] = (first or last or "(no name)")
            elif crm in ("emails", "phones"):
                body[crm] = [{"value": v, "label": label, "primary": n == 0} for n, (v, label) in enumerate(value or [])]
            elif crm == "org_name":
                body["org_id"] = org_ids.get(value) if value else None
            else:
                custom[crm] = value or None
        if custom:
            body["custom_fields"] = custom
        return body

    def display(self, record: Mapping[str, Any]) -> str:
        names = record.get("names") or []
        name = " ".join(n for n in names if n).strip()
        emails = record.get("emailAddresses") or []
        return name or (emails[0][0] if emails else "")


def merge(base: Mapping[str, Any] | None, crm: Mapping[str, Any], google: Mapping[str, Any], targets: Iterable[str],
          *, policy: str, crm_newer: bool) -> tuple[dict[str, Any], list[tuple[str, Any, Any, str]]]:
    """Per-field 3-way merge. A field changed on one side only takes that side's value; changed on
    both (to different values) is a conflict, won by the policy (`newest`: the side whose record
    changed last). Returns the merged record and the conflicts (field, crm, google, winner)."""
    merged: dict[str, Any] = {}
    conflicts: list[tuple[str, Any, Any, str]] = []
    for field in targets:
        c, g = crm.get(field), google.get(field)
        b = base.get(field) if base is not None else None
        if c == g:
            merged[field] = c
        elif base is not None and field in base and g == b:
            merged[field] = c
        elif base is not None and field in base and c == b:
            merged[field] = g
        else:
            winner = "crm" if policy == "crm" else "google" if policy == "google" else ("crm" if crm_newer else "google")
            merged[field] = c if winner == "crm" else g
            conflicts.append((field, c, g, winner))
    return merged, conflicts
