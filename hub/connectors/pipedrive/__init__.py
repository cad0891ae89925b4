"""Pipedrive (CRM): manifest, API client, webhook verification/normalization, settings metadata."""

from ..contract import Connector
from .manifest import MANIFEST
from . import ids
from .catalogs import CATALOGS
from .records import PipedriveSource
from .targets import TARGETS
from .triggers import TRIGGERS
from .webhooks import WEBHOOKS
from .contacts import PipedriveContacts
from .client import PipedriveClient
from .identity import identity

CONNECTOR = Connector(
    name="pipedrive",
    title="Pipedrive",
    roles=frozenset({"crm", "task_target", "contact_source"}),
    auth=MANIFEST,
    source=PipedriveSource,
    catalogs=CATALOGS,
    targets=TARGETS,
    triggers=TRIGGERS,
    client=PipedriveClient,
    identity=identity,
    ids=ids,
    webhooks=WEBHOOKS,
    contacts=PipedriveContacts,
)
