"""The reading part of a run: the source's changes since its cursor, the store's since its token.

- The source is read page by page; the lease is renewed after each page. Persons the cap left out
  earlier are read again: there may be room now.
- An expired store token (also in the middle of a listing) means a full listing; tombstones read
  before it expired are explicit deletions and still count (a full listing shows none, and absence
  is never taken for a deletion).
- The run's own store writes come after its token: when there are many, they are read and skipped
  now, so the next run does not read 25,000 echoes back."""
from __future__ import annotations

from typing import Any

from hub.connectors.contract.contacts import ChangesExpired, Contact
from hub.errors import Fatal
from hub.events import canonical_time, trace

from .links import CrmSide, StoreSide
from .mapping import fingerprint


class ReadSteps:
    """Mixed into SyncEngine: uses its sides, links, bookmark and progress."""

    def _crm_side(self, contact: Contact) -> CrmSide:
        record = self.fields.from_source(contact)
        return CrmSide(record, fingerprint(record), canonical_time(contact.updated))

    def _crm_get(self, crm_id: str) -> CrmSide | None:
        """The person as it is now (None: gone or unreadable; deleted persons count as gone)."""
        try:
            contact = self.source.get(crm_id, fields=self.fields.source_fields)
        except Fatal:
            return None
        return self._crm_side(contact) if contact is not None and not contact.deleted else None

    def _store_side(self, contact: Contact) -> StoreSide:
        record = self.fields.from_store(contact)
        return StoreSide(record, fingerprint(record), contact, self.sync.group_resource_name in contact.groups,
                         contact.marker, canonical_time(contact.updated))

    def _read_crm(self) -> dict[str, CrmSide]:
        since = self.bookmark.get("crm_since")
        self._crm_high = since
        seen: dict[str, CrmSide] = {}
        filters = {k: v for k, v in (self.sync.person_filter or {}).items() if k in self.source.filters}
        for page in self.source.changes(since, fields=self.fields.source_fields, filters=filters):
            for contact in page.contacts:
                if not contact.deleted:
                    seen[str(contact.id)] = self._crm_side(contact)  # the contacts themselves are not kept
            if page.cursor and (self._crm_high is None or page.cursor > self._crm_high):
                self._crm_high = page.cursor
            self._phase("read_crm", len(seen))
            self._renew()
        # persons the cap left out earlier come back when there may be room now
        for key, link in list(self.links.items()):
            if link.state == "left_out" and key not in seen:
                try:
                    contact = self.source.get(key, fields=self.fields.source_fields)
                except Fatal:
                    continue
                if contact is not None:
                    seen[key] = self._crm_side(contact)
        self._phase("read_crm", len(seen), len(seen), save=True)
        return seen

    def _read_store(self) -> tuple[dict[str, StoreSide], set[str], str | None]:
        token, tombstones = self.bookmark.get("store_token"), set()
        try:
            return self._list_store(token, tombstones)
        except ChangesExpired:
            with self.db.begin() as s:
                trace(s, self.sync.installation_id, "sync.full_listing", f"{self.store_title}'s change token "
                      f"expired: comparing every contact ({len(tombstones)} deletion(s) read before it expired still "
                      "count; no deletions are inferred from a full listing)", status="info", sync_id=self.sync_id,
                      run_id=self.run_id)
            seen, deleted, next_token = self._list_store(None, set())
            return seen, deleted | tombstones, next_token

    def _list_store(self, token: str | None, deleted: set[str]) -> tuple[dict[str, StoreSide], set[str], str | None]:
        seen: dict[str, StoreSide] = {}
        next_token = None
        self.counts.full_listing = token is None
        self.listed_total = None
        done = 0
        for page in self.store.changes(token, fields=self.fields.store_fields):
            if not page.incremental and page.first:  # the whole account, as the cap counts it
                empty = page.last and not page.contacts  # a store may leave out a zero total
                self.listed_total = page.total if page.total is not None else (0 if empty else None)
            for contact in page.contacts:
                name = contact.id
                self._rekey(name, list(contact.previous_ids))
                if contact.deleted:
                    if page.incremental:
                        deleted.add(name)
                        deleted.update(contact.previous_ids)
                    continue
                side = self._store_side(contact)
                if side.in_label or name in self.by_resource:
                    seen[name] = side
            done += len(page.contacts)
            next_token = page.next_token or next_token
            self._renew()
            self._phase("read_store", done, page.total if not page.incremental else None)
        self._phase("read_store", done, done, save=True)
        return seen, deleted, next_token

    def _skip_own_echoes(self, token: str) -> str:
        """Read the run's own writes now and move the token past them, but only if every change since
        is one of ours: anything else (a user's edit during the run) keeps the old token, so the next
        run sees it."""
        newer = None
        try:
            for page in self.store.changes(token, fields=self.fields.store_fields):
                for contact in page.contacts:
                    if not self._is_own_echo(contact):
                        return token
                newer = page.next_token or newer
                self._renew()
        except ChangesExpired:
            return token
        return newer or token

    def _is_own_echo(self, contact: Contact) -> bool:
        name = contact.id
        key = self.by_resource.get(name)
        if contact.deleted:
            return key is None or name in self.deleted_names
        side = self._store_side(contact)
        if key is None:
            return not side.in_label  # outside the label and not ours: no business of this sync
        link = self.links.get(key)
        return link is not None and side.in_label and side.fp == link.store_fp

    def _rekey(self, name: str, previous: list[Any]) -> None:
        """The store gave a contact a new id (it lists the earlier ones): move its link."""
        if not previous or name in self.by_resource:
            return
        for old in previous:
            key = self.by_resource.get(old)
            if key is None:
                continue
            link = self.links[key]
            del self.by_resource[old]
            link.resource_name = name
            self._index_link(link, key)
            with self.db.begin() as s:
                self._save_link(s, link)
            self.counts.relinked += 1
            return
