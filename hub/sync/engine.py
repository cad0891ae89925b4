"""One run of a contact sync: read both sides' changes, plan against the link table, write in batches.

The run talks to a `ContactSource` (the installation's CRM) and a `ContactStore` (the sync's address
book account), picked by role from the connectors (sides.py). The parts:
reading.py (changes since the cursors), planner.py (the pure decisions), writing.py and batches.py
(store and CRM writes), deletions.py and merges.py (deletion safety, merged persons), shares.py (a
share's run). This module is the runner: lease, run row, checkpoints, cursors.

Why it is built this way:
- Cursors (the source's change cursor, the person.deleted event id, the store's change token)
  advance only when a run finishes. Every batch commits its links (with both sides' fingerprints)
  and the run's progress in one transaction, so a run killed anywhere is resumed by the next
  attempt: it re-reads from the unadvanced cursors and everything already written is recognised by
  its fingerprint and skipped. A store create whose answer was lost is found again by its marker
  (the change listing since the old token shows it), a CRM create by the write-ahead link
  (`crm_creating`) matched against the persons read.
- Own writes are not echoed: after writing, the link holds the fingerprint of what the side
  answered, so the echo (a new version, a new update time) compares equal and nothing happens.
- Deletions come only from explicit signals, never from absence, and only for records nobody edited
  since (deletions.py; merged persons: merges.py). More than `delete_share` of the linked contacts
  in one run pauses them until someone confirms them.
- The cap counts the whole store account; creates stop there, updates continue, and the persons
  left out are kept as `left_out` links with the reason.
- At most one run per sync works at a time: a lease on the sync row, renewed after every batch and
  page read (`sync.lease_seconds`); a run killed with its lease held is resumed once the lease ran out."""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from sqlalchemy import update

from hub.connectors.contract.contacts import ContactSource, ContactStore
from hub.errors import Defer, Fatal, NeedsReauth
from hub.events import get_bookmark, set_bookmark, trace
from hub.store import Connection, Installation, utcnow
from hub.store.models import ContactSync, SyncConflict, SyncRun

from .batches import BatchSteps
from .deletions import DeletionSteps
from .links import LinkSteps
from .mapping import DEFAULT_FIELD_MAP, FieldMap
from .merges import MergeSteps
from .planner import DIRECTIONS, POLICIES, Plan, Planner  # noqa: F401  (DIRECTIONS, POLICIES: re-exported)
from .reading import ReadSteps
from .shares import ShareSteps
from .sides import crm_connection, open_source, open_store, source_title, store_title
from .writing import WriteSteps

log = logging.getLogger("hub.sync")
LEASE_SECONDS = 120


class SyncBusy(Defer):
    """Another run of this sync holds the lease: try again when it may have ended."""


class LeaseLost(SyncBusy):
    """The run's lease ran out and another run took the sync over, or the sync (a share) was removed:
    this run stops at its checkpoint, before writing the batch's links (the markers find them)."""


def bookmark_name(sync_id: int) -> str:
    return f"sync:{sync_id}"


@dataclass
class Counts:
    created_store: int = 0
    updated_store: int = 0
    deleted_store: int = 0
    created_crm: int = 0
    updated_crm: int = 0
    deleted_crm: int = 0
    conflicts: int = 0
    left_out: int = 0
    relinked: int = 0
    merged: int = 0
    reverted: int = 0
    full_listing: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def describe(self, crm: str, store: str) -> str:
        """E.g. "created in <store> 3, updated in <crm> 1, conflicts 1" ("nothing to do")."""
        where = {"store": f"in {store}", "crm": f"in {crm}"}
        parts = []
        for key, value in self.as_dict().items():
            if value and key != "full_listing":
                what, _, side = key.partition("_")
                parts.append(f"{what} {where[side]} {value}" if side in where else f"{key.replace('_', ' ')} {value}")
        return ", ".join(parts) or "nothing to do"


class SyncEngine(LinkSteps, ReadSteps, WriteSteps, BatchSteps, DeletionSteps, MergeSteps, ShareSteps):
    """`run()` does one run of sync `sync_id`. `after_batch(engine, what)` (tests, the CLI) is
    called after every committed checkpoint; `on_progress(phase, done, total)` for progress bars.
    `source` / `store` replace the sides the sync's connections give (tests)."""

    def __init__(self, services: Any, sync_id: int, *, trigger: str = "manual", job_id: int | None = None,
                 owner: str | None = None, after_batch: Callable[["SyncEngine", str], None] | None = None,
                 on_progress: Callable[[str, int, int | None], None] | None = None,
                 source: ContactSource | None = None, store: ContactStore | None = None):
        self.services = services
        self.db = services.db
        self.sync_id = sync_id
        self.trigger = trigger
        self.job_id = job_id
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        self.after_batch = after_batch
        self.on_progress = on_progress
        self.source = source
        self.store = store
        self.counts = Counts()
        self.progress: dict[str, dict[str, Any]] = {}
        self.run_id: int | None = None
        settings = services.settings
        self.delete_pause_min = int(settings.get("sync.delete_pause_min", 5))
        self.lease_seconds = int(settings.get("sync.lease_seconds", LEASE_SECONDS))
        self.parent: ContactSync | None = None
        self.parent_records = None         # a share: the parent's linked persons
        self.plan = Plan()
        self.current: dict[str, Any] = {}  # store contacts as last read, by link key (their versions)
        self.reverted: list[str] = []
        self.store_writes = 0              # contacts the run changed in the store: their echoes follow its token
        self.deleted_names: set[str] = set()
        self.listed_total: int | None = None
        self.account_total: int | None = None
        self.source_title = self.store_title = ""

    # == the run ==================================================================================
    def run(self) -> dict[str, Any]:
        self._acquire()
        try:
            self._load()
            self._start_run()
            try:
                status, message = self._run()
            except (Defer, NeedsReauth):
                raise
            except Fatal as exc:
                self._finish("failed", f"{exc}")
                raise
            except Exception as exc:  # Retriable and unexpected: the job retries and this run resumes
                self._note_error(exc)
                raise
            self._finish(status, message)
            return {"run_id": self.run_id, "status": status, "message": message, **self.counts.as_dict()}
        finally:
            self._release()

    def _run(self) -> tuple[str, str]:
        self.links = self._load_links()
        if self.parent is not None:
            self.parent_records = self._load_parent_records()
        self._apply_confirmed_deletes()
        crm_seen = self._read_crm()
        deleted_events = self._read_crm_deletions()
        store_seen, store_deleted, next_token = self._read_store()
        planner = Planner(self.index, self.fields, direction=self.sync.direction, policy=self.sync.conflict_policy,
                          read_only=self.read_only, pending=self.sync.pending_deletes,
                          parent_records=self.parent_records)
        self._save_links(planner.write_ahead(crm_seen, store_seen))
        crm_deleted = {k for k, to in deleted_events.items() if not to} | self._apply_merges(
            {k: to for k, to in deleted_events.items() if to}, crm_seen, store_seen)
        fetched = {m: self._crm_get(m) for m in planner.markers_to_read(crm_seen, store_seen)}
        plan = self.plan = planner.plan(crm_seen, crm_deleted, store_seen, store_deleted, fetched)
        self._save_links(plan.saves)
        self.current.update(plan.current)
        self.reverted += plan.reverted
        self._record_conflicts(plan.conflicts)
        paused = self._deletions(plan)
        self._apply_store_updates(plan.store_updates, plan.crm_updates)
        self._apply_store_creates(plan.store_creates)
        self._apply_crm_writes(plan.crm_updates, plan.crm_creates)
        self._apply_label_adds(plan.label_adds)
        self._apply_label_removes(plan.label_removes)
        self._report_reverted()
        if next_token and self.store_writes >= self.store.limits.page:
            # fewer echoes fit in the next run's first page anyway, where they compare equal for free
            next_token = self._skip_own_echoes(next_token)
        self._checkpoint_cursors(next_token=next_token)
        message = self.counts.describe(self.source_title, self.store_title)
        if self.counts.left_out:
            message += f" (contact cap {self.sync.contact_cap}: {self.counts.left_out} left out)"
        if paused:
            return "paused", f"{message}; {paused}"
        return "done", message

    def _save_links(self, links) -> None:
        if links:
            with self.db.begin() as s:
                for link in links:
                    self._save_link(s, link)

    def _record_conflicts(self, conflicts: list[dict[str, Any]]) -> None:
        if not conflicts:
            return
        self.counts.conflicts += len(conflicts)
        with self.db.begin() as s:
            for c in conflicts:
                s.add(SyncConflict(sync_id=self.sync_id, run_id=self.run_id, policy=self.sync.conflict_policy,
                                   created_at=utcnow(), **c))
            trace(s, self.sync.installation_id, "sync.conflicts", f"{len(conflicts)} field(s) changed on both sides; "
                  f"resolved by policy {self.sync.conflict_policy}", status="info", sync_id=self.sync_id,
                  run_id=self.run_id, fields=[f"{c['crm_id']}:{c['field']}→{c['winner']}" for c in conflicts[:50]])

    # == lease, run row, bookmarks ================================================================
    def _acquire(self) -> None:
        now = utcnow()
        with self.db.begin() as s:
            got = s.execute(update(ContactSync).where(
                ContactSync.id == self.sync_id,
                (ContactSync.lease_until.is_(None)) | (ContactSync.lease_until < now)
                | (ContactSync.lease_owner == self.owner)).values(
                lease_owner=self.owner, lease_until=now + timedelta(seconds=self.lease_seconds))).rowcount
            if not got:
                row = s.get(ContactSync, self.sync_id)
                if row is None:
                    raise Fatal(f"sync {self.sync_id} does not exist")
                wait = max(1.0, (row.lease_until - now).total_seconds()) if row.lease_until else 5.0
                raise SyncBusy(f"sync {self.sync_id} is running elsewhere", min(wait, self.lease_seconds))

    def _renew(self) -> None:
        with self.db.begin() as s:
            s.execute(update(ContactSync).where(ContactSync.id == self.sync_id, ContactSync.lease_owner == self.owner)
                      .values(lease_until=utcnow() + timedelta(seconds=self.lease_seconds)))

    def _release(self) -> None:
        with self.db.begin() as s:
            s.execute(update(ContactSync).where(ContactSync.id == self.sync_id, ContactSync.lease_owner == self.owner)
                      .values(lease_owner=None, lease_until=None))

    def _load(self) -> None:
        with self.db.begin() as s:
            sync = s.get(ContactSync, self.sync_id)
            s.expunge(sync)
            self.sync = sync
            installation = s.get(Installation, sync.installation_id)
            if installation is None or installation.status != "active":
                raise Fatal(f"sync {self.sync_id}: the installation is gone")
            if sync.parent_id is not None:
                self._load_parent(s, sync)
            store_conn = s.get(Connection, sync.store_connection_id)
            self.source_title = source_title(installation.provider)
            self.store_title = store_title(store_conn.provider if store_conn is not None else None)
            if store_conn is None or store_conn.status == "disconnected":
                raise Fatal(f"sync {self.sync_id}: its {self.store_title} account is no longer connected")
            if store_conn.status == "needs_reconnection":
                raise NeedsReauth(f"the {self.store_title} connection needs to be reconnected", store_conn.id)
            crm_conn = crm_connection(s, installation)
            if crm_conn is None:
                raise NeedsReauth(f"the installer's {self.source_title} connection is missing")
            self.bookmark = get_bookmark(s, sync.installation_id, bookmark_name(sync.id)) or {}
            try:
                if self.source is None:
                    self.source = open_source(self.services, installation.provider, crm_conn)
                if self.store is None:
                    self.store = open_store(self.services, store_conn)
            except LookupError as exc:
                raise Fatal(f"sync {self.sync_id}: {exc}") from None
        self.fields = FieldMap(list(sync.field_map or DEFAULT_FIELD_MAP))

    def _start_run(self) -> None:
        """A run left `running` by a killed attempt is resumed (same row, attempts + 1)."""
        with self.db.begin() as s:
            run = None
            if self.bookmark.get("run_id"):
                run = s.get(SyncRun, self.bookmark["run_id"])
                if run is not None and run.status != "running":
                    run = None
            if run is None:
                run = SyncRun(sync_id=self.sync_id, job_id=self.job_id, trigger=self.trigger, status="running",
                              phase="start", progress={}, stats={}, message="", started_at=utcnow())
                s.add(run)
                s.flush()
                trace(s, self.sync.installation_id, "sync.started", f"sync {self.sync.name or self.sync_id}: run "
                      f"{run.id} started ({self.trigger})", sync_id=self.sync_id, job_id=self.job_id, run_id=run.id)
            else:
                run.attempts += 1
                self.counts = Counts(**{k: v for k, v in (run.stats or {}).items() if k in Counts.__dataclass_fields__})
                trace(s, self.sync.installation_id, "sync.resumed", f"run {run.id} resumed (attempt {run.attempts})",
                      status="info", sync_id=self.sync_id, job_id=self.job_id, run_id=run.id)
            self.run_id = run.id
            self.run_started = run.started_at
            s.execute(update(ContactSync).where(ContactSync.id == self.sync_id).values(
                status="running", last_run_id=run.id, updated_at=utcnow()))
            self.bookmark["run_id"] = run.id
            set_bookmark(s, self.sync.installation_id, bookmark_name(self.sync_id), self.bookmark)

    def _phase(self, phase: str, done: int, total: int | None = None, *, save: bool = False) -> None:
        self.progress[phase] = {"done": done, "total": total}
        self.phase = phase
        if self.on_progress:
            self.on_progress(phase, done, total)
        if save:
            with self.db.begin() as s:
                self._save_progress(s)

    def _save_progress(self, s) -> None:
        s.execute(update(SyncRun).where(SyncRun.id == self.run_id).values(
            phase=getattr(self, "phase", ""), progress=dict(self.progress), stats=self.counts.as_dict()))

    def _checkpoint(self, s, what: str) -> None:
        """Called inside the transaction that wrote a batch's links: progress and lease go with it."""
        self._save_progress(s)
        held = s.execute(update(ContactSync).where(ContactSync.id == self.sync_id, ContactSync.lease_owner == self.owner)
                         .values(lease_until=utcnow() + timedelta(seconds=self.lease_seconds))).rowcount
        if not held:
            raise LeaseLost(f"sync {self.sync_id}: this run lost its lease (or the sync was removed)", 1.0)

    def _after(self, what: str) -> None:
        if self.after_batch:
            self.after_batch(self, what)

    def _checkpoint_cursors(self, *, next_token: str | None) -> None:
        with self.db.begin() as s:
            value = dict(self.bookmark)
            if self._crm_high:
                value["crm_since"] = self._crm_high
            value["crm_event_id"] = self._event_high
            if next_token:
                value["store_token"] = next_token
            value.pop("run_id", None)
            set_bookmark(s, self.sync.installation_id, bookmark_name(self.sync_id), value)
            self.bookmark = value

    def _finish(self, status: str, message: str) -> None:
        with self.db.begin() as s:
            s.execute(update(SyncRun).where(SyncRun.id == self.run_id).values(
                status=status, message=message[:4000], finished_at=utcnow(), phase="finished" if status == "done" else
                getattr(self, "phase", ""), progress=dict(self.progress), stats=self.counts.as_dict()))
            sync_status = {"done": "idle", "paused": "awaiting_confirmation"}.get(status, "error")
            s.execute(update(ContactSync).where(ContactSync.id == self.sync_id).values(
                status=sync_status, status_message=message[:4000], updated_at=utcnow()))
            if status == "failed":  # a failed run does not stay resumable: the next one starts afresh
                value = dict(self.bookmark)
                value.pop("run_id", None)
                set_bookmark(s, self.sync.installation_id, bookmark_name(self.sync_id), value)
            if status in ("done", "paused"):
                self._request_related(s)
            trace(s, self.sync.installation_id, f"sync.{status}", f"run {self.run_id}: {message}",
                  status="error" if status == "failed" else "ok", sync_id=self.sync_id, job_id=self.job_id,
                  run_id=self.run_id, **self.counts.as_dict())

    def _note_error(self, exc: Exception) -> None:
        try:
            with self.db.begin() as s:
                s.execute(update(SyncRun).where(SyncRun.id == self.run_id).values(
                    message=f"interrupted, will resume: {type(exc).__name__}: {exc}"[:4000],
                    progress=dict(self.progress), stats=self.counts.as_dict()))
                trace(s, self.sync.installation_id, "sync.interrupted", f"run {self.run_id}: {exc}", status="error",
                      sync_id=self.sync_id, job_id=self.job_id, run_id=self.run_id)
        except Exception:
            log.exception("sync %s: could not record the interruption", self.sync_id)
