"""The link table: CRM person <-> stored contact, with the last synced values and each side's
fingerprint, in memory for a run (`LinkIndex`) and in `sync_links` (`LinkSteps`).

A link is keyed by its CRM id; a write-ahead link (a CRM create under way, no id yet) by
`~<contact id>`. Rows are read as plain tuples, not ORM objects: 25,000 links stay small."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update

from hub.connectors.contract.contacts import Contact
from hub.store import utcnow
from hub.store.models import SyncLink


@dataclass
class Link:
    id: int | None
    crm_id: str | None
    resource_name: str | None
    state: str                       # linked | left_out | crm_creating
    base: dict[str, Any]
    crm_fp: str
    crm_version: str
    store_fp: str
    etag: str
    display: str = ""
    note: str = ""


@dataclass
class CrmSide:
    """A source person as the run read it: its record, fingerprint and version (canonical time)."""

    record: dict[str, Any]
    fp: str
    version: str


@dataclass
class StoreSide:
    """A stored contact as the run read it."""

    record: dict[str, Any]
    fp: str
    contact: Contact
    in_label: bool
    marker: str | None
    updated: str

    @property
    def etag(self) -> str:
        return self.contact.etag


def key_of(link: Link) -> str:
    return link.crm_id if link.crm_id is not None else f"~{link.resource_name}"


def sort_key(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (1 << 62, key)


class LinkIndex:
    """The run's links by key, and their keys by contact id."""

    def __init__(self, links: dict[str, Link]):
        self.links = links
        self.by_resource = {l.resource_name: key for key, l in links.items() if l.resource_name}

    def add(self, link: Link, old_key: str | None = None) -> None:
        if old_key and old_key in self.links and self.links[old_key] is link:
            del self.links[old_key]
        key = key_of(link)
        self.links[key] = link
        if link.resource_name:
            self.by_resource[link.resource_name] = key

    def pop(self, key: str) -> Link | None:
        link = self.links.pop(key, None)
        if link is not None and link.resource_name and self.by_resource.get(link.resource_name) == key:
            del self.by_resource[link.resource_name]
        return link


class LinkSteps:
    """Mixed into SyncEngine: the link table in the database."""

    def _load_links(self) -> dict[str, Link]:
        out: dict[str, Link] = {}
        columns = (SyncLink.id, SyncLink.crm_id, SyncLink.resource_name, SyncLink.state, SyncLink.base,
                   SyncLink.crm_fingerprint, SyncLink.crm_version, SyncLink.store_fingerprint, SyncLink.store_etag,
                   SyncLink.display_name, SyncLink.note)
        with self.db.begin() as s:
            for r in s.execute(select(*columns).where(SyncLink.sync_id == self.sync_id)).yield_per(2000):
                link = Link(r.id, r.crm_id, r.resource_name, r.state, r.base or {}, r.crm_fingerprint,
                            r.crm_version, r.store_fingerprint, r.store_etag, r.display_name, r.note)
                out[key_of(link)] = link
        self.index = LinkIndex(out)
        self.by_resource = self.index.by_resource
        return out

    def _save_link(self, s, link: Link) -> None:
        values = dict(sync_id=self.sync_id, crm_id=link.crm_id, resource_name=link.resource_name, state=link.state,
                      note=link.note[:2000], display_name=link.display[:300], base=link.base,
                      crm_fingerprint=link.crm_fp, crm_version=link.crm_version, store_fingerprint=link.store_fp,
                      store_etag=link.etag or "", updated_at=utcnow())
        if link.id is None:
            row = SyncLink(**values)
            s.add(row)
            s.flush()
            link.id = row.id
        else:
            s.execute(update(SyncLink).where(SyncLink.id == link.id).values(**values))

    def _index_link(self, link: Link, old_key: str | None = None) -> None:
        self.index.add(link, old_key)

    def _drop_link(self, s, key: str) -> None:
        link = self.index.pop(key)
        if link is not None and link.id is not None:
            s.execute(delete(SyncLink).where(SyncLink.id == link.id))
