"""HubSpot contacts as the contact sync's source (`ContactSource`).

Changes are read with the search API sorted by `lastmodifieddate` ascending, filtered from the
cursor (epoch ms, inclusive: reading the boundary again is harmless); a search stops at 10,000
results, so a long listing starts a new search from the last change seen. Values are read back as
written: the primary e-mail is `email` (others, `hs_additional_emails`, are read only), phones are
`phone` (work) and `mobilephone` (mobile), the organization is the contact's `company` name."""
from __future__ import annotations

from typing import Any, Collection, Iterator, Mapping

from ..contract.contacts import (EMAILS, NAME, ORGANIZATION, PHONES, Contact, ContactsContext, FieldInfo,
                                 SourcePage)
from .client import HubSpotClient
from .objects import _ms

BASE_PROPERTIES = ("firstname", "lastname", "email", "hs_additional_emails", "phone", "mobilephone", "company",
                   "jobtitle", "address", "city", "state", "zip", "country", "lastmodifieddate",
                   "hs_lastmodifieddate", "hubspot_owner_id")
SEARCH_CAP = 10_000               # results one search query returns at most (FACTS §4)
_MODIFIED = "lastmodifieddate"


def _split_name(name: str) -> tuple[str, str]:
    given, _, family = name.strip().partition(" ")
    return given, family.strip()


class HubSpotContacts:
    """One connection's contacts (made per sync run)."""

    filters = ("owner_id",)

    def __init__(self, ctx: ContactsContext, page_size: int = 100):
        self.client: HubSpotClient = ctx.client or HubSpotClient(ctx.api_base, ctx.tokens)
        self.page_size = max(1, min(page_size, 200))

    # -- reading ----------------------------------------------------------------------------------
    def _properties(self, fields: Collection[str]) -> list[str]:
        custom = [f for f in fields if f not in (NAME, EMAILS, PHONES, ORGANIZATION)]
        return list(dict.fromkeys([*BASE_PROPERTIES, *custom]))

    def changes(self, cursor: str | None, *, fields: Collection[str],
                filters: Mapping[str, Any]) -> Iterator[SourcePage]:
        since = _ms(cursor) if cursor else None
        while True:
            filters_ = [{"propertyName": _MODIFIED, "operator": "GTE", "value": str(since)}] if since is not None else []
            if filters.get("owner_id"):
                filters_.append({"propertyName": "hubspot_owner_id", "operator": "EQ", "value": str(filters["owner_id"])})
            body: dict[str, Any] = {"sorts": [{"propertyName": _MODIFIED, "direction": "ASCENDING"}],
                                    "properties": self._properties(fields)}
            if filters_:
                body["filterGroups"] = [{"filters": filters_}]
            page: list[Contact] = []
            seen, last = 0, since
            for record in self.client.iter_search("contacts", body, max_results=SEARCH_CAP):
                contact = self.contact_of(record, fields)
                page.append(contact)
                seen += 1
                last = _ms(contact.updated) or last
                if len(page) >= self.page_size:
                    yield SourcePage(page, contact.updated or cursor)
                    page = []
            if page:
                yield SourcePage(page, page[-1].updated or cursor)
            if seen < SEARCH_CAP or last is None or last == since:
                return
            since = last            # the next search starts at the last change seen

    def get(self, contact_id: str, *, fields: Collection[str]) -> Contact | None:
        record = self.client.find("contacts", contact_id, properties=self._properties(fields))
        return None if record is None else self.contact_of(record, fields)

    # -- writing ----------------------------------------------------------------------------------
    def _values(self, contact: Contact, fields: Collection[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if NAME in fields:
            given, family = (contact.given_name, contact.family_name) if (contact.given_name or contact.family_name) \
                else _split_name(contact.name)
            out.update(firstname=given, lastname=family)
        if EMAILS in fields:
            primary = next((e for e in contact.emails if e.get("primary")), contact.emails[0] if contact.emails else None)
            out["email"] = (primary or {}).get("value", "")
        if PHONES in fields:
            mobile = next((p["value"] for p in contact.phones if p.get("label") == "mobile"), "")
            work = next((p["value"] for p in contact.phones if p.get("label") != "mobile"), "")
            out.update(phone=work, mobilephone=mobile)
        if ORGANIZATION in fields:
            out["company"] = contact.organization
        for key in fields:
            if key not in (NAME, EMAILS, PHONES, ORGANIZATION):
                out[key] = contact.custom.get(key, "")
        return out

    def create(self, contact: Contact, *, fields: Collection[str]) -> Contact:
        made = self.client.create("contacts", self._values(contact, fields))
        return self.contact_of(made, fields)

    def update(self, contact_id: str, contact: Contact, *, fields: Collection[str]) -> Contact | None:
        if self.client.find("contacts", contact_id, properties=["email"]) is None:
            return None
        return self.contact_of(self.client.update("contacts", contact_id, self._values(contact, fields)), fields)

    def delete(self, contact_id: str) -> bool:
        """Archives it (HubSpot answers 204 for one archived already: asked first)."""
        if self.client.find("contacts", contact_id, properties=["email"]) is None:
            return False
        response = self.client.request("DELETE", "/crm/v3/objects/contacts/{contact_id}",
                                       path_params={"contact_id": contact_id}, ok=(404,))
        return response.status_code != 404

    def field_catalog(self) -> list[FieldInfo]:
        standard = [FieldInfo(NAME, "Name"), FieldInfo(EMAILS, "E-mail"), FieldInfo(PHONES, "Phone"),
                    FieldInfo(ORGANIZATION, "Company name")]
        custom = [FieldInfo(p["name"], p.get("label") or p["name"], p.get("type") or "", True)
                  for p in self.client.properties("contacts")
                  if p.get("name") and not p.get("hubspotDefined", False) and not p.get("hidden")]
        return standard + custom

    @staticmethod
    def contact_of(raw: Mapping[str, Any], fields: Collection[str] = ()) -> Contact:
        """A contact record (`{"id", "properties"}`) or the flat form events carry (`{"id", ...}`)."""
        props = dict(raw.get("properties") or {}) if isinstance(raw.get("properties"), dict) else dict(raw)
        emails = [{"value": props["email"], "label": "work", "primary": True}] if props.get("email") else []
        emails += [{"value": e, "label": "other", "primary": False}
                   for e in str(props.get("hs_additional_emails") or "").split(";") if e]
        phones = [{"value": props[k], "label": label, "primary": n == 0}
                  for n, (k, label) in enumerate((("phone", "work"), ("mobilephone", "mobile"))) if props.get(k)]
        address = {k: str(props.get(s) or "") for k, s in (("street", "address"), ("city", "city"),
                                                            ("region", "state"), ("postal_code", "zip"),
                                                            ("country", "country"))}
        given, family = str(props.get("firstname") or ""), str(props.get("lastname") or "")
        custom = {k: str(props.get(k) or "") for k in fields if k not in (NAME, EMAILS, PHONES, ORGANIZATION)}
        return Contact(id=str(raw.get("id")), given_name=given, family_name=family,
                       name=" ".join(p for p in (given, family) if p), emails=emails, phones=phones,
                       organization=str(props.get("company") or ""), title=str(props.get("jobtitle") or ""),
                       addresses=[{**address, "label": "work"}] if any(address.values()) else [], custom=custom,
                       updated=str(props.get(_MODIFIED) or props.get("hs_lastmodifieddate") or raw.get("updatedAt") or ""),
                       deleted=bool(raw.get("archived")), raw=dict(raw))
