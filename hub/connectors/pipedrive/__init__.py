"""Pipedrive (CRM): manifest, API client, webhook verification/normalization, settings metadata."""

from ..contract import Connector
from .manifest import MANIFEST
from . import ids
from .client import PipedriveClient
from .identity import identity

CONNECTOR = Connector(
    name="pipedrive",
    title="Pipedrive",
    roles=frozenset({"crm", "task_target", "contact_source"}),
    auth=MANIFEST,
    client=PipedriveClient,
    identity=identity,
    ids=ids,
)
