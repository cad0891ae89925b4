"""The Example CRM connector: a CRM that signs with an API key + secret, signs its webhooks, and
takes tasks. It lives in its test folder to prove that a provider is one folder: nothing under
`hub/` names it; a test registers it (`hub.connectors.register(CONNECTOR)`)."""
from __future__ import annotations

from hub.connectors.contract import Connector
from hub.connectors.contract.auth import ApiKey

from .client import ExampleClient, sign
from .identity import identity, members
from .records import CATALOGS, ExampleSource
from .targets import TARGETS
from .triggers import PRESETS, TRIGGERS
from .webhooks import WEBHOOKS

NAME = "example"
API_URL = "https://api.example-crm.test"   # the made-up provider's API root (the sandbox swaps its origin)

AUTH = ApiKey(sign=sign, identity=identity, members=members, api_url=API_URL,
              key_label="API key", key_help="Settings > API in the Example CRM",
              secret_label="API secret", secret_help="shown once, next to the key")

CONNECTOR = Connector(
    name=NAME,
    title="Example CRM",
    roles=frozenset({"crm", "task_target"}),
    auth=AUTH,
    client=ExampleClient,
    identity=identity,
    webhooks=WEBHOOKS,
    source=ExampleSource,
    catalogs=CATALOGS,
    targets=TARGETS,
    triggers=TRIGGERS,
    presets=PRESETS,
)
