"""Asana rich text (`html_notes`): validate what a client writes, derive plain `notes` from it.

Asana rejects (400) any value that is not well-formed XML rooted at `<body>`, uses a tag outside
the supported list, or puts attributes on anything but `<a>` (FACTS §6). A sandbox that accepted
such input would let the hub ship rich text that the real API refuses."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Callable
from xml.sax.saxutils import escape

COMMON_TAGS = frozenset({"body", "strong", "em", "u", "s", "code", "ol", "ul", "li", "a"})
TASK_TAGS = COMMON_TAGS | {"h1", "h2", "hr"}
LINK_ATTRIBUTES = frozenset({"href", "data-asana-gid", "data-asana-project", "data-asana-tag", "data-asana-dynamic"})
_BLOCK_TAGS = frozenset({"li", "h1", "h2", "hr", "ul", "ol"})
_SAFE_HREF = re.compile(r"^(https?://|mailto:)", re.I)


class RichTextError(ValueError):
    """The value would be rejected by Asana; the message names the problem."""


def validate(value: str, *, field: str = "html_notes", allowed_tags: frozenset[str] = TASK_TAGS,
             resolve_gid: Callable[[str], str | None] | None = None) -> str:
    """Return the normalized XML Asana would store, or raise RichTextError.

    `resolve_gid(gid)` returns the resource_type of a visible object or None; links to it gain the
    `data-asana-accessible`/`data-asana-type` attributes Asana adds on read.
    """
    if not isinstance(value, str):
        raise RichTextError(f"{field}: Must be a string")
    if re.search(r"<!(DOCTYPE|ENTITY)", value, re.I):
        raise RichTextError(f"{field}: XML is not well-formed")  # also keeps entity tricks out
    try:
        root = ET.fromstring(value)
    except ET.ParseError:
        raise RichTextError(f"{field}: XML is not well-formed") from None
    if root.tag != "body":
        raise RichTextError(f"{field}: The root element must be <body>")
    if root.attrib:
        raise RichTextError(f"{field}: <body> does not take attributes")
    for el in root.iter():
        if el.tag not in allowed_tags:
            raise RichTextError(f"{field}: Unsupported tag <{el.tag}>")
        if el.tag == "body" and el is not root:
            raise RichTextError(f"{field}: <body> may only be the root element")
        if el.tag != "a":
            if el.attrib:
                raise RichTextError(f"{field}: <{el.tag}> does not take attributes")
            continue
        unknown = set(el.attrib) - LINK_ATTRIBUTES
        if unknown:
            raise RichTextError(f"{field}: Unsupported attribute {sorted(unknown)[0]} on <a>")
        href = el.attrib.get("href")
        gid = el.attrib.get("data-asana-gid")
        kind = resolve_gid(gid) if (gid and resolve_gid) else None
        if gid and kind:
            el.set("data-asana-accessible", "true")
            el.set("data-asana-type", kind)
        elif gid and not href:
            raise RichTextError(f"{field}: Link target {gid} is not an object you can see")
        if not kind and not (href and _SAFE_HREF.match(href)):
            raise RichTextError(f"{field}: <a> needs a valid href or a data-asana-gid")
    return ET.tostring(root, encoding="unicode", short_empty_elements=True)


def from_plain(text: str) -> str:
    """`notes` written as plain text, as Asana renders it in `html_notes`."""
    return f"<body>{escape(text or '')}</body>"


def to_plain(xml: str) -> str:
    """Plain-text `notes` derived from stored rich text (block elements end a line)."""
    root = ET.fromstring(xml)
    parts: list[str] = []

    def walk(el: ET.Element) -> None:
        if el.text:
            parts.append(el.text)
        for child in el:
            walk(child)
            if child.tag in _BLOCK_TAGS and parts and not parts[-1].endswith("\n"):
                parts.append("\n")
            if child.tail:
                parts.append(child.tail)

    walk(root)
    return re.sub(r"\n{3,}", "\n\n", "".join(parts)).strip()
