"""The hub's event handlers at Bitrix24 (FACTS §3): `event.bind` one handler URL per event,
`event.get` to see what is bound, `event.unbind` to remove. Bindings have no id of their own, so a
hook's remote id is `<EVENT>|<handler URL>`.

`subscribe` is idempotent: a binding of ours for a wanted event at today's URL is kept; one of ours
at another URL (an old hub address) or for an event no longer wanted is unbound; missing ones are
bound. Bitrix24 removes an app's bindings when the app is removed or updated, so the
reconciliation job's re-subscribe puts them back after an update."""
from __future__ import annotations

from typing import Any

from ..contract.webhooks import Credentials, Hook, Subscribed

EVENTS: tuple[str, ...] = ("ONCRMDEALADD", "ONCRMDEALUPDATE", "ONCRMDEALDELETE",
                           "ONCRMLEADADD", "ONCRMLEADUPDATE", "ONCRMLEADDELETE",
                           "ONTASKADD", "ONTASKUPDATE", "ONTASKDELETE", "ONAPPUNINSTALL")
_REMOTE_ID_MAX = 100


def remote_id(event: str, handler: str) -> str:
    ident = f"{event}|{handler}"
    return ident if len(ident) <= _REMOTE_ID_MAX else f"{event}|*"


def subscribe(client: Any, url: str, credentials: Credentials, ours: str) -> Subscribed:
    """`credentials` are unused: Bitrix24 proves its deliveries with the application token."""
    bound = [b for b in client.bound_events() if isinstance(b, dict)]
    wanted = set(EVENTS)
    kept: dict[str, dict] = {}
    stale: list[dict] = []
    mine = ours.rstrip("/")
    for binding in bound:
        event, handler = str(binding.get("event") or "").upper(), str(binding.get("handler") or "")
        if not (handler == mine or handler.startswith(ours) or handler == url):
            continue          # somebody else's handler (another app of the portal's, an outgoing webhook)
        offline = str(binding.get("offline") or "0") not in ("0", "")
        if handler == url and event in wanted and event not in kept and not offline:
            kept[event] = binding
        else:
            stale.append(binding)
    for binding in stale:
        client.unbind(str(binding.get("event")), str(binding.get("handler")))
    created = []
    for event in [e for e in EVENTS if e not in kept]:
        client.bind(event, url)
        created.append(Hook(remote_id(event, url), event, "event"))
    return Subscribed(kept=[Hook(remote_id(e, url), e, "event") for e in kept],
                      created=created, deleted=len(stale))


def unsubscribe(client: Any, remote: str) -> None:
    event, _, handler = remote.partition("|")
    if handler == "*":        # the URL was too long to keep in the id: every handler of ours for it
        for binding in client.bound_events():
            if str(binding.get("event") or "").upper() == event and str(binding.get("handler", "")).endswith(
                    "/hooks/bitrix24"):
                client.unbind(event, binding["handler"])
        return
    client.unbind(event, handler)
