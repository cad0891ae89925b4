"""The deleting part of a sync run: delete signals, the delete-vs-edit policy, the deletion pause.

Deletions only ever follow an explicit signal (a CRM person.deleted event, a store tombstone), and
only for a record nobody edited since the last run: right before deleting, the other side is read
again and compared with the link's fingerprint (`policy.judge_delete`). An edited record is kept
under the default `edit_wins` and the deleted side gets it back (re-created and re-linked); under
`delete_wins` it is deleted anyway. Either way a conflict entry says what happened. A person.deleted
event that says the person was merged into another is no deletion at all (merges.py)."""
from __future__ import annotations


from sqlalchemy import func, select, update

from hub.events import trace
from hub.store import HubEvent, utcnow
from hub.store.models import ContactSync, SyncConflict

from .planner import Plan, deletion_limit
from .policy import DEFAULT_DELETE_POLICY, describe_delete, judge_delete, was_edited


class DeletionSteps:
    """Mixed into SyncEngine: uses its links, sides and checkpoints."""

    def _read_crm_deletions(self) -> dict[str, str]:
        """person.deleted events recorded since the last run, the only CRM deletion signal: person id
        -> the id it was merged into ("" for a plain deletion)."""
        last = int(self.bookmark.get("crm_event_id") or 0)
        with self.db.begin() as s:
            if "crm_event_id" not in self.bookmark:
                last = s.scalar(select(func.max(HubEvent.id)).where(
                    HubEvent.installation_id == self.sync.installation_id)) or 0  # a new sync starts now
                self._event_high = last
                return {}
            rows = s.execute(select(HubEvent.id, HubEvent.object_id, HubEvent.data).where(
                HubEvent.installation_id == self.sync.installation_id, HubEvent.kind == "person.deleted",
                HubEvent.id > last).order_by(HubEvent.id)).all()
            high = s.scalar(select(func.max(HubEvent.id)).where(HubEvent.installation_id == self.sync.installation_id))
        self._event_high = max(last, high or 0)
        out: dict[str, str] = {}
        for row in rows:
            merged_to = ((row.data or {}).get("extra") or {}).get("merged_to_id")
            out[str(row.object_id)] = str(merged_to) if merged_to not in (None, "") else ""
        return out

    def _deletions(self, plan: Plan) -> str:
        """Apply the run's deletions, or hold them for confirmation when there are too many."""
        with self.db.begin() as s:
            for key in plan.drop_links:
                self._drop_link(s, key)
        store_keys, crm_keys = self._screen_deletes(plan.store_deletes, plan.crm_deletes)
        count = len(store_keys) + len(crm_keys)
        if not count:
            return ""
        linked = sum(1 for l in self.links.values() if l.state == "linked")
        limit = deletion_limit(linked, self.sync.delete_share, self.delete_pause_min)
        if count > limit:
            pending = dict(self.sync.pending_deletes or {})
            crm_ids = sorted(set(pending.get("crm") or []) | set(crm_keys))
            names = sorted(set(pending.get("store") or []) | {self.links[k].resource_name for k in store_keys})
            value = {"crm": crm_ids, "store": names, "run_id": self.run_id, "linked": linked,
                     "requested_at": utcnow().isoformat() + "Z"}
            with self.db.begin() as s:
                s.execute(update(ContactSync).where(ContactSync.id == self.sync_id).values(pending_deletes=value))
                trace(s, self.sync.installation_id, "sync.deletions_paused",
                      f"{count} deletions of {linked} linked contacts exceed the limit ({limit:g}): waiting for "
                      "confirmation", status="info", sync_id=self.sync_id, run_id=self.run_id,
                      crm=crm_ids[:100], store=names[:100])
            self.sync.pending_deletes = value
            return f"{count} deletions wait for confirmation"
        self._delete(store_keys, crm_keys)
        return ""

    def _apply_confirmed_deletes(self) -> None:
        pending = self.sync.pending_deletes or {}
        if not pending.get("confirmed"):
            return
        store_keys = [self.by_resource[n] for n in pending.get("store") or [] if n in self.by_resource]
        self._delete(*self._screen_deletes([k for k in store_keys if k not in (pending.get("crm") or [])],
                                           [k for k in pending.get("crm") or [] if k in self.links]))
        with self.db.begin() as s:
            s.execute(update(ContactSync).where(ContactSync.id == self.sync_id).values(pending_deletes={}))
        self.sync.pending_deletes = {}

    # == delete vs edit =========================================================================
    def _screen_deletes(self, store_keys: list[str], crm_keys: list[str]) -> tuple[list[str], list[str]]:
        """Read the surviving side again; return the deletions the policy lets through. `store_keys`
        were deleted in the CRM (their contacts are to go), `crm_keys` in the store (their persons)."""
        policy = getattr(self.sync, "delete_policy", None) or DEFAULT_DELETE_POLICY
        read_only = self.read_only
        to_crm = self.sync.direction in ("two_way", "store_to_crm") and not read_only
        to_store = self.sync.direction in ("two_way", "crm_to_store")
        store_out: list[str] = []
        names = [self.links[k].resource_name for k in store_keys if k in self.links and self.links[k].resource_name]
        fresh = self.store.get(names, fields=self.fields.store_fields) if names else {}
        for key in store_keys:
            link = self.links.get(key)
            if link is None:
                continue
            if read_only:  # a read-only share's contacts follow the CRM; the colleague's edits are reverted
                store_out.append(key)
                continue
            contact = fresh.get(link.resource_name)
            g = self._store_side(contact) if contact and not contact.deleted else None
            verdict = judge_delete(g.fp if g else None, link.store_fp, policy, can_restore=to_crm)
            if verdict == "gone":
                self._forget(key)
            elif verdict == "restore":
                self._restore_person(key, g)
            elif verdict == "keep":
                self._forget(key)
                self._delete_conflict("crm", key, link, verdict, g=g)
            else:
                store_out.append(key)
                if was_edited(g.fp, link.store_fp):
                    self._delete_conflict("crm", key, link, verdict, g=g)
        crm_out: list[str] = []
        for key in crm_keys:
            link = self.links.get(key)
            if link is None or not link.crm_id:
                continue
            person = self.source.get(link.crm_id, fields=self.fields.source_fields)
            c = self._crm_side(person) if person is not None and not person.deleted else None
            verdict = judge_delete(c.fp if c else None, link.crm_fp, policy, can_restore=to_store)
            if verdict == "gone":
                self._forget(key)
            elif verdict == "restore":
                self._restore_contact(key, c)
            elif verdict == "keep":
                self._forget(key)
                self._delete_conflict("store", key, link, verdict, c=c)
            else:
                crm_out.append(key)
                if was_edited(c.fp, link.crm_fp):
                    self._delete_conflict("store", key, link, verdict, c=c)
        return store_out, crm_out

    def _forget(self, key: str) -> None:
        with self.db.begin() as s:
            self._drop_link(s, key)

    def _restore_person(self, key: str, g) -> None:
        """The person was deleted in the CRM, its contact edited in the store since: create the person
        again from the contact and link it (write-ahead first, so a killed run finds it again)."""
        link = self.links[key]
        old_id, name = link.crm_id, link.resource_name
        link.crm_id, link.state, link.base = None, "crm_creating", dict(g.record)
        link.store_fp, link.etag, link.display = g.fp, g.etag, self.fields.display(g.record)
        with self.db.begin() as s:
            self._save_link(s, link)
            self._index_link(link, key)
        person = self.source.create(self.fields.to_source(g.record), fields=self.fields.source_fields)
        c = self._crm_side(person)
        link.crm_id, link.state, link.crm_fp, link.crm_version = str(person.id), "linked", c.fp, c.version
        with self.db.begin() as s:
            self._save_link(s, link)
            self._index_link(link, f"~{name}")
            self.counts.created_crm += 1
            self._checkpoint(s, "restore_crm")
        self.current[link.crm_id] = g.contact
        self._apply_store_updates({link.crm_id: dict(g.record)}, ())  # the marker: the new id
        self.counts.updated_store -= 1
        self._delete_conflict("crm", old_id, link, "restore", g=g, outcome=link.crm_id)

    def _restore_contact(self, key: str, c) -> None:
        """The contact was deleted in the store, its person edited in the CRM since: create the contact
        again. The link waits as `left_out` meanwhile, so a killed run creates it (or finds it by
        its marker) instead of deleting the person."""
        link = self.links[key]
        old_name, shown = link.resource_name, link.display or self.fields.display(link.base)
        with self.db.begin() as s:
            if self.by_resource.get(old_name) == key:
                del self.by_resource[old_name]
            link.resource_name, link.state, link.note = None, "left_out", "re-creating its deleted contact"
            self._save_link(s, link)
        self._apply_store_creates([(key, c)])
        link = self.links[key]
        outcome = link.resource_name if link.state == "linked" else f"(not yet: {link.note})"
        self._delete_conflict("store", key, link, "restore", c=c, outcome=outcome or "", resource_name=old_name,
                              name=shown)

    def _delete_conflict(self, deleted_on: str, crm_id: str, link, verdict: str, *, g=None, c=None,
                         outcome: str = "", resource_name: str | None = None, name: str = "") -> None:
        # the contact named is the one kept (deleted in the CRM) or the one deleted, as last synced
        name = name or (self.fields.display(g.record) if g else "") or link.display or self.fields.display(link.base)
        message = describe_delete(deleted_on, crm_id, name, verdict, outcome, store=self.store_title)
        kept = "store" if deleted_on == "crm" else "crm"
        winner = kept if verdict in ("restore", "keep") else deleted_on
        policy = getattr(self.sync, "delete_policy", None) or DEFAULT_DELETE_POLICY
        self.counts.conflicts += 1
        with self.db.begin() as s:
            s.add(SyncConflict(sync_id=self.sync_id, run_id=self.run_id, crm_id=str(crm_id),
                               resource_name=resource_name or link.resource_name or "", field="(deleted)",
                               crm_value=c.record if c else None, store_value=g.record if g else None,
                               winner=winner, policy=policy, message=message, created_at=utcnow()))
            trace(s, self.sync.installation_id, "sync.delete_conflict", message, status="info",
                  sync_id=self.sync_id, run_id=self.run_id)

    def _delete(self, store_keys: list[str], crm_keys: list[str]) -> None:
        store_keys = [k for k in store_keys if k in self.links]
        size = self.store.limits.delete
        for start in range(0, len(store_keys), size):
            chunk = store_keys[start:start + size]
            self.store_writes += len(chunk)
            self.deleted_names.update(self.links[k].resource_name for k in chunk)
            self.store.delete([self.links[k].resource_name for k in chunk])
            with self.db.begin() as s:
                for key in chunk:
                    self._drop_link(s, key)
                self.counts.deleted_store += len(chunk)
                self._phase("delete_store", self.counts.deleted_store, len(store_keys))
                self._checkpoint(s, "delete_store")
            self._after("delete_store")
        for n, key in enumerate(crm_keys, 1):
            link = self.links.get(key)
            if link is None or not link.crm_id:
                continue
            self.source.delete(link.crm_id)
            with self.db.begin() as s:
                self._drop_link(s, key)
                self.counts.deleted_crm += 1
                self._phase("delete_crm", n, len(crm_keys))
                self._checkpoint(s, "delete_crm")
            self._after("delete_crm")
