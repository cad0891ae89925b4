"""Pipedrive (CRM): manifest, API client, webhook verification/normalization, settings metadata."""

from ..contract import Connector
from .manifest import MANIFEST
from . import ids
from .catalogs import CATALOGS
from .records import PipedriveSource

CONNECTOR = Connector(
    name="pipedrive",
    title="Pipedrive",
    roles=frozenset({"crm", "task_target", "contact_source"}),
    auth=MANIFEST,
    source=PipedriveSource,
    catalogs=CATALOGS,
    ids=ids,
)
