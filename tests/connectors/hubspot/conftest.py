"""A live HubSpot emulator on a loopback port and a connector client signed in to its demo account."""
from __future__ import annotations

import pytest

from .harness import live


@pytest.fixture
def hs(tmp_path):
    """The emulator (deliveries kept for the test to send), its demo account and a signed-in client."""
    with live(tmp_path) as running:
        yield running
