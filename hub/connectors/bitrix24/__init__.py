"""Bitrix24 (CRM and task target): OAuth at the customer's portal, events verified by the
application token, deals / leads / tasks with their lifecycle, tasks linked to deals and leads."""

from ..contract import Connector
from . import ids
from .catalogs import CATALOGS
from .client import Bitrix24Client
from .identity import identity
from .manifest import MANIFEST
from .records import Bitrix24Source
from .targets import TARGETS
from .triggers import PRESETS, TRIGGERS
from .webhooks import WEBHOOKS

CONNECTOR = Connector(
    name="bitrix24",
    title="Bitrix24",
    roles=frozenset({"crm", "task_target"}),
    auth=MANIFEST,
    client=Bitrix24Client,
    identity=identity,
    webhooks=WEBHOOKS,
    source=Bitrix24Source,
    catalogs=CATALOGS,
    targets=TARGETS,
    triggers=TRIGGERS,
    presets=PRESETS,
    ids=ids,
)
