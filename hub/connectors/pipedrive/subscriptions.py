"""The hub's webhooks at Pipedrive (FACTS §6): made through the API with the installation's HTTP
Basic credentials, one per (event_action, event_object) the connector subscribes to.

`subscribe` is idempotent: a hook of ours that is active, points at today's URL, carries today's
user name, speaks payload version 2 and is wanted is kept; every other hook of ours (an old URL after
a reinstall, a banned or deactivated one, a duplicate) is deleted, and the missing ones are created.
Pipedrive lets an app see only its own webhooks, and `ours` narrows that to this hub's URLs."""
from __future__ import annotations

from typing import Any

from ..contract.webhooks import Credentials, Hook, Subscribed

# What the hub subscribes to: (event_action, event_object). Deals for the rules and reconciliation,
# leads for "lead added", persons for contact sync, activity changes for "task completed" (every
# activity edit is then a delivery; only not-done -> done becomes an event, see webhooks.py).
SUBSCRIPTIONS: tuple[tuple[str, str], ...] = (("*", "deal"), ("create", "lead"), ("*", "person"),
                                              ("change", "activity"))


def _hook(raw: dict) -> Hook:
    return Hook(str(raw["id"]), str(raw.get("event_action")), str(raw.get("event_object")))


def subscribe(client: Any, url: str, credentials: Credentials, ours: str) -> Subscribed:
    existing = [w for w in client.webhooks() if str(w.get("subscription_url", "")).startswith(ours)]
    wanted = set(SUBSCRIPTIONS)
    kept: dict[tuple[str, str], dict] = {}
    stale: list[dict] = []
    for hook in existing:
        key = (hook.get("event_action"), hook.get("event_object"))
        good = (hook.get("subscription_url") == url and key in wanted and key not in kept
                and hook.get("is_active", True) not in (False, 0) and hook.get("http_auth_user") == credentials.user
                and str(hook.get("version", "2.0")).startswith("2"))
        (kept.__setitem__(key, hook) if good else stale.append(hook))
    for hook in stale:
        client.delete_webhook(hook["id"])
    created = [client.create_webhook(url, action, obj, credentials.user, credentials.password,
                                     f"Relay Hub {obj} {action}")
               for action, obj in sorted(wanted - set(kept))]
    return Subscribed(kept=[_hook(h) for h in kept.values()], created=[_hook(h) for h in created],
                      deleted=len(stale))


def unsubscribe(client: Any, remote_id: str) -> None:
    client.delete_webhook(int(remote_id))
