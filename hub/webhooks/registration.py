"""The hub's webhooks at the CRM: registered when an installation connects, idempotently (existing
ones reused, stale ones deleted, never duplicated), and removed on uninstall."""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, select

from ..events import trace
from ..jobs import JobContext, handler
from ..oauth import installs
from ..oauth.clients import crm_client
from ..store import Installation, RegisteredWebhook
from .credentials import webhook_credentials

log = logging.getLogger("hub.webhooks")


def hook_url(services: Any, installation: Installation) -> str:
    return f"{services.base_url}/hooks/{installation.provider}/{installation.endpoint_token}"


@installs.on_install
def schedule_registration(services: Any, session, installation: Installation) -> None:
    webhook_credentials(services, session, installation.id, create=True)
    services.queue.enqueue(session, "webhooks.register", {"installation_id": installation.id},
                           installation_id=installation.id, ordering_key=f"{installation.id}:webhooks")


@handler("webhooks.register")
def register(ctx: JobContext) -> None:
    services = ctx.app.extensions["hub"]
    installation_id = ctx.payload["installation_id"]
    summary = ensure_webhooks(services, installation_id)
    with ctx.db.begin() as session:
        trace(session, installation_id, "webhooks", f"webhooks: {summary['kept']} kept, {summary['created']} created, "
              f"{summary['deleted']} stale deleted", job_id=ctx.job_id, **summary)


def ensure_webhooks(services: Any, installation_id: int) -> dict[str, int]:
    from ..connectors.pipedrive.webhooks import SUBSCRIPTIONS

    with services.db.begin() as session:
        installation = session.get(Installation, installation_id)
        if installation is None or installation.status != "active":
            return {"kept": 0, "created": 0, "deleted": 0}
        url = hook_url(services, installation)
        user, password = webhook_credentials(services, session, installation_id, create=True)
    client = crm_client(services, installation_id)
    ours_prefix = f"{services.base_url}/hooks/{installation.provider}/"
    existing = [w for w in client.webhooks() if str(w.get("subscription_url", "")).startswith(ours_prefix)]
    wanted = set(SUBSCRIPTIONS)
    kept: dict[tuple[str, str], dict] = {}
    stale: list[dict] = []
    for hook in existing:
        key = (hook.get("event_action"), hook.get("event_object"))
        good = (hook.get("subscription_url") == url and key in wanted and key not in kept
                and hook.get("is_active", True) not in (False, 0) and hook.get("http_auth_user") == user
                and str(hook.get("version", "2.0")).startswith("2"))
        (kept.__setitem__(key, hook) if good else stale.append(hook))
    for hook in stale:
        client.delete_webhook(hook["id"])
    created = []
    for action, obj in sorted(wanted - set(kept)):
        created.append(client.create_webhook(url, action, obj, user, password, f"Relay Hub {obj} {action}"))
    with services.db.begin() as session:
        session.execute(delete(RegisteredWebhook).where(RegisteredWebhook.installation_id == installation_id))
        for hook in list(kept.values()) + created:
            session.add(RegisteredWebhook(installation_id=installation_id, provider=installation.provider,
                                          remote_id=str(hook["id"]), event_action=hook["event_action"],
                                          event_object=hook["event_object"], url=url))
    return {"kept": len(kept), "created": len(created), "deleted": len(stale)}


@installs.on_uninstall
def remove_webhooks(services: Any, installation: Installation) -> None:
    """Delete what we registered (best effort: a revoked grant already took them with it)."""

    with services.db.begin() as session:
        hooks = session.scalars(select(RegisteredWebhook).where(
            RegisteredWebhook.installation_id == installation.id)).all()
    if hooks:
        client = crm_client(services, installation.id)
        for hook in hooks:
            try:
                client.delete_webhook(int(hook.remote_id))
            except Exception as exc:
                log.warning("installation %s: webhook %s not deleted: %s", installation.id, hook.remote_id, exc)
    with services.db.begin() as session:
        session.execute(delete(RegisteredWebhook).where(RegisteredWebhook.installation_id == installation.id))
