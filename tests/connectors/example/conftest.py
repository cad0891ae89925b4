"""The Example CRM registered for this folder's tests, its emulator on a loopback port, a client."""
from __future__ import annotations

import pytest

from hub import connectors, sandbox
from hub.sandbox.common import Faults, SandboxState

from .connector import CONNECTOR
from .emulator import DEMO_ACCOUNT, create_app
from .harness import client_for


@pytest.fixture
def registered():
    """The connector and its emulator, as a plug-in would add them (hubs built now mount it)."""
    connectors.register(CONNECTOR)
    sandbox.register(CONNECTOR.name, create_app, CONNECTOR.title)
    yield CONNECTOR
    sandbox.unregister(CONNECTOR.name)
    connectors.unregister(CONNECTOR.name)


@pytest.fixture
def emulator(plug):
    """(url, app): a fresh Example CRM served on the session's loopback server."""
    app = create_app(state=SandboxState(), faults=Faults(seed=7))
    return plug(app).url, app


@pytest.fixture
def crm(emulator):
    return emulator[1].extensions["sandbox"]


@pytest.fixture
def client(emulator):
    return client_for(emulator[0])


ACCOUNT = DEMO_ACCOUNT["id"]
