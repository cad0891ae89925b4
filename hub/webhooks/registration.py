"""The hub's webhooks at the CRM: registered when an installation connects, idempotently (existing
ones reused, stale ones deleted, never duplicated), and removed on uninstall."""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, select

from ..connectors.contract.webhooks import Credentials, Webhooks
from ..events import trace
from ..jobs import JobContext, handler
from ..oauth import installs
from ..store import Installation, RegisteredWebhook
from .credentials import forget_delivery_token, webhook_credentials
from .providers import connector_webhooks, crm_api

log = logging.getLogger("hub.webhooks")


def hook_url(services: Any, installation: Installation, hooks: Webhooks | None = None) -> str:
    """Where the provider delivers: the installation's own URL, or the connector's app-wide one."""
    hooks = hooks or connector_webhooks(installation.provider)
    if hooks is not None and hooks.routing == "account":
        return f"{services.base_url}/hooks/{installation.provider}"
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
    with services.db.begin() as session:
        installation = session.get(Installation, installation_id)
        if installation is None or installation.status != "active":
            return {"kept": 0, "created": 0, "deleted": 0}
        hooks = connector_webhooks(installation.provider)
        if hooks is None or hooks.subscribe is None:
            return {"kept": 0, "created": 0, "deleted": 0}   # nothing to subscribe (app-level hooks)
        provider = installation.provider
        url = hook_url(services, installation, hooks)
        user, password = webhook_credentials(services, session, installation_id, create=True)
    done = hooks.subscribe(crm_api(services, installation_id), url, Credentials(user, password),
                           f"{services.base_url}/hooks/{provider}/")
    with services.db.begin() as session:
        session.execute(delete(RegisteredWebhook).where(RegisteredWebhook.installation_id == installation_id))
        for hook in done.hooks:
            session.add(RegisteredWebhook(installation_id=installation_id, provider=provider,
                                          remote_id=hook.remote_id, event_action=hook.action,
                                          event_object=hook.object, url=url))
    return {"kept": len(done.kept), "created": len(done.created), "deleted": done.deleted}


@installs.on_uninstall
def remove_webhooks(services: Any, installation: Installation) -> None:
    """Delete what we registered (best effort: a revoked grant already took them with it)."""

    with services.db.begin() as session:
        hooks = session.scalars(select(RegisteredWebhook).where(
            RegisteredWebhook.installation_id == installation.id)).all()
    part = connector_webhooks(installation.provider)
    if hooks and part is not None and part.unsubscribe is not None:
        client = crm_api(services, installation.id)
        for hook in hooks:
            try:
                part.unsubscribe(client, hook.remote_id)
            except Exception as exc:
                log.warning("installation %s: webhook %s not deleted: %s", installation.id, hook.remote_id, exc)
    with services.db.begin() as session:
        session.execute(delete(RegisteredWebhook).where(RegisteredWebhook.installation_id == installation.id))


@handler("webhooks.installation_ended")
def installation_ended(ctx: JobContext) -> None:
    """The provider said (in a verified delivery) that the app was removed from the account. Its
    hooks went with the app, and so did its grant: the installation ends without calling the
    provider (no unsubscribe, no revocation), and the delivery token is forgotten."""
    services = ctx.app.extensions["hub"]
    installation_id = ctx.payload["installation_id"]
    with ctx.db.begin() as session:
        installation = session.get(Installation, installation_id)
        if installation is None or installation.status != "active":
            return
        provider = installation.provider
        session.execute(delete(RegisteredWebhook).where(RegisteredWebhook.installation_id == installation_id))
        forget_delivery_token(services, session, installation_id)
        trace(session, installation_id, "webhooks", f"{provider} says the app was removed: the installation ends",
              job_id=ctx.job_id)
    installs.uninstall(services, installation_id, f"{provider}: the app was removed", revoke_at_provider=False)
