"""Google batch writes of a sync run, and what to do when Google applied only part of a batch.

A batch create/update refused for some contacts lists them in `contactErrors`; the contacts not
listed were written (FACTS §7). So a partial rejection is no failed run: the written contacts are
found again (creates: by their clientData marker, read with the sync's mask; updates: read back),
the refused updates are sent again (bounded, like stale etags), and refused creates are left out
with Google's reason and tried again by the next run. A batch that timed out after being applied
raises `WriteOutcomeUnknown` (creates) and the resumed run finds the contacts by their marker."""
from __future__ import annotations

from typing import Any

from hub.connectors.google.client import BatchRejected, EtagMismatch
from hub.events import trace

from .mapping import fingerprint, merge

ETAG_ROUNDS = 3


class BatchSteps:
    """Mixed into SyncEngine: uses its links, clients, field map and conflict recording."""

    def _create_batch(self, chunk: list[tuple[str, Any]], bodies: list[dict]) -> tuple[list, list[dict]]:
        """Create one chunk: (the chunk entries created, their people), in the same order."""
        try:
            return chunk, next(iter(self.google.iter_batch_create(bodies, self.read_mask)), [])
        except BatchRejected as exc:
            rejected = {int(i) for i in exc.google.contact_errors if str(i).isdigit()}
            reason = exc.google.describe()
        accepted = [item for n, item in enumerate(chunk) if n not in rejected]
        found = self.google.find_by_marker(self.fields.contact_mapping.marker_key, [k for k, _ in accepted]) \
            if accepted else {}
        fresh = self.google.batch_get([p["resourceName"] for p in found.values()], self.read_mask) if found else {}
        pairs = [(item, fresh.get(found[item[0]]["resourceName"])) for item in accepted if item[0] in found]
        self._leave_rejected([chunk[n] for n in sorted(rejected) if n < len(chunk)], reason)
        pairs = [(item, person) for item, person in pairs if person]
        return [item for item, _ in pairs], [person for _, person in pairs]

    def _leave_rejected(self, items: list[tuple[str, Any]], reason: str) -> None:
        from .engine import Link

        if not items:
            return
        note = f"not added: Google refused it ({reason}); tried again by the next run"
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

    def _update_chunk(self, chunk, updates, current, mask) -> dict[str, dict]:
        """One batch update; stale etags: re-read those contacts, merge again, send again (bounded);
        a contact that already holds the values (a write whose answer was lost) is done. Refused
        contacts (a partial rejection) are sent again; the others were written: read back."""
        self.google_writes += len(chunk)
        out: dict[str, dict] = {}
        pending = list(chunk)
        for round_ in range(ETAG_ROUNDS):
            bodies = {self.links[k].resource_name: self.fields.to_google(updates[k], self.links[k].crm_id, current[k])
                      for k in pending}
            try:
                for part in self.google.iter_batch_update(bodies, mask, self.read_mask):
                    out.update(part)
                return out
            except BatchRejected as exc:
                if round_ == ETAG_ROUNDS - 1:
                    raise
                refused = set(exc.google.contact_errors)
                written = [name for name in bodies if name not in refused]
                if written:
                    out.update({n: p for n, p in self.google.batch_get(written, self.read_mask).items() if p})
                pending = [k for k in pending if self.links[k].resource_name in refused]
            except EtagMismatch as exc:
                if round_ == ETAG_ROUNDS - 1:
                    raise
                stale = exc.resource_names or list(bodies)
                fresh = self.google.batch_get(stale, self.read_mask)
                written: set[str] = set()
                for name, person in fresh.items():
                    key = self.by_resource.get(name)
                    if key is None or person is None:
                        continue
                    link = self.links[key]
                    side = self._google_side(person)
                    if self.sync.direction == "two_way":
                        merged, found = merge(link.base, updates[key], side.record, self.fields.targets,
                                              policy=self.sync.conflict_policy, crm_newer=False)
                        self._record_conflicts([{"crm_id": key, "resource_name": name, "field": f, "crm_value": c,
                                                 "google_value": g, "winner": w} for f, c, g, w in found])
                        updates[key] = merged
                        if fingerprint(merged) != link.crm_fp:  # their edit must reach the CRM too
                            self.plan["crm_updates"][key] = merged
                    current[key] = person
                    if fingerprint(updates[key]) == side.fp:  # already holds it (a timed-out write went through)
                        out[name] = person
                        written.add(key)
                pending = [k for k in pending if k not in written]
                if not pending:
                    return out
        return out
