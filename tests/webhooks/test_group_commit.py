"""Group commit (hub/webhooks/group_commit.py): on SQLite, webhooks arriving together share one
transaction, yet each request is answered as if it had been written alone, and only after the
commit that holds its rows. On PostgreSQL the same requests keep a transaction each; the answers
must not differ.

To make a batch certain, the first request's write waits until all the others are queued behind
it (the committer's queue is watched); they are then written together in the next transaction."""
from __future__ import annotations

import json
import threading
from collections import deque
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, event, func, select, text

from hub.connectors.contract.webhooks import Delivery
from hub.store import InboxEvent, Installation, Job
from hub.webhooks import ingest
from hub.webhooks.group_commit import GroupCommitter
from tests.webhooks.test_parts import hub, sign, stored  # noqa: F401  (the `hub` fixture: acme + formco)

WAIT = 30  # bound of every wait below: a broken committer fails the test instead of hanging it


@pytest.fixture(autouse=True)
def _group_commit_on(monkeypatch):
    """Off by default (config/hub.toml): these tests are about it being on."""
    monkeypatch.setenv("HUB_WEBHOOKS_GROUP_COMMIT_MAX", "64")


def post(hub, client, event_ids):
    body = json.dumps([{"portalId": "portal-1", "eventId": e, "objectId": 5} for e in event_ids]).encode()
    path = "/hooks/acme"
    return client.post(path, data=body, headers={"Content-Type": "application/json", "X-Acme-Signature": sign(
        hub.made["acme"][1], "POST", f"{hub.services.base_url}{path}", body)})


class _Watched(deque):
    """The committer's queue; `full` is set once `size` requests wait in it."""

    def __init__(self, size: int):
        super().__init__()
        self.size, self.full = size, threading.Event()

    def append(self, entry):
        super().append(entry)
        if len(self) >= self.size:
            self.full.set()


@pytest.fixture
def transactions(hub):
    """How many transactions the hub's engine began (every one: batch, alone, inline)."""
    began = []
    listener = lambda conn: began.append(1)  # noqa: E731
    event.listen(hub.services.db.engine, "begin", listener)
    yield began
    event.remove(hub.services.db.engine, "begin", listener)


def concurrently(hub, monkeypatch, bodies, *, on_answer=None):
    """POST each body from a thread of its own (a test client each). On SQLite the first body's
    write waits until every other request is queued behind it, so the others form one batch.
    Returns the answers in the order of `bodies`. `on_answer(i, response)` runs in the thread
    right after its answer."""
    entered = threading.Event()
    if not hub.services.db.is_postgres:
        committer = ingest._committer(hub.services)
        assert isinstance(committer, GroupCommitter)
        watched = committer._queue = _Watched(len(bodies) - 1)
        write = ingest._write

        def gated(services, session, item):
            if not entered.is_set():
                entered.set()
                assert watched.full.wait(WAIT), "the other requests never queued"
            return write(services, session, item)
        monkeypatch.setattr(ingest, "_write", gated)
    else:
        entered.set()
    hub.app.config["PROPAGATE_EXCEPTIONS"] = False
    answers: list = [None] * len(bodies)
    errors: list = []

    def one(i):
        try:
            answers[i] = post(hub, hub.app.test_client(), bodies[i])
            if on_answer is not None:
                on_answer(i, answers[i])
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    threads[0].start()
    assert entered.wait(WAIT)
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert not any(t.is_alive() for t in threads), "a request never got its answer"
    if errors:
        raise errors[0]
    return answers


def keys_seen_elsewhere(url: str, keys: list[str]) -> set[str]:
    """Which of `keys` another connection (not the hub's pool) sees committed."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT event_key FROM inbox_events")).scalars()
            return set(rows) & set(keys)
    finally:
        engine.dispose()


PAIRS = [[100 + i, 200 + i % 2] for i in range(8)]      # a key of their own + one of two shared keys
SAME = [[300]] * 4                                       # four requests, one event
KNOWN = [[0]] * 2 + [[0, 414], [0, 415]]                 # event 0 was stored before


def test_concurrent_requests_are_stored_once_each_answered_as_if_alone(hub, monkeypatch, transactions):
    assert post(hub, hub.client, [0]).get_json() == {"ok": True}       # also warms the endpoint cache
    transactions.clear()
    bodies = PAIRS + SAME + KNOWN
    unseen: list = []

    def visible(i, response):                 # right after the answer, from another connection
        keys = [f"acme-{e}" for e in bodies[i]]
        if response.status_code == 200 and keys_seen_elsewhere(hub.services.db.url, keys) != set(keys):
            unseen.append(i)
    answers = concurrently(hub, monkeypatch, bodies, on_answer=visible)
    if not hub.services.db.is_postgres:
        assert len(transactions) == 2           # the first request alone, then all the others together
    assert [a.status_code for a in answers] == [200] * len(bodies)
    body = [a.get_json() for a in answers]
    pairs, same, known = body[:8], body[8:12], body[12:]
    assert all(b in ({"ok": True, "events": 2, "duplicates": 0}, {"ok": True, "events": 2, "duplicates": 1})
               for b in pairs), pairs
    for shared in (0, 1):       # of the four requests naming a shared key, exactly one stored it
        assert [pairs[i]["duplicates"] for i in range(8) if i % 2 == shared].count(0) == 1, pairs
    assert sorted(same, key=len) == [{"ok": True}] + [{"ok": True, "duplicate": True}] * 3
    assert known == [{"ok": True, "duplicate": True}] * 2 + [{"ok": True, "events": 2, "duplicates": 1}] * 2
    assert unseen == []
    keys = {0, *range(100, 108), 200, 201, 300, 414, 415}
    with hub.services.db.begin() as s:
        assert sorted(s.scalars(select(InboxEvent.event_key))) == sorted(f"acme-{k}" for k in keys)
    assert stored(hub) == (len(keys), len(keys))                       # one job per stored event
    if not hub.services.db.is_postgres:   # SQLite serialises writers: jobs in the order of their events
        with hub.services.db.begin() as s:
            jobs = s.scalars(select(Job).where(Job.kind == "webhook.process").order_by(Job.id)).all()
            assert [j.payload["inbox_event_id"] for j in jobs] == sorted(j.payload["inbox_event_id"] for j in jobs)


def test_one_failing_request_does_not_fail_the_others_of_its_batch(hub, monkeypatch, transactions):
    assert post(hub, hub.client, [0]).get_json() == {"ok": True}
    transactions.clear()
    write, write_many = ingest._write, ingest._write_many

    def failing(services, conn, item):                      # a request written alone: after its rows
        count = write(services, conn, item)
        if any(d.key == "acme-666" for _, d in item[0]):
            raise RuntimeError("this one cannot be written")
        return count

    def failing_many(services, conn, batch):                # a batch: after its rows were written
        counts = write_many(services, conn, batch)
        if any(d.key == "acme-666" for parts, *_ in batch for _, d in parts):
            raise RuntimeError("this batch cannot be written")
        return counts
    monkeypatch.setattr(ingest, "_write", failing)
    monkeypatch.setattr(ingest, "_write_many", failing_many)
    bodies = [[10], [11, 12], [13, 666], [0], [14], [12]]       # [13, 666]: fails, 13 not kept either
    answers = concurrently(hub, monkeypatch, bodies)
    if not hub.services.db.is_postgres:     # first alone, the failed batch, then each of it alone
        assert len(transactions) == 1 + 1 + (len(bodies) - 1)
    codes = [a.status_code for a in answers]
    assert codes[2] == 500 and codes[:2] + codes[3:] == [200] * 5, codes
    body = [a.get_json() for a in answers]
    assert body[0] == body[4] == {"ok": True} and body[3] == {"ok": True, "duplicate": True}
    assert (body[1], body[5]) in [({"ok": True, "events": 2, "duplicates": 0}, {"ok": True, "duplicate": True}),
                                  ({"ok": True, "events": 2, "duplicates": 1}, {"ok": True})]   # event 12: once
    with hub.services.db.begin() as s:
        assert sorted(s.scalars(select(InboxEvent.event_key))) == [f"acme-{k}" for k in (0, 10, 11, 12, 14)]
        assert s.scalar(select(func.count()).select_from(Job).where(Job.kind == "webhook.process")) == 5


def test_the_answer_comes_only_after_the_commit(hub, monkeypatch):
    """The batch's commit is held back until a request of it is answered (bounded): an answer given
    before the commit would find its rows missing from another connection."""
    if hub.services.db.is_postgres:
        pytest.skip("no batches on PostgreSQL; the concurrent test reads after each answer there")
    assert post(hub, hub.client, [0]).get_json() == {"ok": True}
    answered, commits, unseen = threading.Event(), [], []

    def before_commit(conn):
        commits.append(1)
        if len(commits) == 2:                   # the batch (the first commit is the gated request's)
            answered.wait(1.0)                  # never set when the committer is right: bounded
    event.listen(hub.services.db.engine, "commit", before_commit)

    def visible(i, response):
        keys = [f"acme-{e}" for e in bodies[i]]
        if keys_seen_elsewhere(hub.services.db.url, keys) != set(keys):
            unseen.append(i)
        if i:                                   # a request of the batch (0 is the gated one)
            answered.set()
    bodies = [[20], [21], [22], [23, 24]]
    try:
        answers = concurrently(hub, monkeypatch, bodies, on_answer=visible)
    finally:
        event.remove(hub.services.db.engine, "commit", before_commit)
    assert [a.status_code for a in answers] == [200] * 4 and unseen == []


def test_the_in_process_workers_are_woken_after_each_commit(hub, monkeypatch, transactions):
    """queue.on_enqueue listeners fire once per committed transaction, and see its rows."""
    assert post(hub, hub.client, [0]).get_json() == {"ok": True}
    transactions.clear()
    seen: list = []
    lock = threading.Lock()

    def woken():
        with lock:                              # read and record in one step: the last record is the latest view
            seen.append(keys_seen_elsewhere(hub.services.db.url, keys))
    hub.services.queue.on_enqueue(woken)
    bodies = [[30], [31], [32, 33], [34]]
    keys = [f"acme-{e}" for b in bodies for e in b]
    concurrently(hub, monkeypatch, bodies)
    assert seen and seen[-1] == set(keys)
    if not hub.services.db.is_postgres:
        assert len(seen) == len(transactions) == 2     # once after each commit


# -- the committer alone (no database) ------------------------------------------------------------

class FakeDb:
    """`begin()` like Database.begin: a transaction is a list, committed when its block ends."""

    def __init__(self):
        self.committed: list[list] = []

    @contextmanager
    def begin(self):
        transaction: list = []
        yield transaction
        self.committed.append(transaction)


def test_a_request_nobody_takes_in_time_is_written_alone():
    """A leader stuck in its write: a request queued behind it stops waiting after the bound
    (here 0 s) and writes itself; the leader still finishes, and the next request leads at once."""
    db, entered, release = FakeDb(), threading.Event(), threading.Event()

    def write(transaction, item):
        if item == "stuck":
            entered.set()
            assert release.wait(WAIT)
        transaction.append(item)
        return item.upper()
    committer = GroupCommitter(db.begin, write, wait_seconds=0)
    results: list = []
    leader = threading.Thread(target=lambda: results.append(committer.submit("stuck")))
    leader.start()
    assert entered.wait(WAIT)
    late = threading.Thread(target=lambda: results.append(committer.submit("late")))
    late.start()
    late.join(WAIT)                                            # not behind the stuck leader
    release.set()
    leader.join(WAIT)
    assert results == ["LATE", "STUCK"] and db.committed == [["late"], ["stuck"]]
    assert committer.submit("next") == "NEXT" and db.committed[-1] == ["next"]


def test_a_batch_is_bounded_and_each_request_gets_its_own_result():
    db, entered, release = FakeDb(), threading.Event(), threading.Event()

    def write(transaction, item):
        if item == 0:
            entered.set()
            assert release.wait(WAIT)
        transaction.append(item)
        return item * 10
    committer = GroupCommitter(db.begin, write, max_batch=3)
    watched = committer._queue = _Watched(7)
    results: dict = {}

    def submit(item):
        results[item] = committer.submit(item)
    threads = [threading.Thread(target=submit, args=(0,))]
    threads[0].start()
    assert entered.wait(WAIT)
    threads += [threading.Thread(target=submit, args=(i,)) for i in range(1, 8)]
    for t in threads[1:]:
        t.start()
    assert watched.full.wait(WAIT)
    release.set()
    for t in threads:
        t.join(WAIT)
    assert results == {i: i * 10 for i in range(8)}
    assert [len(t) for t in db.committed] == [1, 3, 3, 1]
    assert sorted(i for t in db.committed for i in t) == list(range(8))


def test_a_batch_larger_than_one_statement_writes_what_each_request_alone_would(hub):
    """More inbox rows than one multi-row INSERT holds: the dedupe still holds across statements
    (the first of a key wins), each request gets its own count, jobs follow their events' order."""
    if hub.services.db.is_postgres:
        pytest.skip("batches are SQLite's")
    iid = hub.made["acme"][0]
    part = lambda k: (iid, Delivery(f"k{k}", "{}", f"deal:{k}"))  # noqa: E731
    guards = {iid: ingest._read_endpoint(hub.services, Installation.__table__.c.id == iid).guard}
    first = (tuple(part(k) for k in range(ingest._ROWS_PER_INSERT + 200)), "acme", (), guards)
    last = ingest._ROWS_PER_INSERT + 199
    second = (tuple(part(k) for k in (last, last + 1, 0, last + 1, last + 2)), "acme", (iid,), guards)
    with hub.services.queue.core_transaction() as conn:
        assert ingest._write_many(hub.services, conn, [first, second]) == [last + 1, 2]
    with hub.services.db.begin() as s:
        inbox = s.execute(select(InboxEvent.id, InboxEvent.event_key).order_by(InboxEvent.id)).all()
        assert [k for _, k in inbox] == [f"k{k}" for k in range(last + 3)]
        jobs = s.scalars(select(Job).order_by(Job.id)).all()
    assert [j.kind for j in jobs] == ["webhook.process"] * (last + 1) + ["webhooks.installation_ended"] + \
        ["webhook.process"] * 2
    assert [j.payload.get("inbox_event_id") for j in jobs if j.kind == "webhook.process"] == [i for i, _ in inbox]
    assert [j.ordering_key for j in jobs][-3:] == [f"{iid}:webhooks", f"{iid}:deal:{last + 1}", f"{iid}:deal:{last + 2}"]
