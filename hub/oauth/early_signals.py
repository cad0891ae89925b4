"""App-sharing callbacks that arrive before their installation exists.

The CRM sends `{company_id, isShared}` when someone installs, and it arrives before the installer's
browser has brought the authorization code back: at that moment the hub knows no such company and
the hint was lost, so the hub's confirmation step offered "only me" to an admin who had just chosen
"all users". The hint is kept here for a few minutes and applied when the installation is created.

Kept in this process's memory, bounded in count and age: the callback carries no credentials, so
nothing of it is written for companies the hub does not know. With several web processes the
callback and the browser may meet different processes; the confirmation step then simply has no
hint (the installer still chooses; the hint never grants access)."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict

TTL_SECONDS = 600.0
MAX_ENTRIES = 1000

_signals: OrderedDict[tuple[str, str], tuple[bool, float]] = OrderedDict()
_lock = threading.Lock()


def remember(provider: str, company_id: str, is_shared: bool) -> None:
    with _lock:
        _signals[(provider, str(company_id))] = (bool(is_shared), time.monotonic())
        _signals.move_to_end((provider, str(company_id)))
        while len(_signals) > MAX_ENTRIES:
            _signals.popitem(last=False)


def take(provider: str, company_id: str) -> bool | None:
    """The hint for a company that has just installed (once), or None when none is fresh."""
    with _lock:
        entry = _signals.pop((provider, str(company_id)), None)
    if entry is None or time.monotonic() - entry[1] > TTL_SECONDS:
        return None
    return entry[0]
