"""What the shared contract test (tests/test_contract.py) needs to run Bitrix24 for real: the
emulator with its demo portal on a loopback port and a client signed in as the portal's admin."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from .conftest import Live, emulator

__all__ = ["live", "Live"]


@contextmanager
def live(tmp_path=None) -> Iterator[Live]:
    with emulator() as opened:
        yield opened
