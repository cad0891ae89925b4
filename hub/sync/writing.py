"""The writing part of a run: store updates and creates in the store's batches, label changes, and
CRM updates and creates one by one, each batch checkpointed with its links.

- An update is built on the contact as last read (its version goes back); a contact read after the
  listing may carry an edit made since, which is merged like a conflict instead of overwritten.
- Creates stop at the cap (the whole account counts) and at the store's own limit; the persons not
  added stay as `left_out` links with the reason and are tried again by later runs.
- A CRM create is written ahead (`crm_creating`), so a killed run finds the person it made instead
  of making it again; the new contact then gets the marker of its new person."""
from __future__ import annotations

from typing import Any, Collection

from hub.connectors.contract.contacts import Contact, StoreFull
from hub.events import trace

from .links import CrmSide, Link, StoreSide, sort_key
from .mapping import fingerprint, merge
from .planner import conflict, room

CRM_CHECKPOINT_EVERY = 25


class WriteSteps:
    """Mixed into SyncEngine: uses its sides, links, checkpoints and conflict recording."""

    # == the store ===============================================================================
    def _apply_store_updates(self, updates: dict[str, dict[str, Any]], crm_pending: Collection[str]) -> None:
        """`crm_pending`: keys the CRM is still to be written for (their links are saved then)."""
        keys = [k for k in sorted(updates, key=sort_key) if self.links[k].resource_name]
        missing = [self.links[k].resource_name for k in keys if k not in self.current]
        if missing:  # only the CRM side changed: the contact as it is now (its version and kept parts)
            got = self.store.get(missing, fields=self.fields.store_fields)
            for k in keys:
                if k not in self.current and got.get(self.links[k].resource_name):
                    self.current[k] = got[self.links[k].resource_name]
                    self._merge_fresh(k, self.current[k], updates)
        keys = [k for k in keys if k in self.current]
        total, done = len(keys), 0
        size = self.store.limits.update
        for start in range(0, len(keys), size):
            chunk = keys[start:start + size]
            results = self._update_chunk(chunk, updates)
            with self.db.begin() as s:
                for key in chunk:
                    contact = results.get(self.links[key].resource_name)
                    if contact is None:
                        continue
                    link = self.links[key]
                    side = self._store_side(contact)
                    link.store_fp, link.etag = side.fp, contact.etag
                    if contact.id and contact.id != link.resource_name:
                        self.by_resource.pop(link.resource_name, None)  # the store renamed it
                        link.resource_name = contact.id
                        self.by_resource[link.resource_name] = key
                        self.counts.relinked += 1
                    link.base = dict(updates[key])
                    link.display = self.fields.display(updates[key])
                    if key not in crm_pending:
                        self._save_link(s, link)
                    self.counts.updated_store += 1
                done += len(chunk)
                self._phase("update_store", done, total)
                self._checkpoint(s, "update_store")
            self._after("update_store")

    def _merge_fresh(self, key: str, contact: Contact, updates: dict[str, dict[str, Any]]) -> None:
        """A contact read after the listing may carry an edit made since: merge it like a conflict
        instead of overwriting it (two-way), so neither side's change is lost."""
        link = self.links[key]
        side = self._store_side(contact)
        if side.fp == link.store_fp or self.sync.direction != "two_way":
            return
        merged, found = merge(link.base, updates[key], side.record, self.fields.targets,
                              policy=self.sync.conflict_policy, crm_newer=False)
        self._record_conflicts(conflict(key, link, found))
        updates[key] = merged
        if fingerprint(merged) != link.crm_fp:  # their edit must reach the CRM too
            self.plan.crm_updates[key] = merged

    def _room(self, wanted: int) -> int:
        """A full listing in this run already counted the account (deletions since only lower it)."""
        total = self.listed_total
        if total is None:
            total = self.store.count()
        self.account_total = total
        return room(wanted, self.sync.contact_cap, total)

    def _apply_store_creates(self, creates: list[tuple[str, CrmSide]]) -> None:
        if not creates:
            return
        allowed = creates[:self._room(len(creates))]
        left = creates[len(allowed):]
        total, done = len(allowed), 0
        size = self.store.limits.create
        for start in range(0, len(allowed), size):
            chunk = allowed[start:start + size]
            contacts = [self.fields.to_store(c.record, key) for key, c in chunk]
            self.store_writes += len(chunk)
            sent = len(chunk)
            try:
                chunk, created = self._create_batch(chunk, contacts)
            except StoreFull:
                left = allowed[start:] + left
                break
            # a create whose answer was lost (WriteOutcomeUnknown) goes up: the next attempt finds the
            # contacts by their marker instead of creating them again
            with self.db.begin() as s:
                for (key, c), contact in zip(chunk, created):
                    link = self.links.get(key) or Link(None, key, None, "linked", {}, "", "", "", "")
                    side = self._store_side(contact)
                    link.resource_name, link.state, link.note = contact.id, "linked", ""
                    link.base, link.crm_fp, link.crm_version = dict(c.record), c.fp, c.version
                    link.store_fp, link.etag, link.display = side.fp, contact.etag, self.fields.display(c.record)
                    self._save_link(s, link)
                    self._index_link(link)
                    self.counts.created_store += 1
                done += sent
                self._phase("create_store", done, total)
                self._checkpoint(s, "create_store")
            self._after("create_store")
        if left:
            self._leave_out(left, added=done)

    def _leave_out(self, left: list[tuple[str, CrmSide]], added: int = 0) -> None:
        total = self.account_total
        total = None if total is None else total + added  # what the account holds now
        reason = (f"not added: the {self.store_title} account holds {total} contacts and the cap is "
                  f"{self.sync.contact_cap}" if total is not None else
                  f"not added: the {self.store_title} account reached its contact limit")
        with self.db.begin() as s:
            for key, c in left:
                link = self.links.get(key) or Link(None, key, None, "left_out", {}, "", "", "", "")
                link.state, link.note, link.display = "left_out", reason, self.fields.display(c.record)
                link.crm_fp, link.crm_version = c.fp, c.version
                self._save_link(s, link)
                self._index_link(link)
            self.counts.left_out = len(left)
            trace(s, self.sync.installation_id, "sync.left_out", f"{len(left)} person(s) {reason}", status="info",
                  sync_id=self.sync_id, run_id=self.run_id,
                  persons=[{"crm_id": k, "name": self.fields.display(c.record)} for k, c in left[:200]])
            self._checkpoint(s, "left_out")

    def _apply_label_adds(self, names: list[str]) -> None:
        if names and self.sync.group_resource_name:
            self.store_writes += len(names)
            self.store.add_members(self.sync.group_resource_name, names)

    def _apply_label_removes(self, names: list[str]) -> None:
        if names and self.sync.group_resource_name:
            self.store_writes += len(names)
            self.store.remove_members(self.sync.group_resource_name, names)

    # == the CRM ==================================================================================
    def _apply_crm_writes(self, updates: dict[str, dict[str, Any]], creates: list[tuple[str, StoreSide]]) -> None:
        total = len(updates) + len(creates)
        done = 0
        fields = self.fields.source_fields
        marker_updates: dict[str, dict[str, Any]] = {}
        for key in sorted(updates, key=sort_key):
            link = self.links[key]
            person = self.source.update(link.crm_id, self.fields.to_source(updates[key]), fields=fields)
            if person is None:
                continue  # deleted in the CRM: its delete event decides, not this update
            side = self._crm_side(person)
            link.crm_fp, link.crm_version = side.fp, side.version
            link.base = dict(updates[key])
            done += 1
            with self.db.begin() as s:
                self._save_link(s, link)
                self.counts.updated_crm += 1
                self._phase("write_crm", done, total)
                if done % CRM_CHECKPOINT_EVERY == 0:
                    self._checkpoint(s, "write_crm")
            self._after("write_crm")
        for name, g in creates:
            key = f"~{name}"
            link = self.links.get(key) or Link(None, None, name, "crm_creating", {}, "", "", "", "")
            link.base, link.store_fp, link.etag = dict(g.record), g.fp, g.etag
            link.display = self.fields.display(g.record)
            with self.db.begin() as s:  # write-ahead: a killed run finds this person instead of creating it again
                self._save_link(s, link)
                self._index_link(link)
            person = self.source.create(self.fields.to_source(g.record), fields=fields)
            side = self._crm_side(person)
            link.crm_id, link.state = str(person.id), "linked"
            link.crm_fp, link.crm_version, link.base = side.fp, side.version, dict(g.record)
            with self.db.begin() as s:
                self._save_link(s, link)
                self._index_link(link, key)
                self.counts.created_crm += 1
                done += 1
                self._phase("write_crm", done, total)
                self._checkpoint(s, "write_crm")
            marker_updates[link.crm_id] = g.record
            self.current[link.crm_id] = g.contact
            self._after("write_crm")
        if marker_updates:  # the new contacts get our marker, so a lost link is found again
            self._apply_store_updates(marker_updates, ())
            self.counts.updated_store -= len(marker_updates)
        with self.db.begin() as s:
            self._checkpoint(s, "write_crm")
