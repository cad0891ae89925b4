"""`enqueue_core` (the webhook ingest's Core path: a statement compiled once and run on the DBAPI
cursor, hub/store/fast.py) writes the very row `enqueue` writes, and its transaction
wakes the in-process workers once, after the commit, as a session's does."""
from __future__ import annotations

from sqlalchemy import text


def test_a_core_enqueue_writes_the_row_a_session_enqueue_writes(make_hub):
    services = make_hub().extensions["hub"]
    queue, woken = services.queue, []
    queue.on_enqueue(lambda: woken.append(1))
    payload = {"inbox_event_id": 7, "installation_id": 3, "text": "é \u2603", "none": None, "list": [1.5, True]}
    with queue.core_transaction() as conn:
        first = queue.enqueue_core(conn, "webhook.process", payload, installation_id=3, ordering_key="3:deal:1")
        assert woken == []                                   # not before the commit
    assert woken == [1]
    with services.db.begin() as session:
        second = queue.enqueue(session, "webhook.process", payload, installation_id=3, ordering_key="3:deal:1")
    columns = ("kind, payload, installation_id, status, attempts, max_attempts, failed_calls, ordering_key, dedupe_key,"
               " lease_until, locked_by, last_error, started_at, finished_at")
    with services.db.engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {columns} FROM jobs WHERE id IN (:a, :b) ORDER BY id"),
                            {"a": first, "b": second}).all()
        stamps = conn.execute(text("SELECT run_at, created_at, updated_at FROM jobs WHERE id = :a"), {"a": first}).one()
    assert len(rows) == 2 and rows[0] == rows[1]
    assert stamps[0] == stamps[1] == stamps[2]
    claimed = queue.claim("w", limit=2)
    assert [(c.id, c.payload) for c in claimed] == [(first, payload), (second, payload)] or \
        [c.id for c in claimed] == [first]                   # one at a time per ordering key
    assert claimed[0].payload == payload


def test_a_failed_core_transaction_stores_nothing_and_wakes_nobody(make_hub):
    services = make_hub().extensions["hub"]
    queue, woken = services.queue, []
    queue.on_enqueue(lambda: woken.append(1))
    try:
        with queue.core_transaction() as conn:
            queue.enqueue_core(conn, "webhook.process", {}, installation_id=1)
            raise RuntimeError("the request failed after its job")
    except RuntimeError:
        pass
    with queue.core_transaction() as conn:                   # the same pooled connection: no flag left over
        assert conn.execute(text("SELECT count(*) FROM jobs")).scalar_one() == 0
    assert woken == []
