"""Google Contacts as the sync's `ContactStore`: one account's labels and contacts (People API v1).

The sync speaks neutral fields (contract.contacts.STORE_FIELDS, `custom:<key>`); here they become
People fields: name -> names, emails -> emailAddresses, phones -> phoneNumbers, organization and
title -> organizations, notes -> biographies, custom:<key> -> userDefined. Google's errors become the
contract's outcomes (an expired sync token, the contact limit, partial batch refusals, stale etags).

Why it is built this way:
- The read mask depends only on the mapped fields and is sorted: a sync token is valid only for the
  same `personFields`, so every run of a sync asks with the same mask.
- Updates replace whole People fields, so the body is built on the contact as last read: its etag
  goes back, and unmapped parts of replaced fields (the organization's other details, foreign
  clientData and userDefined entries, the title when only the organization is mapped) are kept.
- Every written contact carries the CRM id in clientData (`MARKER_KEY`); a create whose answer was
  lost is found by it (`find`). Memberships are written on create only; labels change through
  members:modify, because updating memberships replaces all of them."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Collection, Iterator, Mapping, Sequence

from ..contract.contacts import (CUSTOM_PREFIX, BatchRefused, ChangesExpired, ChangesPage, Contact, ContactsContext,
                                 Group, GroupNameTaken, StoreFull, StoreLimits, VersionConflict)
from .client import (BatchRejected, ContactLimitReached, EtagMismatch, NotFound, PeopleClient, SyncTokenExpired)
from .client import GroupNameTaken as _NameTaken
from .contacts import DEFAULT_MAPPING, ContactMapping, google_to_person, person_to_google

LABEL_MARKER = {"relayhub.label": "1"}   # clientData of the labels the hub made
USER_GROUP = "USER_CONTACT_GROUP"
# neutral field -> the People field that holds it
PEOPLE_FIELDS = {"name": "names", "emails": "emailAddresses", "phones": "phoneNumbers", "organization": "organizations",
                 "title": "organizations", "notes": "biographies"}


def update_mask(fields: Collection[str]) -> list[str]:
    """People fields an update replaces: only the mapped ones (and our marker in clientData)."""
    mask: list[str] = []
    for f in fields:
        name = "userDefined" if f.startswith(CUSTOM_PREFIX) else PEOPLE_FIELDS[f]
        if name not in mask:
            mask.append(name)
    return mask + ["clientData"]


def read_mask(fields: Collection[str]) -> list[str]:
    return sorted(set(update_mask(fields)) | {"names", "memberships", "metadata", "clientData"})


def _instant(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def to_contact(person: Mapping[str, Any], mapping: ContactMapping = DEFAULT_MAPPING) -> Contact:
    """The neutral contact of a Google Person (a tombstone too)."""
    p = google_to_person(person, mapping)
    metadata = person.get("metadata") or {}
    times = [str(s["updateTime"]) for s in metadata.get("sources") or [] if s.get("updateTime")]
    bio = next((b for b in person.get("biographies") or [] if b.get("value")), {})
    addresses = [{"street": a.get("streetAddress", ""), "city": a.get("city", ""), "region": a.get("region", ""),
                  "postal_code": a.get("postalCode", ""), "country": a.get("country", ""), "label": a.get("type", "")}
                 for a in person.get("addresses") or []]
    return Contact(
        id=person.get("resourceName"), given_name=p["first_name"], family_name=p["last_name"], name=p["name"],
        emails=p["emails"], phones=p["phones"], organization=p["organization"], title=p["job_title"],
        addresses=addresses, notes=str(bio.get("value") or ""),
        custom={str(u.get("key")): str(u.get("value") or "").strip() for u in person.get("userDefined") or []},
        updated=max(times, key=_instant, default=""), etag=str(person.get("etag") or ""), deleted=p["deleted"],
        marker=str(p["crm_id"]) if p["crm_id"] else None, groups=tuple(p["groups"]),
        previous_ids=tuple(p["previous_resource_names"]), raw=dict(person))


def body_of(contact: Contact, fields: Collection[str], current: Mapping[str, Any] | None, *,
            marker_key: str = DEFAULT_MAPPING.marker_key, group: str = "") -> dict[str, Any]:
    """A People API body for create (`current` None) or update (`current` = the contact as last read)."""
    cur = google_to_person(current, DEFAULT_MAPPING) if current else None
    if "name" in fields:
        names = [contact.given_name, contact.family_name]
    else:
        names = [cur["first_name"], cur["last_name"]] if cur else ["", ""]
    neutral = {
        "crm_id": contact.marker, "first_name": names[0], "last_name": names[1],
        "emails": [{"value": e["value"], "label": e.get("label", ""), "primary": n == 0}
                   for n, e in enumerate(contact.emails)],
        "phones": [{"value": p["value"], "label": p.get("label", ""), "primary": n == 0}
                   for n, p in enumerate(contact.phones)],
        "organization": contact.organization if "organization" in fields else (cur or {}).get("organization", ""),
        "job_title": contact.title if "title" in fields else (cur or {}).get("job_title", ""),
    }
    mapping = ContactMapping(marker_key=marker_key, groups=(group,) if group and current is None else ())
    body = person_to_google(neutral, mapping, current=current)
    customs = list(dict.fromkeys(f[len(CUSTOM_PREFIX):] for f in fields if f.startswith(CUSTOM_PREFIX)))
    if customs:
        foreign = [{"key": u["key"], "value": u.get("value", "")} for u in (current or {}).get("userDefined") or []
                   if u.get("key") not in customs]
        body["userDefined"] = foreign + [{"key": k, "value": v} for k in customs if (v := contact.custom.get(k, ""))]
    if "notes" in fields:
        body["biographies"] = [{"value": contact.notes, "contentType": "TEXT_PLAIN"}] if contact.notes else []
    keep = set(update_mask(fields)) | {"resourceName", "etag", "memberships"}
    return {k: v for k, v in body.items() if k in keep}


def _group(raw: Mapping[str, Any]) -> Group:
    ours = {c.get("key"): c.get("value") for c in raw.get("clientData") or []}
    return Group(id=raw["resourceName"], name=raw.get("name", ""), members=int(raw.get("memberCount") or 0),
                 ours=all(ours.get(k) == v for k, v in LABEL_MARKER.items()))


class GoogleContacts:
    """One Google account's address book (contract.contacts.ContactStore)."""

    limits = StoreLimits(get=PeopleClient.BATCH_GET_MAX, create=PeopleClient.BATCH_CREATE_MAX,
                         update=PeopleClient.BATCH_UPDATE_MAX, delete=PeopleClient.BATCH_DELETE_MAX,
                         members=PeopleClient.MEMBERS_MODIFY_MAX, page=PeopleClient.PAGE_SIZE_MAX)

    def __init__(self, ctx: ContactsContext, *, marker_key: str = DEFAULT_MAPPING.marker_key):
        self.client: PeopleClient = ctx.client or PeopleClient(ctx.api_base, ctx.tokens)
        self.marker_key = marker_key

    # -- labels -------------------------------------------------------------------------------------
    def groups(self) -> list[Group]:
        return [_group(g) for g in self.client.groups() if g.get("groupType") == USER_GROUP]

    def group(self, group_id: str) -> Group | None:
        try:
            raw = self.client.group(group_id)
        except NotFound:
            return None
        return _group(raw) if raw.get("groupType", USER_GROUP) == USER_GROUP else None

    def create_group(self, name: str, *, adopt_existing: bool = True) -> Group:
        try:
            return _group(self.client.create_group(name, LABEL_MARKER, adopt_existing=adopt_existing))
        except _NameTaken as exc:
            raise GroupNameTaken(str(exc), exc.status) from exc

    # -- reading ------------------------------------------------------------------------------------
    def changes(self, token: str | None, *, fields: Collection[str]) -> Iterator[ChangesPage]:
        try:
            for page in self.client.iter_connections(read_mask(fields), sync_token=token):
                yield ChangesPage([to_contact(p) for p in page], incremental=page.incremental,
                                  first=page.page_token is None, last=page.is_last, total=page.total_items,
                                  next_token=page.next_sync_token)
        except SyncTokenExpired as exc:
            raise ChangesExpired(str(exc), exc.status) from exc

    def count(self) -> int:
        first = next(iter(self.client.iter_connections("metadata", request_sync_token=False, page_size=1)), None)
        if first is not None and first.total_items is not None:
            return first.total_items
        return sum(len(p) for p in self.client.iter_connections("metadata", request_sync_token=False))

    def get(self, ids: Sequence[str], *, fields: Collection[str]) -> dict[str, Contact | None]:
        got = self.client.batch_get(list(ids), read_mask(fields)) if ids else {}
        return {name: to_contact(p) if p else None for name, p in got.items()}

    def find(self, markers: Collection[str], *, fields: Collection[str]) -> dict[str, Contact]:
        found = self.client.find_by_marker(self.marker_key, list(markers)) if markers else {}
        fresh = self.client.batch_get([p["resourceName"] for p in found.values()], read_mask(fields)) if found else {}
        out: dict[str, Contact] = {}
        for marker, person in found.items():
            current = fresh.get(person["resourceName"])
            if current:
                out[marker] = to_contact(current)
        return out

    # -- writing ------------------------------------------------------------------------------------
    def create(self, contacts: Sequence[Contact], *, fields: Collection[str], group: str) -> list[Contact]:
        bodies = [body_of(c, fields, None, marker_key=self.marker_key, group=group) for c in contacts]
        try:
            created = next(iter(self.client.iter_batch_create(bodies, read_mask(fields))), [])
        except ContactLimitReached as exc:
            raise StoreFull(str(exc), exc.status) from exc
        except BatchRejected as exc:
            refused = {int(i) for i in exc.google.contact_errors if str(i).isdigit()}
            raise BatchRefused(str(exc), refused, exc.google.describe(), exc.status) from exc
        return [to_contact(p) for p in created]

    def update(self, contacts: Mapping[str, Contact], current: Mapping[str, Contact], *,
               fields: Collection[str]) -> dict[str, Contact]:
        bodies = {name: body_of(c, fields, current[name].raw, marker_key=self.marker_key)
                  for name, c in contacts.items()}
        out: dict[str, Contact] = {}
        try:
            for part in self.client.iter_batch_update(bodies, update_mask(fields), read_mask(fields)):
                out.update({name: to_contact(p) for name, p in part.items()})
        except EtagMismatch as exc:
            raise VersionConflict(str(exc), exc.resource_names or list(bodies), exc.status) from exc
        except BatchRejected as exc:
            raise BatchRefused(str(exc), set(exc.google.contact_errors), exc.google.describe(), exc.status) from exc
        return out

    def delete(self, ids: Sequence[str]) -> None:
        self.client.batch_delete(list(ids))

    def add_members(self, group: str, ids: Sequence[str]) -> None:
        self.client.modify_members(group, add=list(ids))

    def remove_members(self, group: str, ids: Sequence[str]) -> None:
        self.client.modify_members(group, remove=list(ids))
