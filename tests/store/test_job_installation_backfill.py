"""Migration 0012 gives jobs queued before it their installation wherever the payload leads to one
(on both engines); global jobs and old e-mails stay without one."""
from sqlalchemy import JSON, Column, MetaData, Table, create_engine, select

from hub.store import migrate, utcnow
from hub.store.models import RuleRun


def test_backfill_follows_payload_rule_runs_and_syncs(db_url):
    engine = create_engine(db_url)
    migrate.upgrade(engine, "0011_web_sessions")
    if migrate.current(engine) != {"0011_web_sessions"}:   # the shared PostgreSQL database is at the head
        migrate.downgrade(engine, "0011_web_sessions")
    now = utcnow()
    with engine.begin() as conn:
        run_id = conn.execute(RuleRun.__table__.insert().values(
            installation_id=7, rule_id=1, hub_event_id=1, effect_key="k", object_type="deal", object_id="5",
            status="failed", attempts=1, detail={}, created_at=now, updated_at=now)).inserted_primary_key[0]
        old_syncs = Table("contact_syncs", MetaData(), autoload_with=conn)   # the table as it was at 0011
        sync_id = conn.execute(old_syncs.insert().values(
            installation_id=8, google_connection_id=1, name="", group_resource_name="", group_name="",
            direction="two_way", person_filter={}, field_map=[], conflict_policy="newest", schedule_seconds=0,
            delete_share=0.2, contact_cap=25000, enabled=True, status="idle", status_message="", pending_deletes={},
            created_by="", created_at=now, updated_at=now)).inserted_primary_key[0]
        old_jobs = Table("jobs", MetaData(), Column("payload", JSON), autoload_with=conn)
        payloads = {"webhook.process": {"inbox_event_id": 1, "installation_id": 6},
                    "rule.execute": {"run_id": run_id}, "sync.run": {"sync_id": sync_id, "trigger": "event"},
                    "sync.tick": {"sync_id": sync_id}, "mail.send": {"to": "a@b.c"},
                    "hub.housekeeping": {"slot": 1}, "webhooks.register": {"installation_id": "junk"}}
        for kind, payload in payloads.items():
            conn.execute(old_jobs.insert().values(kind=kind, payload=payload, status="dead", attempts=1, max_attempts=3,
                                                  run_at=now, created_at=now, updated_at=now))
    migrate.upgrade(engine)
    jobs = Table("jobs", MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        found = dict(conn.execute(select(jobs.c.kind, jobs.c.installation_id)).all())
    engine.dispose()
    assert found == {"webhook.process": 6, "rule.execute": 7, "sync.run": 8, "sync.tick": 8, "mail.send": None,
                     "hub.housekeeping": None, "webhooks.register": None}
