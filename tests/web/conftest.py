"""The live-hub fixtures live in tests/support/hubs.py (a plugin loaded by tests/conftest.py);
these names stay importable from here for the tests that use them."""
from tests.support.hubs import ADMIN, BEN, CLEO, DEV, Hub, Mailbox, install  # noqa: F401
