"""Worst-case sizes of what a template operation would build, computed from its operands BEFORE
the operation runs.

A single C call (`'%*d' % (10**9, 1)`, `'x'.center(10**9)`, `9**64**64`) can allocate gigabytes or
burn seconds before any check after it could fire, and inside the render process nothing can
interrupt it. So the sandbox asks these functions first and refuses when the bound exceeds the
limit. Every estimate is an upper bound that costs at most O(limit): walks stop as soon as they
pass the cap, numbers in format specs are read by their digit count before being converted."""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from string import Formatter
from typing import Any

from jinja2.runtime import Undefined

# Python refuses to print ints of more than 4300 digits (sys.int_info.default_max_str_digits), so a
# template never needs more; bounding ints also bounds the cost of `*`, `//` and `%` on them.
MAX_INT_BITS = 14300
_BIG_NUMBER = 9             # a width or precision written with more digits than this is refused unread
_PERCENT = re.compile(r"%(?:\((?P<key>[^)]*)\))?[-+ #0]*(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d*))?[hlL]?(?P<conv>.?)",
                      re.S)
_DIGITS = re.compile(r"\d+")
_formatter = Formatter()


class Oversize(Exception):
    """A bound passed its cap; the caller turns it into a readable refusal."""


def text_size(value: Any, cap: int) -> int:
    """Upper bound of `len(str(value))` (nested containers included); returns as soon as it passes
    `cap`, so the walk costs at most O(cap) whatever the value."""
    if isinstance(value, str):
        return len(value)
    total, stack = 0, [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            total += len(v) + 2
        elif v is None or isinstance(v, Undefined):
            total += 4
        elif isinstance(v, bool):
            total += 5
        elif isinstance(v, int):
            total += v.bit_length() * 31 // 100 + 2
        elif isinstance(v, float):
            total += 24
        elif isinstance(v, (bytes, bytearray)):
            total += len(v) * 4 + 3
        elif isinstance(v, Mapping):
            total += 2 + 4 * len(v)
            if total <= cap:
                stack.extend(v.keys())
                stack.extend(v.values())
        elif isinstance(v, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(v)
            if total <= cap:
                stack.extend(v)
        else:
            total += 80     # ranges, loop objects, macros: a short repr
        if total > cap:
            return total
    return total


def int_bits_ok(value: Any) -> bool:
    return not isinstance(value, int) or value.bit_length() <= MAX_INT_BITS


def _number(text: str) -> int:
    if len(text) > _BIG_NUMBER:
        raise Oversize()
    return int(text)


def repeat_size(seq: Any, times: Any) -> int:
    """Characters or items of `seq * times` (a list's memory is its items; its text is checked
    where it is turned into text)."""
    if not isinstance(times, int) or times <= 0:
        return 0
    return len(seq) * times


def product_bits(left: Any, right: Any) -> int:
    if isinstance(left, int) and isinstance(right, int):
        return left.bit_length() + right.bit_length()
    return 0


def power_bits(base: Any, exponent: Any) -> int:
    """Bits of `base ** exponent` for ints (floats overflow quickly and cheaply by themselves)."""
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 1 and abs(base) > 1:
        if exponent > MAX_INT_BITS:
            return exponent        # even 2 ** exponent is already too big
        return base.bit_length() * exponent
    return 0


def percent_size(fmt: str, args: Any, cap: int) -> int:
    """`fmt % args`: widths and precisions (literal or `*`) plus every argument's text."""
    if isinstance(args, tuple):
        positional, mapping = list(args), None
    elif isinstance(args, Mapping):
        positional, mapping = [], args
    else:
        positional, mapping = [args], args if isinstance(args, Mapping) else None
    position = 0

    def take() -> Any:
        nonlocal position
        position += 1
        return positional[position - 1] if position <= len(positional) else None

    total = len(fmt)
    for m in _PERCENT.finditer(fmt):
        if m["conv"] == "%":
            continue
        width = take() if m["width"] == "*" else _number(m["width"] or "0")
        precision = take() if m["prec"] == "*" else _number(m["prec"] or "0")
        value = mapping.get(m["key"]) if m["key"] is not None and mapping is not None else take()
        for number in (width, precision):
            if isinstance(number, int):
                total += abs(number)
        total += 2 * text_size(value, cap) + 8
        if total > cap:
            return total
    return total


def format_size(fmt: str, args: tuple, kwargs: Mapping, cap: int) -> int:
    """`fmt.format(*args, **kwargs)`: nested `{}` in format specs are resolved first, then every
    number in a spec counts as a width (an upper bound for widths, precisions and custom specs)."""
    auto = iter(range(len(fmt) + 1))

    def value_of(field: str) -> Any:
        head = re.split(r"[.\[]", field, maxsplit=1)[0]
        if head == "":
            index = next(auto)
            return args[index] if index < len(args) else None
        if head.isdigit():
            index = _number(head)
            return args[index] if index < len(args) else None
        return kwargs.get(head)

    total = 0
    try:
        for literal, field, spec, _ in _formatter.parse(fmt):
            total += len(literal)
            if field is None:
                continue
            value = value_of(field)
            spec_text = ""
            for spec_literal, nested, _, _ in _formatter.parse(spec or ""):
                spec_text += spec_literal
                if nested is not None:
                    inner = value_of(nested)
                    if text_size(inner, 64) > 64:
                        raise Oversize()
                    spec_text += str(inner)
            total += sum(_number(n) for n in _DIGITS.findall(spec_text)) + 2 * text_size(value, cap) + 8
            if total > cap:
                return total
    except ValueError:
        return 0        # a malformed format: the call itself raises the readable error
    return total


def bounded_items(iterable: Any, cap: int) -> list:
    """The items of an iterable (a generator can be read once only), refusing once their text
    passes the cap, so a join or sum never starts on an oversized input."""
    items, total = [], 0
    for item in iterable:
        total += text_size(item, cap) + 1
        if total > cap:
            raise Oversize()
        items.append(item)
    return items


def method_size(owner: Any, name: str, args: tuple, kwargs: dict, cap: int) -> int:
    """Result bound of the str and bytes methods that can grow their input; 0 for the others."""
    size = len(owner)
    if name in ("ljust", "rjust", "center", "zfill"):
        width = args[0] if args else kwargs.get("width", 0)
        return max(size, width) if isinstance(width, int) else 0
    if name == "expandtabs":
        tab = args[0] if args else kwargs.get("tabsize", 8)
        tabs = owner.count("\t" if isinstance(owner, str) else b"\t")
        return size + tabs * max(tab, 0) if isinstance(tab, int) else 0
    if name == "replace" and len(args) >= 2 and isinstance(args[0], type(owner)) and isinstance(args[1], type(owner)):
        old, new = args[0], args[1]
        hits = owner.count(old) if old else size + 1
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        return size + hits * len(new)
    if name == "translate" and args and isinstance(args[0], (Mapping, list, tuple)):   # a list maps by index
        table = args[0].values() if isinstance(args[0], Mapping) else args[0]
        longest = max((text_size(v, cap) for v in table), default=1)
        return size * max(longest, 1)
    if name in ("format", "format_map") and isinstance(owner, str):
        if name == "format_map":
            return format_size(owner, (), args[0] if args and isinstance(args[0], Mapping) else {}, cap)
        return format_size(owner, args, kwargs, cap)
    return 0


def join_size(separator: Any, items: Iterable, cap: int) -> int:
    items = list(items)
    return sum(text_size(i, cap) for i in items) + text_size(separator, cap) * len(items)
