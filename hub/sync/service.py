"""Creating, changing and inspecting syncs: one place for the pages, the JSON API and the CLI.

Input is validated completely before anything is written or any label is created, and errors
name the field (`SyncInputError.fields`)."""
from __future__ import annotations

import re
import threading
import time
from typing import Any, Mapping

from sqlalchemy import func, select

from hub.connectors.contract.contacts import GroupNameTaken
from hub.connectors.ids import InvalidId, check_id
from hub.errors import Fatal, NeedsReauth, Retriable
from hub.events import trace
from hub.inputs import MAX_INT, InputError, to_int, to_number
from hub.mail import queue_mail
from hub.store import AuditEvent, Bookmark, Connection, Installation, InstallationUser, RunLog, utcnow
from hub.store.models import ContactSync, SyncConflict, SyncLink, SyncRun

from .mapping import DEFAULT_FIELD_MAP, STORE_TARGETS, MappingError, validate_field_map
from .planner import DIRECTIONS, POLICIES
from .policy import DEFAULT_DELETE_POLICY, DELETE_POLICIES
from .shares import share_direction
from .sides import crm_connection, open_source, open_store, source_title, store_connections, store_title, stores
from .trigger import request_run

SHARE_MODES = {"edit": "can edit", "read": "read only"}
PERSON_FILTERS = ("owner_id", "org_id")
FIELDS = ("name", "store_connection_id", "group", "new_group_name", "direction", "person_filter", "field_map",
          "conflict_policy", "delete_policy", "schedule_seconds", "delete_share", "contact_cap", "enabled")


class ShareRefused(PermissionError):
    """A user (not an admin) asked for more than their own share allows; the message names the field."""


class SyncInputError(ValueError):
    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


def crm_title(session, installation_id: int) -> str:
    installation = session.get(Installation, installation_id)
    return source_title(installation.provider if installation is not None else None)


def page_texts(session, installation_id: int, connection_id: int | None = None) -> dict[str, Any]:
    """What the pages call the two sides and offer to choose, in the connectors' own titles."""
    crm = crm_title(session, installation_id)
    connection = session.get(Connection, connection_id) if connection_id else None
    store = store_title(connection.provider if connection is not None else None)
    known = stores()
    store_name = connection.provider if connection is not None else (known[0].name if known else "")
    return {"titles": {"crm": crm, "store": store, "store_name": store_name},
            "stores": [{"name": c.name, "title": c.title} for c in known],
            "directions": {"two_way": "Two-way", "crm_to_store": f"{crm} → {store}", "store_to_crm": f"{store} → {crm}"},
            "policies": {"newest": "Newest change wins (per field)", "crm": f"{crm} wins", "store": f"{store} wins"},
            "targets": STORE_TARGETS}


_FIELDS_CACHE: dict[tuple[int, int], tuple[float, list[dict[str, str]]]] = {}
_FIELDS_LOCK = threading.Lock()


def crm_fields(services: Any, installation_id: int) -> list[dict[str, str]]:
    """The CRM's person fields a mapping may use (the page's suggestions); none when unreadable.
    Kept per connection for the catalog time (`rules.catalog_seconds`): every page view shows them."""
    with services.db.begin() as s:
        installation = s.get(Installation, installation_id)
        connection = crm_connection(s, installation) if installation is not None else None
        if connection is None:
            return []
        s.expunge(connection)
        provider = installation.provider
    now, key = time.monotonic(), (id(services), connection.id)
    with _FIELDS_LOCK:
        cached = _FIELDS_CACHE.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    try:
        found = [{"key": f.key, "label": f.label}
                 for f in open_source(services, provider, connection).field_catalog()]
    except (Fatal, Retriable, NeedsReauth, LookupError):
        return []
    with _FIELDS_LOCK:
        _FIELDS_CACHE[key] = (now + float(services.settings.get("rules.catalog_seconds", 300.0)), found)
    return found


def labels(services: Any, connection: Connection) -> list[dict[str, Any]]:
    """The account's own labels (system groups cannot be a sync's label)."""
    return [{"resource_name": g.id, "name": g.name, "members": g.members}
            for g in open_store(services, connection).groups()]


def _int(data: Mapping[str, Any], key: str, errors: dict[str, str], low: int, high: int, default: int) -> int:
    raw = data.get(key, default)
    if raw is None or raw == "":
        return default
    try:
        return to_int(raw, key, low=low, high=high)
    except InputError as exc:
        errors.update(exc.fields)
        return default


def _id(value: Any) -> int:
    """A connection id as sent (number or digits); 0 (names nothing) for anything else."""
    try:
        return to_int(value or 0, "id", low=0, high=MAX_INT)
    except InputError:
        return 0


def validate(services: Any, session, installation_id: int, data: Mapping[str, Any],
             existing: ContactSync | None = None) -> dict[str, Any]:
    """Clean values for a ContactSync, or SyncInputError naming every bad field."""
    settings = services.settings
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}

    def pick(key, default):
        return data[key] if key in data else (getattr(existing, key) if existing is not None else default)

    out["name"] = str(pick("name", "") or "").strip()[:200]
    if not out["name"]:
        errors["name"] = "give the sync a name"
    conns = {c.id: c for c in store_connections(session, installation_id)}
    conn_id = _id(pick("store_connection_id", 0))
    if conn_id not in conns:
        title = store_title(next(iter(conns.values())).provider if conns else None)
        errors["store_connection_id"] = f"connect a {title} account first, then choose it" if not conns \
            else f"choose one of the connected {title} accounts"
    out["store_connection_id"] = conn_id
    group = str(data.get("group") or "").strip()
    new_name = str(data.get("new_group_name") or "").strip()
    if existing is None or "group" in data or new_name:
        if group == "__new__" or (not group and new_name):
            if not new_name:
                errors["new_group_name"] = "name the new label"
            elif len(new_name) > 200:
                errors["new_group_name"] = "at most 200 characters"
            out["new_group_name"] = new_name
        elif group and conn_id in conns:
            try:   # the label's name goes into API paths: its connector says what a valid one is
                out["group_resource_name"] = check_id(conns[conn_id].provider, "contact_group", group, "group")
            except InvalidId as exc:
                errors["group"] = f"pick one of the account's labels or create a new one ({exc.message})"
        else:
            errors["group"] = "pick one of the account's labels or create a new one"
    out["direction"] = str(pick("direction", "two_way"))
    if out["direction"] not in DIRECTIONS:
        errors["direction"] = f"one of {', '.join(DIRECTIONS)}"
    out["conflict_policy"] = str(pick("conflict_policy", "newest"))
    if out["conflict_policy"] not in POLICIES:
        errors["conflict_policy"] = f"one of {', '.join(POLICIES)}"
    out["delete_policy"] = str(pick("delete_policy", DEFAULT_DELETE_POLICY) or DEFAULT_DELETE_POLICY)
    if out["delete_policy"] not in DELETE_POLICIES:
        errors["delete_policy"] = f"one of {', '.join(DELETE_POLICIES)}"
    raw_filter = pick("person_filter", {}) or {}
    if not isinstance(raw_filter, Mapping):
        errors["person_filter"] = "expected {owner_id} or {org_id} (or nothing for all persons)"
        raw_filter = {}
    clean_filter = {}
    crm = crm_title(session, installation_id)
    for key in raw_filter:
        if key not in PERSON_FILTERS:
            errors["person_filter"] = f"unknown filter {key} ({', '.join(PERSON_FILTERS)})"
        elif raw_filter[key] not in (None, ""):
            try:
                clean_filter[key] = to_int(raw_filter[key], f"person_filter.{key}", low=1, high=MAX_INT)
            except InputError:
                errors[f"person_filter.{key}"] = f"expected a {crm} id"
    out["person_filter"] = clean_filter
    try:
        out["field_map"] = validate_field_map(pick("field_map", DEFAULT_FIELD_MAP), source_title=crm)
    except MappingError as exc:
        errors[exc.field] = exc.message
    out["schedule_seconds"] = _int(data, "schedule_seconds", errors, 0, 7 * 86400,
                                   existing.schedule_seconds if existing else settings["sync.default_schedule_seconds"])
    if out["schedule_seconds"] and out["schedule_seconds"] < 60 and "schedule_seconds" not in errors:
        errors["schedule_seconds"] = "at least 60 seconds (0 = only on demand)"
    out["contact_cap"] = _int(data, "contact_cap", errors, 1, settings["sync.contact_cap"],
                              existing.contact_cap if existing else settings["sync.contact_cap"])
    try:
        out["delete_share"] = to_number(pick("delete_share", settings["sync.delete_share"]), "delete_share",
                                        low=0, high=1)
    except InputError:
        errors["delete_share"] = "a share between 0 and 1"
    enabled = pick("enabled", True)
    out["enabled"] = enabled if isinstance(enabled, bool) else str(enabled).lower() in ("1", "true", "on", "yes")
    if errors:
        raise SyncInputError(errors)
    return out


def _label(services: Any, connection: Connection, values: dict[str, Any]) -> tuple[str, str]:
    """Create the new label (a retried create adopts the existing one), or check the chosen one."""
    store = open_store(services, connection)
    try:
        if values.get("new_group_name"):
            group = store.create_group(values["new_group_name"])
            return group.id, group.name or values["new_group_name"]
        group = store.group(values["group_resource_name"])
    except (Fatal, Retriable, NeedsReauth) as exc:
        raise SyncInputError({"group": f"{store_title(connection.provider)} refused: {exc}"}) from None
    if group is None:  # gone, or a system group: no label a sync can hold
        raise SyncInputError({"group": "pick one of the account's labels or create a new one"})
    return group.id, group.name


def create(services: Any, installation_id: int, by: str, data: Mapping[str, Any]) -> ContactSync:
    with services.db.begin() as s:
        values = validate(services, s, installation_id, data)
        connection = s.get(Connection, values["store_connection_id"])
        s.expunge(connection)
    group, group_name = _label(services, connection, values)
    values.pop("new_group_name", None)
    values.update(group_resource_name=group, group_name=group_name)
    with services.db.begin() as s:
        sync = ContactSync(installation_id=installation_id, created_by=by, status="idle", status_message="",
                           pending_deletes={}, created_at=utcnow(), updated_at=utcnow(), **values)
        s.add(sync)
        s.flush()
        s.add(AuditEvent(installation_id=installation_id, actor=by, action="sync.created",
                         detail={"sync_id": sync.id, "label": group_name}))
        s.expunge(sync)
    return sync


def change(services: Any, installation_id: int, sync_id: int, by: str, data: Mapping[str, Any]) -> ContactSync:
    with services.db.begin() as s:
        sync = get(s, installation_id, sync_id)
        if sync.parent_id is not None:
            raise SyncInputError({"sync_id": "this is a share of another sync: change its mode on that sync's page"})
        values = validate(services, s, installation_id, data, existing=sync)
        connection = s.get(Connection, values["store_connection_id"])
        s.expunge(connection)
    if "new_group_name" in values or "group_resource_name" in values:
        group, group_name = _label(services, connection, values)
        values.pop("new_group_name", None)
        values.update(group_resource_name=group, group_name=group_name)
    with services.db.begin() as s:
        sync = get(s, installation_id, sync_id)
        if (values["store_connection_id"] != sync.store_connection_id
                or values.get("group_resource_name", sync.group_resource_name) != sync.group_resource_name):
            raise SyncInputError({"group": "the account and label of a sync cannot change: create another sync"})
        for key, value in values.items():
            setattr(sync, key, value)
        sync.updated_at = utcnow()
        for share in s.scalars(select(ContactSync).where(ContactSync.parent_id == sync_id)):
            share.field_map, share.enabled, share.updated_at = sync.field_map, sync.enabled, utcnow()
        s.add(AuditEvent(installation_id=installation_id, actor=by, action="sync.changed",
                         detail={"sync_id": sync.id, "fields": sorted(k for k in data if k in FIELDS)}))
        s.flush()
        s.expunge(sync)
    return sync


def get(session, installation_id: int, sync_id: int) -> ContactSync:
    sync = session.get(ContactSync, sync_id)
    if sync is None or sync.installation_id != installation_id:
        raise LookupError("sync_id: no such sync")
    return sync


def run_now(services: Any, installation_id: int, sync_id: int, by: str) -> int | None:
    with services.db.begin() as s:
        get(s, installation_id, sync_id)
        job = request_run(services, s, sync_id, "manual")
        trace(s, installation_id, "sync.requested", f"{by} asked for a run" + ("" if job else " (one is already waiting)"),
              status="info", sync_id=sync_id, job_id=job)
    return job


def decide_deletes(services: Any, installation_id: int, sync_id: int, by: str, confirm: bool) -> dict[str, Any]:
    """Confirm the held deletions (the next run applies them) or discard them (links dropped)."""
    with services.db.begin() as s:
        sync = get(s, installation_id, sync_id)
        pending = dict(sync.pending_deletes or {})
        if not pending:
            raise LookupError("pending_deletes: nothing waits for confirmation")
        if confirm:
            pending.update(confirmed=True, confirmed_by=by)
            sync.pending_deletes = pending
            request_run(services, s, sync_id, "manual")
        else:
            names = set(pending.get("store") or [])
            crm_ids = set(pending.get("crm") or [])
            for link in s.scalars(select(SyncLink).where(SyncLink.sync_id == sync_id)):
                if link.crm_id in crm_ids or link.resource_name in names:
                    s.delete(link)
            sync.pending_deletes = {}
        sync.status = "idle"
        sync.status_message = "deletions confirmed: the next run applies them" if confirm else "deletions discarded"
        count = len(pending.get("store") or []) + len(pending.get("crm") or [])
        s.add(AuditEvent(installation_id=installation_id, actor=by,
                         action="sync.deletions_confirmed" if confirm else "sync.deletions_discarded",
                         detail={"sync_id": sync_id, "count": count}))
        trace(s, installation_id, "sync.deletions_" + ("confirmed" if confirm else "discarded"),
              f"{by} {'confirmed' if confirm else 'discarded'} {count} deletion(s)", sync_id=sync_id)
    return {"count": count, "confirmed": confirm}


def summary(session, sync: ContactSync) -> dict[str, Any]:
    """The sync as the page and the API show it."""
    run = session.get(SyncRun, sync.last_run_id) if sync.last_run_id else None
    counts = dict(session.execute(select(SyncLink.state, func.count()).where(SyncLink.sync_id == sync.id)
                                  .group_by(SyncLink.state)).all())
    return {"id": sync.id, "name": sync.name, "store_connection_id": sync.store_connection_id,
            "label": {"resource_name": sync.group_resource_name, "name": sync.group_name},
            "direction": sync.direction, "person_filter": sync.person_filter, "field_map": sync.field_map,
            "conflict_policy": sync.conflict_policy, "delete_policy": sync.delete_policy or DEFAULT_DELETE_POLICY,
            "schedule_seconds": sync.schedule_seconds,
            "delete_share": sync.delete_share, "contact_cap": sync.contact_cap, "enabled": sync.enabled,
            "status": sync.status, "status_message": sync.status_message,
            "pending_deletes": {"crm": len((sync.pending_deletes or {}).get("crm") or []),
                                "store": len((sync.pending_deletes or {}).get("store") or []),
                                "confirmed": bool((sync.pending_deletes or {}).get("confirmed"))}
            if sync.pending_deletes else None,
            "linked": counts.get("linked", 0), "left_out": counts.get("left_out", 0),
            "last_run": run_json(run) if run else None,
            "parent_id": sync.parent_id, "share_mode": sync.share_mode or None,
            "shares": shares(session, sync) if sync.parent_id is None else []}


def run_json(run: SyncRun) -> dict[str, Any]:
    return {"id": run.id, "trigger": run.trigger, "status": run.status, "phase": run.phase, "progress": run.progress,
            "stats": run.stats, "message": run.message, "attempts": run.attempts,
            "started_at": run.started_at.isoformat() + "Z",
            "finished_at": run.finished_at.isoformat() + "Z" if run.finished_at else None}


def conflicts(session, sync_id: int, limit: int = 100) -> list[dict[str, Any]]:
    rows = session.scalars(select(SyncConflict).where(SyncConflict.sync_id == sync_id)
                           .order_by(SyncConflict.id.desc()).limit(limit))
    return [{"id": c.id, "run_id": c.run_id, "crm_id": c.crm_id, "resource_name": c.resource_name, "field": c.field,
             "crm_value": c.crm_value, "store_value": c.store_value, "winner": c.winner, "policy": c.policy,
             "message": c.message or "", "at": c.created_at.isoformat() + "Z"} for c in rows]


def left_out(session, sync_id: int, limit: int = 500) -> list[dict[str, Any]]:
    rows = session.scalars(select(SyncLink).where(SyncLink.sync_id == sync_id, SyncLink.state == "left_out")
                           .order_by(SyncLink.id).limit(limit))
    return [{"crm_id": l.crm_id, "name": l.display_name, "reason": l.note} for l in rows]


def run_log(session, installation_id: int, sync_id: int, limit: int = 50) -> list[dict[str, Any]]:
    rows = session.scalars(select(RunLog).where(RunLog.installation_id == installation_id, RunLog.sync_id == sync_id)
                           .order_by(RunLog.id.desc()).limit(limit))
    return [{"id": r.id, "step": r.step, "status": r.status, "message": r.message, "job_id": r.job_id,
             "at": r.created_at.isoformat() + "Z"} for r in rows]


def runs(session, sync_id: int, limit: int = 20) -> list[dict[str, Any]]:
    return [run_json(r) for r in session.scalars(select(SyncRun).where(SyncRun.sync_id == sync_id)
                                                 .order_by(SyncRun.id.desc()).limit(limit))]


# -- sharing the label with colleagues ---------------------------------------------------------------
def share_candidates(session, sync: ContactSync) -> list[Connection]:
    """Address book accounts a colleague connected themselves that may receive the label: not the
    sync's own account and not already holding a share of it."""
    own = session.get(Connection, sync.store_connection_id)
    taken = set(session.scalars(select(ContactSync.store_connection_id).where(ContactSync.parent_id == sync.id)))
    return [c for c in store_connections(session, sync.installation_id)
            if c.id != sync.store_connection_id and c.id not in taken and c.status == "connected"
            and (own is None or c.account_id != own.account_id)]


def candidate_json(session, connection: Connection) -> dict[str, Any]:
    user = _connected_by(session, connection)
    return {"connection_id": connection.id, "account": connection.account_email or connection.account_name,
            "colleague": (user.name or user.email) if user is not None else connection.connected_by}


def _connected_by(session, connection: Connection) -> InstallationUser | None:
    """The colleague who connected the account (`connected_by` is the actor: "Name (crm id)" or the id)."""
    crm_user_id = connection.owner_user_id
    if not crm_user_id:  # written before connections had owners
        found = re.search(r"\(([^()]+)\)$", connection.connected_by or "")
        crm_user_id = found.group(1) if found else connection.connected_by
    return session.scalar(select(InstallationUser).where(InstallationUser.installation_id == connection.installation_id,
                                                         InstallationUser.crm_user_id == crm_user_id))


def _share_label(services: Any, connection: Connection, name: str) -> tuple[str, str]:
    """The label in the colleague's account: the shared label's name, or `<name> (shared)` when the
    colleague has a label of that name of their own (theirs is never taken over); a retried create
    adopts the label the hub made (its clientData marker says so)."""
    store = open_store(services, connection)
    try:
        for candidate in (name, f"{name} (shared)"):
            try:
                group = store.create_group(candidate, adopt_existing=False)
                return group.id, group.name or candidate
            except GroupNameTaken:
                for existing in store.groups():
                    if existing.name.strip() == candidate and existing.ours:
                        return existing.id, existing.name or candidate
        raise SyncInputError({"connection_id": f"the account already has labels named “{name}” and “{name} (shared)”"})
    except (Fatal, Retriable, NeedsReauth) as exc:
        raise SyncInputError({"connection_id": f"{store_title(connection.provider)} refused: {exc}"}) from None


def _share_input(data: Mapping[str, Any], errors: dict[str, str]) -> str:
    mode = str(data.get("mode") or "")
    if mode not in SHARE_MODES:
        errors["mode"] = "edit (can edit) or read (read only)"
    return mode


def create_share(services: Any, installation_id: int, sync_id: int, by: str, data: Mapping[str, Any]) -> ContactSync:
    """Share the sync's label with a colleague's own account: a label of the same name there, a
    child sync that keeps it filled, an e-mail to the colleague, and a first run."""
    errors: dict[str, str] = {}
    with services.db.begin() as s:
        parent = get(s, installation_id, sync_id)
        if parent.parent_id is not None:
            raise SyncInputError({"sync_id": "a share cannot be shared again: share the original sync"})
        mode = _share_input(data, errors)
        candidates = {c.id: c for c in share_candidates(s, parent)}
        conn_id = _id(data.get("connection_id"))
        own = s.get(Connection, parent.store_connection_id)
        title = store_title(own.provider if own is not None else None)
        if conn_id not in candidates:
            errors["connection_id"] = (f"no colleague has connected a {title} account yet: they sign in to the hub "
                                       "and connect their own" if not candidates else
                                       f"choose a {title} account a colleague connected (not this sync's own, not "
                                       "one it is already shared with)")
        if errors:
            raise SyncInputError(errors)
        connection = candidates[conn_id]
        s.expunge(connection)
        s.expunge(parent)
    group, group_name = _share_label(services, connection, parent.group_name or parent.name)
    with services.db.begin() as s:
        if s.scalar(select(ContactSync.id).where(ContactSync.parent_id == sync_id,
                                                 ContactSync.store_connection_id == conn_id)) is not None:
            raise SyncInputError({"connection_id": "already shared with this account"})  # a concurrent request won
        share = ContactSync(
            installation_id=installation_id, parent_id=sync_id, share_mode=mode, store_connection_id=conn_id,
            name=f"{parent.name} → {connection.account_email or connection.account_name}"[:200],
            group_resource_name=group, group_name=group_name,
            direction=share_direction(mode), person_filter=dict(parent.person_filter or {}),
            field_map=list(parent.field_map or DEFAULT_FIELD_MAP), conflict_policy=parent.conflict_policy,
            schedule_seconds=0, delete_share=parent.delete_share, contact_cap=parent.contact_cap,
            enabled=parent.enabled, status="idle", status_message="", pending_deletes={}, created_by=by,
            created_at=utcnow(), updated_at=utcnow())
        s.add(share)
        s.flush()
        s.add(AuditEvent(installation_id=installation_id, actor=by, action="sync.shared",
                         detail={"sync_id": sync_id, "share_id": share.id, "mode": mode,
                                 "account": connection.account_email or connection.account_id}))
        trace(s, installation_id, "sync.shared", f"{by} shared label “{parent.group_name}” with "
              f"{connection.account_email or connection.account_name} ({SHARE_MODES[mode]})", sync_id=sync_id)
        _notify_share(services, s, share, parent, connection, by, created=True)
        if parent.enabled:
            request_run(services, s, share.id, "manual")
        s.expunge(share)
    return share


def _notify_share(services: Any, session, share: ContactSync, parent: ContactSync, connection: Connection, by: str,
                  *, created: bool) -> None:
    """The e-mail notice to the colleague: where the label appears and what they may do with it."""
    user = _connected_by(session, connection)
    to = (user.email if user is not None and user.email else "") or connection.account_email
    if not to:
        return
    crm = crm_title(session, share.installation_id)
    rights = (f"You can edit these contacts: your changes reach {crm} and everyone the label is shared with."
              if share.share_mode == "edit" else
              "The label is read only for you: changes you make to its contacts are undone on the next sync.")
    subject = (f"{by} shared the contact label “{parent.group_name}” with you" if created else
               f"Your access to the contact label “{parent.group_name}” changed")
    body = (f"Hello{(' ' + user.name) if user is not None and user.name else ''},\n\n"
            f"{by} shared the {crm} contacts of “{parent.name}” with your {store_title(connection.provider)} account "
            f"{connection.account_email or connection.account_name} as the label “{share.group_name}” "
            f"({SHARE_MODES[share.share_mode]}).\n{rights}\n\n"
            f"See it in Relay Hub: {services.base_url}/i/{share.installation_id}/sync/{parent.id}\n")
    queue_mail(services, session, to, subject, body, installation_id=share.installation_id,
               dedupe_key=f"sync-share:{share.id}:{share.share_mode}:{utcnow():%Y%m%d%H%M%S%f}")


def _get_share(session, installation_id: int, sync_id: int, share_id: int) -> ContactSync:
    share = session.get(ContactSync, share_id)
    if share is None or share.installation_id != installation_id or share.parent_id != sync_id:
        raise LookupError("share_id: no such share of this sync")
    return share


def _check_own_share(session, share: ContactSync, as_user: str | None) -> None:
    """`as_user`: None for an admin (or the CLI); else the CRM user id of a user, who may change
    only a share that goes to an account they connected themselves."""
    if as_user is None:
        return
    connection = session.get(Connection, share.store_connection_id)
    if connection is None or connection.owner_user_id != as_user:
        raise ShareRefused("share_id: only an admin can change another colleague's share")


def change_share(services: Any, installation_id: int, sync_id: int, share_id: int, by: str,
                 data: Mapping[str, Any], *, as_user: str | None = None) -> ContactSync:
    """Change a share's mode. A user (`as_user`) may lower their own share to read only, never
    raise it: can-edit lets their edits reach the CRM, which only an admin grants."""
    errors: dict[str, str] = {}
    mode = _share_input(data, errors)
    with services.db.begin() as s:
        parent = get(s, installation_id, sync_id)
        share = _get_share(s, installation_id, sync_id, share_id)
        _check_own_share(s, share, as_user)
        if errors:
            raise SyncInputError(errors)
        if as_user is not None and mode == "edit" and share.share_mode != "edit":
            raise ShareRefused("mode: only an admin can make a share can-edit")
        if share.share_mode != mode:
            share.share_mode, share.direction = mode, share_direction(mode)
            share.updated_at = utcnow()
            connection = s.get(Connection, share.store_connection_id)
            s.add(AuditEvent(installation_id=installation_id, actor=by, action="sync.share_changed",
                             detail={"sync_id": sync_id, "share_id": share_id, "mode": mode}))
            trace(s, installation_id, "sync.share_changed", f"{by} made the share with "
                  f"{connection.account_email if connection else share_id} {SHARE_MODES[mode]}", sync_id=sync_id)
            if connection is not None:
                _notify_share(services, s, share, parent, connection, by, created=False)
            if share.enabled:
                request_run(services, s, share_id, "manual")
        s.flush()
        s.expunge(share)
    return share


def remove_share(services: Any, installation_id: int, sync_id: int, share_id: int, by: str, *,
                 as_user: str | None = None) -> None:
    """Stop sharing: the colleague keeps the contacts they have; the hub no longer keeps them in step.
    A run of the share still working ends at its next checkpoint (its links are gone)."""
    with services.db.begin() as s:
        share = _get_share(s, installation_id, sync_id, share_id)
        _check_own_share(s, share, as_user)
        connection = s.get(Connection, share.store_connection_id)
        s.query(SyncLink).filter(SyncLink.sync_id == share_id).delete(synchronize_session=False)
        s.query(SyncConflict).filter(SyncConflict.sync_id == share_id).delete(synchronize_session=False)
        s.query(Bookmark).filter(Bookmark.installation_id == installation_id,
                                 Bookmark.name == f"sync:{share_id}").delete(synchronize_session=False)
        s.delete(share)
        s.add(AuditEvent(installation_id=installation_id, actor=by, action="sync.unshared",
                         detail={"sync_id": sync_id, "share_id": share_id}))
        trace(s, installation_id, "sync.unshared", f"{by} stopped sharing with "
              f"{connection.account_email if connection else share_id}", sync_id=sync_id)


def shares(session, sync: ContactSync) -> list[dict[str, Any]]:
    out = []
    for share in session.scalars(select(ContactSync).where(ContactSync.parent_id == sync.id).order_by(ContactSync.id)):
        connection = session.get(Connection, share.store_connection_id)
        user = _connected_by(session, connection) if connection is not None else None
        run = session.get(SyncRun, share.last_run_id) if share.last_run_id else None
        out.append({"id": share.id, "mode": share.share_mode, "connection_id": share.store_connection_id,
                    "owner_user_id": connection.owner_user_id if connection else "",
                    "account": (connection.account_email or connection.account_name) if connection else "",
                    "colleague": (user.name or user.email) if user is not None else (connection.connected_by
                                                                                    if connection else ""),
                    "label": {"resource_name": share.group_resource_name, "name": share.group_name},
                    "status": share.status, "status_message": share.status_message,
                    "linked": session.scalar(select(func.count()).select_from(SyncLink).where(
                        SyncLink.sync_id == share.id, SyncLink.state == "linked")) or 0,
                    "last_run": run_json(run) if run else None})
    return out
