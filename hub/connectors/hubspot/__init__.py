"""HubSpot (CRM and task target): OAuth app, API client, app-wide signed webhooks for every
installed account, deals / contacts / leads / tasks as records, HubSpot tasks and leads as steps."""

from ..contract import Connector
from . import ids
from .catalogs import CATALOGS
from .client import HubSpotClient
from .contacts import HubSpotContacts
from .identity import identity
from .manifest import MANIFEST
from .presets import PRESETS
from .records import HubSpotSource
from .targets import TARGETS
from .triggers import TRIGGERS
from .webhooks import WEBHOOKS

CONNECTOR = Connector(
    name="hubspot",
    title="HubSpot",
    roles=frozenset({"crm", "task_target", "contact_source"}),
    auth=MANIFEST,
    client=HubSpotClient,
    identity=identity,
    webhooks=WEBHOOKS,
    source=HubSpotSource,
    catalogs=CATALOGS,
    targets=TARGETS,
    triggers=TRIGGERS,
    presets=PRESETS,
    contacts=HubSpotContacts,
    ids=ids,
)
