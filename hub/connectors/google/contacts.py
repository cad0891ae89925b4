"""Mapping between a flat person dict and a Google Person, and the fingerprint of a contact.

The flat person (store.py builds it from the contract's `Contact`):

    {"crm_id": "42", "first_name": "José", "last_name": "Núñez", "name": "José Núñez",
     "emails": [{"value": "jose@acme.example", "label": "work", "primary": True}, ...],
     "phones": [{"value": "+48 601 234 567", "label": "mobile", "primary": False}, ...],
     "organization": "ACME", "job_title": "Head of Procurement"}

Why it looks like this:
- Google has no writable "primary" flag; it marks the FIRST value of a field primary. So the primary
  e-mail/phone is written first, and read back as the one flagged `metadata.primary` (else the first).
- Each written contact carries our CRM id in `clientData` (`ContactMapping.marker_key`): a batch
  create whose answer was lost can be reconciled by that marker instead of creating duplicates.
- Updating `clientData` or `organizations` replaces the whole list, so with `current=` (the contact
  as last read) foreign clientData entries and the other organization details are kept.
- `memberships` are written only on create (`ContactMapping.groups`); label changes go through
  members:modify because updating memberships replaces all of them.
- `fingerprint` hashes only the synced fields, normalised, so a caller can tell its own writes
  (echoed later by incremental sync with a new etag) from a user's edits."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

MARKER_KEY = "relayhub.crm_id"
# updatePersonFields / updateMask for a synced contact, and the read mask the engine needs
SYNC_FIELDS = ("names", "emailAddresses", "phoneNumbers", "organizations", "clientData")
READ_FIELDS = SYNC_FIELDS + ("memberships", "metadata")


@dataclass(frozen=True)
class ContactMapping:
    """How neutral labels become Google types; which labels a new contact goes into."""

    marker_key: str = MARKER_KEY
    email_types: Mapping[str, str] = field(default_factory=lambda: {"work": "work", "home": "home", "other": "other"})
    phone_types: Mapping[str, str] = field(default_factory=lambda: {
        "work": "work", "home": "home", "mobile": "mobile", "other": "other", "main": "main",
        "fax": "workFax", "pager": "pager"})
    default_type: str = "other"
    groups: tuple[str, ...] = ()        # contactGroups/... to put a NEW contact in


DEFAULT_MAPPING = ContactMapping()


def _primary_first(items: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Stable order with the (first) item flagged primary moved to the front."""
    index = next((i for i, item in enumerate(items) if item.get("primary")), 0)
    return [items[index], *items[:index], *items[index + 1:]] if items else []


def _values(items: Any, types: Mapping[str, str], default: str) -> list[dict[str, str]]:
    out = []
    for item in _primary_first([i for i in (items or []) if isinstance(i, Mapping) and str(i.get("value") or "").strip()]):
        label = str(item.get("label") or "").strip()
        out.append({"value": str(item["value"]).strip(), "type": types.get(label.lower(), label or default)})
    return out


def person_to_google(person: Mapping[str, Any], mapping: ContactMapping = DEFAULT_MAPPING, *,
                     current: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A Google Person body for create (no `current`) or update (`current` = the contact as last
    read: its etag is carried and unsynced parts of replaced lists are kept). Every SYNC_FIELDS
    field is present, empty lists included, so an update with that mask clears removed values."""
    first, last = str(person.get("first_name") or "").strip(), str(person.get("last_name") or "").strip()
    name: dict[str, str] = {}
    if first:
        name["givenName"] = first
    if last:
        name["familyName"] = last
    if not name and str(person.get("name") or "").strip():
        name["unstructuredName"] = str(person["name"]).strip()
    body: dict[str, Any] = {
        "names": [name] if name else [],
        "emailAddresses": _values(person.get("emails"), mapping.email_types, mapping.default_type),
        "phoneNumbers": _values(person.get("phones"), mapping.phone_types, mapping.default_type),
    }

    org_name, title = str(person.get("organization") or "").strip(), str(person.get("job_title") or "").strip()
    old_orgs = [dict(o) for o in (current or {}).get("organizations") or []]
    kept = {k: v for k, v in (old_orgs[0] if old_orgs else {}).items()
            if k not in ("name", "title", "metadata", "formattedType")}
    if org_name or title:
        org = {**kept, **({"name": org_name} if org_name else {}), **({"title": title} if title else {})}
        org.setdefault("type", "work")
        body["organizations"] = [org] + [_strip_output(o) for o in old_orgs[1:]]
    else:
        body["organizations"] = [_strip_output(o) for o in old_orgs[1:]]

    foreign = [{"key": c["key"], "value": c.get("value", "")} for c in (current or {}).get("clientData") or []
               if c.get("key") and c.get("key") != mapping.marker_key]
    crm_id = person.get("crm_id")
    body["clientData"] = foreign + ([{"key": mapping.marker_key, "value": str(crm_id)}] if crm_id not in (None, "") else [])

    if current is not None:
        body["resourceName"] = current.get("resourceName")
        body["etag"] = current.get("etag")
    elif mapping.groups:
        body["memberships"] = [{"contactGroupMembership": {"contactGroupResourceName": g}} for g in mapping.groups]
    return body


def _strip_output(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("metadata", "formattedType")}


def _is_primary(item: Mapping[str, Any]) -> bool:
    return bool((item.get("metadata") or {}).get("primary"))


def _read_values(items: Any, reverse: Mapping[str, str]) -> list[dict[str, Any]]:
    items = [i for i in (items or []) if isinstance(i, Mapping) and i.get("value")]
    primary = next((i for i, item in enumerate(items) if _is_primary(item)), 0)
    out = []
    for i, item in enumerate(items):
        kind = str(item.get("type") or "")
        value: dict[str, Any] = {"value": item["value"], "label": reverse.get(kind, kind), "primary": i == primary}
        if item.get("canonicalForm"):
            value["canonical"] = item["canonicalForm"]
        out.append(value)
    return out


def google_to_person(google_person: Mapping[str, Any], mapping: ContactMapping = DEFAULT_MAPPING) -> dict[str, Any]:
    """The neutral contact of a Google Person, plus Google's identity and state:
    `resource_name`, `etag`, `deleted` (incremental sync only), `previous_resource_names`
    (re-key links on them), `groups` (label resource names)."""
    names = google_person.get("names") or [{}]
    name = next((n for n in names if _is_primary(n)), names[0])
    emails = _read_values(google_person.get("emailAddresses"), {v: k for k, v in reversed(list(mapping.email_types.items()))})
    phones = _read_values(google_person.get("phoneNumbers"), {v: k for k, v in reversed(list(mapping.phone_types.items()))})
    orgs = google_person.get("organizations") or [{}]
    org = next((o for o in orgs if _is_primary(o)), orgs[0])
    metadata = google_person.get("metadata") or {}
    crm_id = next((c.get("value") for c in google_person.get("clientData") or [] if c.get("key") == mapping.marker_key), None)
    return {
        "crm_id": crm_id,
        "first_name": name.get("givenName", ""),
        "last_name": name.get("familyName", ""),
        "name": name.get("displayName") or name.get("unstructuredName") or "",
        "emails": emails,
        "phones": phones,
        "organization": org.get("name", ""),
        "job_title": org.get("title", ""),
        "resource_name": google_person.get("resourceName"),
        "etag": google_person.get("etag"),
        "deleted": bool(metadata.get("deleted")),
        "previous_resource_names": list(metadata.get("previousResourceNames") or []),
        "groups": [m["contactGroupMembership"]["contactGroupResourceName"] for m in google_person.get("memberships") or []
                   if (m.get("contactGroupMembership") or {}).get("contactGroupResourceName")],
    }


def fingerprint(google_person: Mapping[str, Any], mapping: ContactMapping = DEFAULT_MAPPING) -> str:
    """A stable hash of the synced fields of a Person (a read one, or a body from
    `person_to_google`): etag, metadata, output-only fields (displayName, canonicalForm,
    formattedType) and memberships do not count; e-mail case and surrounding spaces do not either.
    Equal fingerprints = nothing a user could have edited in the synced fields changed."""
    p = google_to_person(google_person, mapping)
    names = google_person.get("names") or [{}]
    unstructured = "" if (p["first_name"] or p["last_name"]) else str(names[0].get("unstructuredName") or "").strip()
    canonical = {
        "crm_id": p["crm_id"],
        "name": [p["first_name"].strip(), p["last_name"].strip(), unstructured],
        "emails": [[e["value"].strip().casefold(), e["label"]] for e in p["emails"]],
        "phones": [[t["value"].strip(), t["label"]] for t in p["phones"]],
        "organization": [p["organization"].strip(), p["job_title"].strip()],
    }
    raw = json.dumps(canonical, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def is_deleted(google_person: Mapping[str, Any]) -> bool:
    """True for the tombstones incremental sync returns (`metadata.deleted`)."""
    return bool((google_person.get("metadata") or {}).get("deleted"))
