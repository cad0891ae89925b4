"""One retry policy for every provider call, and one retry budget per effect.

Inside a call (`ApiClient.request`) only what is cheap and cannot repeat an effect is retried,
at most `inline_retries` times: a connection that failed before anything was sent, a connection
dropped before the answer of an idempotent request, and a throttle (429, 503, a provider's quota
refusal) whose Retry-After is at most `inline_max_wait` seconds. Everything else (a longer or
missing Retry-After, other 5xx, a read timeout, after which the request may have been applied)
leaves the call as `Retriable` for the job queue, which waits at least the Retry-After.

Across job attempts, an effect (a rule run, a sync batch) has one budget of failed provider
requests (a success from the failing provider starts the count again, in this attempt or a later
one: `CallBudget.answered`), counted on its job (`jobs.failed_calls`, `jobs.failing_provider`) by
the worker. The arithmetic, with the defaults
(`[calls]` in config/hub.toml): one failing call makes at most 1 + inline_retries = 2 requests, so
an effect whose every request fails reaches `failed_calls_per_effect` = 6 failed requests within 3
to 6 job attempts, below `jobs.max_attempts` = 8; the 6th failure raises `BudgetExhausted` (Fatal)
with the provider's last message instead of queueing a 7th request. Without the budget the old
numbers were 3 tries per call times 8 attempts = 24 requests."""
from __future__ import annotations

import contextvars
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from ..errors import Fatal, Retriable

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class Throttled(Retriable):
    """The provider refused before doing anything (429, 503, a quota error) and may say when to
    come back (`retry_after`)."""


class Unreachable(Retriable):
    """No connection could be made: nothing was sent."""


class ConnectionLost(Retriable):
    """The connection broke before an answer came: the request may or may not have arrived."""


class TimedOut(Retriable):
    """No answer within the read timeout: the request may have been applied."""


class QueueOnly(Retriable):
    """Never retried inside the call (e.g. an upload whose stream cannot be rewound): the job queue
    runs the job again."""


class BudgetExhausted(Fatal):
    """The effect used up its failed requests: dead, with the provider's last message."""


@dataclass(frozen=True)
class RetryPolicy:
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    inline_retries: int = 1            # extra requests one call may make after a failure
    inline_max_wait: float = 2.0       # longest Retry-After slept inside a call
    connect_pause: float = 0.5         # pause before retrying a failed connection
    failed_calls_per_effect: int = 6   # failed requests of one effect over all its job attempts

    @classmethod
    def from_settings(cls, settings: Any) -> "RetryPolicy":
        return cls(connect_timeout=float(settings["calls.connect_timeout"]),
                   read_timeout=float(settings["calls.read_timeout"]),
                   inline_retries=int(settings["calls.inline_retries"]),
                   inline_max_wait=float(settings["calls.inline_max_wait"]),
                   connect_pause=float(settings["calls.connect_pause"]),
                   failed_calls_per_effect=int(settings["calls.failed_calls_per_effect"]))

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)

    def inline_wait(self, exc: Retriable, method: str) -> float | None:
        """Seconds to wait before sending again inside the call, or None: hand it to the queue."""
        if isinstance(exc, QueueOnly):
            return None
        if isinstance(exc, Unreachable):
            return self.connect_pause
        if isinstance(exc, ConnectionLost):
            return self.connect_pause if method.upper() in IDEMPOTENT else None
        if isinstance(exc, Throttled) and exc.retry_after is not None and exc.retry_after <= self.inline_max_wait:
            return exc.retry_after
        return None


_policy = RetryPolicy()


def configure(policy: RetryPolicy) -> None:
    """The process's policy (create_app sets it from settings, as it configures logging)."""
    global _policy
    _policy = policy


def policy() -> RetryPolicy:
    return _policy


class CallBudget:
    """Failed provider requests one effect may still make. `spent` starts from what earlier job
    attempts used; `charge` is called after every failed request and turns the failure that uses
    up the budget into `BudgetExhausted`; `renew` starts a new effect (a sync's next batch)."""

    def __init__(self, limit: int, spent: int = 0, failing: str | None = None):
        self.limit = limit
        self.spent = spent
        self.last: BaseException | str = "the job's last error says why"
        self.failing = failing     # the provider of the last failed request (kept on the job between attempts)

    def ensure_left(self) -> None:
        """Before a request: an effect that used up its budget sends nothing more."""
        if self.spent >= self.limit:
            raise BudgetExhausted(f"gave up after {self.spent} failed requests: {self.last}")

    def charge(self, exc: Retriable, provider: str | None = None) -> Exception:
        self.spent += 1
        self.failing = provider
        self.last = exc
        if self.spent >= self.limit:
            return BudgetExhausted(f"gave up after {self.spent} failed requests: {exc}")
        return exc

    def renew(self) -> None:
        self.spent = 0
        self.failing = None

    def answered(self, provider: str | None) -> None:
        """A request succeeded. When it went to the provider whose failures this attempt has been
        counting, that provider works again: the effect is not one that "keeps failing", and the
        count starts over. So a run against a broken provider stops after `limit` requests to it
        (successes elsewhere change nothing), but scattered 5xx or a short 429 burst on a working
        provider do not end a run. The job keeps which provider was failing (`jobs.failing_provider`),
        so a later attempt that sees it answer starts over too: scattered errors spread over
        attempts (one per attempt, with successes between) are not "a provider that keeps failing"."""
        if provider is not None and provider == self.failing:
            self.spent = 0
            self.failing = None


_budget: contextvars.ContextVar[CallBudget | None] = contextvars.ContextVar("hub_call_budget", default=None)


@contextmanager
def effect_budget(budget: CallBudget) -> Iterator[CallBudget]:
    """Every provider call made inside (in this thread) charges `budget` (the worker opens one
    per job)."""
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def current_budget() -> CallBudget | None:
    return _budget.get()


def renew_budget() -> None:
    """The effect committed its progress: what comes next is a new effect with a fresh budget."""
    budget = _budget.get()
    if budget is not None:
        budget.renew()


def pause(seconds: float) -> None:
    """How a call waits before sending again (tests replace it instead of sleeping)."""
    time.sleep(seconds)


def call(send: Callable[[], Any], method: str, *, sleep: Callable[[float], None] | None = None,
         rewind: Callable[[], None] | None = None, may_retry: Callable[[Retriable], bool] | None = None,
         retry_policy: RetryPolicy | None = None, provider: str | None = None) -> Any:
    """Run `send` (one request) under the policy and the current budget. `may_retry` narrows what
    is retried here (a non-idempotent create retries throttles only). A plain loop rather than
    tenacity: every failed request is charged to the budget before anything is decided, and the
    charge that uses it up must end the call as BudgetExhausted."""
    rules = retry_policy or _policy
    budget = _budget.get()
    retries = 0
    while True:
        if budget is not None:
            budget.ensure_left()
        try:
            answer = send()
        except Retriable as exc:
            outcome = budget.charge(exc, provider) if budget is not None else exc
            if outcome is not exc:
                raise outcome from exc
            wait = rules.inline_wait(exc, method) if retries < rules.inline_retries else None
            if wait is None or (may_retry is not None and not may_retry(exc)):
                raise
            retries += 1
            (sleep or pause)(wait)
            if rewind is not None:
                rewind()
        else:
            if budget is not None:
                budget.answered(provider)
            return answer

