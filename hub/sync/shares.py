"""A run of a share: a child sync (`parent_id`) that fans the shared sync's linked persons out to a
colleague's own address book account, with the parent's settings.

- "edit" is a two-way sync: the colleague's edits reach the CRM, and then the parent and every other
  share, which the runs request in turn (requests coalesce, so this converges).
- "read" syncs CRM -> store only and reverts the colleague's edits, additions and deletions; each
  run counts them as `reverted` and says which in the run log.
- The persons a share holds are the parent's linked persons as last synced: a share never reads the
  whole CRM for them."""
from __future__ import annotations

from sqlalchemy import select

from hub.errors import Fatal
from hub.events import trace
from hub.store.models import ContactSync, SyncLink

from .links import CrmSide
from .mapping import fingerprint
from .trigger import request_run

SHARED_SETTINGS = ("field_map", "person_filter", "conflict_policy", "delete_policy", "contact_cap", "delete_share")


def share_direction(mode: str) -> str:
    return "two_way" if mode == "edit" else "crm_to_store"


class ShareSteps:
    """Mixed into SyncEngine."""

    @property
    def read_only(self) -> bool:
        return self.parent is not None and self.sync.share_mode != "edit"

    def _load_parent(self, s, sync: ContactSync) -> None:
        """A share runs with its sync's current settings; its mode decides the direction."""
        parent = s.get(ContactSync, sync.parent_id)
        if parent is None:
            raise Fatal(f"sync {self.sync_id}: the shared sync {sync.parent_id} is gone")
        s.expunge(parent)
        for key in SHARED_SETTINGS:
            setattr(sync, key, getattr(parent, key))  # detached: the share's row is not changed
        sync.direction = share_direction(sync.share_mode)
        self.parent = parent

    def _load_parent_records(self) -> dict[str, CrmSide]:
        """The persons the shared label holds: the parent's linked persons as last synced."""
        out: dict[str, CrmSide] = {}
        with self.db.begin() as s:
            rows = s.execute(select(SyncLink.crm_id, SyncLink.base, SyncLink.crm_fingerprint, SyncLink.crm_version)
                             .where(SyncLink.sync_id == self.parent.id, SyncLink.state == "linked",
                                    SyncLink.crm_id.is_not(None)))
            for crm_id, base, fp, version in rows:
                out[crm_id] = CrmSide(dict(base or {}), fp or fingerprint(base or {}), version or "")
        return out

    def _request_related(self, s) -> None:
        """Fan-out: a sync's run is followed by runs of its shares; a share that changed the CRM asks
        for a run of its sync (which then reaches everyone)."""
        if self.parent is None:
            for share_id in s.scalars(select(ContactSync.id).where(ContactSync.parent_id == self.sync_id,
                                                                   ContactSync.enabled.is_(True))).all():
                request_run(self.services, s, share_id, "fan_out")
        elif self.parent.enabled and (self.counts.created_crm or self.counts.updated_crm or self.counts.deleted_crm):
            request_run(self.services, s, self.parent.id, "share")

    def _report_reverted(self) -> None:
        """A read-only share's run undid the colleague's changes: count them and say which."""
        if not self.reverted:
            return
        self.counts.reverted += len(self.reverted)
        with self.db.begin() as s:
            trace(s, self.sync.installation_id, "sync.reverted", f"{len(self.reverted)} change(s) in a read-only "
                  f"share were reverted: {'; '.join(self.reverted[:20])}"[:2000], status="info",
                  sync_id=self.sync_id, run_id=self.run_id, changes=self.reverted[:200])
