"""Logging set-up with redaction: no secret reaches a log line, whatever a library prints.

Known secret values (everything the secret store encrypts or decrypts registers itself) and
credential-looking fragments (Authorization headers, token fields in query strings or JSON) are
replaced by `[REDACTED]` in the final message and in exception text."""
from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import threading
import time
from collections import OrderedDict
from typing import Any, Iterator

REDACTED = "[REDACTED]"
_PATTERNS = [
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)((?:access_token|refresh_token|client_secret|id_token|password|secret|code)[\"']?\s*[:=]\s*[\"']?)([^\s\"'&,}]+)"),
    # a webhook URL's last segment is the installation's endpoint token (hub/webhooks/ingest.py), in
    # access lines, error lines and provider answers alike; also percent-encoded inside a query
    re.compile(r"(?i)((?:/|%2F)hooks(?:/|%2F)[A-Za-z0-9_.~-]+(?:/|%2F))([^/\s?#\"'&<>\\%]+)"),
]


class Redactor:
    """A bounded set of secret values to scrub; the most recently used stay."""

    def __init__(self, limit: int = 10000):
        self._values: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._limit = limit

    def add(self, value: str | None) -> None:
        if not value or len(value) < 6:
            return  # too short to be a credential; scrubbing it would mangle ordinary words
        with self._lock:
            self._values[value] = None
            self._values.move_to_end(value)
            while len(self._values) > self._limit:
                self._values.popitem(last=False)

    def scrub(self, text: str) -> str:
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for value in values:
            if value in text:
                text = text.replace(value, REDACTED)
        return self.scrub_patterns(text)

    @staticmethod
    def scrub_patterns(text: str) -> str:
        """Only the credential-shaped fragments (cheap: for every field of every JSON line)."""
        for pattern in _PATTERNS:
            if pattern.groups >= 2:
                text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
            else:
                text = pattern.sub(lambda m: m.group(1) + " " + REDACTED, text)
        return text


redactor = Redactor()


def _scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    message = record.getMessage()
    if record.exc_info:
        message = message + "\n" + logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
        record.exc_text = None
    record.msg = redactor.scrub(message)
    record.args = ()
    return record


_base_factory = logging.getLogRecordFactory()


def _redacting_factory(*args, **kwargs) -> logging.LogRecord:
    return _scrub_record(_base_factory(*args, **kwargs))


# What the current thread is working on (a job, a request): every JSON log line carries it, so a
# log shipper can follow one job or one installation across processes without parsing messages.
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("hub_log_context", default={})
CONTEXT_FIELDS = ("job_id", "job_kind", "attempt", "worker", "installation_id", "event_id", "rule_id", "sync_id",
                  "request_id", "method", "path")


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields (None values are left out) to every log line written inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def bind_context(**fields: Any) -> contextvars.Token:
    """The same without a block (web requests: reset with `unbind_context(token)` at teardown)."""
    return _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def unbind_context(token: contextvars.Token) -> None:
    _context.reset(token)


def current_context() -> dict[str, Any]:
    return dict(_context.get())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ms), level, logger, message, process, thread, and the
    context fields (job_id, job_kind, attempt, worker, installation_id ...) of the current thread."""

    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        payload = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
                   "level": record.levelname, "logger": record.name, "message": record.getMessage(),
                   "process": record.process, "thread": record.threadName}
        # the context holds ids and the request path, whose only secret is a webhook URL's token
        payload.update({k: redactor.scrub_patterns(v) if isinstance(v, str) else v for k, v in _context.get().items()})
        for key in CONTEXT_FIELDS:
            if hasattr(record, key):  # `extra={...}` on the call wins over the context
                payload[key] = getattr(record, key)
        return json.dumps(payload, default=str)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_hub", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._hub = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Scrub when a record is made, so every handler (pytest's caplog, gunicorn's) sees it clean.
    logging.setLogRecordFactory(_redacting_factory)
