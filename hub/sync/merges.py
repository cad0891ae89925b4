"""CRM persons merged into another person: re-link or fold their contacts, never delete them blindly.

Pipedrive reports a merge as a `delete` of the merged person whose meta names the survivor
(`merged_to_id`) and a `change` of the survivor (FACTS §7), in either order. The sync reads the CRM
through its API, so the survivor's state is whatever the CRM holds when the delete is handled;
the fold below is the same whichever event came first, and a survivor updated later is an ordinary
change for the next run.

- The survivor has no contact in this sync: the merged person's contact is re-linked to it and
  takes the survivor's values by the conflict policy, with list fields unioned.
- The survivor has its own contact: the survivor's pair is merged as usual (3-way, conflict
  policy), the merged person's contact is folded in (`policy.fold`: e-mails and phones unioned,
  empty fields filled, anything not kept reported as a conflict) and then deleted."""
from __future__ import annotations


from hub.events import trace
from hub.store import utcnow
from hub.store.models import SyncConflict

from .mapping import fingerprint, merge
from .policy import fold


class MergeSteps:
    """Mixed into SyncEngine: uses its links, sides and writers."""

    def _apply_merges(self, merges: dict[str, str], crm_seen: dict, store_seen: dict) -> set[str]:
        """Handle the merged persons; returns those to treat as plain deletions (survivor gone)."""
        plain: set[str] = set()
        for loser, survivor in merges.items():
            link = self.links.get(loser)
            if link is None or survivor == loser:
                continue
            if link.state != "linked" or not link.resource_name:  # nothing in the store to keep: the link goes
                self._forget(loser)
                continue
            s_side = self._crm_get(survivor)
            if s_side is None:
                plain.add(loser)
                continue
            s_link = self.links.get(survivor)
            s_name = s_link.resource_name if s_link is not None and s_link.state == "linked" else None
            fresh = self.store.get([n for n in (link.resource_name, s_name) if n], fields=self.fields.store_fields)
            contact = fresh.get(link.resource_name)
            if contact is None:  # its contact is gone already: the survivor syncs as usual
                self._forget(loser)
                continue
            g_loser = self._store_side(contact)
            policy = self.sync.conflict_policy
            if s_name and fresh.get(s_name):
                g_surv = self._store_side(fresh[s_name])
                own, found = merge(s_link.base, s_side.record, g_surv.record, self.fields.targets, policy=policy,
                                   crm_newer=s_side.version >= g_surv.updated)
                combined, dropped = fold(own, g_loser.record, self.fields.targets)
                key, target, current = survivor, s_link, g_surv
                note = f"person {loser} merged into person {survivor}: contact {link.resource_name} folded into " \
                       f"{s_name} and deleted"
            else:
                own, found = merge(None, s_side.record, g_loser.record, self.fields.targets, policy=policy,
                                   crm_newer=s_side.version >= g_loser.updated)
                combined, _ = fold(own, g_loser.record, self.fields.targets)  # lists unioned, gaps filled
                combined, _ = fold(combined, s_side.record, self.fields.targets)
                dropped = []  # what the policy did not keep is in `found`
                key, target, current = survivor, link, g_loser
                note = f"person {loser} merged into person {survivor}: contact {link.resource_name} re-linked to it"
                if s_link is not None:  # a left-out or unfinished link of the survivor gives way
                    self._forget(survivor)
                link.crm_id, link.crm_fp, link.crm_version = survivor, s_side.fp, s_side.version
                with self.db.begin() as s:
                    self._save_link(s, link)
                    self._index_link(link, loser)
            self._merge_conflicts(loser, survivor, note, found, dropped, link.resource_name)
            self.current[key] = current.contact
            updates = {key: combined}
            if fingerprint(combined) != current.fp:
                self._apply_store_updates(updates, ())  # may merge an edit made meanwhile
                self.counts.updated_store -= 1
            combined = updates[key]
            target.base = dict(combined)
            if fingerprint(combined) != s_side.fp:
                self._apply_crm_writes({key: combined}, [])
            else:
                with self.db.begin() as s:
                    self._save_link(s, target)
            if target is not link:  # the merged person's contact is folded in: it goes
                self.store_writes += 1
                self.deleted_names.add(link.resource_name)
                self.store.delete([link.resource_name])
                self._forget(loser)
            self.counts.merged += 1
            crm_seen.pop(survivor, None)
            for name in (link.resource_name, s_name):
                store_seen.pop(name, None)
        return plain

    def _merge_conflicts(self, loser: str, survivor: str, note: str, found, dropped, resource_name: str) -> None:
        with self.db.begin() as s:
            rows = [(f, c, g, w) for f, c, g, w in found] + [(f, kept, lost, "crm") for f, kept, lost in dropped]
            if not rows:
                rows = [("(merged)", None, None, "crm")]
            for field, crm_value, store_value, winner in rows:
                kept = crm_value if winner == "crm" else store_value
                message = note if field == "(merged)" else f"{note}; {field} kept as {kept!r}"
                s.add(SyncConflict(sync_id=self.sync_id, run_id=self.run_id, crm_id=survivor,
                                   resource_name=resource_name or "", field=field, crm_value=crm_value,
                                   store_value=store_value, winner=winner, policy=self.sync.conflict_policy,
                                   message=message[:4000], created_at=utcnow()))
            self.counts.conflicts += len(rows)
            trace(s, self.sync.installation_id, "sync.merged", note, status="info", sync_id=self.sync_id,
                  run_id=self.run_id)
