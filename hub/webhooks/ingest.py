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
from datetime import timezone
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from werkzeug.exceptions import RequestEntityTooLarge

from ..config import ConfigError
from ..connectors.contract.webhooks import Delivery, MalformedPayload, RawRequest, Refused, Secrets, Webhooks
from ..inputs import InputError
from ..store import InboxEvent, Installation
from ..store.sql import insert_ignore
from ..web.access import public
from .credentials import delivery_token, keep_delivery_token, prove_claim, webhook_credentials
from .group_commit import GroupCommitter
from .providers import connector_webhooks

log = logging.getLogger("hub.webhooks")
bp = Blueprint("hooks", __name__)
ENDPOINT_CACHE_SECONDS = 10.0  # an uninstall (new token) reaches every web process within this
_ROWS_PER_INSERT = 500         # inbox rows per multi-row INSERT: 6 columns, far within SQLite's 32766 parameters


class _Endpoints:
    """(token or account) -> (installation, connector, secrets), cached briefly: a webhook burst
    costs one transaction per request instead of two plus a decryption."""

    def __init__(self):
        self._entries: dict[tuple, tuple[float, tuple | None]] = {}
        self._lock = threading.Lock()

    def by_token(self, services, token: str) -> tuple | None:
        return self._get(services, ("token", token), Installation.endpoint_token == token)

    def by_account(self, services, name: str, account: str, *, fresh: bool = False) -> tuple | None:
        return self._get(services, ("account", name, account),
                         (Installation.provider == name) & (Installation.company_id == account), fresh=fresh)

    def forget(self, key: tuple) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def _get(self, services, key: tuple, where, *, fresh: bool = False) -> tuple | None:
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and hit[0] > now and not fresh:
            return hit[1]
        with services.db.begin() as session:
            installation = session.scalar(select(Installation).where(where))
            if installation is None or installation.status != "active":
                entry = None
            else:
                user, password = webhook_credentials(services, session, installation.id)
                entry = (installation.id, installation.provider,
                         Secrets(user, password, delivery_token(services, session, installation.id),
                                 _app_secret(services, installation.provider)))
        with self._lock:
            if len(self._entries) > 10000:
                self._entries.clear()
            self._entries[key] = (now + ENDPOINT_CACHE_SECONDS, entry)
        return entry


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
    found = None
    if token is not None:
        found = endpoints.by_token(services, token)
        if found is None or found[1] != provider:
            return _reject(404, "not_found", "unknown endpoint")
    raw = _raw(services, body)
    try:
        if hooks.handshake is not None:
            reply = hooks.handshake(raw)
            if reply is not None:
                return Response(reply.body, status=reply.status, headers=dict(reply.headers),
                                content_type=reply.content_type)
        if found is None:
            return _by_accounts(services, hooks, provider, raw)
        installation_id, _, secrets = found
        refusal = _verified(services, hooks, provider, installation_id, raw, secrets, account=None)
        if refusal is not None:
            return refusal
        deliveries, refused = _parts(hooks.split(raw))
        ends = [installation_id] if _ends(hooks, raw) else []
    except ValueError as exc:
        return _malformed(exc)
    return _store(services, [(installation_id, d) for d in deliveries], provider, refused, ends=ends)


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
            if again is None or again[0] != installation_id or again[2] == secrets:
                raise
            hooks.verify(raw, again[2])
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
    if account is not None:
        endpoints.forget(("account", provider, account))
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
    known: dict[str, tuple] = {}
    for key in groups:
        found = endpoints.by_account(services, name, key) if len(key) <= 100 else None
        if found is None:
            refused.append({"field": "account", "message": f"unknown account: {len(groups[key])} event(s) refused"})
        else:
            known[key] = found
    if not known and (groups or not refused):
        return _reject(404, "not_found", "unknown account")
    for key, (installation_id, _, secrets) in known.items():
        refusal = _verified(services, hooks, name, installation_id, raw, secrets, account=key)
        if refusal is not None:
            return refusal
    ends = [found[0] for found in known.values()] if _ends(hooks, raw) else []
    return _store(services, [(known[key][0], d) for key, group in groups.items() if key in known for d in group],
                  name, refused, ends=ends)


def _store(services, parts: list[tuple[int, Delivery]], provider: str, refused: list[dict] | None = None, *,
           ends: list[int] = ()):
    """Every (installation, delivery) of the request, or none of them: one transaction, answered
    after its commit. `refused`: parts not stored (unreadable, unknown account), named in the answer.
    `ends`: installations the provider says the app was removed from; each ends in a job. On SQLite
    the transaction may hold other requests' parts too (group commit: hub/webhooks/group_commit.py)."""
    request_parts = (tuple(parts), provider, tuple(ends))
    committer = _committer(services)
    if committer is None:
        with services.db.begin() as session:
            stored = _write(services, session, request_parts)
    else:
        stored = committer.submit(request_parts)
    # the inbox rows are the record of receipt; the run log shows each as its event's first step
    answer: dict[str, Any] = {"ok": True}
    if parts and not stored:
        answer["duplicate"] = True
    if len(parts) != 1 or refused:
        answer.update(events=len(parts), duplicates=len(parts) - stored)
    if refused:
        log.info("webhook parts refused: %s", "; ".join(r["message"] for r in refused)[:500])
        answer["refused"] = refused
    return jsonify(answer)


def _write(services, session, request_parts: tuple) -> int:
    """One request's inbox rows and jobs in `session`'s transaction; how many were new."""
    parts, provider, ends = request_parts
    stored = 0
    for installation_id in ends:
        services.queue.enqueue(session, "webhooks.installation_ended", {"installation_id": installation_id},
                               installation_id=installation_id, ordering_key=f"{installation_id}:webhooks")
    for installation_id, delivery in parts:
        inbox_id = insert_ignore(session, InboxEvent, {
            "installation_id": installation_id, "provider": provider, "event_key": delivery.key[:200],
            "body": delivery.body, "status": "received", "received_at": services.queue.clock.now()},
            ["installation_id", "event_key"])
        if inbox_id is None:
            continue
        stored += 1
        services.queue.enqueue(session, "webhook.process", {"inbox_event_id": inbox_id,
                                                             "installation_id": installation_id},
                               installation_id=installation_id,
                               ordering_key=f"{installation_id}:{delivery.ordering}"[:200])
    return stored


def _write_many(services, session, batch: list[tuple]) -> list[int]:
    """Several requests' rows (SQLite): what `_write` does for each in turn, in a few multi-row
    statements. Every statement lets other threads take the GIL, and the leader then waits to get it
    back (up to the 5 ms switch interval), so a batch written row by row spends most of its time
    waiting while its whole batch waits on it. The rows, their order (ids), the dedupe (the first
    of a key wins, within the batch as against stored rows) and each request's count are `_write`'s."""
    now = services.queue.clock.now()
    rows = [{"installation_id": installation_id, "provider": provider, "event_key": delivery.key[:200],
             "body": delivery.body, "status": "received", "received_at": now}
            for parts, provider, _ in batch for installation_id, delivery in parts]
    inserted: dict[tuple[int, str], int] = {}
    table = InboxEvent.__table__
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        stmt = (sqlite_insert(table).values(rows[start:start + _ROWS_PER_INSERT])
                .on_conflict_do_nothing(index_elements=["installation_id", "event_key"])
                .returning(table.c.id, table.c.installation_id, table.c.event_key))
        inserted.update(((r.installation_id, r.event_key), r.id) for r in session.execute(stmt))
    jobs: list[dict[str, Any]] = []
    counts: list[int] = []
    for parts, _, ends in batch:
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
    services.queue.enqueue_many(session, jobs)
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
                GroupCommitter(services.db.begin, lambda session, item: _write(services, session, item),
                               lambda session, batch: _write_many(services, session, batch),
                               max_batch=size) if size > 0 else False)
    return committer or None


@bp.get("/hooks/<provider>/<token>")
@bp.get("/hooks/<provider>", defaults={"token": None})
def probe(provider: str, token: str | None):
    """Some providers probe the URL with GET when it is registered; answer without revealing anything."""
    return _reject(405, "method_not_allowed", "webhooks are POSTed")
