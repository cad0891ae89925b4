"""The Livespace connector: a CRM (deals in sales processes, persons, companies, tasks) whose
webhooks start rules, and a task target (todos made once per effect). Signed with an API key and
secret through one-shot sessions (client.py); no OAuth, so people sign in to the hub with hub
accounts."""
from __future__ import annotations

from hub.connectors.contract import Connector

from . import ids
from .client import LivespaceClient
from .identity import identity
from .manifest import AUTH
from .records import CATALOGS, LivespaceSource
from .targets import TARGETS
from .triggers import PRESETS, TRIGGERS
from .webhooks import WEBHOOKS

CONNECTOR = Connector(
    name="livespace",
    title="Livespace",
    roles=frozenset({"crm", "task_target"}),
    auth=AUTH,
    client=LivespaceClient,
    identity=identity,
    webhooks=WEBHOOKS,
    source=LivespaceSource,
    catalogs=CATALOGS,
    targets=TARGETS,
    triggers=TRIGGERS,
    presets=PRESETS,
    ids=ids,
)
