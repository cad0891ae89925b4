"""Migration 0013_sync_neutral renames the address book side's columns and stored words to neutral
ones and keeps the data: a sync set up before it runs on unchanged (its fingerprints still match
its links), and the downgrade gives the old words back. On both engines."""
from __future__ import annotations

from sqlalchemy import JSON, Column, MetaData, Table, create_engine, inspect, select

from hub.store import migrate, utcnow
from hub.sync.mapping import FieldMap, fingerprint

BEFORE, AFTER = "0012_job_installation", "0013_sync_neutral"
OLD_BASE = {"names": ["Aino", "Laine"], "emailAddresses": [["aino@laine.example", "work"]],
            "organizations.name": "Laine Oy", "userDefined:Language": "fi"}
NEW_BASE = {"name": ["Aino", "Laine"], "emails": [["aino@laine.example", "work"]], "organization": "Laine Oy",
            "custom:Language": "fi"}


def _table(conn, name: str) -> Table:
    json_columns = {"contact_syncs": ("field_map", "pending_deletes", "person_filter"), "sync_links": ("base",),
                    "sync_conflicts": ("crm_value", "google_value", "store_value"), "sync_runs": ("progress", "stats"),
                    "bookmarks": ("value",)}[name]
    existing = {c["name"] for c in inspect(conn).get_columns(name)}
    return Table(name, MetaData(), *[Column(c, JSON) for c in json_columns if c in existing], autoload_with=conn)


def _at(engine, revision: str) -> None:
    if migrate.current(engine):      # PostgreSQL: the shared test database is at the head
        migrate.downgrade(engine, revision)
    else:
        migrate.upgrade(engine, revision)


def test_columns_and_words_become_neutral_and_come_back(db_url):
    engine = create_engine(db_url)
    _at(engine, BEFORE)
    now = utcnow()
    with engine.begin() as conn:
        syncs = _table(conn, "contact_syncs")
        sync_id = conn.execute(syncs.insert().values(
            installation_id=1, google_connection_id=5, name="Team", group_resource_name="contactGroups/1",
            group_name="Team", direction="crm_to_google", person_filter={}, conflict_policy="google",
            field_map=[{"crm": "name", "google": "names"}, {"crm": "emails", "google": "emailAddresses"},
                       {"crm": "org_name", "google": "organizations.name"}, {"crm": "abc", "google": "userDefined:Language"}],
            schedule_seconds=0, delete_share=0.2, contact_cap=25000, enabled=True, status="idle", status_message="",
            pending_deletes={"crm": ["7"], "google": ["people/c9"]}, created_by="", created_at=now,
            updated_at=now)).inserted_primary_key[0]
        links = _table(conn, "sync_links")
        old_fp = fingerprint(OLD_BASE)
        conn.execute(links.insert(), [
            dict(sync_id=sync_id, crm_id="1", resource_name="people/c1", state="linked", note="", display_name="",
                 base=OLD_BASE, crm_fingerprint=old_fp, crm_version="", google_fingerprint=old_fp, google_etag="e1",
                 updated_at=now),
            dict(sync_id=sync_id, crm_id="2", resource_name="people/c2", state="linked", note="", display_name="",
                 base=OLD_BASE, crm_fingerprint="f" * 64, crm_version="", google_fingerprint=old_fp, google_etag="e2",
                 updated_at=now)])
        conflicts = _table(conn, "sync_conflicts")
        conn.execute(conflicts.insert().values(sync_id=sync_id, crm_id="1", resource_name="people/c1",
                                               field="emailAddresses", crm_value=None, google_value=["x"],
                                               winner="google", policy="google", message="", created_at=now))
        runs = _table(conn, "sync_runs")
        conn.execute(runs.insert().values(sync_id=sync_id, trigger="manual", status="running", phase="create_google",
                                          progress={"create_google": {"done": 1, "total": 2}},
                                          stats={"created_google": 1, "updated_crm": 2}, message="", attempts=1,
                                          started_at=now))
        bookmarks = _table(conn, "bookmarks")
        conn.execute(bookmarks.insert().values(installation_id=1, name=f"sync:{sync_id}", updated_at=now,
                                               value={"google_sync_token": "T", "crm_since": "2026-01-01T00:00:00"}))

    migrate.upgrade(engine, AFTER)
    with engine.connect() as conn:
        sync = conn.execute(select(_table(conn, "contact_syncs"))).one()._mapping
        assert (sync["store_connection_id"], sync["direction"], sync["conflict_policy"]) == (5, "crm_to_store", "store")
        assert sync["field_map"] == [{"crm": "name", "store": "name"}, {"crm": "emails", "store": "emails"},
                                     {"crm": "org_name", "store": "organization"}, {"crm": "abc", "store": "custom:Language"}]
        assert sync["pending_deletes"] == {"crm": ["7"], "store": ["people/c9"]}
        first, second = [r._mapping for r in conn.execute(select(_table(conn, "sync_links"))
                                                           .order_by(Column("crm_id")))]
        assert first["base"] == NEW_BASE and first["store_etag"] == "e1"
        # the record the new code computes for an unchanged contact matches the migrated fingerprints
        new_fp = fingerprint(NEW_BASE)
        assert first["crm_fingerprint"] == first["store_fingerprint"] == new_fp
        assert second["crm_fingerprint"] == "f" * 64 and second["store_fingerprint"] == new_fp  # not base's: kept
        rows = FieldMap(list(sync["field_map"])).targets
        assert sorted(rows) == sorted(NEW_BASE)
        conflict = conn.execute(select(_table(conn, "sync_conflicts"))).one()._mapping
        assert (conflict["field"], conflict["winner"], conflict["policy"], conflict["store_value"]) == \
            ("emails", "store", "store", ["x"])
        run = conn.execute(select(_table(conn, "sync_runs"))).one()._mapping
        assert run["phase"] == "create_store" and run["progress"] == {"create_store": {"done": 1, "total": 2}}
        assert run["stats"] == {"created_store": 1, "updated_crm": 2}
        mark = conn.execute(select(_table(conn, "bookmarks"))).one()._mapping
        assert mark["value"] == {"store_token": "T", "crm_since": "2026-01-01T00:00:00"}

    migrate.downgrade(engine, BEFORE)
    with engine.connect() as conn:
        sync = conn.execute(select(_table(conn, "contact_syncs"))).one()._mapping
        assert (sync["google_connection_id"], sync["direction"], sync["conflict_policy"]) == (5, "crm_to_google", "google")
        assert sync["field_map"][3] == {"crm": "abc", "google": "userDefined:Language"}
        link = conn.execute(select(_table(conn, "sync_links")).order_by(Column("crm_id"))).first()._mapping
        assert link["base"] == OLD_BASE and link["google_fingerprint"] == fingerprint(OLD_BASE)
        assert conn.execute(select(_table(conn, "bookmarks"))).one()._mapping["value"]["google_sync_token"] == "T"
    migrate.upgrade(engine)
    engine.dispose()
