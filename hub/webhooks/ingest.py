"""The ingest endpoint. Nothing here calls a provider: the answer depends only on our database."""
from __future__ import annotations

import logging
import threading
import time

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from ..inputs import InputError, parse_json
from ..store import InboxEvent, Installation
from ..web.access import public
from ..store.sql import insert_ignore
from .credentials import webhook_credentials
from .providers import provider_webhooks

log = logging.getLogger("hub.webhooks")
bp = Blueprint("hooks", __name__)
ENDPOINT_CACHE_SECONDS = 10.0  # an uninstall (new token) reaches every web process within this


class _Endpoints:
    """Token -> (installation, provider, credentials), cached briefly: a webhook burst costs one
    transaction per request instead of two plus a decryption."""

    def __init__(self):
        self._entries: dict[str, tuple[float, tuple]] = {}
        self._lock = threading.Lock()

    def get(self, services, token: str) -> tuple | None:
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        with services.db.begin() as session:
            installation = session.scalar(select(Installation).where(Installation.endpoint_token == token))
            if installation is None or installation.status != "active":
                entry = None
            else:
                entry = (installation.id, installation.provider,
                         *webhook_credentials(services, session, installation.id))
        with self._lock:
            if len(self._entries) > 10000:
                self._entries.clear()
            self._entries[token] = (now + ENDPOINT_CACHE_SECONDS, entry)
        return entry


endpoints = _Endpoints()


def _reject(status: int, error: str, message: str):
    return jsonify({"error": error, "message": message}), status


@bp.post("/hooks/<provider>/<token>")
@public  # the connector verifies each delivery (signature, credentials, token in the URL)
def receive(provider: str, token: str):
    services = current_app.extensions["hub"]
    limit = services.settings["webhooks.max_body_bytes"]
    if request.content_length is not None and request.content_length > limit:
        return _reject(413, "too_large", f"body: larger than {limit} bytes")
    request.max_content_length = limit
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return _reject(413, "too_large", f"body: larger than {limit} bytes")
    module = provider_webhooks(provider)
    if module is None:
        return _reject(404, "not_found", "unknown endpoint")
    found = endpoints.get(services, token)
    if found is None or found[1] != provider:
        return _reject(404, "not_found", "unknown endpoint")
    installation_id, _, user, password = found
    if not module.verify(request.headers, user, password):
        log.info("webhook for installation %s refused: bad credentials", installation_id)
        return _reject(401, "unauthorized", "Authorization: bad or missing credentials")
    try:
        payload = parse_json(body)
        key = module.event_key(payload)
    except InputError as exc:
        return jsonify({"error": "malformed", "message": str(exc)[:300], "fields": exc.fields}), 400
    except ValueError as exc:  # the connector's word: not a delivery of this provider (MalformedPayload)
        field = getattr(exc, "field", "body")
        return jsonify({"error": "malformed", "message": f"{field}: {exc}"[:300], "fields": {field: str(exc)[:300]}}), 400
    meta = payload.get("meta") if isinstance(payload, dict) and isinstance(payload.get("meta"), dict) else {}
    with services.db.begin() as session:
        inbox_id = insert_ignore(session, InboxEvent, {
            "installation_id": installation_id, "provider": provider, "event_key": key[:200],
            "body": body.decode("utf-8"), "status": "received", "received_at": services.queue.clock.now()},
            ["installation_id", "event_key"])
        if inbox_id is None:
            return jsonify({"ok": True, "duplicate": True})
        entity = meta.get("entity") or meta.get("object") or ""
        object_id = meta.get("entity_id") or meta.get("id") or ""
        services.queue.enqueue(session, "webhook.process", {"inbox_event_id": inbox_id, "installation_id": installation_id},
                               installation_id=installation_id,
                               ordering_key=f"{installation_id}:{entity}:{object_id}"[:200])
    # the inbox row is the record of receipt; the run log shows it as the path's first step
    return jsonify({"ok": True})


@bp.get("/hooks/<provider>/<token>")
def probe(provider: str, token: str):
    """Some providers probe the URL with GET when it is registered; answer without revealing anything."""
    return _reject(405, "method_not_allowed", "webhooks are POSTed")
