"""What a run will do, decided without any I/O: the changes both sides reported, diffed against the
link table, become a `Plan`. The runner reads before and writes after; this module only decides, so
every rule below can be read (and tested) on plain data.

- Deletion signals: a CRM delete event deletes the linked contact, a store tombstone the linked
  person, each only where the sync writes that side; a deletion held for confirmation waits.
- Linked pairs with a change: a 3-way merge against the last synced values (`base`); a field changed
  on both sides is a conflict, won by the sync's policy. What a side already holds is not written.
- Persons without a contact are created (those a share's label holds, for a share), unless a contact
  carrying their marker exists (a lost link or a killed run's create): then it is linked.
- Contacts in the label without a person: a person is created (two-way, store -> CRM), a read-only
  share's addition is taken out of the label again.
- A read-only share reverts the colleague's edits, removals and deletions, and says which."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hub.connectors.contract.contacts import Contact

from .links import CrmSide, Link, LinkIndex, StoreSide, sort_key
from .mapping import FieldMap, fingerprint, merge

DIRECTIONS = ("two_way", "crm_to_store", "store_to_crm")
POLICIES = ("newest", "crm", "store")


@dataclass
class Plan:
    store_updates: dict[str, dict[str, Any]] = field(default_factory=dict)   # key -> merged record
    store_creates: list[tuple[str, CrmSide]] = field(default_factory=list)
    crm_updates: dict[str, dict[str, Any]] = field(default_factory=dict)
    crm_creates: list[tuple[str, StoreSide]] = field(default_factory=list)  # (contact id, contact)
    store_deletes: list[str] = field(default_factory=list)    # keys: deleted in the CRM, the contact goes
    crm_deletes: list[str] = field(default_factory=list)      # keys: deleted in the store, the person goes
    label_adds: list[str] = field(default_factory=list)       # contact ids
    label_removes: list[str] = field(default_factory=list)
    drop_links: list[str] = field(default_factory=list)
    saves: list[Link] = field(default_factory=list)           # links the plan changed: saved before any write
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    reverted: list[str] = field(default_factory=list)
    current: dict[str, Contact] = field(default_factory=dict)  # contacts as read, by key (their etags)

    def save(self, link: Link) -> None:
        if not any(l is link for l in self.saves):
            self.saves.append(link)


def conflict(key: str, link: Link | None, found, resource_name: str | None = None) -> list[dict[str, Any]]:
    """Conflict rows of a merge's findings (field, crm value, store value, winner)."""
    name = resource_name if resource_name is not None else (link.resource_name if link else "") or ""
    return [{"crm_id": key, "resource_name": name, "field": f, "crm_value": c, "store_value": g, "winner": w}
            for f, c, g, w in found]


def deletion_limit(linked: int, share: float, minimum: int) -> float:
    """More deletions than this in one run wait for confirmation."""
    return max(minimum, share * linked)


def room(wanted: int, cap: int, total: int) -> int:
    """How many contacts may still be added without passing the cap (the whole account counts)."""
    return max(0, min(wanted, cap - total))


class Planner:
    def __init__(self, index: LinkIndex, fields: FieldMap, *, direction: str, policy: str, read_only: bool,
                 pending: dict[str, Any] | None, parent_records: dict[str, CrmSide] | None):
        self.index, self.links, self.by_resource = index, index.links, index.by_resource
        self.fields = fields
        self.direction, self.policy, self.read_only = direction, policy, read_only
        self.pending = pending or {}
        self.parent_records = parent_records
        self.to_store = direction in ("two_way", "crm_to_store")
        self.to_crm = direction in ("two_way", "store_to_crm")

    def write_ahead(self, crm_seen: dict[str, CrmSide], store_seen: dict[str, StoreSide]) -> list[Link]:
        """A killed run may have created CRM persons for contacts without linking them: the person
        read now whose values equal the contact's is that person, not a new one. The links found."""
        pending = [(k, l) for k, l in self.links.items() if l.state == "crm_creating"]
        if not pending:
            return []
        linked = {l.crm_id for l in self.links.values() if l.crm_id}
        by_fp: dict[str, str] = {}
        for crm_id, side in crm_seen.items():
            if crm_id not in linked:
                by_fp.setdefault(side.fp, crm_id)
        found = []
        for key, link in pending:
            g = store_seen.get(link.resource_name)
            crm_id = by_fp.pop(g.fp if g else fingerprint(link.base), None)
            if crm_id is None:
                continue
            link.crm_id, link.state = crm_id, "linked"
            link.crm_fp, link.crm_version = crm_seen[crm_id].fp, crm_seen[crm_id].version
            self.index.add(link, key)
            found.append(link)
        return found

    def markers_to_read(self, crm_seen: dict[str, CrmSide], store_seen: dict[str, StoreSide]) -> list[str]:
        """Persons whose marker an unlinked contact carries and that this run did not read."""
        return sorted({g.marker for name, g in store_seen.items() if g.marker and name not in self.by_resource
                       and g.marker not in self.links and g.marker not in crm_seen}, key=sort_key)

    def plan(self, crm_seen: dict[str, CrmSide], crm_deleted: set[str], store_seen: dict[str, StoreSide],
             store_deleted: set[str], fetched: dict[str, CrmSide | None]) -> Plan:
        links, by_resource, p = self.links, self.by_resource, Plan()
        on_hold = set(self.pending.get("crm") or []) | {by_resource.get(r) for r in self.pending.get("store") or []}
        recreate: set[str] = set()  # a read-only colleague deleted these: they come back

        # deletion signals
        for crm_id in crm_deleted:
            link = links.get(crm_id)
            if link is None or link.state != "linked" or crm_id in on_hold:
                continue
            if self.to_store and link.resource_name and link.resource_name not in store_deleted:
                p.store_deletes.append(crm_id)
            else:
                p.drop_links.append(crm_id)
        for name in store_deleted:
            key = by_resource.get(name)
            link = links.get(key) if key else None
            if link is None or link.state != "linked" or key in on_hold or key in crm_deleted:
                if link is not None and key in crm_deleted:
                    p.drop_links.append(key)
                continue
            if self.to_crm and link.crm_id:
                p.crm_deletes.append(key)
            else:
                p.drop_links.append(key)
                if self.read_only and link.crm_id:
                    recreate.add(key)
                    p.reverted.append(f"{link.display or key}: deleted")
        gone = set(p.store_deletes) | set(p.crm_deletes) | set(p.drop_links) | on_hold | crm_deleted

        # linked pairs with a change on either side
        keys = {k for k in crm_seen if k in links and links[k].state == "linked"}
        keys |= {by_resource[r] for r in store_seen if r in by_resource}
        for key in sorted(keys - gone, key=sort_key):
            self._pair(p, key, crm_seen.get(key), store_seen)

        # CRM persons without a contact
        markers: dict[str, str] = {}
        for name, g in store_seen.items():
            if name not in by_resource and g.marker:
                markers.setdefault(g.marker, name)
        creates: list[str] = []
        candidates = crm_seen
        if self.parent_records is not None:  # a share holds what the shared label holds
            candidates = {k: crm_seen.get(k) or side for k, side in self.parent_records.items()
                          if k not in links or links[k].state == "left_out" or k in recreate}
        for key in sorted(candidates, key=sort_key):
            link = links.get(key) if key not in recreate else None
            if key in crm_deleted or (link is not None and link.state != "left_out"):
                continue
            c = candidates[key]
            if key in markers:  # our own contact from an earlier (killed) run or a lost link
                name = markers.pop(key)
                g = store_seen[name]
                new = link or Link(None, key, name, "linked", {}, "", "", "", "")
                new.resource_name, new.state, new.note = name, "linked", ""
                new.base, new.crm_fp, new.crm_version = dict(c.record), c.fp, c.version
                new.store_fp, new.etag, new.display = g.fp, g.etag, self.fields.display(c.record)
                self.index.add(new)
                p.save(new)
                if self.direction != "store_to_crm":
                    self._queue(p, key, new, dict(c.record), c, g, self.to_store, False)
                continue
            if self.to_store:
                creates.append(key)
        p.store_creates = [(k, candidates[k]) for k in creates]

        # contacts in the label without a CRM person
        for name, g in sorted(store_seen.items()):
            if name in by_resource:  # a write-ahead the run before did not get to: create it now
                if links[by_resource[name]].state == "crm_creating" and g.in_label and self.to_crm:
                    p.crm_creates.append((name, g))
                continue
            if g.marker:
                c = fetched.get(g.marker) or crm_seen.get(g.marker)
                if g.marker in links or c is None:
                    continue  # linked above, or the person is gone: never resurrect it from a stale copy
                # a contact of a person not read this run (unchanged): link it
                link = Link(None, g.marker, name, "linked", dict(c.record), c.fp, c.version, g.fp, g.etag,
                            self.fields.display(c.record))
                self.index.add(link)
                p.save(link)
                if c.fp != g.fp:
                    merged = c.record if self.direction != "store_to_crm" else g.record
                    self._queue(p, g.marker, link, dict(merged), c, g, self.to_store, self.to_crm)
                continue
            if g.in_label and self.to_crm:
                p.crm_creates.append((name, g))
            elif g.in_label and self.read_only:  # a read-only colleague added it to the shared label
                p.label_removes.append(name)
                p.reverted.append(f"{self.fields.display(g.record) or name}: added to the label")
        return p

    def _pair(self, p: Plan, key: str, c: CrmSide | None, store_seen: dict[str, StoreSide]) -> None:
        link = self.links[key]
        if link.state != "linked" or not link.crm_id:
            return
        g = store_seen.get(link.resource_name)
        crm_changed = c is not None and c.fp != link.crm_fp
        store_changed = g is not None and g.fp != link.store_fp
        if g is not None and not g.in_label and self.to_store:
            p.label_adds.append(link.resource_name)
            if self.read_only:
                p.reverted.append(f"{link.display or key}: removed from the label")
        if not crm_changed and not store_changed:
            return
        crm_rec = c.record if c else link.base
        store_rec = g.record if g else link.base
        if self.direction == "crm_to_store":
            merged, found = dict(crm_rec), []
            if self.read_only and store_changed and fingerprint(merged) != g.fp:
                p.reverted.append(f"{link.display or key}: edited")
        elif self.direction == "store_to_crm":
            merged, found = dict(store_rec), []
        else:
            crm_newer = (c.version if c else "") >= (g.updated if g else "")
            merged, found = merge(link.base, crm_rec, store_rec, self.fields.targets, policy=self.policy,
                                  crm_newer=crm_newer)
            if crm_changed and store_changed:
                p.conflicts += conflict(key, link, found)
        self._queue(p, key, link, merged, c, g, self.to_store, self.to_crm)

    def _queue(self, p: Plan, key: str, link: Link, merged: dict[str, Any], c: CrmSide | None,
               g: StoreSide | None, to_store: bool, to_crm: bool) -> None:
        merged_fp = fingerprint(merged)
        store_fp = g.fp if g else link.store_fp
        crm_fp = c.fp if c else link.crm_fp
        if to_store and merged_fp != store_fp:
            p.store_updates[key] = merged
        elif g is not None:
            link.store_fp, link.etag = g.fp, g.etag or link.etag
        if to_crm and merged_fp != crm_fp:
            p.crm_updates[key] = merged
        elif c is not None:
            link.crm_fp, link.crm_version = c.fp, c.version
        if key not in p.store_updates and key not in p.crm_updates:
            link.base = dict(merged)
            p.save(link)
        if g is not None:
            p.current[key] = g.contact
