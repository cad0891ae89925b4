"""One run of a contact sync: read both sides' changes, decide with the link table, write in batches.

Why it is built this way:
- Cursors (Pipedrive `updated_since`, the person.deleted event id, Google's `syncToken`) advance
  only when a run finishes. Every batch commits its links (with both sides' fingerprints) and the
  run's progress in one transaction, so a run killed anywhere is resumed by the next attempt: it
  re-reads from the unadvanced cursors and everything already written is recognised by its
  fingerprint and skipped. A Google create whose answer was lost is found again by its clientData
  marker (the change listing since the old token shows it), a CRM create by the write-ahead link
  (`crm_creating`) matched against the persons read.
- Own writes are not echoed: after writing, the link holds the fingerprint of what the provider
  answered, so the echo (a new etag, a new update_time) compares equal and nothing happens.
- Deletions come only from explicit signals (person.deleted events, Google tombstones), never from
  absence, and only for records nobody edited since (deletions.py; merged persons: merges.py). More
  than `delete_share` of the linked contacts in one run pauses them until someone confirms them.
- The cap counts the whole Google account; creates stop there, updates continue, and the persons
  left out are kept as `left_out` links with the reason.
- At most one run per sync works at a time: a lease on the sync row, renewed after every batch and
  page read (`sync.lease_seconds`); a run killed with its lease held is resumed once the lease ran out.
- A share (a child sync, `parent_id`) fans the shared sync's linked persons out to a colleague's own
  Google account with the parent's settings: "edit" is a two-way sync, so the colleague's edits reach
  the CRM (and then the parent and every other share, which the runs trigger in turn); "read" syncs
  CRM -> Google only and reverts the colleague's edits, additions and deletions, counted as `reverted`."""
from __future__ import annotations

import logging
import socket
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from sqlalchemy import delete, select, update

from hub.connectors.google.client import (ContactLimitReached, PeopleClient,
                                          SyncTokenExpired, WriteOutcomeUnknown)
from hub.connectors.google.contacts import is_deleted
from hub.connectors.pipedrive.client import PipedriveClient
from hub.errors import Defer, Fatal, NeedsReauth
from hub.events import canonical_time, get_bookmark, set_bookmark, trace
from hub.oauth.tokens import ConnectionTokens
from hub.store import Connection, Installation, utcnow
from hub.store.models import ContactSync, SyncConflict, SyncLink, SyncRun

from .batches import BatchSteps
from .deletions import DeletionSteps
from .mapping import DEFAULT_FIELD_MAP, FieldMap, fingerprint, merge
from .merges import MergeSteps

log = logging.getLogger("hub.sync")
LEASE_SECONDS = 120
CRM_CHECKPOINT_EVERY = 25
ORG_IDS_MAX = 100  # Pipedrive v2 lists take at most 100 `ids`
DIRECTIONS = ("two_way", "crm_to_google", "google_to_crm")
POLICIES = ("newest", "crm", "google")


class SyncBusy(Defer):
    """Another run of this sync holds the lease: try again when it may have ended."""


class LeaseLost(SyncBusy):
    """The run's lease ran out and another run took the sync over, or the sync (a share) was removed:
    this run stops at its checkpoint, before writing the batch's links (the markers find them)."""


def bookmark_name(sync_id: int) -> str:
    return f"sync:{sync_id}"


@dataclass
class Link:
    id: int | None
    crm_id: str | None
    resource_name: str | None
    state: str
    base: dict[str, Any]
    crm_fp: str
    crm_version: str
    google_fp: str
    etag: str
    display: str = ""
    note: str = ""


@dataclass
class GoogleSide:
    record: dict[str, Any]
    fp: str
    raw: dict[str, Any]
    in_label: bool
    marker: str | None
    updated: str


@dataclass
class CrmSide:
    record: dict[str, Any]
    fp: str
    version: str
    raw: dict[str, Any]


@dataclass
class Counts:
    created_google: int = 0
    updated_google: int = 0
    deleted_google: int = 0
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


class SyncEngine(BatchSteps, DeletionSteps, MergeSteps):
    """`run()` does one run of sync `sync_id`. `after_batch(engine, what)` (tests, the CLI) is
    called after every committed checkpoint; `on_progress(phase, done, total)` for progress bars."""

    def __init__(self, services: Any, sync_id: int, *, trigger: str = "manual", job_id: int | None = None,
                 owner: str | None = None, after_batch: Callable[["SyncEngine", str], None] | None = None,
                 on_progress: Callable[[str, int, int | None], None] | None = None,
                 crm: PipedriveClient | None = None, google: PeopleClient | None = None):
        self.services = services
        self.db = services.db
        self.sync_id = sync_id
        self.trigger = trigger
        self.job_id = job_id
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self)}"
        self.after_batch = after_batch
        self.on_progress = on_progress
        self.crm = crm
        self.google = google
        self.counts = Counts()
        self.progress: dict[str, dict[str, Any]] = {}
        self.run_id: int | None = None
        settings = services.settings
        self.delete_pause_min = int(settings.get("sync.delete_pause_min", 5))
        self.lease_seconds = int(settings.get("sync.lease_seconds", LEASE_SECONDS))
        self.parent: ContactSync | None = None
        self.parent_records: dict[str, CrmSide] | None = None  # a share: the parent's linked persons
        self.reverted: list[str] = []
        self.google_writes = 0             # contacts the run changed in Google: their echoes follow its sync token
        self.deleted_names: set[str] = set()

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
        google_seen, google_deleted, next_token = self._read_google()
        self._resolve_write_ahead(crm_seen, google_seen)
        crm_deleted = {k for k, to in deleted_events.items() if not to} | self._apply_merges(
            {k: to for k, to in deleted_events.items() if to}, crm_seen, google_seen)
        plan = self.plan = self._plan(crm_seen, crm_deleted, google_seen, google_deleted)
        paused = self._deletions(plan)
        self._apply_google_updates(plan["google_updates"], plan)
        self._apply_google_creates(plan["google_creates"])
        self._apply_crm_writes(plan["crm_updates"], plan["crm_creates"])
        self._apply_label_adds(plan["label_adds"])
        self._apply_label_removes(plan["label_removes"])
        self._report_reverted()
        if next_token and self.google_writes >= PeopleClient.PAGE_SIZE_MAX:
            # fewer echoes fit in the next run's first page anyway, where they compare equal for free
            next_token = self._skip_own_echoes(next_token)
        self._checkpoint_cursors(final=True, next_token=next_token)
        parts = [f"{k.replace('_', ' ')} {v}" for k, v in self.counts.as_dict().items()
                 if v and k != "full_listing"]
        message = ", ".join(parts) or "nothing to do"
        if self.counts.left_out:
            message += f" (contact cap {self.sync.contact_cap}: {self.counts.left_out} left out)"
        if paused:
            return "paused", f"{message}; {paused}"
        return "done", message

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
            google_conn = s.get(Connection, sync.google_connection_id)
            if google_conn is None or google_conn.status == "disconnected":
                raise Fatal(f"sync {self.sync_id}: its Google account is no longer connected")
            if google_conn.status == "needs_reconnection":
                raise NeedsReauth("the Google connection needs to be reconnected", google_conn.id)
            crm_conn = s.scalar(select(Connection).where(
                Connection.installation_id == sync.installation_id, Connection.role == "crm",
                Connection.account_id == installation.installer_user_id, Connection.status != "disconnected"))
            if crm_conn is None:
                raise NeedsReauth("the installer's Pipedrive connection is missing")
            self.bookmark = get_bookmark(s, sync.installation_id, bookmark_name(sync.id)) or {}
            if self.crm is None:
                self.crm = PipedriveClient(crm_conn.api_base, ConnectionTokens(self.services, crm_conn.id))
            if self.google is None:
                self.google = PeopleClient(google_conn.api_base, ConnectionTokens(self.services, google_conn.id))
        self.fields = FieldMap(list(sync.field_map or DEFAULT_FIELD_MAP), group=sync.group_resource_name)
        self.read_mask = self.fields.read_mask()
        self.org_names: dict[int, str] = {}
        self.org_ids: dict[str, int] | None = None

    def _load_parent(self, s, sync: ContactSync) -> None:
        """A share runs with its sync's current settings; its mode decides the direction."""
        parent = s.get(ContactSync, sync.parent_id)
        if parent is None:
            raise Fatal(f"sync {self.sync_id}: the shared sync {sync.parent_id} is gone")
        s.expunge(parent)
        for key in ("field_map", "person_filter", "conflict_policy", "delete_policy", "contact_cap", "delete_share"):
            setattr(sync, key, getattr(parent, key))  # detached: the share's row is not changed
        sync.direction = "two_way" if sync.share_mode == "edit" else "crm_to_google"
        self.parent = parent

    def _load_parent_records(self) -> dict[str, CrmSide]:
        """The persons the shared label holds: the parent's linked persons as last synced."""
        out: dict[str, CrmSide] = {}
        with self.db.begin() as s:
            rows = s.execute(select(SyncLink.crm_id, SyncLink.base, SyncLink.crm_fingerprint, SyncLink.crm_version)
                             .where(SyncLink.sync_id == self.parent.id, SyncLink.state == "linked",
                                    SyncLink.crm_id.is_not(None)))
            for crm_id, base, fp, version in rows:
                out[crm_id] = CrmSide(dict(base or {}), fp or fingerprint(base or {}), version or "", {})
        return out

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

    def _checkpoint_cursors(self, *, final: bool, next_token: str | None) -> None:
        with self.db.begin() as s:
            value = dict(self.bookmark)
            if self._crm_high:
                value["crm_since"] = self._crm_high
            value["crm_event_id"] = self._event_high
            if next_token:
                value["google_sync_token"] = next_token
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

    def _request_related(self, s) -> None:
        """Fan-out: a sync's run is followed by runs of its shares; a share that changed the CRM asks
        for a run of its sync (which then reaches everyone). Requests coalesce, so this converges."""
        from .jobs import request_run

        if self.parent is None:
            for share_id in s.scalars(select(ContactSync.id).where(ContactSync.parent_id == self.sync_id,
                                                                   ContactSync.enabled.is_(True))).all():
                request_run(self.services, s, share_id, "fan_out")
        elif self.parent.enabled and (self.counts.created_crm or self.counts.updated_crm or self.counts.deleted_crm):
            request_run(self.services, s, self.parent.id, "share")

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

    # == links ====================================================================================
    def _load_links(self) -> dict[str, Link]:
        """All links of the sync, by CRM id (write-ahead links, without one, by `~resource name`)."""
        out: dict[str, Link] = {}
        columns = (SyncLink.id, SyncLink.crm_id, SyncLink.resource_name, SyncLink.state, SyncLink.base,
                   SyncLink.crm_fingerprint, SyncLink.crm_version, SyncLink.google_fingerprint, SyncLink.google_etag,
                   SyncLink.display_name, SyncLink.note)
        with self.db.begin() as s:  # plain rows, not ORM objects: 25,000 links stay small
            for r in s.execute(select(*columns).where(SyncLink.sync_id == self.sync_id)).yield_per(2000):
                link = Link(r.id, r.crm_id, r.resource_name, r.state, r.base or {}, r.crm_fingerprint,
                            r.crm_version, r.google_fingerprint, r.google_etag, r.display_name, r.note)
                out[r.crm_id if r.crm_id is not None else f"~{r.resource_name}"] = link
        self.by_resource = {l.resource_name: key for key, l in out.items() if l.resource_name}
        return out

    def _save_link(self, s, link: Link) -> None:
        values = dict(sync_id=self.sync_id, crm_id=link.crm_id, resource_name=link.resource_name, state=link.state,
                      note=link.note[:2000], display_name=link.display[:300], base=link.base,
                      crm_fingerprint=link.crm_fp, crm_version=link.crm_version, google_fingerprint=link.google_fp,
                      google_etag=link.etag or "", updated_at=utcnow())
        if link.id is None:
            row = SyncLink(**values)
            s.add(row)
            s.flush()
            link.id = row.id
        else:
            s.execute(update(SyncLink).where(SyncLink.id == link.id).values(**values))

    def _index_link(self, link: Link, old_key: str | None = None) -> None:
        if old_key and old_key in self.links and self.links[old_key] is link:
            del self.links[old_key]
        key = link.crm_id if link.crm_id is not None else f"~{link.resource_name}"
        self.links[key] = link
        if link.resource_name:
            self.by_resource[link.resource_name] = key

    def _drop_link(self, s, key: str) -> None:
        link = self.links.pop(key, None)
        if link is None:
            return
        if link.resource_name and self.by_resource.get(link.resource_name) == key:
            del self.by_resource[link.resource_name]
        if link.id is not None:
            s.execute(delete(SyncLink).where(SyncLink.id == link.id))

    # == reading ==================================================================================
    def _person_filter(self) -> dict[str, Any]:
        f = self.sync.person_filter or {}
        return {k: int(f[k]) for k in ("owner_id", "org_id") if f.get(k) not in (None, "")}

    def _org_name(self, org_id: int) -> str:
        if org_id not in self.org_names:
            try:
                self.org_names[org_id] = str((self.crm.organization(org_id) or {}).get("name") or "")
            except Fatal:
                self.org_names[org_id] = ""
        return self.org_names[org_id]

    @staticmethod
    def _org_of(person: dict[str, Any]) -> int | None:
        org = person.get("org_id")
        if isinstance(org, dict):
            org = org.get("value") or org.get("id")
        return int(org) if org else None

    def _load_orgs(self, persons: list[dict[str, Any]]) -> None:
        """Names of the persons' organizations not known yet, 100 ids per call (v2 `ids`), instead
        of one call per organization."""
        if not any(r["crm"] == "org_name" for r in self.fields.rows):
            return
        missing = sorted({o for o in map(self._org_of, persons) if o is not None and o not in self.org_names})
        for start in range(0, len(missing), ORG_IDS_MAX):
            chunk = missing[start:start + ORG_IDS_MAX]
            for org in self.crm.iter_cursor("/api/v2/organizations", {"ids": ",".join(map(str, chunk))}):
                self.org_names[int(org["id"])] = str(org.get("name") or "")
            for org_id in chunk:
                self.org_names.setdefault(org_id, "")  # deleted or not visible: no organization name

    def _crm_record(self, person: dict[str, Any], *, keep_raw: bool = True) -> CrmSide:
        org = self._org_of(person) if any(r["crm"] == "org_name" for r in self.fields.rows) else None
        if org is not None:
            self._org_name(org)
        record = self.fields.from_crm(person, self.org_names)
        return CrmSide(record, fingerprint(record), canonical_time(person.get("update_time")),
                       person if keep_raw else {})

    def _read_crm(self) -> dict[str, CrmSide]:
        since = self.bookmark.get("crm_since")
        self._crm_high = since
        seen: dict[str, CrmSide] = {}
        params = self._person_filter()
        buffer: list[dict[str, Any]] = []

        def take() -> None:
            self._load_orgs(buffer)
            for person in buffer:
                side = self._crm_record(person, keep_raw=False)  # 25,000 raw persons are not kept
                seen[str(person["id"])] = side
                if side.version and (self._crm_high is None or side.version > self._crm_high):
                    self._crm_high = side.version
            buffer.clear()
            self._phase("read_crm", len(seen))
            self._renew()

        for person in self.crm.iter_persons(updated_since=_rfc(since) if since else None, **params):
            if not person.get("is_deleted"):
                buffer.append(person)
            if len(buffer) >= self.crm.page_size:
                take()
        take()
        # persons the cap left out earlier come back when there may be room now
        for key, link in list(self.links.items()):
            if link.state == "left_out" and key not in seen:
                try:
                    seen[key] = self._crm_record(self.crm.person(int(key)))
                except Fatal:
                    continue
        self._phase("read_crm", len(seen), len(seen), save=True)
        return seen

    def _google_side(self, person: dict[str, Any]) -> GoogleSide:
        record = self.fields.from_google(person)
        groups = [m.get("contactGroupMembership", {}).get("contactGroupResourceName")
                  for m in person.get("memberships") or []]
        marker = next((c.get("value") for c in person.get("clientData") or []
                       if c.get("key") == self.fields.contact_mapping.marker_key), None)
        sources = (person.get("metadata") or {}).get("sources") or []
        updated = max((canonical_time(src.get("updateTime")) for src in sources if src.get("updateTime")), default="")
        return GoogleSide(record, fingerprint(record), person, self.sync.group_resource_name in groups,
                          str(marker) if marker else None, updated)

    def _read_google(self) -> tuple[dict[str, GoogleSide], set[str], str | None]:
        """An expired token (also in the middle of a listing) means a full listing; tombstones read
        before it expired are explicit deletions and still count (a full listing shows none)."""
        token, tombstones = self.bookmark.get("google_sync_token"), set()
        try:
            return self._list_google(token, tombstones)
        except SyncTokenExpired:
            with self.db.begin() as s:
                trace(s, self.sync.installation_id, "sync.full_listing", "Google's sync token expired: comparing "
                      f"every contact ({len(tombstones)} deletion(s) read before it expired still count; no "
                      "deletions are inferred from a full listing)", status="info", sync_id=self.sync_id,
                      run_id=self.run_id)
            seen, deleted, next_token = self._list_google(None, set())
            return seen, deleted | tombstones, next_token

    def _list_google(self, token: str | None, deleted: set[str]) -> tuple[dict[str, GoogleSide], set[str], str | None]:
        seen: dict[str, GoogleSide] = {}
        next_token = None
        self.counts.full_listing = token is None
        self.listed_total = None
        done = 0
        for page in self.google.iter_connections(self.read_mask, sync_token=token):
            if not page.incremental and page.page_token is None:  # the whole account, as the cap counts it
                empty = page.is_last and not len(page)  # Google leaves out a zero totalItems
                self.listed_total = page.total_items if page.total_items is not None else (0 if empty else None)
            for person in page:
                name = person.get("resourceName")
                previous = list((person.get("metadata") or {}).get("previousResourceNames") or [])
                self._rekey(name, previous)
                if is_deleted(person):
                    if page.incremental:
                        deleted.add(name)
                        deleted.update(previous)
                    continue
                side = self._google_side(person)
                if side.in_label or name in self.by_resource:
                    seen[name] = side
            done += len(page)
            next_token = page.next_sync_token or next_token
            self._renew()
            self._phase("read_google", done, page.total_items if not page.incremental else None)
        self._phase("read_google", done, done, save=True)
        return seen, deleted, next_token

    def _skip_own_echoes(self, token: str) -> str:
        """The run's own Google writes come after its sync token, so the next run would read them all
        back (25,000 contacts after a first run). Read them now and move the token past them, but
        only if every change since is one of ours: anything else (a user's edit during the run)
        keeps the old token, so the next run sees it."""
        newer = None
        try:
            for page in self.google.iter_connections(self.read_mask, sync_token=token):
                for person in page:
                    if not self._is_own_echo(person):
                        return token
                newer = page.next_sync_token or newer
                self._renew()
        except SyncTokenExpired:
            return token
        return newer or token

    def _is_own_echo(self, person: dict[str, Any]) -> bool:
        name = person.get("resourceName")
        key = self.by_resource.get(name)
        if is_deleted(person):
            return key is None or name in self.deleted_names
        side = self._google_side(person)
        if key is None:
            return not side.in_label  # outside the label and not ours: no business of this sync
        link = self.links.get(key)
        return link is not None and side.in_label and side.fp == link.google_fp

    def _rekey(self, name: str, previous: list[str]) -> None:
        """Google gave a contact a new resource name (previousResourceNames): move its link."""
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

    # == deciding =================================================================================
    def _resolve_write_ahead(self, crm_seen: dict[str, CrmSide], google_seen: dict[str, GoogleSide]) -> None:
        """A killed run may have created CRM persons for Google contacts without linking them: the
        person read now whose values equal the contact's is that person, not a new one."""
        pending = [(k, l) for k, l in self.links.items() if l.state == "crm_creating"]
        if not pending:
            return
        linked = {l.crm_id for l in self.links.values() if l.crm_id}
        by_fp: dict[str, str] = {}
        for crm_id, side in crm_seen.items():
            if crm_id not in linked:
                by_fp.setdefault(side.fp, crm_id)
        with self.db.begin() as s:
            for key, link in pending:
                g = google_seen.get(link.resource_name)
                fp = g.fp if g else fingerprint(link.base)
                crm_id = by_fp.pop(fp, None)
                if crm_id is None:
                    continue
                link.crm_id, link.state = crm_id, "linked"
                link.crm_fp, link.crm_version = crm_seen[crm_id].fp, crm_seen[crm_id].version
                self._save_link(s, link)
                self._index_link(link, key)

    def _plan(self, crm_seen, crm_deleted, google_seen, google_deleted) -> dict[str, Any]:
        direction, policy = self.sync.direction, self.sync.conflict_policy
        to_google = direction in ("two_way", "crm_to_google")
        to_crm = direction in ("two_way", "google_to_crm")
        pending = self.sync.pending_deletes or {}
        on_hold = set(pending.get("crm") or []) | {self.by_resource.get(r) for r in pending.get("google") or []}
        plan: dict[str, Any] = {"google_updates": {}, "google_creates": [], "crm_updates": {}, "crm_creates": [],
                                "google_deletes": [], "crm_deletes": [], "label_adds": [], "label_removes": [],
                                "drop_links": []}
        read_only = self.parent is not None and self.sync.share_mode != "edit"
        recreate: set[str] = set()  # a read-only colleague deleted these: they come back
        conflicts: list[dict[str, Any]] = []

        # deletion signals
        for crm_id in crm_deleted:
            link = self.links.get(crm_id)
            if link is None or link.state != "linked" or crm_id in on_hold:
                continue
            if to_google and link.resource_name and link.resource_name not in google_deleted:
                plan["google_deletes"].append(crm_id)
            else:
                plan["drop_links"].append(crm_id)
        for name in google_deleted:
            key = self.by_resource.get(name)
            link = self.links.get(key) if key else None
            if link is None or link.state != "linked" or key in on_hold or key in crm_deleted:
                if link is not None and key in crm_deleted:
                    plan["drop_links"].append(key)
                continue
            if to_crm and link.crm_id:
                plan["crm_deletes"].append(key)
            else:
                plan["drop_links"].append(key)
                if read_only and link.crm_id:
                    recreate.add(key)
                    self.reverted.append(f"{link.display or key}: deleted")
        gone = set(plan["google_deletes"]) | set(plan["crm_deletes"]) | set(plan["drop_links"]) | on_hold | crm_deleted

        # linked pairs with a change on either side
        keys = {k for k in crm_seen if k in self.links and self.links[k].state == "linked"}
        keys |= {self.by_resource[r] for r in google_seen if r in self.by_resource}
        for key in sorted(keys - gone, key=_sort_key):
            link = self.links[key]
            if link.state != "linked" or not link.crm_id:
                continue
            c = crm_seen.get(key)
            g = google_seen.get(link.resource_name)
            crm_changed = c is not None and c.fp != link.crm_fp
            google_changed = g is not None and g.fp != link.google_fp
            if g is not None and not g.in_label and to_google:
                plan["label_adds"].append(link.resource_name)
                if read_only:
                    self.reverted.append(f"{link.display or key}: removed from the label")
            if not crm_changed and not google_changed:
                continue
            crm_rec = c.record if c else link.base
            google_rec = g.record if g else link.base
            if direction == "crm_to_google":
                merged, found = dict(crm_rec), []
                if read_only and google_changed and fingerprint(merged) != g.fp:
                    self.reverted.append(f"{link.display or key}: edited")
            elif direction == "google_to_crm":
                merged, found = dict(google_rec), []
            else:
                crm_newer = (c.version if c else "") >= (g.updated if g else "")
                merged, found = merge(link.base, crm_rec, google_rec, self.fields.targets, policy=policy,
                                      crm_newer=crm_newer)
                if crm_changed and google_changed:
                    conflicts += [{"crm_id": key, "resource_name": link.resource_name or "", "field": f,
                                   "crm_value": cv, "google_value": gv, "winner": w} for f, cv, gv, w in found]
            self._queue_writes(plan, key, link, merged, c, g, to_google, to_crm)

        # CRM persons without a Google contact
        markers: dict[str, str] = {}
        for name, g in google_seen.items():
            if name not in self.by_resource and g.marker:
                markers.setdefault(g.marker, name)
        creates: list[str] = []
        candidates = crm_seen
        if self.parent_records is not None:  # a share holds what the shared label holds
            candidates = {k: crm_seen.get(k) or side for k, side in self.parent_records.items()
                          if k not in self.links or self.links[k].state == "left_out" or k in recreate}
        for key in sorted(candidates, key=_sort_key):
            link = self.links.get(key) if key not in recreate else None
            if key in crm_deleted or (link is not None and link.state not in ("left_out",)):
                continue
            c = candidates[key]
            if key in markers:  # our own contact from an earlier (killed) run or a lost link
                name = markers.pop(key)
                g = google_seen[name]
                new = link or Link(None, key, name, "linked", {}, "", "", "", "")
                new.resource_name, new.state, new.note = name, "linked", ""
                new.base, new.crm_fp, new.crm_version = dict(c.record), c.fp, c.version
                new.google_fp, new.etag, new.display = g.fp, g.raw.get("etag", ""), self.fields.display(c.record)
                self._index_link(new)
                with self.db.begin() as s:
                    self._save_link(s, new)
                if direction == "google_to_crm":
                    continue
                self._queue_writes(plan, key, new, dict(c.record), c, g, to_google, False)
                continue
            if to_google:
                creates.append(key)
        plan["google_creates"] = [(k, candidates[k]) for k in creates]

        # Google contacts in the label without a CRM person
        for name, g in sorted(google_seen.items()):
            if name in self.by_resource:  # a write-ahead the run before did not get to: create it now
                if self.links[self.by_resource[name]].state == "crm_creating" and g.in_label and to_crm:
                    plan["crm_creates"].append((name, g))
                continue
            if g.marker:
                if g.marker in self.links or not to_google and not to_crm:
                    continue
                # a contact of a person not read this run (unchanged): link it if the person exists
                try:
                    c = self._crm_record(self.crm.person(int(g.marker)))
                except (Fatal, ValueError):
                    continue  # the person is gone: never resurrect it from a stale copy
                link = Link(None, g.marker, name, "linked", dict(c.record), c.fp, c.version, g.fp,
                            g.raw.get("etag", ""), self.fields.display(c.record))
                self._index_link(link)
                with self.db.begin() as s:
                    self._save_link(s, link)
                if c.fp != g.fp:
                    merged = c.record if direction != "google_to_crm" else g.record
                    self._queue_writes(plan, g.marker, link, dict(merged), c, g, to_google, to_crm)
                continue
            if g.in_label and to_crm:
                plan["crm_creates"].append((name, g))
            elif g.in_label and read_only:  # a read-only colleague added it to the shared label
                plan["label_removes"].append(name)
                self.reverted.append(f"{self.fields.display(g.record) or name}: added to the label")
        self.conflicts = conflicts
        self._record_conflicts(conflicts)
        return plan

    def _queue_writes(self, plan, key, link, merged, c, g, to_google, to_crm) -> None:
        merged_fp = fingerprint(merged)
        google_fp = g.fp if g else link.google_fp
        crm_fp = c.fp if c else link.crm_fp
        if to_google and merged_fp != google_fp:
            plan["google_updates"][key] = merged
        elif g is not None:
            link.google_fp, link.etag = g.fp, g.raw.get("etag", link.etag)
        if to_crm and merged_fp != crm_fp:
            plan["crm_updates"][key] = merged
        elif c is not None:
            link.crm_fp, link.crm_version = c.fp, c.version
        if key not in plan["google_updates"] and key not in plan["crm_updates"]:
            link.base = dict(merged)
            with self.db.begin() as s:
                self._save_link(s, link)
        self._current = getattr(self, "_current", {})
        if g is not None:
            self._current[key] = g.raw

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

    # == writing to Google ========================================================================
    def _apply_google_updates(self, updates: dict[str, dict[str, Any]], plan: dict[str, Any]) -> None:
        keys = [k for k in sorted(updates, key=_sort_key) if self.links[k].resource_name]
        current = getattr(self, "_current", {})
        missing = [self.links[k].resource_name for k in keys if k not in current]
        if missing:  # only the CRM side changed: the contact as it is now (for its etag and kept parts)
            got = self.google.batch_get(missing, self.read_mask)
            for k in keys:
                if k not in current and got.get(self.links[k].resource_name):
                    current[k] = got[self.links[k].resource_name]
                    self._merge_fresh(k, current[k], updates)
        keys = [k for k in keys if k in current]
        total, done = len(keys), 0
        mask = self.fields.update_mask()
        for start in range(0, len(keys), PeopleClient.BATCH_UPDATE_MAX):
            chunk = keys[start:start + PeopleClient.BATCH_UPDATE_MAX]
            results = self._update_chunk(chunk, updates, current, mask)
            with self.db.begin() as s:
                for key in chunk:
                    person = results.get(self.links[key].resource_name)
                    if person is None:
                        continue
                    link = self.links[key]
                    side = self._google_side(person)
                    link.google_fp, link.etag = side.fp, person.get("etag", "")
                    if person.get("resourceName") and person["resourceName"] != link.resource_name:
                        self.by_resource.pop(link.resource_name, None)  # Google renamed it (FACTS §5)
                        link.resource_name = person["resourceName"]
                        self.by_resource[link.resource_name] = key
                        self.counts.relinked += 1
                    link.base = dict(updates[key])
                    link.display = self.fields.display(updates[key])
                    if key not in plan["crm_updates"]:
                        self._save_link(s, link)
                    self.counts.updated_google += 1
                done += len(chunk)
                self._phase("update_google", done, total)
                self._checkpoint(s, "update_google")
            self._after("update_google")

    def _merge_fresh(self, key: str, person: dict[str, Any], updates: dict[str, dict[str, Any]]) -> None:
        """A contact read after the listing may carry an edit made since: merge it like a conflict
        instead of overwriting it (two-way), so neither side's change is lost."""
        link = self.links[key]
        side = self._google_side(person)
        if side.fp == link.google_fp or self.sync.direction != "two_way":
            return
        merged, found = merge(link.base, updates[key], side.record, self.fields.targets,
                              policy=self.sync.conflict_policy, crm_newer=False)
        self._record_conflicts([{"crm_id": key, "resource_name": link.resource_name or "", "field": f,
                                 "crm_value": c, "google_value": g, "winner": w} for f, c, g, w in found])
        updates[key] = merged
        if fingerprint(merged) != link.crm_fp:  # their edit must reach the CRM too
            self.plan["crm_updates"][key] = merged

    def _room(self, wanted: int) -> int:
        """How many contacts may still be added without passing the cap (the whole account counts).
        A full listing in this run already counted them (deletions since only lower the count)."""
        total = getattr(self, "listed_total", None)
        if total is None:
            first = next(iter(self.google.iter_connections("metadata", request_sync_token=False, page_size=1)), None)
            total = (first.total_items if first and first.total_items is not None else None)
        if total is None:
            total = sum(len(p) for p in self.google.iter_connections("metadata", request_sync_token=False))
        self.account_total = total
        return max(0, min(wanted, self.sync.contact_cap - total))

    def _apply_google_creates(self, creates: list[tuple[str, CrmSide]]) -> None:
        if not creates:
            return
        room = self._room(len(creates))
        allowed, left = creates[:room], creates[room:]
        total, done = len(allowed), 0
        for start in range(0, len(allowed), PeopleClient.BATCH_CREATE_MAX):
            chunk = allowed[start:start + PeopleClient.BATCH_CREATE_MAX]
            bodies = [self.fields.to_google(c.record, key, None) for key, c in chunk]
            self.google_writes += len(chunk)
            sent = len(chunk)
            try:
                chunk, created = self._create_batch(chunk, bodies)
            except ContactLimitReached:
                left = allowed[start:] + left
                break
            except WriteOutcomeUnknown:
                # the contacts may exist: the next attempt finds them by their marker instead of creating again
                raise
            with self.db.begin() as s:
                for (key, c), person in zip(chunk, created):
                    link = self.links.get(key) or Link(None, key, None, "linked", {}, "", "", "", "")
                    side = self._google_side(person)
                    link.resource_name, link.state, link.note = person.get("resourceName"), "linked", ""
                    link.base, link.crm_fp, link.crm_version = dict(c.record), c.fp, c.version
                    link.google_fp, link.etag, link.display = side.fp, person.get("etag", ""), self.fields.display(c.record)
                    self._save_link(s, link)
                    self._index_link(link)
                    self.counts.created_google += 1
                done += sent
                self._phase("create_google", done, total)
                self._checkpoint(s, "create_google")
            self._after("create_google")
        if left:
            self._leave_out(left, added=done)

    def _leave_out(self, left: list[tuple[str, CrmSide]], added: int = 0) -> None:
        total = getattr(self, "account_total", None)
        total = None if total is None else total + added  # what the account holds now
        reason = (f"not added: the Google account holds {total} contacts and the cap is {self.sync.contact_cap}"
                  if total is not None else f"not added: the Google account reached its contact limit")
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
            self.google_writes += len(names)
            self.google.modify_members(self.sync.group_resource_name, add=names)

    def _apply_label_removes(self, names: list[str]) -> None:
        if names and self.sync.group_resource_name:
            self.google_writes += len(names)
            self.google.modify_members(self.sync.group_resource_name, remove=names)

    def _report_reverted(self) -> None:
        """A read-only share's run undid the colleague's changes: count them and say which."""
        if not self.reverted:
            return
        self.counts.reverted += len(self.reverted)
        with self.db.begin() as s:
            trace(s, self.sync.installation_id, "sync.reverted", f"{len(self.reverted)} change(s) in a read-only "
                  f"share were reverted: {'; '.join(self.reverted[:20])}"[:2000], status="info",
                  sync_id=self.sync_id, run_id=self.run_id, changes=self.reverted[:200])

    # == writing to the CRM =======================================================================
    def _resolve_org(self, name: str) -> int | None:
        if self.org_ids is None:
            self.org_ids = {}
            for org in self.crm.iter_cursor("/api/v2/organizations"):
                self.org_ids.setdefault(str(org.get("name") or "").strip(), int(org["id"]))
        if name and name not in self.org_ids:
            try:
                org = self.crm._data("POST", "/api/v2/organizations", json={"name": name}) or {}
                self.org_ids[name] = int(org["id"])
            except (Fatal, KeyError):
                log.info("sync %s: organization %r not found in the CRM and could not be created", self.sync_id, name)
                return None
        return self.org_ids.get(name)

    def _crm_body(self, record: dict[str, Any]) -> dict[str, Any]:
        org = record.get("organizations.name")
        ids = {org: self._resolve_org(org)} if org and any(r["crm"] == "org_name" for r in self.fields.rows) else {}
        body = self.fields.to_crm(record, {k: v for k, v in ids.items() if v})
        return body

    def _apply_crm_writes(self, updates: dict[str, dict[str, Any]], creates: list[tuple[str, GoogleSide]]) -> None:
        total = len(updates) + len(creates)
        done = 0
        marker_updates: dict[str, dict[str, Any]] = {}
        for key in sorted(updates, key=_sort_key):
            link = self.links[key]
            try:
                person = self.crm.update_person(int(link.crm_id), **self._crm_body(updates[key]))
            except Fatal as exc:
                if exc.status == 404:
                    continue  # deleted in the CRM: its delete event decides, not this update
                raise
            side = self._crm_record(person)
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
            link = self.links.get(f"~{name}") or Link(None, None, name, "crm_creating", {}, "", "", "", "")
            link.base, link.google_fp, link.etag = dict(g.record), g.fp, g.raw.get("etag", "")
            link.display = self.fields.display(g.record)
            with self.db.begin() as s:  # write-ahead: a killed run finds this person instead of creating it again
                self._save_link(s, link)
                self._index_link(link)
            body = self._crm_body(g.record)
            person = self.crm._data("POST", "/api/v2/persons", json=body)
            side = self._crm_record(person)
            link.crm_id, link.state = str(person["id"]), "linked"
            link.crm_fp, link.crm_version, link.base = side.fp, side.version, dict(g.record)
            with self.db.begin() as s:
                self._save_link(s, link)
                self._index_link(link, key)
                self.counts.created_crm += 1
                done += 1
                self._phase("write_crm", done, total)
                self._checkpoint(s, "write_crm")
            marker_updates[link.crm_id] = g.record
            self._current = getattr(self, "_current", {})
            self._current[link.crm_id] = g.raw
            self._after("write_crm")
        if marker_updates:  # the new contacts get our marker, so a lost link is found again
            self._apply_google_updates(marker_updates, {"crm_updates": {}})
            self.counts.updated_google -= len(marker_updates)
        with self.db.begin() as s:
            self._checkpoint(s, "write_crm")


def _sort_key(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (1 << 62, key)


def _rfc(value: str) -> str:
    return value if value.endswith("Z") else value + "Z"
