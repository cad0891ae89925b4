"""Outcomes of work that did not simply succeed; shared by connectors, jobs and pages.

A provider call ends in success, `Retriable` (timeouts, 429, 5xx; carries `retry_after`), `Fatal`
(a 4xx that will not change; its message is the provider's, shown to the admin) or `NeedsReauth`
(the refresh was refused: the connection waits for the admin, its jobs are deferred, not failed)."""
from __future__ import annotations


class Retriable(Exception):
    """Try again later; `retry_after` (seconds, e.g. from a provider's Retry-After) wins over backoff."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Fatal(Exception):
    """Will not get better by retrying (deleted target, missing permission, invalid input)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class Defer(Exception):
    """Not now and not a failure: run again after `delay` seconds without using up an attempt."""

    def __init__(self, message: str, delay: float):
        super().__init__(message)
        self.delay = delay


class NeedsReauth(Defer):
    """The provider refused the refresh token: the connection needs the admin to reconnect it."""

    def __init__(self, message: str, connection_id: int | None = None, delay: float = 600.0):
        super().__init__(message, delay)
        self.connection_id = connection_id
