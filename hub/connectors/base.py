"""What every connector's HTTP client shares: timeouts, retries, rate limiting, token refresh on
401, and the mapping of responses to Retriable / Fatal / NeedsReauth.

A connector's client subclasses `ApiClient` and adds typed methods; it never builds its own
`requests` retry loop. Tokens come from a `TokenSource` (the hub's connection store in production,
a small test double in connector tests), so clients know nothing about how tokens are kept.

Paths are literal templates and ids travel separately (`self.json("GET", "deals/{deal_id}",
path_params={"deal_id": deal_id})`), each quoted as one segment: an id can never change which
endpoint is called with the account's token. A template with an id formatted into it is refused."""
from __future__ import annotations

import email.utils
import logging
import re
import string
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator, Mapping, Protocol
from urllib.parse import quote

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from ..errors import Fatal, NeedsReauth, Retriable

log = logging.getLogger("hub.connectors")


class TokenSource(Protocol):
    def access_token(self) -> str:
        """A token valid now (refreshed ahead of expiry)."""

    def refresh_after_rejection(self, rejected: str) -> str:
        """The provider answered 401 to `rejected`: refresh (once, single-flight) and return the new
        token, or raise NeedsReauth when the provider refuses the refresh."""


@dataclass
class CrmEvent:
    """A provider-neutral CRM event, as rules and sync see it."""

    kind: str                      # deal.created deal.updated deal.won deal.lost deal.stage_changed deal.deleted
                                   # lead.added person.created person.updated person.deleted
    object_type: str               # deal | lead | person
    object_id: str
    event_id: str                  # the provider's id of this event (dedupe key)
    occurred_at: datetime | None
    current: dict[str, Any] | None
    previous: dict[str, Any] | None
    pipeline_id: str | None = None
    from_stage_id: str | None = None
    to_stage_id: str | None = None
    version: str | None = None     # orders events of one object (e.g. update_time); later wins
    extra: dict[str, Any] = field(default_factory=dict)


class RateLimiter:
    """A token bucket per client: at most `rate` calls per second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int | None = None):
        self.rate = rate
        self.capacity = burst or max(1, int(rate))
        self.tokens = float(self.capacity)
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.rate
            time.sleep(wait)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
        except (TypeError, ValueError):
            return None


_LITERAL = re.compile(r"[A-Za-z0-9/_.:-]*")
_FIELD = re.compile(r"[a-z_][a-z0-9_]*")


def path_segment(value: Any) -> str:
    """One value as exactly one URL path segment: '/', '?', '#' and '%' are percent-encoded, so no
    value can reach another endpoint (`../me`, `%2e%2e`, `1/../me`, `1?x=`, `1#`). Empty, `.` and
    `..` are refused: they would name the parent endpoint, and requests decodes `%2E` back to `.`."""
    text = str(value)
    if text in ("", ".", ".."):
        raise ValueError(f"{text!r} is not an id: as a path segment it would name another endpoint")
    return quote(text, safe="")


def build_path(template: str, path_params: Mapping[str, Any] | None = None) -> str:
    """Fill `{name}` placeholders of a literal path template, each value quoted as one segment.

    Ids are never formatted into the template: its literal text may hold only letters, digits and
    `/_.:-`, every literal segment starts with a letter, and no segment is `.` or `..`. So
    `f"deals/{deal_id}"` fails at once (a numeric segment), and a hostile id fails loudly too."""
    params = dict(path_params or {})
    out: list[str] = []
    used: set[str] = set()
    for literal, name, spec, conversion in string.Formatter().parse(template):
        if not _LITERAL.fullmatch(literal) or "//" in literal:
            raise ValueError(f"path template {template!r}: ids go in path_params, not the template")
        out.append(literal)
        if name is None:
            continue
        if not _FIELD.fullmatch(name) or spec or conversion:
            raise ValueError(f"path template {template!r}: placeholders are plain names like {{deal_id}}")
        if name not in params:
            raise ValueError(f"path template {template!r}: no value for {{{name}}}")
        out.append("{}")   # marks the spot for the segment check below
        used.add(name)
    if set(params) - used:
        raise ValueError(f"path template {template!r}: unused path params {sorted(set(params) - used)}")
    for segment in "".join(out).split("/"):
        fixed = segment.split("{}", 1)[0]
        if segment in (".", "..") or (segment and segment != "{}" and fixed and not fixed[0].isalpha()):
            raise ValueError(f"path template {template!r}: ids go in path_params, not the template")
    filled = iter(path_segment(params[name]) for _, name, _, _ in string.Formatter().parse(template)
                  if name is not None)
    return "".join(part if part != "{}" else next(filled) for part in out)


REFRESHES_PER_CALL = 2   # refreshes one call may make when the provider refuses its access token


class ApiClient:
    """Subclasses set `provider` and override `error_message(response)` for their error bodies."""

    provider = "provider"
    timeout: tuple[float, float] = (5.0, 30.0)
    attempts = 3             # in-call retries; the job queue retries again, much later, if these fail
    max_inline_wait = 10.0   # a longer Retry-After is handed to the job queue instead of slept here

    def __init__(self, base_url: str, tokens: TokenSource | None, *, session: requests.Session | None = None,
                 rate_limit: float | None = None, sleep=time.sleep):
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.http = session or requests.Session()
        self.limiter = RateLimiter(rate_limit) if rate_limit else None
        self._sleep = sleep

    # -- to override ----------------------------------------------------------------------------
    def error_message(self, response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return (response.text or response.reason or "")[:300]
        if isinstance(body, dict):
            for key in ("error_description", "message", "error"):
                if isinstance(body.get(key), str):
                    return body[key]
        return str(body)[:300]

    # -- the call -------------------------------------------------------------------------------
    def url(self, path: str, path_params: Mapping[str, Any] | None = None) -> str:
        """The URL of a path template under the API base (see `build_path`)."""
        return f"{self.base_url}/{build_path(path, path_params).lstrip('/')}"

    def request(self, method: str, path: str, *, path_params: Mapping[str, Any] | None = None,
                params: dict | None = None, json: Any = None,
                data: Any = None, files: Any = None, headers: dict | None = None, stream: bool = False,
                ok: tuple[int, ...] = ()) -> requests.Response:
        """One API call with retries; returns the response for 2xx (and statuses in `ok`).
        `path` is a literal template such as "deals/{deal_id}"; ids go in `path_params`."""
        url = self.url(path, path_params)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, Retriable) and exc.retry_after is not None:
                return exc.retry_after
            return min(8.0, 0.25 * 2 ** (state.attempt_number - 1))

        def before_sleep(state: RetryCallState) -> None:
            if files is not None:  # rewind streamed uploads before sending them again
                for item in (files.values() if isinstance(files, dict) else files):
                    handle = item[1][1] if isinstance(item, tuple) and isinstance(item[1], tuple) else None
                    if hasattr(handle, "seek"):
                        handle.seek(0)

        retrying = Retrying(stop=stop_after_attempt(self.attempts), wait=wait, sleep=self._sleep,
                            retry=retry_if_exception(_is_short_retriable), before_sleep=before_sleep, reraise=True)
        return retrying(self._send, method, url, params, json, data, files, headers, stream, ok)

    def _send(self, method, url, params, json, data, files, headers, stream, ok) -> requests.Response:
        if self.limiter:
            self.limiter.acquire()
        token = self.tokens.access_token() if self.tokens else None
        response = self._raw(method, url, params, json, data, files, headers, stream, token)
        if response.status_code == 401 and self.tokens is not None:
            # A token can expire or be replaced again between its refresh and its use (tokens that
            # live seconds, a provider that ends older tokens on each refresh): a second refusal gets
            # a second refresh; only a third one means the grant no longer works.
            for _ in range(REFRESHES_PER_CALL):
                response.close()
                token = self.tokens.refresh_after_rejection(token)
                response = self._raw(method, url, params, json, data, files, headers, stream, token)
                if response.status_code != 401:
                    break
            else:
                raise NeedsReauth(f"{self.provider} refused a freshly refreshed token: {self.error_message(response)}")
        return self.check(response, ok)

    def _raw(self, method, url, params, json, data, files, headers, stream, token) -> requests.Response:
        all_headers = {"Accept": "application/json", **(headers or {})}
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        try:
            return self.http.request(method, url, params=params, json=json, data=data, files=files,
                                     headers=all_headers, stream=stream, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise Retriable(f"{self.provider} unreachable ({type(exc).__name__})") from None

    def check(self, response: requests.Response, ok: tuple[int, ...] = ()) -> requests.Response:
        status = response.status_code
        if 200 <= status < 300 or status in ok:
            return response
        message = self.error_message(response)
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None and retry_after > self.max_inline_wait:
                # too long to sleep inside a worker: fail this call, the job waits the full delay
                raise _LongWait(f"{self.provider} {status}: {message}", retry_after)
            raise Retriable(f"{self.provider} {status}: {message}", retry_after)
        raise Fatal(f"{self.provider} {status}: {message}", status)

    def json(self, method: str, path: str, **kwargs) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def iter_download(self, path: str, chunk_size: int = 64 * 1024, *,
                      path_params: Mapping[str, Any] | None = None) -> Iterator[bytes]:
        """Stream a file body without holding it in memory."""
        response = self.request("GET", path, path_params=path_params, stream=True, headers={"Accept": "*/*"})
        try:
            yield from response.iter_content(chunk_size)
        finally:
            response.close()


class _LongWait(Retriable):
    """A Retriable whose Retry-After is too long to sleep through inside a call: it goes straight
    to the job queue, which reschedules the job after the full delay."""


def _is_short_retriable(exc: BaseException) -> bool:
    return isinstance(exc, Retriable) and not isinstance(exc, _LongWait)
