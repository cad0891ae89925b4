"""How a job handler tells the queue what happened, besides returning normally (= done)."""
from __future__ import annotations


class Retriable(Exception):
    """Try again later; `retry_after` (seconds, e.g. from a provider's Retry-After) wins over backoff."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Fatal(Exception):
    """Will not get better by retrying (deleted target, missing permission): dead letter at once."""


class Defer(Exception):
    """Not now and not a failure (a connection waits for reconnection): run again later, no attempt used."""

    def __init__(self, message: str, delay: float):
        super().__init__(message)
        self.delay = delay
