"""A live Livespace emulator, a client signing with the demo admin's key, fixtures as documented."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.rules.catalogs import CACHE
from hub.sandbox.common import Faults, SandboxState
from hub.sandbox.livespace import create_app

from .harness import client_for

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(autouse=True)
def fresh_catalogs():
    """The core caches dropdown lists per connection id for the process: another test's connection 1
    is not this one's."""
    CACHE.clear()
    yield
    CACHE.clear()


@pytest.fixture
def emulator(plug):
    """(url, app): a fresh Livespace account served on the session's loopback server."""
    app = create_app(state=SandboxState(), faults=Faults(seed=7))
    return plug(app).url, app


@pytest.fixture
def crm(emulator):
    return emulator[1].extensions["sandbox"]


@pytest.fixture
def client(emulator):
    return client_for(emulator[0])
