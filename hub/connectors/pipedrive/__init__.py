"""Pipedrive (CRM): manifest, API client, webhook verification/normalization, settings metadata."""

from ..contract import Connector
from .manifest import MANIFEST
from . import ids
from .webhooks import WEBHOOKS

CONNECTOR = Connector(
    name="pipedrive",
    title="Pipedrive",
    roles=frozenset({"crm", "task_target", "contact_source"}),
    auth=MANIFEST,
    ids=ids,
    webhooks=WEBHOOKS,
)
