"""The one way the hub reads what arrives: JSON bodies (webhooks and the API), numbers in forms and
query strings, and the marshmallow fields of the API schemas.

Hostile input must end in a 4xx naming the field, never a 500 further down: a body is UTF-8 (no
byte order mark, no UTF-16/32: RFC 8259 §8.1 says JSON exchanged between systems is UTF-8), nested
at most `MAX_DEPTH` levels (measured by a flat scan before parsing, so a 100,000-deep body costs
one pass and no recursion), and holds no value the database or a page cannot carry: non-finite
numbers (`NaN`, `Infinity`, `1e400`), integers beyond 64 bits, unpaired surrogates and NUL in
strings. Numbers in forms are ASCII digits only (`int("²")` raises, `int("١٢")` is 12)."""
from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from marshmallow import ValidationError, fields

MAX_DEPTH = 64
MAX_INT = 2**63 - 1             # BIGINT in both databases
MIN_INT = -(2**63)
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


class _Unstorable(Exception):
    """A number `check_value` refuses, met while parsing: the value is walked to name its field."""


def _int64(text: str) -> int:
    value = int(text)
    if not MIN_INT <= value <= MAX_INT:
        raise _Unstorable
    return value


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Unstorable
    return value


def _constant(_text: str) -> float:
    raise _Unstorable   # NaN, Infinity, -Infinity


# Numbers are checked as they are parsed; strings can hold what `check_value` refuses (NUL, a lone
# surrogate) only through a \u escape, or literally in str input. A document with neither is not
# walked again (the walk costs more than the parse).
_DECODER = json.JSONDecoder(parse_int=_int64, parse_float=_finite, parse_constant=_constant)
_ASCII_INT = re.compile(r"[+-]?[0-9]{1,20}\Z")
_ASCII_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?\Z")


class InputError(ValueError):
    """Refused input: `fields` maps each bad field (a dotted path; `body` for the whole) to why."""

    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields

    @classmethod
    def of(cls, field: str, message: str) -> "InputError":
        return cls({field: message})


# -- JSON -------------------------------------------------------------------------------------------
def nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest, brackets inside strings not counted; no recursion."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(1 if c in "[{" else -1 for c in brackets), default=0)


def parse_json(raw: bytes | bytearray | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """The value of a JSON document, or InputError naming what is wrong (and where)."""
    if isinstance(raw, (bytes, bytearray)):
        if raw[:3] == b"\xef\xbb\xbf" or raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise InputError.of("body", "JSON must be UTF-8 without a byte order mark")
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError.of("body", f"not UTF-8 (byte {exc.start}); JSON must be UTF-8") from None
    else:
        text = raw
    if text.startswith("\ufeff"):
        raise InputError.of("body", "JSON must be UTF-8 without a byte order mark")
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:   # fewer: not that deep
        raise InputError.of("body", f"nested deeper than {max_depth} levels")
    suspicious = "\\u" in text or _UNSTORABLE.search(text) is not None
    try:
        try:
            value = _DECODER.decode(text)
        except _Unstorable:
            value, suspicious = json.loads(text), True    # walked below, to name the field
    except RecursionError:    # unreachable after the depth scan; kept so no input can raise it
        raise InputError.of("body", f"nested deeper than {max_depth} levels") from None
    except ValueError as exc:   # JSONDecodeError, and integers longer than Python's digit limit
        raise InputError.of("body", f"not valid JSON ({exc})"[:300]) from None
    if suspicious:
        check_value(value)
    return value


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def check_value(value: Any, path: str = "") -> None:
    """InputError at the first value no store or page can hold; `path` is dotted (`rule.conditions.0`)."""
    if isinstance(value, str):
        check_text(value, path or "body")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            raise InputError.of(path or "body", "number out of range (beyond 64 bits)")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InputError.of(path or "body", "not a finite number (NaN, Infinity or too large)")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, _join(path, "(key)") if _UNSTORABLE.search(key) else path or "body")
            check_value(item, _join(path, key))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            check_value(item, _join(path, n))


def check_text(text: str, field: str) -> str:
    """Refuse unpaired surrogates (not Unicode: no database stores them, no page can encode them)
    and NUL (PostgreSQL text cannot hold it)."""
    bad = _UNSTORABLE.search(text)
    if bad is not None:
        what = "NUL" if bad.group() == "\x00" else "an unpaired surrogate"
        raise InputError.of(field, f"contains {what} (not valid text)")
    return text


# -- numbers in forms, query strings and JSON ---------------------------------------------------------
def to_int(value: Any, field: str, *, low: int = MIN_INT, high: int = MAX_INT) -> int:
    """A whole number from JSON (int, or an integral finite float) or ASCII digits; InputError
    naming `field` otherwise (`²`, `١٢`, `1e400`, `inf`, `nan`, true) or when out of [low, high]."""
    if isinstance(value, bool):
        raise InputError.of(field, "expected a whole number")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise InputError.of(field, "expected a whole number")
        value = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not _ASCII_INT.match(text):
            raise InputError.of(field, "expected a whole number (digits 0-9)")
        value = int(text)
    elif not isinstance(value, int):
        raise InputError.of(field, "expected a whole number")
    if not low <= value <= high:
        raise InputError.of(field, f"must be between {low} and {high}")
    return value


def to_number(value: Any, field: str, *, low: float = -1e308, high: float = 1e308) -> float:
    """A finite number from JSON or ASCII text (`1.5`, `2e3`); InputError naming `field` otherwise."""
    if isinstance(value, bool):
        raise InputError.of(field, "expected a number")
    if isinstance(value, str):
        text = value.strip()
        if not _ASCII_NUMBER.match(text):
            raise InputError.of(field, "expected a number (digits 0-9)")
        value = float(text)
    elif isinstance(value, int):
        value = float(value) if abs(value) <= 2**1023 else math.inf
    elif not isinstance(value, float):
        raise InputError.of(field, "expected a number")
    if not math.isfinite(value):
        raise InputError.of(field, "not a finite number")
    if not low <= value <= high:
        raise InputError.of(field, f"must be between {low:g} and {high:g}")
    return value


def optional_int(value: Any, field: str, *, low: int = MIN_INT, high: int = MAX_INT) -> int | None:
    """`to_int`, with nothing (None, "") as None: for optional query and form parameters."""
    return None if value is None or (isinstance(value, str) and not value.strip()) else \
        to_int(value, field, low=low, high=high)


# -- marshmallow ------------------------------------------------------------------------------------
class Integer(fields.Integer):
    """marshmallow's Integer accepts `"١٢"` and any size; this one takes what `to_int` takes and
    stays within 64 bits (or the range given)."""

    def __init__(self, *, low: int = MIN_INT, high: int = MAX_INT, **kwargs: Any):
        super().__init__(**kwargs)
        self.low, self.high = low, high

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        try:
            return to_int(value, attr or "value", low=self.low, high=self.high)
        except InputError as exc:
            raise ValidationError(next(iter(exc.fields.values()))) from None


class Float(fields.Float):
    """A finite number, ASCII digits only when given as text."""

    def __init__(self, *, low: float = -1e308, high: float = 1e308, **kwargs: Any):
        super().__init__(**kwargs)
        self.low, self.high = low, high

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        try:
            return to_number(value, attr or "value", low=self.low, high=self.high)
        except InputError as exc:
            raise ValidationError(next(iter(exc.fields.values()))) from None
