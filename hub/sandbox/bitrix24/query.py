"""The `filter` / `order` / `select` / `start` parameters every *.list method shares.

Filter keys carry their operator as a prefix (`>=DATE_MODIFY`, `!STATUS`, `@ID`, `%TITLE`); a list
value means "any of"; a field holding a list (UF_CRM_TASK, AUDITORS) matches when any item does.
Pages are fixed at 50: `next` is the next page's `start`, `start=-1` skips counting (no `total`)."""
from __future__ import annotations

import re
from typing import Any, Callable

from .util import RestError, parse_time, to_int

PAGE = 50
_OPS = ("!=", ">=", "<=", "!@", "!%", "=%", "%=", "!", ">", "<", "=", "%", "@")
_DATE = re.compile(r"(^|_)(DATE|CLOSEDATE|BEGINDATE|DEADLINE|DATE_[A-Z_]+|[A-Z_]+_DATE)$")


def split_key(key: str) -> tuple[str, str]:
    for op in _OPS:
        if key.startswith(op):
            return op, key[len(op):]
    return "=", key


def _scalar(value: Any, field: str, is_date: bool) -> Any:
    if value is None:
        return None
    if is_date:
        return parse_time(value, field) if value != "" else None
    text = str(value)
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text)
    return text.lower()


def matches(record: dict, flt: dict, getter: Callable[[dict, str], Any]) -> bool:
    for raw_key, wanted in flt.items():
        op, field = split_key(str(raw_key))
        field = field.upper()
        is_date = bool(_DATE.search(field))
        have = getter(record, field)
        haves = have if isinstance(have, list) else [have]
        haves = [_scalar(h, field, is_date) for h in haves] or [None]
        wants = wanted if isinstance(wanted, list) else [wanted]
        try:
            wants = [_scalar(w, field, is_date) for w in wants]
        except RestError:
            raise RestError("ERROR_ARGUMENT", f"filter {raw_key}: not a date-time: {wanted!r}")

        def cmp(h, w, fn):
            if h is None or w is None:
                return False
            try:
                return fn(h, w)
            except TypeError:
                return fn(str(h), str(w))

        if op in ("=", "@"):
            ok = any(cmp(h, w, lambda a, b: a == b) for h in haves for w in wants) or \
                (wants == [None] or wants == [""]) and all(h in (None, "") for h in haves)
        elif op in ("!", "!=", "!@"):
            ok = not any(cmp(h, w, lambda a, b: a == b) for h in haves for w in wants)
        elif op in ("%", "=%", "%="):
            ok = any(h is not None and str(w).strip("%") in str(h) for h in haves for w in wants)
        elif op == "!%":
            ok = not any(h is not None and str(w).strip("%") in str(h) for h in haves for w in wants)
        else:
            fn = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
                  "<=": lambda a, b: a <= b}[op]
            ok = any(cmp(h, w, fn) for h in haves for w in wants)
        if not ok:
            return False
    return True


def sort(records: list[dict], order: Any, getter: Callable[[dict, str], Any]) -> list[dict]:
    if not order:
        return records
    if not isinstance(order, dict):
        raise RestError("ERROR_ARGUMENT", "order: expected an object of FIELD: ASC|DESC")
    out = list(records)
    for field, direction in reversed(list(order.items())):
        desc = str(direction).upper() == "DESC"
        field = str(field).upper()
        is_date = bool(_DATE.search(field))

        def key(r, field=field, is_date=is_date):
            v = _scalar(getter(r, field), field, is_date)
            return (v is None, v if isinstance(v, float) else 0.0, "" if isinstance(v, float) or v is None else str(v))
        out.sort(key=key, reverse=desc)
    return out


def page(items: list, start: Any) -> tuple[list, dict]:
    """The page at `start` and the envelope's `next`/`total` (none of them for start=-1)."""
    if start in (None, ""):
        start = 0
    start = to_int(start, "start")
    if start == -1:
        return items[:PAGE], {}
    start = max(start, 0)
    chunk = items[start:start + PAGE]
    extra: dict[str, Any] = {"total": len(items)}
    if start + PAGE < len(items):
        extra["next"] = start + PAGE
    return chunk, extra


def as_dict(value: Any, name: str) -> dict:
    if value in (None, "", []):
        return {}
    if not isinstance(value, dict):
        raise RestError("ERROR_ARGUMENT", f"{name}: expected an object")
    return value


def as_list(value: Any, name: str = "") -> list:
    if value in (None, ""):
        return []
    if isinstance(value, dict):
        return list(value.values())
    if not isinstance(value, list):
        return [value]
    return value
