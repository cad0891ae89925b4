"""Validate sandbox HTTP traffic against a provider's official OpenAPI document (provider-neutral).

Why: the emulators are the ground truth for the hub's integration tests, so every request the tests
send and every response the emulators return must match the published spec. This module wraps
openapi-core 0.23 so any provider's tests can check real HTTP exchanges with a few lines:

    validator = SpecValidator.load(spec_path, extra_responses={"429": "#/components/responses/TooManyRequests"})
    session = ValidatingSession(validator, base_url=f"{server.url}/api/1.0")
    session.get(f"{server.url}/api/1.0/workspaces", headers=...)   # raises ConformanceError on mismatch
    session.assert_all_validated()

* The parsed document is cached per path for the whole process (the big YAML specs take ~0.5 s to
  parse with the C loader, much longer without it), and per-validator overlays are cheap.
* The emulator's URL prefix differs from the spec's ``servers`` entry: a request URL is mapped by
  stripping ``base_url`` (or any path prefix) and grafting the remainder onto the spec server URL.
* ``Tolerance`` entries form a small, explicit allow-list: (operation pattern, error pattern, reason).
  Anything not tolerated fails with a readable list of the schema errors.
* ``extra_responses`` attaches documented-but-unattached response components (e.g. a provider that
  defines a 429 response component without listing it on operations) to every operation lacking
  that status, so those responses are still validated rather than skipped.
"""
from __future__ import annotations

import contextlib
import re
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence
from urllib.parse import parse_qs, urlsplit

import requests
import yaml
from jsonschema_path import SchemaPath
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.finders import APICallPathFinder
from werkzeug.datastructures import Headers, ImmutableMultiDict

try:  # the C loader is ~10x faster on multi-megabyte specs
    _YamlLoader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _YamlLoader = yaml.SafeLoader

__all__ = [
    "Check",
    "ConformanceError",
    "SchemaIssue",
    "SpecValidator",
    "Tolerance",
    "ValidatingSession",
    "load_spec_dict",
]

_DOC_CACHE: dict[str, dict] = {}
_DOC_LOCK = threading.Lock()
_VALIDATOR_CACHE: dict[tuple, "SpecValidator"] = {}


def load_spec_dict(path: str | Path) -> dict:
    """Parse an OpenAPI YAML/JSON document once per process; callers must treat it as read-only."""
    key = str(Path(path).resolve())
    with _DOC_LOCK:
        doc = _DOC_CACHE.get(key)
        if doc is None:
            with open(key, "rb") as fh:
                doc = yaml.load(fh, Loader=_YamlLoader)  # JSON is YAML too
            if not isinstance(doc, dict) or "paths" not in doc:
                raise ValueError(f"{key} is not an OpenAPI document")
            _stringify_status_keys(doc)
            _DOC_CACHE[key] = doc
        return doc


def _stringify_status_keys(doc: dict) -> None:
    """YAML reads unquoted ``200:`` as an int; OpenAPI (and openapi-core) needs string status keys."""
    for item in (doc.get("paths") or {}).values():
        if not isinstance(item, dict):
            continue
        for op in item.values():
            if isinstance(op, dict) and isinstance(op.get("responses"), dict):
                op["responses"] = {str(k): v for k, v in op["responses"].items()}


# --------------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class SchemaIssue:
    """One validation problem: which phase, where in the document (JSON pointer) and what."""

    phase: str  # "request" | "response"
    pointer: str  # JSON pointer into the body/parameter, "" when not applicable
    message: str

    def __str__(self) -> str:
        where = self.pointer or "(root)"
        return f"[{self.phase}] {where}: {self.message}"


@dataclass(frozen=True)
class Tolerance:
    """An allow-list entry: an issue is tolerated when all given patterns match.

    ``operation`` is a regex matched (search) against the operationId and against
    "METHOD /path/template" (e.g. r"^POST /attachments$"). ``error`` is a regex matched against the
    issue's JSON pointer and its message; ``pointer``, when given, must also match the JSON pointer
    (e.g. r"^/data/owner$"). ``phase`` limits it to "request" or "response".
    ``status`` limits it to response status codes. ``reason`` is mandatory: say why it is safe.
    """

    operation: str
    error: str
    reason: str
    phase: str | None = None
    status: int | None = None
    pointer: str | None = None

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise ValueError("a Tolerance needs a reason")

    def matches(self, op_keys: Sequence[str], issue: SchemaIssue, status: int | None) -> bool:
        if self.phase and self.phase != issue.phase:
            return False
        if self.status is not None and self.status != status:
            return False
        if not any(re.search(self.operation, k) for k in op_keys if k):
            return False
        if self.pointer is not None and not re.search(self.pointer, issue.pointer):
            return False
        return bool(re.search(self.error, issue.pointer) or re.search(self.error, issue.message))


@dataclass
class Check:
    """What was validated for one exchange (kept by ValidatingSession for "all validated" asserts)."""

    method: str
    url: str
    status: int | None
    operation_id: str | None = None
    path_template: str | None = None
    request_checked: bool = True
    request_skip_reason: str | None = None
    issues: list[SchemaIssue] = field(default_factory=list)
    tolerated: list[tuple[SchemaIssue, str]] = field(default_factory=list)

    @property
    def operation(self) -> str:
        return f"{self.method} {self.path_template or '?'}"

    @property
    def ok(self) -> bool:
        return not self.issues


class ConformanceError(AssertionError):
    """Raised when an exchange does not match the spec; the message lists every untolerated issue."""

    def __init__(self, check: Check, response_excerpt: str = ""):
        self.check = check
        lines = [
            f"{check.method} {check.url} -> {check.status} does not conform to the spec"
            f" (operation {check.operation_id or '?'}: {check.operation}):"
        ]
        lines += [f"  - {issue}" for issue in check.issues]
        if response_excerpt:
            lines.append(f"  response body: {response_excerpt}")
        super().__init__("\n".join(lines))


# --------------------------------------------------------------------------------------------------
# openapi-core adapters


class _Request:
    """openapi-core Request protocol built from plain parts (host/path already mapped to the spec)."""

    def __init__(self, method: str, host_url: str, path: str, query: str, headers: Mapping[str, str],
                 body: bytes | None):
        self.method = method.lower()
        self.host_url = host_url
        self.path = path
        self.body = body
        hdrs = Headers(list(headers.items()))
        self.content_type = hdrs.get("Content-Type") or ""
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(query, keep_blank_values=True)),
            header=hdrs,
            cookie=ImmutableMultiDict(),
        )


class _Response:
    def __init__(self, status: int, headers: Mapping[str, str], body: bytes | None):
        self.status_code = status
        self.headers = Headers(list(headers.items()))
        self.content_type = self.headers.get("Content-Type") or ""
        self.data = body


def _as_bytes(body: Any) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if hasattr(body, "read"):
        raise TypeError("streamed bodies cannot be validated; pass bytes")
    raise TypeError(f"unsupported body type {type(body)!r}")


def _flatten(phase: str, errors: Iterable[BaseException]) -> list[SchemaIssue]:
    """Turn openapi-core's nested exceptions into flat issues with JSON pointers."""
    out: list[SchemaIssue] = []
    for err in errors:
        found_schema_errors = False
        prefix = ""
        cur: BaseException | None = err
        seen = set()
        while cur is not None and id(cur) not in seen:
            seen.add(id(cur))
            name = getattr(cur, "name", None)
            if isinstance(name, str) and not prefix and "Parameter" in type(cur).__name__:
                prefix = f"/{getattr(cur, 'location', 'param')}:{name}"
            schema_errors = getattr(cur, "schema_errors", None)
            if schema_errors:
                found_schema_errors = True
                for se in schema_errors:
                    ptr = "".join(f"/{p}" for p in getattr(se, "absolute_path", ()))
                    msg = getattr(se, "message", str(se))
                    out.append(SchemaIssue(phase, prefix + ptr, f"{msg} ({type(err).__name__})"))
                break
            cur = cur.__cause__ or cur.__context__
        if not found_schema_errors:
            detail = str(err) or type(err).__name__
            cause = err.__cause__
            if cause is not None and str(cause) and str(cause) not in detail:
                detail = f"{detail}: {cause}"
            out.append(SchemaIssue(phase, prefix, f"{type(err).__name__}: {detail}"))
    return list(dict.fromkeys(out))  # oneOf/allOf branches repeat the same complaint


# --------------------------------------------------------------------------------------------------
# validator


class SpecValidator:
    """Validates exchanges against one OpenAPI document, with an allow-list and extra responses."""

    def __init__(self, spec_path: str | Path, *, server_url: str | None = None,
                 extra_responses: Mapping[str | int, str] | None = None,
                 tolerances: Sequence[Tolerance] = ()):
        self.spec_path = Path(spec_path)
        raw = load_spec_dict(spec_path)
        self.extra_responses = {str(k): v for k, v in (extra_responses or {}).items()}
        doc = _with_extra_responses(raw, self.extra_responses) if self.extra_responses else raw
        self.server_url = (server_url or _first_server(raw)).rstrip("/")
        parts = urlsplit(self.server_url)
        if not parts.scheme or not parts.netloc:
            raise ValueError(f"server_url must be absolute, got {self.server_url!r}")
        self._host_url = f"{parts.scheme}://{parts.netloc}"
        self._base_path = parts.path.rstrip("/")
        self.tolerances: list[Tolerance] = list(tolerances)
        self._spec = SchemaPath.from_dict(doc)
        # The published specs are trusted input; re-validating a 3 MB document costs seconds.
        self._app = OpenAPI(self._spec, config=Config(spec_validator_cls=None))
        self._finder = APICallPathFinder(self._spec)

    @classmethod
    def load(cls, spec_path: str | Path, *, server_url: str | None = None,
             extra_responses: Mapping[str | int, str] | None = None,
             tolerances: Sequence[Tolerance] = ()) -> "SpecValidator":
        """Cached constructor: same arguments -> same validator object within the process."""
        key = (str(Path(spec_path).resolve()), server_url,
               tuple(sorted((str(k), v) for k, v in (extra_responses or {}).items())), tuple(tolerances))
        with _DOC_LOCK:
            cached = _VALIDATOR_CACHE.get(key)
        if cached is None:
            cached = cls(spec_path, server_url=server_url, extra_responses=extra_responses,
                         tolerances=tolerances)
            with _DOC_LOCK:
                cached = _VALIDATOR_CACHE.setdefault(key, cached)
        return cached

    # -- mapping ---------------------------------------------------------------------------------

    def map_url(self, url: str, prefix: str) -> tuple[str, str, str]:
        """Map an emulator URL to (spec host_url, spec path, query) by stripping ``prefix``.

        ``prefix`` may be an absolute base URL ("http://127.0.0.1:5000/asana/api/1.0") or a path
        prefix ("/asana/api/1.0").
        """
        parts = urlsplit(url)
        pfx = urlsplit(prefix).path if "://" in prefix else prefix
        pfx = pfx.rstrip("/")
        if pfx and not (parts.path == pfx or parts.path.startswith(pfx + "/")):
            raise ValueError(f"{url} is not under {prefix}")
        rest = parts.path[len(pfx):] or "/"
        return self._host_url, self._base_path + rest, parts.query

    def operation_for(self, method: str, spec_host: str, spec_path: str) -> tuple[str | None, str | None]:
        """(operationId, path template) for a mapped request, or (None, None) if the spec has none."""
        try:
            found = self._finder.find(method.lower(), spec_host + spec_path)
        except Exception:
            return None, None
        template = found.path_result.pattern if found.path_result is not None else None
        template = getattr(found.path, "parts", [None])[-1] if template is None else template
        op_id = (found.operation / "operationId").read_str() if "operationId" in found.operation else None
        return op_id, template

    # -- validation ------------------------------------------------------------------------------

    def check(self, method: str, url: str, *, prefix: str, headers: Mapping[str, str] | None = None,
              body: Any = None, status: int | None = None,
              response_headers: Mapping[str, str] | None = None, response_body: Any = None,
              validate_request: bool = True, request_skip_reason: str | None = None,
              tolerances: Sequence[Tolerance] = ()) -> Check:
        """Validate one exchange and return the Check (never raises for schema problems)."""
        host, path, query = self.map_url(url, prefix)
        req = _Request(method, host, path, query, headers or {}, _as_bytes(body))
        op_id, template = self.operation_for(method, host, path)
        if template is not None:
            template = template[len(self._base_path):] if template.startswith(self._base_path) else template
        chk = Check(method=method.upper(), url=url, status=status, operation_id=op_id,
                    path_template=template, request_checked=validate_request,
                    request_skip_reason=request_skip_reason)
        issues: list[SchemaIssue] = []
        with warnings.catch_warnings():
            # openapi-core warns "Unsupported scheme type" for oauth2 security on every call.
            warnings.simplefilter("ignore")
            if validate_request:
                issues += _flatten("request", self._app.unmarshal_request(req).errors)
            if status is not None:
                resp = _Response(status, response_headers or {}, _as_bytes(response_body))
                issues += _flatten("response", self._app.unmarshal_response(req, resp).errors)
        op_keys = [op_id or "", chk.operation]
        for issue in issues:
            tol = next((t for t in (*tolerances, *self.tolerances) if t.matches(op_keys, issue, status)), None)
            if tol is None:
                chk.issues.append(issue)
            else:
                chk.tolerated.append((issue, tol.reason))
        return chk

    def validate(self, method: str, url: str, **kwargs: Any) -> Check:
        """Like ``check`` but raises ConformanceError when any untolerated issue remains."""
        chk = self.check(method, url, **kwargs)
        if not chk.ok:
            raise ConformanceError(chk, _excerpt(kwargs.get("response_body")))
        return chk

    def validate_response(self, response: requests.Response, *, prefix: str, **kwargs: Any) -> Check:
        """Validate a ``requests`` response together with the prepared request that produced it."""
        preq = response.request
        return self.validate(
            preq.method or "GET", preq.url or "", prefix=prefix, headers=dict(preq.headers),
            body=preq.body, status=response.status_code, response_headers=dict(response.headers),
            response_body=response.content, **kwargs,
        )


def _excerpt(body: Any, limit: int = 600) -> str:
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    return text if len(text) <= limit else text[:limit] + "..."


def _first_server(doc: Mapping) -> str:
    servers = doc.get("servers") or [{"url": "http://localhost/"}]
    server = servers[0]
    url = server["url"]
    for name, var in (server.get("variables") or {}).items():
        url = url.replace("{" + name + "}", str(var.get("default", "")))
    return url


_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _with_extra_responses(doc: dict, extra: Mapping[str, str]) -> dict:
    """Copy-on-write overlay adding ``{"$ref": ref}`` responses to operations lacking a status."""
    new_doc = dict(doc)
    new_paths = {}
    for p, item in (doc.get("paths") or {}).items():
        if not isinstance(item, dict):
            new_paths[p] = item
            continue
        new_item = dict(item)
        for m in _METHODS:
            op = item.get(m)
            if not isinstance(op, dict):
                continue
            responses = op.get("responses") or {}
            missing = {s: r for s, r in extra.items() if s not in responses}
            if missing:
                new_op = dict(op)
                new_op["responses"] = {**responses, **{s: {"$ref": r} for s, r in missing.items()}}
                new_item[m] = new_op
        new_paths[p] = new_item
    new_doc["paths"] = new_paths
    return new_doc


# --------------------------------------------------------------------------------------------------
# requests integration


class ValidatingSession(requests.Session):
    """A ``requests.Session`` that validates every exchange under a mounted base URL.

    ``mounts`` maps base URLs to validators (several specs per provider are fine). Requests outside
    every mount are sent but recorded in ``unchecked``; ``assert_all_validated()`` fails if any exist
    (unless ``ignore`` patterns say they are deliberately out of scope, e.g. OAuth endpoints).
    ``raise_on_error`` (default True) raises ConformanceError immediately from the call.
    """

    def __init__(self, validator: SpecValidator | None = None, base_url: str | None = None, *,
                 mounts: Mapping[str, SpecValidator] | None = None, raise_on_error: bool = True,
                 ignore: Sequence[str] = ()):
        super().__init__()
        self.mounts: dict[str, SpecValidator] = dict(mounts or {})
        if validator is not None:
            if not base_url:
                raise ValueError("base_url is required with a validator")
            self.mounts[base_url] = validator
        if not self.mounts:
            raise ValueError("ValidatingSession needs at least one mount")
        self.raise_on_error = raise_on_error
        self.ignore = list(ignore)
        self.checks: list[Check] = []
        self.unchecked: list[str] = []
        self._local = threading.local()
        self._records_lock = threading.Lock()

    @contextlib.contextmanager
    def skip_request_validation(self, reason: str) -> Iterator[None]:
        """Within the block, send deliberately invalid requests; responses are still validated."""
        if not reason.strip():
            raise ValueError("say why the request is allowed to violate the spec")
        prev = getattr(self._local, "skip", None)
        self._local.skip = reason
        try:
            yield
        finally:
            self._local.skip = prev

    @contextlib.contextmanager
    def tolerate(self, *tolerances: Tolerance) -> Iterator[None]:
        """Extra allow-list entries for the calls inside the block only."""
        prev = getattr(self._local, "tolerances", ())
        self._local.tolerances = (*prev, *tolerances)
        try:
            yield
        finally:
            self._local.tolerances = prev

    def _mount_for(self, url: str) -> tuple[str, SpecValidator] | None:
        best = None
        for base, validator in self.mounts.items():
            b = base.rstrip("/")
            if url == b or url.startswith(b + "/") or url.startswith(b + "?"):
                if best is None or len(b) > len(best[0]):
                    best = (b, validator)
        return best

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = super().send(request, **kwargs)
        url = request.url or ""
        mount = self._mount_for(url)
        if mount is None:
            with self._records_lock:
                self.unchecked.append(f"{request.method} {url}")
            return response
        base, validator = mount
        skip = getattr(self._local, "skip", None)
        chk = validator.check(
            request.method or "GET", url, prefix=base, headers=dict(request.headers), body=request.body,
            status=response.status_code, response_headers=dict(response.headers),
            response_body=response.content, validate_request=skip is None, request_skip_reason=skip,
            tolerances=getattr(self._local, "tolerances", ()),
        )
        with self._records_lock:
            self.checks.append(chk)
        if not chk.ok and self.raise_on_error:
            raise ConformanceError(chk, _excerpt(response.content))
        return response

    # -- assertions ------------------------------------------------------------------------------

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def operations_validated(self) -> set[str]:
        """Operation ids (or "METHOD /template") that had at least one conforming exchange."""
        return {c.operation_id or c.operation for c in self.checks if c.ok}

    def assert_all_validated(self) -> None:
        """Every exchange made through the session was inside a mount and conformed to the spec."""
        stray = [u for u in self.unchecked if not any(re.search(p, u) for p in self.ignore)]
        problems = []
        if stray:
            problems.append("requests outside every validated base URL:\n  " + "\n  ".join(stray))
        # Unknown routes count only when no allow-list entry explicitly covered them.
        unknown = [c for c in self.checks if c.path_template is None and not c.tolerated]
        if unknown:
            problems.append("requests with no matching spec operation:\n  "
                            + "\n  ".join(f"{c.method} {c.url}" for c in unknown))
        if self.failures:
            problems.append("non-conforming exchanges:\n" + "\n".join(str(ConformanceError(c)) for c in self.failures))
        if not self.checks:
            problems.append("no exchange was validated at all")
        if problems:
            raise AssertionError("\n".join(problems))

