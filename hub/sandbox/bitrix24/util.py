"""Bitrix24's wire details: PHP-style bracket parameters, its date format, its error body.

Bitrix24 is PHP: GET queries, form bodies and the `cmd` strings of `batch` spell nested values as
`fields[TITLE]=..&fields[UF_CRM_TASK][]=D_1`; a JSON body carries the same tree directly."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Iterable
from urllib.parse import parse_qsl

_KEY = re.compile(r"^([^\[\]]*)((?:\[[^\[\]]*\])*)$")


class RestError(Exception):
    """An error envelope: `{"error": code, "error_description": text}` with its HTTP status."""

    def __init__(self, code: str, description: str, status: int = 400):
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.code, "error_description": self.description}


def _listify(value: Any) -> Any:
    """A dict whose keys are 0..n-1 is a PHP list: give it back as one (recursively)."""
    if isinstance(value, dict):
        value = {k: _listify(v) for k, v in value.items()}
        if value and all(k.isdigit() for k in value) and sorted(int(k) for k in value) == list(range(len(value))):
            return [value[str(i)] for i in range(len(value))]
    return value


def php_params(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """`[("fields[TITLE]", "x"), ("ids[]", "1"), ("ids[]", "2")]` -> `{"fields": {"TITLE": "x"}, "ids": ["1", "2"]}`.
    A later scalar replaces an earlier one, as PHP's parser does; malformed keys stay flat."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        m = _KEY.match(key)
        if not m or not m.group(1):
            out[key] = value
            continue
        parts = [m.group(1)] + re.findall(r"\[([^\[\]]*)\]", m.group(2))
        node: Any = out
        for n, part in enumerate(parts):
            last = n == len(parts) - 1
            if part == "":
                part = str(sum(1 for k in node if k.isdigit())) if isinstance(node, dict) else "0"
            if last:
                node[part] = value
            else:
                nxt = node.get(part)
                if not isinstance(nxt, dict):
                    nxt = {}
                    node[part] = nxt
                node = nxt
    return {k: _listify(v) for k, v in out.items()}


def parse_query(query: str) -> dict[str, Any]:
    return php_params(parse_qsl(query, keep_blank_values=True))


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """The inverse of `php_params`, for form bodies the emulator sends (event deliveries)."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, (list, tuple)):
        items = list(enumerate(value))
    else:
        return [(prefix, "" if value is None else str(value))]
    pairs: list[tuple[str, str]] = []
    for key, item in items:
        name = f"{prefix}[{key}]" if prefix else str(key)
        pairs.extend(flatten(item, name))
    return pairs


def iso(ts: float | None) -> str | None:
    """Bitrix24's date-time: ISO 8601 with the portal's offset (the sandbox's portals keep UTC)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def parse_time(value: Any, field: str) -> float | None:
    """ISO 8601 (with or without offset, date only) or a unix number; '' clears; else a 400 naming the field."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            dt = datetime.strptime(text, "%Y-%m-%d")
        else:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RestError("ERROR_ARGUMENT", f"{field}: not a date-time: {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def yn(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().upper()
    if text in ("Y", "1", "TRUE"):
        return True
    if text in ("N", "0", "FALSE", ""):
        return False
    raise RestError("ERROR_ARGUMENT", f"{field}: expected Y or N, got {value!r}")


def to_int(value: Any, field: str) -> int:
    if isinstance(value, bool):
        raise RestError("ERROR_ARGUMENT", f"{field}: not an integer")
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise RestError("ERROR_ARGUMENT", f"{field}: not an integer: {value!r}") from None


def money(value: Any, field: str) -> str:
    try:
        return f"{float(str(value).strip() or 0):.2f}"
    except ValueError:
        raise RestError("ERROR_ARGUMENT", f"{field}: not a number: {value!r}") from None
