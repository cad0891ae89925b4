"""What every connector's HTTP client shares: timeouts, retries (one policy: hub/connectors/retry.py),
rate limiting, token refresh on 401, and the mapping of responses to Retriable / Fatal / NeedsReauth.

A connector's client subclasses `ApiClient` and adds typed methods; it never builds its own
`requests` retry loop. Tokens come from a `TokenSource` (the hub's connection store in production,
a small test double in connector tests), so clients know nothing about how tokens are kept. A
connection made with an API key has no token: its client gets an `authenticator` instead, which
signs each prepared request (headers, URL, body) just before it is sent, every retry afresh.

Paths are literal templates and ids travel separately (`self.json("GET", "deals/{deal_id}",
path_params={"deal_id": deal_id})`), each quoted as one segment: an id can never change which
endpoint is called with the account's token. A template with an id formatted into it is refused."""
from __future__ import annotations

import email.utils
import http.cookiejar
import logging
import re
import string
import threading
import time
from datetime import datetime
from typing import Any, Iterator, Mapping, Protocol
from urllib.parse import quote

import requests
import requests.adapters
from requests.sessions import merge_setting
from requests.structures import CaseInsensitiveDict
import urllib3

from ..errors import Fatal, NeedsReauth, Retriable
from . import retry
# moved to the contract (hub/connectors/contract/webhooks.py); still importable from here for now
from .contract.webhooks import CrmEvent, MalformedPayload  # noqa: F401

log = logging.getLogger("hub.connectors")


_sessions: dict[str, requests.Session] = {}
_sessions_lock = threading.Lock()


class _Cooldowns:
    """A throttle one call got (a rate limit's short Retry-After) holds back this process's other
    calls to the same API until then: the threads of a busy worker otherwise each run into the
    same exhausted window, and each refusal counts against its run's failed-call budget. Only
    waits a call may sleep inline are kept (longer ones go back to the queue as they did)."""

    def __init__(self):
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._own = threading.local()     # the cooldown this thread's call caused: its retry waits it out

    def note(self, base_url: str, retry_after: float | None, longest: float) -> None:
        if retry_after is None or not 0 < retry_after <= longest:
            return
        with self._lock:
            until = self._until[base_url] = max(self._until.get(base_url, 0.0), time.monotonic() + retry_after)
        self._own.until = until

    def wait(self, base_url: str, longest: float, sleep) -> None:
        with self._lock:
            until = self._until.get(base_url)
            if until is None or getattr(self._own, "until", None) == until:
                return
            left = until - time.monotonic()
            if left <= 0:
                del self._until[base_url]
                return
        sleep(min(left, longest))

    def clear(self) -> None:
        with self._lock:
            self._until.clear()


_cooldowns = _Cooldowns()


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """A shared session serves every account of a provider: nothing one answer sets may ride along
    with another account's request."""

    def set_ok(self, cookie, request) -> bool:
        return False

    def return_ok(self, cookie, request) -> bool:
        return False


class _ProviderSession(requests.Session):
    """A shared session (`shared_session`): no cookies kept, no environment trusted. So most of
    `Session.request`'s per-call merging (cookie jars copied, environment settings read) has
    nothing to merge: a plain call is prepared with the session's headers and hooks and sent,
    about 0.1 ms less per provider call. Anything else (per-call cookies, auth, proxies ...; a
    session given auth or params of its own) goes the way `requests` takes."""

    def request(self, method, url, params=None, data=None, headers=None, cookies=None, files=None, auth=None,
                timeout=None, allow_redirects=True, proxies=None, hooks=None, stream=None, verify=None, cert=None,
                json=None):
        if (cookies is not None or auth is not None or proxies or hooks or verify is not None or cert is not None
                or not allow_redirects or self.auth is not None or self.params):
            return super().request(method, url, params=params, data=data, headers=headers, cookies=cookies,
                                   files=files, auth=auth, timeout=timeout, allow_redirects=allow_redirects,
                                   proxies=proxies, hooks=hooks, stream=stream, verify=verify, cert=cert, json=json)
        prepared = requests.PreparedRequest()
        prepared.prepare(method=method.upper(), url=url, files=files, data=data or {}, json=json,
                         params=params or {}, headers=merge_setting(headers, self.headers, dict_class=CaseInsensitiveDict),
                         hooks=self.hooks)
        return self.send(prepared, timeout=timeout, allow_redirects=True, stream=bool(stream), verify=self.verify,
                         cert=self.cert, proxies=self.proxies)


def shared_session(provider: str) -> requests.Session:
    """One pooled HTTP session per provider for the whole process, so a call reuses a kept-alive
    connection instead of opening one per client (clients are made per job). `trust_env` is off:
    no `.netrc` or proxy variables are read per request, and no credentials from them can be
    attached to a provider call."""
    with _sessions_lock:
        found = _sessions.get(provider)
        if found is None:
            found = _ProviderSession()
            found.trust_env = False
            found.cookies.set_policy(_NoCookies())
            adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32)
            found.mount("https://", adapter)
            found.mount("http://", adapter)
            _sessions[provider] = found
        return found


class TokenSource(Protocol):
    def access_token(self) -> str:
        """A token valid now (refreshed ahead of expiry)."""

    def refresh_after_rejection(self, rejected: str) -> str:
        """The provider answered 401 to `rejected`: refresh (once, single-flight) and return the new
        token, or raise NeedsReauth when the provider refuses the refresh."""


class Authenticator(Protocol):
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest | None:
        """Sign `request` in place (or return the signed replacement)."""

    def rejected(self, message: str) -> str | None:
        """Optional: the provider refused the credentials (401); the connection waits for its admin.
        May return the message as it may be shown (without anything secret the provider echoed)."""


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
    """Subclasses set `provider` and override `error_message(response)` for their error bodies.
    Retries and timeouts follow one `RetryPolicy` (hub/connectors/retry.py), the process's unless
    `retry_policy=` is given; `throttle_statuses` are the statuses that mean "refused, nothing
    done, come back later" and may be retried inside the call when their Retry-After is short.
    With an `authenticator` (API-key connections) requests are signed by it instead of carrying a
    bearer token, and a 401 means the key was refused (`key_refused`)."""

    provider = "provider"
    throttle_statuses: frozenset[int] = frozenset({429, 503})

    def __init__(self, base_url: str, tokens: TokenSource | None, *, session: requests.Session | None = None,
                 rate_limit: float | None = None, sleep=None, retry_policy: retry.RetryPolicy | None = None,
                 authenticator: Authenticator | None = None):
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.authenticator = authenticator
        self.http = session or shared_session(self.provider)
        self.limiter = RateLimiter(rate_limit) if rate_limit else None
        self._sleep = sleep
        self._policy = retry_policy

    @property
    def policy(self) -> retry.RetryPolicy:
        """Given, or the policy of the hub whose connection's tokens it uses (several hubs in one
        process, as in tests, each keep their own), or the process's."""
        owner = self.tokens if self.tokens is not None else self.authenticator
        return (self._policy or getattr(getattr(owner, "services", None), "retry_policy", None)
                or retry.policy())

    @property
    def timeout(self) -> tuple[float, float]:
        return self.policy.timeout

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
        """One API call, retried inside only as the policy allows; returns the response for 2xx
        (and statuses in `ok`). `path` is a literal template such as "deals/{deal_id}"; ids go in
        `path_params`."""
        url = self.url(path, path_params)
        return self._call(method, lambda: self._send(method, url, params, json, data, files, headers, stream, ok),
                          rewind=(lambda: _rewind(files)) if files is not None else None)

    def _call(self, method: str, send, *, rewind=None, may_retry=None) -> requests.Response:
        return retry.call(send, method, sleep=self._sleep, rewind=rewind, may_retry=may_retry,
                          retry_policy=self.policy, provider=self.provider)

    def _send(self, method, url, params, json, data, files, headers, stream, ok) -> requests.Response:
        if self.limiter:
            self.limiter.acquire()
        _cooldowns.wait(self.base_url, self.policy.inline_max_wait, self._sleep or retry.pause)
        token = self.tokens.access_token() if self.tokens else None
        response = self._raw(method, url, params, json, data, files, headers, stream, token)
        if response.status_code in self.throttle_statuses:
            _cooldowns.note(self.base_url, parse_retry_after(response.headers.get("Retry-After")),
                            self.policy.inline_max_wait)
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
        elif response.status_code == 401 and self.authenticator is not None:
            raise self.key_refused(self.error_message(response))
        return self.check(response, ok)

    def key_refused(self, message: str) -> NeedsReauth:
        """The provider refused the API key (a client whose provider says so otherwise, e.g. in a
        200 body, raises this too): the connection is marked for its admin, the work waits."""
        hook = getattr(self.authenticator, "rejected", None)
        shown = hook(message) if hook is not None else None
        message = shown if isinstance(shown, str) else message
        return NeedsReauth(f"{self.provider} refused the API key: {message}",
                           getattr(self.authenticator, "connection_id", None))

    def _raw(self, method, url, params, json, data, files, headers, stream, token) -> requests.Response:
        all_headers = {"Accept": "application/json", **(headers or {})}
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        try:
            if self.authenticator is not None:
                return self._signed(method, url, params, json, data, files, all_headers, stream)
            return self.http.request(method, url, params=params, json=json, data=data, files=files,
                                     headers=all_headers, stream=stream, timeout=self.timeout)
        except requests.ConnectTimeout:
            raise retry.Unreachable(f"{self.provider} unreachable (connect timeout)") from None
        except requests.Timeout:
            raise retry.TimedOut(f"{self.provider} did not answer within {self.timeout[1]:g} s") from None
        except requests.ConnectionError as exc:
            if _nothing_sent(exc):
                raise retry.Unreachable(f"{self.provider} unreachable ({type(exc).__name__})") from None
            raise retry.ConnectionLost(f"{self.provider} dropped the connection before answering") from None

    def _signed(self, method, url, params, json, data, files, headers, stream) -> requests.Response:
        """Prepared as `requests` would (session headers, cookies), signed, then sent."""
        prepared = self.http.prepare_request(requests.Request(method, url, params=params, json=json, data=data,
                                                              files=files, headers=headers))
        prepared = self.authenticator(prepared) or prepared
        settings = self.http.merge_environment_settings(prepared.url, {}, stream, None, None)
        return self.http.send(prepared, timeout=self.timeout, **settings)

    def check(self, response: requests.Response, ok: tuple[int, ...] = ()) -> requests.Response:
        status = response.status_code
        if 200 <= status < 300 or status in ok:
            return response
        message = self.error_message(response)
        if status in self.throttle_statuses or status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            kind = retry.Throttled if status in self.throttle_statuses else Retriable
            raise kind(f"{self.provider} {status}: {message}", retry_after)
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


_LongWait = retry.QueueOnly   # the name the connectors import


def _rewind(files: Any) -> None:
    """Streamed uploads start from their first byte when sent again."""
    for item in (files.values() if isinstance(files, dict) else files):
        handle = item[1][1] if isinstance(item, tuple) and isinstance(item[1], tuple) else None
        if hasattr(handle, "seek"):
            handle.seek(0)


def _nothing_sent(exc: requests.ConnectionError) -> bool:
    """A refused or unresolvable connection (urllib3's NewConnectionError, wrapped by requests in a
    MaxRetryError) sent no byte; a reset (ProtocolError) may have come after the request."""
    inner = exc.args[0] if exc.args else None
    return isinstance(getattr(inner, "reason", inner), urllib3.exceptions.NewConnectionError)
