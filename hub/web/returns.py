"""Where a `next` (return) parameter may send a browser: only to a path on this origin.

Browsers repair URLs before following them (WHATWG URL parsing): they drop tabs and newlines
anywhere, trim leading and trailing control characters and spaces, and read a backslash as a slash
in http(s) URLs. A check on the raw text is therefore not enough (`/\\t/evil.example` passes a
"starts with / but not //" test and is followed as `//evil.example`). This module applies the same
repairs first and then admits only a path-absolute reference; it also refuses values that become
scheme-relative once percent-decoded, since the hub (or a proxy in front of it) may decode a path
and echo it into a later redirect. It depends on nothing, so the sandbox uses it too."""
from __future__ import annotations

import re
from urllib.parse import unquote

MAX_LENGTH = 2048
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_C0_OR_SPACE = "".join(chr(c) for c in range(0x21))


def browser_normalise(value: str) -> str:
    """What a browser makes of a URL string before resolving it against the current page."""
    return _TAB_OR_NEWLINE.sub("", value.strip(_C0_OR_SPACE)).replace("\\", "/")


def _is_local_path(value: str) -> bool:
    return value.startswith("/") and not value.startswith("//") and not _CONTROL.search(value)


def safe_return_target(value: object, default: str) -> str:
    """`value` repaired as a browser would, if it is a path on this origin; otherwise `default`."""
    if not isinstance(value, str) or not value or len(value) > MAX_LENGTH:
        return default
    target = browser_normalise(value)
    if not _is_local_path(target):
        return default
    decoded = target
    for _ in range(3):  # %252F%252F... : every decoding a server or proxy might apply stays local
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
        if not _is_local_path(browser_normalise(decoded)):
            return default
    return target


def came_from(next_value: object, referrer: object, host: str) -> str:
    """Where a person started a round trip (connecting an account): the form's `next`, else the page
    of this hub the request came from (the Referer, sent for same-origin requests only), else ""."""
    target = safe_return_target(next_value, "")
    if target or not isinstance(referrer, str):
        return target
    scheme, sep, rest = referrer.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return ""
    netloc, slash, path = rest.partition("/")
    return safe_return_target("/" + path, "") if slash and netloc == host else ""

