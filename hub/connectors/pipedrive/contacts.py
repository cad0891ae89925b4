"""Pipedrive persons as the contact sync's `ContactSource` (API v2, FACTS §11-12).

- Changes: `/api/v2/persons` sorted by `update_time` ascending with `updated_since`; the cursor is the
  newest `update_time` read (UTC, seconds), so a person edited while we page moves behind it and is
  still read. Deletions reach the sync as person.deleted webhook events, never from this listing.
- Organizations are names in the neutral contact: names are read 100 ids per call (v2 `ids`), and a
  name written back is matched against the company's organizations (created when missing).
- Custom fields are keyed by their 40-char `field_code`; v2 gives some types as objects, whose
  `value` is taken."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Collection, Iterator, Mapping

from ...errors import Fatal
from ..contract.contacts import (EMAILS, NAME, ORGANIZATION, PHONES, Contact, ContactsContext,
                                 FieldInfo, SourcePage)
from .client import PipedriveClient
from .resources import person_field_catalog

log = logging.getLogger("hub.connectors.pipedrive")
ORG_IDS_MAX = 100  # v2 lists take at most 100 `ids`
FILTERS = ("owner_id", "org_id")
STANDARD_LABELS = {NAME: "Name", EMAILS: "E-mails", PHONES: "Phones", ORGANIZATION: "Organization (by name)"}
TEXT_TYPES = {"varchar", "varchar_auto", "text", "phone", "double", "int", "date", "address", "enum", "autocomplete"}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Mapping):  # v2 custom fields of some types are objects: keep their value
        value = value.get("value", "")
    return str(value).strip()


def _cursor(value: Any) -> str:
    """One spelling per instant (UTC, seconds, no offset): cursors compare as strings."""
    text = str(value or "").strip().replace(" ", "T")
    if not text:
        return ""
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return text
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=0).isoformat()


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _org_of(person: Mapping[str, Any]) -> int | None:
    org = person.get("org_id")
    if isinstance(org, Mapping):
        org = org.get("value") or org.get("id")
    return int(org) if org else None


class PipedriveContacts:
    """The persons of one Pipedrive company, read and written with one user's token."""

    filters = FILTERS

    def __init__(self, ctx: ContactsContext):
        self.client: PipedriveClient = ctx.client or PipedriveClient(ctx.api_base, ctx.tokens)
        self.page_size = self.client.page_size
        self.org_names: dict[int, str] = {}
        self.org_ids: dict[str, int] | None = None

    @staticmethod
    def contact_of(raw: Mapping[str, Any], organization: str = "") -> Contact:
        custom = raw.get("custom_fields") if isinstance(raw.get("custom_fields"), Mapping) else {}
        return Contact(
            id=str(raw["id"]) if raw.get("id") is not None else None, given_name=_text(raw.get("first_name")),
            family_name=_text(raw.get("last_name")), name=_text(raw.get("name")),
            emails=[dict(e) for e in _list(raw.get("emails")) if isinstance(e, Mapping)],
            phones=[dict(p) for p in _list(raw.get("phones")) if isinstance(p, Mapping)],
            organization=organization,
            custom={str(k): _text(v) for k, v in custom.items()},
            updated=str(raw.get("update_time") or ""), deleted=bool(raw.get("is_deleted")), raw=dict(raw))

    # -- reading ------------------------------------------------------------------------------------
    def changes(self, cursor: str | None, *, fields: Collection[str],
                filters: Mapping[str, Any]) -> Iterator[SourcePage]:
        params = {k: int(filters[k]) for k in FILTERS if filters.get(k) not in (None, "")}
        since = cursor
        buffer: list[dict[str, Any]] = []
        for person in self.client.iter_persons(updated_since=_rfc(cursor) if cursor else None, **params):
            buffer.append(person)
            if len(buffer) >= self.page_size:
                page, since = self._page(buffer, since, fields)
                buffer = []
                yield page
        page, since = self._page(buffer, since, fields)
        yield page

    def _page(self, persons: list[dict], since: str | None, fields: Collection[str]) -> tuple[SourcePage, str | None]:
        if ORGANIZATION in fields:
            self._load_orgs(persons)
        contacts = [self._contact(p, fields) for p in persons]
        for c in contacts:
            mark = _cursor(c.updated)
            if mark and (since is None or mark > since):
                since = mark
        return SourcePage(contacts, since), since

    def get(self, contact_id: str, *, fields: Collection[str]) -> Contact | None:
        try:
            person = self.client.person(int(contact_id))
        except ValueError:
            return None   # no id the CRM can have issued
        except Fatal as exc:
            if exc.status == 404:
                return None
            raise
        return self._contact(person, fields) if person else None

    def field_catalog(self) -> list[FieldInfo]:
        custom = [FieldInfo(f["key"], f["label"], f["type"], True) for f in person_field_catalog(self.client)
                  if f["custom"] and f["type"] in TEXT_TYPES]
        return [FieldInfo(k, label) for k, label in STANDARD_LABELS.items()] + custom

    # -- writing ------------------------------------------------------------------------------------
    def create(self, contact: Contact, *, fields: Collection[str]) -> Contact:
        person = self.client._data("POST", "/api/v2/persons", json=self._body(contact, fields))
        return self._contact(person, fields)

    def update(self, contact_id: str, contact: Contact, *, fields: Collection[str]) -> Contact | None:
        try:
            person = self.client.update_person(int(contact_id), **self._body(contact, fields))
        except Fatal as exc:
            if exc.status == 404:
                return None
            raise
        return self._contact(person, fields)

    def delete(self, contact_id: str) -> bool:
        try:
            self.client.delete_person(int(contact_id))
        except Fatal as exc:
            if exc.status != 404:
                raise
            return False
        return True

    # -- plumbing -----------------------------------------------------------------------------------
    def _contact(self, person: Mapping[str, Any], fields: Collection[str]) -> Contact:
        org = _org_of(person) if ORGANIZATION in fields else None
        return self.contact_of(person, self._org_name(org) if org is not None else "")

    def _body(self, contact: Contact, fields: Collection[str]) -> dict[str, Any]:
        """A v2 person body with the mapped fields only."""
        body: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for key in fields:
            if key == NAME:
                first, last = contact.given_name, contact.family_name
                if first and last:
                    body["first_name"], body["last_name"] = first, last
                else:
                    body["name"] = first or last or "(no name)"
            elif key in (EMAILS, PHONES):
                values = contact.emails if key == EMAILS else contact.phones
                body[key] = [{"value": v["value"], "label": v.get("label", ""), "primary": n == 0}
                             for n, v in enumerate(values)]
            elif key == ORGANIZATION:
                body["org_id"] = self._resolve_org(contact.organization) if contact.organization else None
            else:
                custom[key] = contact.custom.get(key) or None
        if custom:
            body["custom_fields"] = custom
        return body

    def _org_name(self, org_id: int) -> str:
        if org_id not in self.org_names:
            try:
                self.org_names[org_id] = str((self.client.organization(org_id) or {}).get("name") or "")
            except Fatal:
                self.org_names[org_id] = ""
        return self.org_names[org_id]

    def _load_orgs(self, persons: list[dict[str, Any]]) -> None:
        """Names of the persons' organizations not known yet, 100 ids per call, instead of one call
        per organization."""
        missing = sorted({o for o in map(_org_of, persons) if o is not None and o not in self.org_names})
        for start in range(0, len(missing), ORG_IDS_MAX):
            chunk = missing[start:start + ORG_IDS_MAX]
            for org in self.client.iter_cursor("/api/v2/organizations", {"ids": ",".join(map(str, chunk))}):
                self.org_names[int(org["id"])] = str(org.get("name") or "")
            for org_id in chunk:
                self.org_names.setdefault(org_id, "")  # deleted or not visible: no organization name

    def _resolve_org(self, name: str) -> int | None:
        """The id of the organization of that name; created when the company has none."""
        if self.org_ids is None:
            self.org_ids = {}
            for org in self.client.iter_cursor("/api/v2/organizations"):
                self.org_ids.setdefault(str(org.get("name") or "").strip(), int(org["id"]))
        if name and name not in self.org_ids:
            try:
                org = self.client._data("POST", "/api/v2/organizations", json={"name": name}) or {}
                self.org_ids[name] = int(org["id"])
            except (Fatal, KeyError):
                log.info("organization %r not found and could not be created", name)
                return None
        return self.org_ids.get(name)


def _rfc(value: str) -> str:
    return value if value.endswith("Z") else value + "Z"
