"""contact sync in neutral words: the address book side is the "store", whatever provider it is

Revision ID: 0013_sync_neutral
Revises: 0012_job_installation
Create Date: 2026-12-05

Columns renamed, data kept: contact_syncs.google_connection_id -> store_connection_id,
sync_links.google_fingerprint/google_etag -> store_fingerprint/store_etag, sync_conflicts.google_value
-> store_value. Stored values follow:
- directions crm_to_google/google_to_crm -> crm_to_store/store_to_crm; the conflict policy and a
  conflict's winner "google" -> "store"; held deletions {"google": [...]} -> {"store": [...]};
- field maps {"crm", "google": <People field>} -> {"crm", "store": <contact field>} (names -> name,
  emailAddresses -> emails, phoneNumbers -> phones, organizations.name -> organization,
  organizations.title -> title, userDefined:<k> -> custom:<k>), and the same keys in each link's last
  synced values (`base`) and in conflicts' `field`;
- a link's fingerprints hash its record, so where a side's fingerprint was that of `base` it becomes
  the fingerprint of the renamed `base`. A side that held other values than `base` (rare: a value the
  CRM could not keep) keeps its old fingerprint and is compared afresh when next read;
- bookmarks `sync:<id>`: google_sync_token -> store_token; run counts and phases (created_google ...
  -> created_store ...).
"""
import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0013_sync_neutral"
down_revision = "0012_job_installation"
branch_labels = None
depends_on = None

TARGETS = {"names": "name", "emailAddresses": "emails", "phoneNumbers": "phones", "organizations.name": "organization",
           "organizations.title": "title"}
OLD_PREFIX, NEW_PREFIX = "userDefined:", "custom:"
WORDS = {"crm_to_google": "crm_to_store", "google_to_crm": "store_to_crm", "google": "store"}
RUN_KEYS = {f"{what}_google": f"{what}_store" for what in ("created", "updated", "deleted", "read", "create", "update",
                                                          "delete")}

syncs = sa.table("contact_syncs", sa.column("id", sa.BigInteger), sa.column("direction", sa.String),
                 sa.column("conflict_policy", sa.String), sa.column("field_map", sa.JSON),
                 sa.column("pending_deletes", sa.JSON))
conflicts = sa.table("sync_conflicts", sa.column("id", sa.BigInteger), sa.column("field", sa.String),
                     sa.column("winner", sa.String), sa.column("policy", sa.String))
runs = sa.table("sync_runs", sa.column("id", sa.BigInteger), sa.column("phase", sa.String),
                sa.column("progress", sa.JSON), sa.column("stats", sa.JSON))
bookmarks = sa.table("bookmarks", sa.column("id", sa.BigInteger), sa.column("name", sa.String),
                     sa.column("value", sa.JSON))


def _target(value, up: bool):
    if not isinstance(value, str):
        return value
    table = TARGETS if up else {v: k for k, v in TARGETS.items()}
    old, new = (OLD_PREFIX, NEW_PREFIX) if up else (NEW_PREFIX, OLD_PREFIX)
    if value.startswith(old):
        return new + value[len(old):]
    return table.get(value, value)


def _fingerprint(record) -> str:
    raw = json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _rename(value, names: dict):
    return {names.get(k, k): v for k, v in value.items()} if isinstance(value, dict) else value


def _convert(up: bool) -> None:
    bind = op.get_bind()
    words = WORDS if up else {v: k for k, v in WORDS.items()}
    side_old, side_new = ("google", "store") if up else ("store", "google")
    for r in bind.execute(sa.select(syncs)).all():
        field_map = [{"crm": row.get("crm"), side_new: _target(row.get(side_old), up)} if isinstance(row, dict) else row
                     for row in (r.field_map or [])]
        pending = _rename(r.pending_deletes, {side_old: side_new})
        bind.execute(syncs.update().where(syncs.c.id == r.id).values(
            direction=words.get(r.direction, r.direction), conflict_policy=words.get(r.conflict_policy, r.conflict_policy),
            field_map=field_map, pending_deletes=pending))
    fp_column = "store_fingerprint"   # converted while the columns have their new names (after/before renaming)
    table = sa.table("sync_links", sa.column("id", sa.BigInteger), sa.column("base", sa.JSON),
                     sa.column("crm_fingerprint", sa.String), sa.column(fp_column, sa.String))
    for r in bind.execute(sa.select(table)).all():
        base = r.base if isinstance(r.base, dict) else {}
        new_base = {_target(k, up): v for k, v in base.items()}
        if new_base == base:
            continue
        old_fp, new_fp = _fingerprint(base), _fingerprint(new_base)
        values = {"base": new_base}
        if r.crm_fingerprint == old_fp:
            values["crm_fingerprint"] = new_fp
        if getattr(r, fp_column) == old_fp:
            values[fp_column] = new_fp
        bind.execute(table.update().where(table.c.id == r.id).values(**values))
    for r in bind.execute(sa.select(conflicts)).all():
        bind.execute(conflicts.update().where(conflicts.c.id == r.id).values(
            field=_target(r.field, up), winner=words.get(r.winner, r.winner), policy=words.get(r.policy, r.policy)))
    keys = RUN_KEYS if up else {v: k for k, v in RUN_KEYS.items()}
    for r in bind.execute(sa.select(runs)).all():
        bind.execute(runs.update().where(runs.c.id == r.id).values(
            phase=keys.get(r.phase, r.phase), progress=_rename(r.progress, keys), stats=_rename(r.stats, keys)))
    token = {"google_sync_token": "store_token"} if up else {"store_token": "google_sync_token"}
    for r in bind.execute(sa.select(bookmarks).where(bookmarks.c.name.like("sync:%"))).all():
        if isinstance(r.value, dict) and any(k in r.value for k in token):
            bind.execute(bookmarks.update().where(bookmarks.c.id == r.id).values(value=_rename(r.value, token)))


def _columns(up: bool) -> None:
    pairs = {"contact_syncs": [("google_connection_id", "store_connection_id")],
             "sync_links": [("google_fingerprint", "store_fingerprint"), ("google_etag", "store_etag")],
             "sync_conflicts": [("google_value", "store_value")]}
    for table, renames in pairs.items():
        with op.batch_alter_table(table) as batch:
            for old, new in renames:
                batch.alter_column(old if up else new, new_column_name=new if up else old)


def upgrade() -> None:
    _columns(up=True)
    _convert(up=True)


def downgrade() -> None:
    _convert(up=False)
    _columns(up=False)
