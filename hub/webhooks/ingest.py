"""The ingest endpoint. The answer depends only on our database, with one exception: a delivery
that hands over the installation's delivery token while none is kept (or replaces it, on a
reinstall) is proven with one call to the account's API, at the address the hub learned at install.

    POST /hooks/<connector>/<token>   routing "token": the installation by its endpoint token
    POST /hooks/<connector>           routing "account": the installation by the account the
                                      delivery names (`account_key`), its `company_id`

size limit (413) -> connector (404) -> installation by token (404) -> handshake (answered, nothing
stored) -> installation by account (400 / 404) -> token claim (kept once proven) -> verify (401) ->
split (400) -> each delivery an InboxEvent + its job, all in ONE transaction (a known event key is
skipped; a verified "app removed" adds the job that ends the installation) -> 200 after the commit.
On SQLite, concurrent requests may share that transaction (group commit, `webhooks.group_commit_max`;
off by default), each answered as if alone.

The hot path (CPU per webhook): the installation and its decrypted secrets come from a per-process
cache (`endpoints`) that is never trusted alone: the INSERT that stores carries a guard (the
installation still active at that endpoint token, its secrets still the ciphertexts they were read
from), so a rotation or an uninstall by any process refuses the very next webhook (StaleEndpoint:
read again, verified again). The write is Core, no ORM session: on PostgreSQL one autocommitted
statement (inbox row, job, NOTIFY); on SQLite two statements compiled once, on the DBAPI cursor.

Routing "account" with several accounts in one request (a delivery's own `account`): the request
is split first, each account's installation looked up and the request verified with each one's
secrets (401 for any refusal, nothing stored); events of accounts the hub does not know are
refused (404 when that is all of them) without losing the others. An element `split` could not
read (returned as its MalformedPayload) is refused the same way: 400 when nothing else is left,
else the good ones are stored and the answer names the refused ones."""
from __future__ import annotations

import logging
import threading
import time
import functools
from datetime import timezone
from typing import Any, NamedTuple

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy import BigInteger, DateTime, Integer, LargeBinary, String, Text, and_, bindparam, exists, func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from werkzeug.exceptions import RequestEntityTooLarge

from ..config import ConfigError
from ..connectors.contract.webhooks import Delivery, MalformedPayload, RawRequest, Refused, Secrets, Webhooks
from ..inputs import InputError
from ..store import InboxEvent, Installation, Job, Secret, fast
from ..web.access import public
from .credentials import keep_delivery_token, password_ref, prove_claim, token_ref
from .group_commit import GroupCommitter
from .providers import connector_webhooks

log = logging.getLogger("hub.webhooks")
bp = Blueprint("hooks", __name__)
_ROWS_PER_INSERT = 500         # inbox rows per multi-row INSERT: 6 columns, far within SQLite's 32766 parameters


class Endpoint(NamedTuple):
    """What a webhook is checked and stored with: its installation, connector and secrets, and
    `guard`, the bind parameters of `_GUARD` that say the installation and secrets still are as read."""
    installation_id: int
    provider: str
    secrets: Secrets
    guard: dict[str, Any]


class StaleEndpoint(Exception):
    """The installation or its webhook secrets changed since this process read them (another process
    uninstalled, reinstalled, rotated, kept or forgot a token): nothing stored, read them again."""


_INSTALLATIONS, _SECRETS, _INBOX = Installation.__table__, Secret.__table__, InboxEvent.__table__


def _ciphertext(ref: str):
    return func.coalesce(select(_SECRETS.c.ciphertext).where(_SECRETS.c.ref == bindparam(ref, type_=String))
                         .scalar_subquery(), literal(b"", LargeBinary))


# True while the installation is active, at the endpoint token it was read with, and its webhook
# secrets are the very ciphertexts they were read from (a new put re-encrypts with a fresh IV, a
# delete leaves none, a key rotation re-encrypts: each reads as a change). Checked in the transaction
# that stores: a change committed by any process before that is seen at once, with no extra round
# trip (the insert itself carries it) and no decryption per request.
_GUARD = and_(exists().where(_INSTALLATIONS.c.id == bindparam("g_installation_id", type_=BigInteger),
                             _INSTALLATIONS.c.status == "active",
                             _INSTALLATIONS.c.endpoint_token == bindparam("g_endpoint_token", type_=String)),
              _ciphertext("g_password_ref") == bindparam("g_password_ct", type_=LargeBinary),
              _ciphertext("g_token_ref") == bindparam("g_token_ct", type_=LargeBinary))
_GUARD_HOLDS = select(literal(1)).where(_GUARD)


@functools.lru_cache(maxsize=2)
def _guarded_insert(dialect: str):
    """INSERT one inbox row if `_GUARD` holds and its event key is new; RETURNING its id. Built and
    compiled once per dialect (values and guard are bound per call)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    values = select(bindparam("installation_id", type_=BigInteger), bindparam("provider", type_=String),
                    bindparam("event_key", type_=String), bindparam("body", type_=Text), literal("received"),
                    bindparam("received_at", type_=DateTime)).where(_GUARD)   # SQLite's upsert needs the WHERE
    return (insert(_INBOX).from_select(["installation_id", "provider", "event_key", "body", "status", "received_at"],
                                       values)
            .on_conflict_do_nothing(index_elements=["installation_id", "event_key"]).returning(_INBOX.c.id))


@functools.lru_cache(maxsize=1)
def _one_statement_pg():
    """PostgreSQL, a request of one delivery: `_guarded_insert`, its job and the workers' NOTIFY in
    ONE statement, run outside any explicit transaction (a single statement is its own transaction,
    committed, durably, before it returns): one round trip where BEGIN, two INSERTs, NOTIFY and
    COMMIT took five. RETURNING the inbox id; no row when nothing was stored (a duplicate or a guard
    that failed: `_write` tells which)."""
    from ..jobs.queue import NOTIFY_CHANNEL
    inbox = _guarded_insert("postgresql").cte("inbox")
    jobs = Job.__table__
    job = jobs.insert().from_select(
        ["kind", "payload", "installation_id", "status", "attempts", "max_attempts", "run_at", "ordering_key",
         "created_at", "updated_at"],
        select(literal("webhook.process"),
               func.json_build_object("inbox_event_id", inbox.c.id,
                                      "installation_id", bindparam("installation_id", type_=BigInteger)),
               bindparam("installation_id", type_=BigInteger), literal("queued"), literal(0),
               bindparam("max_attempts", type_=Integer), bindparam("received_at", type_=DateTime),
               bindparam("ordering_key", type_=String), bindparam("received_at", type_=DateTime),
               bindparam("received_at", type_=DateTime)).select_from(inbox)).returning(jobs.c.id).cte("job")
    return select(inbox.c.id, func.pg_notify(NOTIFY_CHANNEL, "")).select_from(inbox.join(job, literal(True)))


class _Endpoints:
    """(token or account) -> Endpoint, kept per process: a webhook costs no read and no decryption of
    its secrets. Never trusted alone: every store checks the entry's guard in its own transaction
    (`StaleEndpoint` when it fails: the entry is dropped and the request read again), so a rotation or
    an uninstall in any process refuses the next webhook. Unknown ones are kept NEGATIVE_SECONDS only."""

    NEGATIVE_SECONDS = 10.0   # a token or account that named nothing is not looked up again within this

    def __init__(self):
        self._entries: dict[tuple, tuple[float, Endpoint | None]] = {}
        self._lock = threading.Lock()

    def by_token(self, services, token: str, *, fresh: bool = False) -> Endpoint | None:
        return self._get(services, ("token", token), fresh,
                         lambda: _INSTALLATIONS.c.endpoint_token == token)

    def by_account(self, services, name: str, account: str, *, fresh: bool = False) -> Endpoint | None:
        return self._get(services, ("account", name, account), fresh,
                         lambda: (_INSTALLATIONS.c.provider == name) & (_INSTALLATIONS.c.company_id == account))

    def forget(self, key: tuple) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def forget_installation(self, installation_id: int) -> None:
        with self._lock:
            for key in [k for k, (_, e) in self._entries.items() if e is not None and e.installation_id == installation_id]:
                del self._entries[key]

    def _get(self, services, key: tuple, fresh: bool, where) -> Endpoint | None:
        now = time.monotonic()
        hit = self._entries.get(key)   # a dict read is atomic; writers hold the lock
        if hit is not None and not fresh and (hit[1] is not None or hit[0] > now):
            return hit[1]
        entry = _read_endpoint(services, where())
        with self._lock:
            if len(self._entries) > 10000:
                self._entries.clear()
            self._entries[key] = (now + self.NEGATIVE_SECONDS, entry)
        return entry


def _read_endpoint(services, where) -> Endpoint | None:
    """The active installation `where` names, with its webhook secrets decrypted and the guard that
    says they are still current (Core: two small reads, on a cache miss only)."""
    with services.db.engine.connect() as conn:
        row = conn.execute(select(_INSTALLATIONS.c.id, _INSTALLATIONS.c.provider, _INSTALLATIONS.c.status,
                                  _INSTALLATIONS.c.endpoint_token).where(where)).first()
        if row is None or row.status != "active":
            return None
        refs = (password_ref(row.id), token_ref(row.id))
        stored = dict(conn.execute(select(_SECRETS.c.ref, _SECRETS.c.ciphertext).where(_SECRETS.c.ref.in_(refs))).all())
        conn.commit()
    password_ct, token_ct = bytes(stored.get(refs[0]) or b""), bytes(stored.get(refs[1]) or b"")
    reveal = services.secrets.reveal
    secrets = Secrets(f"relayhub-{row.id}", reveal(password_ct) if password_ct else "",
                      reveal(token_ct) if token_ct else "", _app_secret(services, row.provider))
    return Endpoint(row.id, row.provider, secrets,
                    {"g_installation_id": row.id, "g_endpoint_token": row.endpoint_token, "g_password_ref": refs[0],
                     "g_password_ct": password_ct, "g_token_ref": refs[1], "g_token_ct": token_ct})


endpoints = _Endpoints()


def _app_secret(services: Any, name: str):
    def read() -> str:
        from ..oauth.flow import provider_app
        try:
            return provider_app(services, name).client_secret
        except (KeyError, ImportError, ConfigError):   # a connector without an app of its own
            return ""
    return read


def _reject(status: int, error: str, message: str, field: str | None = None):
    body: dict[str, Any] = {"error": error, "message": message[:300]}
    if field is not None:
        body["fields"] = {field: message[:300]}
    return jsonify(body), status


def _malformed(exc: ValueError):
    """A body the connector cannot read: 400 naming the field (InputError or MalformedPayload)."""
    if isinstance(exc, InputError):
        return jsonify({"error": "malformed", "message": str(exc)[:300], "fields": exc.fields}), 400
    field = getattr(exc, "field", None) or "body"
    return _reject(400, "malformed", f"{field}: {exc}", field)


def _raw(services, body: bytes) -> RawRequest:
    query = request.query_string.decode("latin-1")
    now = services.queue.clock.now()
    received = (now if now.tzinfo else now.replace(tzinfo=timezone.utc)).timestamp()
    return RawRequest(method=request.method, url=f"{services.base_url}{request.path}" + (f"?{query}" if query else ""),
                      headers={k.lower(): v for k, v in request.headers.items()}, body=body,
                      content_type=request.content_type or "", received_at=received)


@bp.post("/hooks/<provider>/<token>")
@bp.post("/hooks/<provider>", defaults={"token": None})
@public  # the connector verifies each delivery (signature, credentials, token in the URL)
def receive(provider: str, token: str | None):
    services = current_app.extensions["hub"]
    limit = services.settings["webhooks.max_body_bytes"]
    if request.content_length is not None and request.content_length > limit:
        return _reject(413, "too_large", f"body: larger than {limit} bytes")
    request.max_content_length = limit
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return _reject(413, "too_large", f"body: larger than {limit} bytes")
    hooks = connector_webhooks(provider)
    if hooks is None or (hooks.routing == "token") != (token is not None):
        return _reject(404, "not_found", "unknown endpoint")
    raw = _raw(services, body)
    for _ in range(3):
        try:
            return _receive(services, hooks, provider, token, raw)
        except StaleEndpoint:
            continue   # its entries are forgotten: read again, verified again
    response = _reject(503, "busy", "the installation changed while this webhook was stored: deliver it again")
    response[0].headers["Retry-After"] = "1"
    return response


def _receive(services, hooks: Webhooks, provider: str, token: str | None, raw: RawRequest):
    found = None
    if token is not None:
        found = endpoints.by_token(services, token)
        if found is None or found.provider != provider:
            return _reject(404, "not_found", "unknown endpoint")
    try:
        if hooks.handshake is not None:
            reply = hooks.handshake(raw)
            if reply is not None:
                return Response(reply.body, status=reply.status, headers=dict(reply.headers),
                                content_type=reply.content_type)
        if found is None:
            return _by_accounts(services, hooks, provider, raw)
        refusal = _verified(services, hooks, provider, found.installation_id, raw, found.secrets, account=None)
        if refusal is not None:
            return refusal
        deliveries, refused = _parts(hooks.split(raw))
        ends = [found.installation_id] if _ends(hooks, raw) else []
    except ValueError as exc:
        return _malformed(exc)
    return _store(services, [(found.installation_id, d) for d in deliveries], provider, refused, ends=ends,
                  guards={found.installation_id: found.guard})


def _ends(hooks: Webhooks, raw: RawRequest) -> bool:
    return hooks.ends_installation is not None and bool(hooks.ends_installation(raw))


def _verified(services, hooks: Webhooks, provider: str, installation_id: int, raw: RawRequest, secrets: Secrets,
              account: str | None):
    """None when the request proves it comes from the installation's account (after any token claim
    it carries), else the 401 answer. `account`: routing "account", the account it was found by."""
    if hooks.claim is not None:
        secrets = _claimed(services, hooks, provider, installation_id, raw, secrets, account)
    try:
        try:
            hooks.verify(raw, secrets)
        except Refused:
            if account is None or hooks.claim is None:
                raise
            # a token another process kept within the cache's life: read it once more
            again = endpoints.by_account(services, provider, account, fresh=True)
            if again is None or again.installation_id != installation_id or again.secrets == secrets:
                raise
            hooks.verify(raw, again.secrets)
    except Refused as exc:
        log.info("webhook for installation %s refused: %s", installation_id, exc)
        return _reject(401, "unauthorized", str(exc))
    return None


def _claimed(services, hooks: Webhooks, provider: str, installation_id: int, raw: RawRequest, secrets: Secrets,
             account: str | None):
    """A delivery that offers the installation's delivery token (`TokenClaim`): kept when none is
    kept yet, or when it replaces the old one (a reinstall), and only once its proof holds (the
    offered access token works at the installation's API). Otherwise the secrets stay as they were
    and `verify` decides."""
    claim = hooks.claim(raw)
    if claim is None or not claim.token or claim.token == secrets.token:
        return secrets
    if secrets.token and not claim.replaces:
        return secrets
    if not prove_claim(services, installation_id, claim):
        return secrets
    with services.db.begin() as session:
        keep_delivery_token(services, session, installation_id, claim.token)
    endpoints.forget_installation(installation_id)   # this request's guard now fails: it is read again
    log.info("installation %s: the provider handed over its delivery token", installation_id)
    return Secrets(secrets.user, secrets.password, claim.token, secrets.app_secret_source)


def _parts(parts: list) -> tuple[list[Delivery], list[dict[str, str]]]:
    """(the deliveries, what was refused); MalformedPayload when nothing readable is left."""
    deliveries = [p for p in parts if isinstance(p, Delivery)]
    bad = [p for p in parts if isinstance(p, MalformedPayload)]
    if bad and not deliveries:
        raise bad[0]
    return deliveries, [{"field": p.field, "message": str(p)[:300]} for p in bad[:20]]


def _by_accounts(services, hooks: Webhooks, name: str, raw: RawRequest):
    """An app-wide request: each delivery to its account's installation (see the module's doc)."""
    account = hooks.account_key(raw)
    if not account:
        return _reject(400, "malformed", "body: names no account", "body")
    deliveries, refused = _parts(hooks.split(raw))
    groups: dict[str, list[Delivery]] = {}
    for delivery in deliveries:
        groups.setdefault(str(delivery.account or account), []).append(delivery)
    known: dict[str, Endpoint] = {}
    for key in groups:
        found = endpoints.by_account(services, name, key) if len(key) <= 100 else None
        if found is None:
            refused.append({"field": "account", "message": f"unknown account: {len(groups[key])} event(s) refused"})
        else:
            known[key] = found
    if not known and (groups or not refused):
        return _reject(404, "not_found", "unknown account")
    for key, found in known.items():
        refusal = _verified(services, hooks, name, found.installation_id, raw, found.secrets, account=key)
        if refusal is not None:
            return refusal
    ends = [found.installation_id for found in known.values()] if _ends(hooks, raw) else []
    return _store(services, [(known[key].installation_id, d) for key, group in groups.items() if key in known
                             for d in group],
                  name, refused, ends=ends, guards={found.installation_id: found.guard for found in known.values()})


def _store(services, parts: list[tuple[int, Delivery]], provider: str, refused: list[dict] | None = None, *,
           ends: list[int] = (), guards: dict[int, dict[str, Any]]):
    """Every (installation, delivery) of the request, or none of them: one transaction, answered
    after its commit. `refused`: parts not stored (unreadable, unknown account), named in the answer.
    `ends`: installations the provider says the app was removed from; each ends in a job. `guards`:
    each installation's `Endpoint.guard`; StaleEndpoint (nothing stored) when one no longer holds.
    On SQLite the transaction may hold other requests' parts too (group commit:
    hub/webhooks/group_commit.py)."""
    request_parts = (tuple(parts), provider, tuple(ends), guards)
    committer = _committer(services)
    try:
        if committer is None and len(parts) == 1 and not ends and services.db.is_postgres:
            stored = _write_one_pg(services, request_parts)
        elif committer is None:
            with services.queue.core_transaction() as conn:
                stored = _write(services, conn, request_parts)
        else:
            stored = committer.submit(request_parts)
    except StaleEndpoint:
        for installation_id in guards:
            endpoints.forget_installation(installation_id)
        raise
    # the inbox rows are the record of receipt; the run log shows each as its event's first step
    g.webhook_duplicate = bool(parts) and not stored   # for the metrics (hub/web/metrics.py)
    if len(parts) == 1 and not refused:
        return _duplicate_answer() if not stored else _ok_answer()
    answer: dict[str, Any] = {"ok": True}
    if parts and not stored:
        answer["duplicate"] = True
    answer.update(events=len(parts), duplicates=len(parts) - stored)
    if refused:
        log.info("webhook parts refused: %s", "; ".join(r["message"] for r in refused)[:500])
        answer["refused"] = refused
    return jsonify(answer)


def _ok_answer():
    return current_app.response_class(_OK_BODY, mimetype="application/json")


def _duplicate_answer():
    return current_app.response_class(_DUPLICATE_BODY, mimetype="application/json")


_OK_BODY = b'{"ok":true}\n'                        # what jsonify makes of the two common answers
_DUPLICATE_BODY = b'{"duplicate":true,"ok":true}\n'


def _holds(conn, guard: dict[str, Any]) -> bool:
    return conn.execute(_GUARD_HOLDS, guard).first() is not None


def _write(services, conn, request_parts: tuple) -> int:
    """One request's inbox rows and jobs in `conn`'s transaction (Core: no ORM unit of work); how
    many were new. Each inbox row's insert carries its installation's guard, so a request whose
    secrets changed meanwhile stores nothing: StaleEndpoint (its transaction rolls back)."""
    parts, provider, ends, guards = request_parts
    queue = services.queue
    for installation_id in ends:
        if not _holds(conn, guards[installation_id]):
            raise StaleEndpoint(installation_id)
        queue.enqueue_core(conn, "webhooks.installation_ended", {"installation_id": installation_id},
                           installation_id=installation_id, ordering_key=f"{installation_id}:webhooks")
    now = queue.clock.now()
    stored = 0
    for installation_id, delivery in parts:
        guard = guards[installation_id]
        values = {"installation_id": installation_id, "provider": provider, "event_key": delivery.key[:200],
                  "body": delivery.body, "received_at": now, **guard}
        inbox_id = fast.execute(conn, _guarded_insert(conn.dialect.name), values).scalar_one_or_none()
        if inbox_id is None:
            if not _holds(conn, guard):
                raise StaleEndpoint(installation_id)
            continue   # a known event key: a redelivery
        stored += 1
        queue.enqueue_core(conn, "webhook.process", {"inbox_event_id": inbox_id, "installation_id": installation_id},
                           installation_id=installation_id,
                           ordering_key=f"{installation_id}:{delivery.ordering}"[:200])
    return stored


def _write_one_pg(services, request_parts: tuple) -> int:
    """`_write` of one delivery on PostgreSQL, as one autocommitted statement (`_one_statement_pg`)."""
    (installation_id, delivery), = request_parts[0]
    guard = request_parts[3][installation_id]
    queue = services.queue
    with services.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        row = fast.execute(conn, _one_statement_pg(), {
            "installation_id": installation_id, "provider": request_parts[1], "event_key": delivery.key[:200],
            "body": delivery.body, "received_at": queue.clock.now(), "max_attempts": queue.max_attempts,
            "ordering_key": f"{installation_id}:{delivery.ordering}"[:200], **guard}).first()
        if row is None:
            if not _holds(conn, guard):
                raise StaleEndpoint(installation_id)
            return 0   # a known event key: a redelivery
    queue.enqueued()
    return 1


def _write_many(services, conn, batch: list[tuple]) -> list[int]:
    """Several requests' rows (SQLite): what `_write` does for each in turn, in a few multi-row
    statements. Every statement lets other threads take the GIL, and the leader then waits to get it
    back (up to the 5 ms switch interval), so a batch written row by row spends most of its time
    waiting while its whole batch waits on it. The rows, their order (ids), the dedupe (the first
    of a key wins, within the batch as against stored rows) and each request's count are `_write`'s.
    The guards are checked first, once each; one that fails raises StaleEndpoint, and the group
    committer then writes each request alone (`_write`), which refuses only the stale ones."""
    seen: set = set()
    for _, _, _, guards in batch:
        for guard in guards.values():
            key = tuple(guard.values())
            if key not in seen:
                if not _holds(conn, guard):
                    raise StaleEndpoint(guard["g_installation_id"])
                seen.add(key)
    now = services.queue.clock.now()
    rows = [{"installation_id": installation_id, "provider": provider, "event_key": delivery.key[:200],
             "body": delivery.body, "status": "received", "received_at": now}
            for parts, provider, _, _ in batch for installation_id, delivery in parts]
    inserted: dict[tuple[int, str], int] = {}
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        stmt = (sqlite_insert(_INBOX).values(rows[start:start + _ROWS_PER_INSERT])
                .on_conflict_do_nothing(index_elements=["installation_id", "event_key"])
                .returning(_INBOX.c.id, _INBOX.c.installation_id, _INBOX.c.event_key))
        inserted.update(((r.installation_id, r.event_key), r.id) for r in conn.execute(stmt))
    jobs: list[dict[str, Any]] = []
    counts: list[int] = []
    for parts, _, ends, _ in batch:
        jobs += [{"kind": "webhooks.installation_ended", "payload": {"installation_id": installation_id},
                  "installation_id": installation_id, "ordering_key": f"{installation_id}:webhooks"}
                 for installation_id in ends]
        stored = 0
        for installation_id, delivery in parts:
            inbox_id = inserted.pop((installation_id, delivery.key[:200]), None)   # later ones: duplicates
            if inbox_id is None:
                continue
            stored += 1
            jobs.append({"kind": "webhook.process", "payload": {"inbox_event_id": inbox_id,
                                                                "installation_id": installation_id},
                         "installation_id": installation_id,
                         "ordering_key": f"{installation_id}:{delivery.ordering}"[:200]})
        counts.append(stored)
    services.queue.enqueue_many_core(conn, jobs)
    return counts


_COMMITTER_KEY = "webhooks.group_commit"
_committer_lock = threading.Lock()


def _committer(services) -> GroupCommitter | None:
    """SQLite's group committer of this hub; None on PostgreSQL (no single write lock: each request
    keeps its own transaction) or when `webhooks.group_commit_max` is 0."""
    committer = services.extras.get(_COMMITTER_KEY)
    if committer is not None or services.db.is_postgres:
        return committer or None
    size = services.settings["webhooks.group_commit_max"]
    with _committer_lock:
        committer = services.extras.get(_COMMITTER_KEY)
        if committer is None:
            committer = services.extras[_COMMITTER_KEY] = (
                GroupCommitter(services.queue.core_transaction, lambda conn, item: _write(services, conn, item),
                               lambda conn, batch: _write_many(services, conn, batch),
                               max_batch=size) if size > 0 else False)
    return committer or None


@bp.get("/hooks/<provider>/<token>")
@bp.get("/hooks/<provider>", defaults={"token": None})
def probe(provider: str, token: str | None):
    """Some providers probe the URL with GET when it is registered; answer without revealing anything."""
    return _reject(405, "method_not_allowed", "webhooks are POSTed")
