"""Pipedrive (CRM): manifest, API client, webhook verification/normalization, settings metadata."""

from ..contract import Connector
from .manifest import MANIFEST
from . import ids
from .catalogs import CATALOGS
from .records import PipedriveSource
from .targets import TARGETS
from .triggers import TRIGGERS
from .webhooks import WEBHOOKS

CONNECTOR = Connector(
    name="pipedrive",
    title="Pipedrive",
    roles=frozenset({"crm", "task_target", "contact_source"}),
    auth=MANIFEST,
    source=PipedriveSource,
    catalogs=CATALOGS,
    targets=TARGETS,
    triggers=TRIGGERS,
    ids=ids,
    webhooks=WEBHOOKS,
)
