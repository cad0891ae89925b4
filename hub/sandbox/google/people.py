"""How a contact is stored and how Google renders it: input cleaning, field masks, output-only fields.

A stored contact keeps only what a client may write (per-field lists without metadata or output-only
keys) plus its memberships as group ids; everything Google computes (`displayName`, `canonicalForm`,
`formattedType`, per-field `metadata.source`, etags, `metadata.sources`) is derived when rendering,
so the emulator, like Google, ignores those fields on input."""
from __future__ import annotations

import base64
import hashlib
import re
from typing import Any, Iterable

from .errors import invalid_argument, unknown_field

# Every property of the Person schema: anything else in a request body is an unknown field.
PERSON_PROPERTIES = frozenset({
    "addresses", "ageRange", "ageRanges", "biographies", "birthdays", "braggingRights", "calendarUrls",
    "clientData", "coverPhotos", "emailAddresses", "etag", "events", "externalIds", "fileAses", "genders",
    "imClients", "interests", "locales", "locations", "memberships", "metadata", "miscKeywords", "names",
    "nicknames", "occupations", "organizations", "phoneNumbers", "photos", "relations",
    "relationshipInterests", "relationshipStatuses", "residences", "resourceName", "sipAddresses", "skills",
    "taglines", "urls", "userDefined",
})
# Valid paths of `personFields` / `readMask` (read masks).
READ_FIELDS = frozenset({
    "addresses", "ageRanges", "biographies", "birthdays", "calendarUrls", "clientData", "coverPhotos",
    "emailAddresses", "events", "externalIds", "genders", "imClients", "interests", "locales", "locations",
    "memberships", "metadata", "miscKeywords", "names", "nicknames", "occupations", "organizations",
    "phoneNumbers", "photos", "relations", "sipAddresses", "skills", "urls", "userDefined",
})
# Valid paths of `updatePersonFields` / `updateMask`: what a contact source can hold.
UPDATE_FIELDS = frozenset({
    "addresses", "biographies", "birthdays", "calendarUrls", "clientData", "emailAddresses", "events",
    "externalIds", "genders", "imClients", "interests", "locales", "locations", "memberships",
    "miscKeywords", "names", "nicknames", "occupations", "organizations", "phoneNumbers", "relations",
    "sipAddresses", "urls", "userDefined",
})
SINGLETONS = ("names", "biographies", "birthdays", "genders")
# Keys Google computes; dropped from input, derived (where we can) on output.
OUTPUT_ONLY = {"metadata", "formattedType", "canonicalForm", "displayNameLastFirst", "formattedProtocol"}
OUTPUT_ONLY_PER_FIELD = {"names": {"displayName"}, "genders": {"formattedValue"}}
# Fields whose first value Google marks primary (memberships and clientData carry no primary flag).
PRIMARY_FIELDS = {"names", "emailAddresses", "phoneNumbers", "organizations", "addresses", "birthdays",
                  "biographies", "genders", "urls", "nicknames", "events", "relations", "externalIds"}
# Order in which fields appear in a rendered person (Google's own order).
RENDER_ORDER = ["names", "nicknames", "emailAddresses", "phoneNumbers", "addresses", "organizations",
                "biographies", "birthdays", "events", "genders", "urls", "relations", "externalIds",
                "imClients", "sipAddresses", "calendarUrls", "interests", "locales", "locations",
                "miscKeywords", "occupations", "userDefined", "memberships", "clientData"]
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")


def parse_mask(raw: str | None, valid: Iterable[str], param: str, *, required: bool,
               default: Iterable[str] | None = None) -> set[str]:
    """A comma-separated field mask; `person.` prefixes are accepted as Google does."""
    valid = set(valid)
    paths = [p.strip() for p in (raw or "").split(",") if p.strip()]
    if not paths:
        if required:
            raise invalid_argument(
                f"{param} mask is required. Please specify one or more valid paths. Valid paths are "
                "documented at https://developers.google.com/people/api/rest/v1/people.connections/list.",
                param)
        return set(default if default is not None else valid)
    out = set()
    for path in paths:
        name = path[len("person."):] if path.startswith("person.") else path
        if name not in valid:
            raise invalid_argument(f"Invalid {param} mask path: \"{path}\". Valid paths are documented at "
                                   "https://developers.google.com/people/api/rest/v1/people/get.", param)
        out.add(name)
    return out


def check_person_body(body: Any, where: str = "person") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid_argument(f"Invalid JSON payload received. Expected an object at '{where}'.", where)
    for key in body:
        if key not in PERSON_PROPERTIES:
            raise unknown_field(key, where)
    return body


def clean_field(name: str, value: Any, *, validate_emails: bool) -> list[dict[str, Any]]:
    """Input values of one person field, output-only keys dropped, shape and singletons checked."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise invalid_argument(f"Invalid value at 'person.{name}': expected a list of objects.", f"person.{name}")
    if name in SINGLETONS and len(value) > 1:
        raise invalid_argument(f"Only one {name[:-1] if name != 'biographies' else 'biography'} "
                               f"is allowed per contact source ({name} is a singleton field).",
                               f"person.{name}")
    drop = OUTPUT_ONLY | OUTPUT_ONLY_PER_FIELD.get(name, set())
    items = []
    for raw in value:
        item = {k: v for k, v in raw.items() if k not in drop}
        if name == "emailAddresses" and validate_emails:
            address = str(item.get("value", "")).strip()
            if not EMAIL_RE.match(address):
                raise invalid_argument(f"Invalid email address: {address}", f"person.{name}")
        if name == "clientData" and not item.get("key"):
            raise invalid_argument("Client data key must be set.", f"person.{name}")
        if name == "memberships":
            membership = item.get("contactGroupMembership") or {}
            item = {"contactGroupMembership": {
                "contactGroupResourceName": membership.get("contactGroupResourceName", "")}}
        if item:
            items.append(item)
    return items


def membership_group_ids(items: list[dict[str, Any]]) -> list[str]:
    """Group ids named by cleaned `memberships` items; malformed names are a 400."""
    ids: list[str] = []
    for item in items:
        name = item["contactGroupMembership"]["contactGroupResourceName"]
        if not name.startswith("contactGroups/") or not name[len("contactGroups/"):]:
            raise invalid_argument("Membership must set contactGroupMembership.contactGroupResourceName "
                                   "to a contact group resource name.", "person.memberships")
        gid = name[len("contactGroups/"):]
        if gid not in ids:
            ids.append(gid)
    return ids


# -- derived values ---------------------------------------------------------------------------------
def etags(record: dict[str, Any]) -> tuple[str, str]:
    """(person etag, contact source etag): opaque, and new whenever the contact's version changes."""
    seed = f"{record['id']}:{record['version']}:{record['source_id']}".encode()
    digest = hashlib.sha256(seed).digest()
    person = "%" + base64.b64encode(b"\x12\x03\x01\x02\x09\x1a\x04" + digest[:18]).decode()
    source = "#" + base64.b64encode(digest[18:30]).decode()
    return person, source


def _name_outputs(name: dict[str, Any]) -> dict[str, Any]:
    given, family = name.get("givenName", ""), name.get("familyName", "")
    middle = name.get("middleName", "")
    full = " ".join(p for p in (name.get("honorificPrefix"), given, middle, family,
                                name.get("honorificSuffix")) if p)
    full = full or name.get("unstructuredName", "")
    out = dict(name)
    if full:
        out["displayName"] = full
        first = " ".join(p for p in (given, middle) if p)
        out["displayNameLastFirst"] = f"{family}, {first}" if family and first else full
        out.setdefault("unstructuredName", full)
    return out


def canonical_phone(value: str, default_country: str = "1") -> str | None:
    """E.164 form of a phone number when it can be told (leading + or a national number)."""
    digits = re.sub(r"\D", "", value or "")
    if not digits:
        return None
    if value.strip().startswith("+"):
        return "+" + digits
    if value.strip().startswith("00"):
        return "+" + digits[2:]
    if len(digits) == 10 and default_country == "1":
        return "+1" + digits
    return None


def _formatted_type(kind: str | None) -> str | None:
    if not kind:
        return None
    known = {"home": "Home", "work": "Work", "other": "Other", "mobile": "Mobile", "homeFax": "Home Fax",
             "workFax": "Work Fax", "otherFax": "Other Fax", "pager": "Pager", "workMobile": "Work Mobile",
             "workPager": "Work Pager", "main": "Main", "googleVoice": "Google Voice", "school": "School",
             "blog": "Blog", "profile": "Profile", "homePage": "Home Page", "birthday": "Birthday",
             "anniversary": "Anniversary"}
    return known.get(kind, kind)


def render_field(name: str, item: dict[str, Any], source: dict[str, str], primary: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"source": dict(source)}
    if primary:
        meta["primary"] = True
        meta["sourcePrimary"] = True
    if name == "names":
        body = _name_outputs(item)
    else:
        body = dict(item)
        if "type" in body and name not in ("clientData", "userDefined", "memberships"):
            formatted = _formatted_type(body["type"])
            if formatted:
                body["formattedType"] = formatted
        if name == "phoneNumbers":
            canonical = canonical_phone(str(body.get("value", "")))
            if canonical:
                body["canonicalForm"] = canonical
        if name == "genders" and body.get("value"):
            body["formattedValue"] = str(body["value"]).capitalize()
    return {"metadata": meta, **body}


def render_person(record: dict[str, Any], mask: set[str], *, sync: bool = False) -> dict[str, Any]:
    """The Person JSON for `record`, restricted to `mask`; `sync` adds the sync-only metadata."""
    person_etag, source_etag = etags(record)
    source = {"type": "CONTACT", "id": record["source_id"]}
    out: dict[str, Any] = {"resourceName": f"people/{record['id']}", "etag": person_etag}
    if record.get("deleted"):
        # deletions only appear in sync responses, with the identifying parts only
        out["metadata"] = {"sources": [dict(source, etag=source_etag, updateTime=record["update_time"])],
                           "deleted": True, "objectType": "PERSON"}
        return out
    if "metadata" in mask:
        metadata: dict[str, Any] = {
            "sources": [dict(source, etag=source_etag, updateTime=record["update_time"])],
            "objectType": "PERSON",
        }
        if sync and record.get("previous"):
            metadata["previousResourceNames"] = [f"people/{p}" for p in record["previous"]]
        out["metadata"] = metadata
    fields = record["fields"]
    for name in RENDER_ORDER:
        if name not in mask:
            continue
        if name == "memberships":
            if record["groups"]:
                out["memberships"] = [{
                    "metadata": {"source": dict(source)},
                    "contactGroupMembership": {"contactGroupId": gid,
                                               "contactGroupResourceName": f"contactGroups/{gid}"},
                } for gid in record["groups"]]
            continue
        items = fields.get(name) or []
        if items:
            out[name] = [render_field(name, item, source, i == 0 and name in PRIMARY_FIELDS)
                         for i, item in enumerate(items)]
    return out


def display_name(record: dict[str, Any]) -> str:
    names = record["fields"].get("names") or []
    if names:
        rendered = _name_outputs(names[0]).get("displayName")
        if rendered:
            return rendered
    emails = record["fields"].get("emailAddresses") or []
    return emails[0].get("value", "") if emails else ""


def sort_key_name(record: dict[str, Any], part: str) -> tuple:
    names = record["fields"].get("names") or [{}]
    value = (names[0].get(part) or "").casefold()
    return (value == "", value, display_name(record).casefold())
