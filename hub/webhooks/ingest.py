"""The ingest endpoint. Nothing here calls a provider: the answer depends only on our database."""
from __future__ import annotations

import hmac
import json
import logging

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from ..events import trace
from ..store import InboxEvent, Installation
from ..store.sql import insert_ignore
from .credentials import webhook_credentials
from .providers import provider_webhooks

log = logging.getLogger("hub.webhooks")
bp = Blueprint("hooks", __name__)


def _reject(status: int, error: str, message: str):
    return jsonify({"error": error, "message": message}), status


@bp.post("/hooks/<provider>/<token>")
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
    with services.db.begin() as session:
        installation = session.scalar(select(Installation).where(Installation.endpoint_token == token))
        if installation is None or installation.provider != provider or installation.status != "active":
            return _reject(404, "not_found", "unknown endpoint")
        installation_id = installation.id
        user, password = webhook_credentials(services, session, installation_id)
    if not module.verify(request.headers, user, password):
        log.info("webhook for installation %s refused: bad credentials", installation_id)
        return _reject(401, "unauthorized", "Authorization: bad or missing credentials")
    try:
        payload = json.loads(body)
        key = module.event_key(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        return _reject(400, "malformed", f"body: {exc}"[:300])
    with services.db.begin() as session:
        inbox_id = insert_ignore(session, InboxEvent, {
            "installation_id": installation_id, "provider": provider, "event_key": key[:200],
            "body": body.decode("utf-8"), "status": "received", "received_at": services.queue.clock.now()},
            ["installation_id", "event_key"])
        if inbox_id is None:
            return jsonify({"ok": True, "duplicate": True})
        entity = (payload.get("meta") or {}).get("entity") or (payload.get("meta") or {}).get("object") or ""
        object_id = (payload.get("meta") or {}).get("entity_id") or (payload.get("meta") or {}).get("id") or ""
        services.queue.enqueue(session, "webhook.process", {"inbox_event_id": inbox_id, "installation_id": installation_id},
                               ordering_key=f"{installation_id}:{entity}:{object_id}")
        trace(session, installation_id, "received", f"{provider} webhook {key}", inbox_event_id=inbox_id)
    return jsonify({"ok": True})


@bp.get("/hooks/<provider>/<token>")
def probe(provider: str, token: str):
    """Some providers probe the URL with GET when it is registered; answer without revealing anything."""
    return _reject(405, "method_not_allowed", "webhooks are POSTed")
