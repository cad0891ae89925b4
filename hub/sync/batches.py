"""Store batch writes of a sync run, and what to do when the store applied only part of a batch.

A batch create/update refused for some contacts names them (`BatchRefused.refused`); the contacts not
named were written. So a partial refusal is no failed run: the written contacts are found again
(creates: by their marker, read with the sync's fields; updates: read back), the refused updates are
sent again (bounded, like stale versions), and refused creates are left out with the store's reason
and tried again by the next run. A batch that timed out after being applied raises
`WriteOutcomeUnknown` (creates) and the resumed run finds the contacts by their marker."""
from __future__ import annotations

from typing import Any

from hub.connectors.contract.contacts import BatchRefused, Contact, VersionConflict
from hub.events import trace

from .links import Link
from .mapping import fingerprint, merge
from .planner import conflict

VERSION_ROUNDS = 3


class BatchSteps:
    """Mixed into SyncEngine: uses its links, sides, field map and conflict recording."""

    def _create_batch(self, chunk: list[tuple[str, Any]], contacts: list[Contact]) -> tuple[list, list[Contact]]:
        """Create one chunk: (the chunk entries created, their contacts), in the same order."""
        fields = self.fields.store_fields
        try:
            return chunk, self.store.create(contacts, fields=fields, group=self.sync.group_resource_name)
        except BatchRefused as exc:
            rejected = {int(i) for i in exc.refused if str(i).isdigit()}
            reason = exc.reason
        accepted = [item for n, item in enumerate(chunk) if n not in rejected]
        found = self.store.find([k for k, _ in accepted], fields=fields) if accepted else {}
        pairs = [(item, found[item[0]]) for item in accepted if item[0] in found]
        self._leave_rejected([chunk[n] for n in sorted(rejected) if n < len(chunk)], reason)
        return [item for item, _ in pairs], [contact for _, contact in pairs]

    def _leave_rejected(self, items: list[tuple[str, Any]], reason: str) -> None:
        if not items:
            return
        note = f"not added: {self.store_title} refused it ({reason}); tried again by the next run"
        with self.db.begin() as s:
            for key, c in items:
                link = self.links.get(key) or Link(None, key, None, "left_out", {}, "", "", "", "")
                link.state, link.note, link.display = "left_out", note[:2000], self.fields.display(c.record)
                link.crm_fp, link.crm_version = c.fp, c.version
                self._save_link(s, link)
                self._index_link(link)
            self.counts.left_out += len(items)
            trace(s, self.sync.installation_id, "sync.left_out", f"{len(items)} person(s) {note}", status="info",
                  sync_id=self.sync_id, run_id=self.run_id)

    def _update_chunk(self, chunk: list[str], updates: dict[str, dict[str, Any]]) -> dict[str, Contact]:
        """One batch update; stale versions: re-read those contacts, merge again, send again (bounded);
        a contact that already holds the values (a write whose answer was lost) is done. Refused
        contacts (a partial refusal) are sent again; the others were written: read back."""
        self.store_writes += len(chunk)
        fields = self.fields.store_fields
        out: dict[str, Contact] = {}
        pending = list(chunk)
        for round_ in range(VERSION_ROUNDS):
            names = {self.links[k].resource_name: k for k in pending}
            contacts = {name: self.fields.to_store(updates[k], self.links[k].crm_id) for name, k in names.items()}
            current = {name: self.current[k] for name, k in names.items()}
            try:
                out.update(self.store.update(contacts, current, fields=fields))
                return out
            except BatchRefused as exc:
                if round_ == VERSION_ROUNDS - 1:
                    raise
                written = [name for name in contacts if name not in exc.refused]
                if written:
                    out.update({n: c for n, c in self.store.get(written, fields=fields).items() if c})
                pending = [k for k in pending if self.links[k].resource_name in exc.refused]
            except VersionConflict as exc:
                if round_ == VERSION_ROUNDS - 1:
                    raise
                fresh = self.store.get(exc.ids or list(contacts), fields=fields)
                done: set[str] = set()
                for name, contact in fresh.items():
                    key = self.by_resource.get(name)
                    if key is None or contact is None:
                        continue
                    link = self.links[key]
                    side = self._store_side(contact)
                    if self.sync.direction == "two_way":
                        merged, found = merge(link.base, updates[key], side.record, self.fields.targets,
                                              policy=self.sync.conflict_policy, crm_newer=False)
                        self._record_conflicts(conflict(key, link, found, name))
                        updates[key] = merged
                        if fingerprint(merged) != link.crm_fp:  # their edit must reach the CRM too
                            self.plan.crm_updates[key] = merged
                    self.current[key] = contact
                    if fingerprint(updates[key]) == side.fp:  # already holds it (a timed-out write went through)
                        out[name] = contact
                        done.add(key)
                pending = [k for k in pending if k not in done]
                if not pending:
                    return out
        return out
