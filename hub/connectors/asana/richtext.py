"""Turn plain text or a rendered HTML template into `html_notes` Asana accepts (FACTS.md §6).

Asana refuses (400) anything that is not well-formed XML rooted at `<body>`, any tag off its short
list, and attributes anywhere but on `<a>`. Literal newlines are its line breaks (there is no
`<p>` or `<br>`). So the output is built token by token with every tag we emit closed by
construction, then parsed back as a last check.

Input handling:
- Plain text (no HTML tags or entities in it): escaped as is, newlines kept.
- HTML: allowed tags are kept (links only with an http(s)/mailto `href`), common equivalents are
  translated (`b`->`strong`, `i`->`em`, `p`/`div`/`br` -> newlines, `h3`.. -> `h2` ...), wrappers
  (`html`, `body`, `span` ...) are unwrapped, and every other tag (`script`, `img`, unknown ones)
  is escaped so it shows as literal text: nothing runs, nothing is silently lost.
  Entities are decoded once (`&nbsp;` -> U+00A0); unknown ones stay literal.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Literal
from xml.sax.saxutils import escape

COMMON_TAGS = frozenset({"body", "strong", "em", "u", "s", "code", "ol", "ul", "li", "a"})
TASK_TAGS = COMMON_TAGS | {"h1", "h2", "hr"}
Target = Literal["task", "project"]

# Characters XML 1.0 cannot carry at all (control characters, lone surrogates, U+FFFE/U+FFFF).
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SAFE_HREF = re.compile(r"^(https?://[^\s]+|mailto:[^\s]+)$", re.I)
_RENAME = {"b": "strong", "i": "em", "strike": "s", "del": "s", "ins": "u", "tt": "code", "kbd": "code",
           "samp": "code", "var": "em", "cite": "em", "h3": "h2", "h4": "h2", "h5": "h2", "h6": "h2"}
_BLOCKS = frozenset({"p", "div", "section", "article", "header", "footer", "blockquote", "pre", "address",
                     "main", "aside", "nav", "figure", "figcaption", "tr", "table", "dl", "dt", "dd"})
_UNWRAP = frozenset({"html", "body", "span", "font", "small", "big", "sub", "sup", "label", "abbr",
                     "mark", "center", "thead", "tbody", "tfoot", "th", "td", "time", "bdi", "bdo"})
_SKIP = frozenset({"head", "title", "meta", "link", "base", "wbr"})   # structure, no content of its own
_CLOSES_LINE = frozenset({"h1", "h2", "ul", "ol", "li", "hr"})       # Asana already breaks after these
_HEAD_ONLY = frozenset({"head", "title", "meta", "link", "base", "style", "script", "noscript"})
_LINE_DONE = frozenset({"<body>", "<hr/>", "</h1>", "</h2>", "</ul>", "</ol>", "</li>"})
_KNOWN_HTML = (_BLOCKS | _UNWRAP | _SKIP | set(_RENAME) | TASK_TAGS | {"br", "script", "style", "img", "iframe"})
_LOOKS_HTML = re.compile(r"</?(%s)\b[^<>]*>|&(#\d+|#x[0-9a-f]+|[a-z][a-z0-9]*);"
                         % "|".join(sorted(_KNOWN_HTML, key=len, reverse=True)), re.I)


def clean_text(text: str) -> str:
    """Drop what XML cannot hold; CRLF/CR become LF."""
    return _INVALID_XML.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _attr(value: str) -> str:
    """An attribute value for double quotes."""
    return escape(clean_text(value), {'"': "&quot;"})


def looks_like_html(value: str) -> bool:
    return bool(_LOOKS_HTML.search(value))


def to_html_notes(text_or_html: str, *, source: Literal["auto", "text", "html"] = "auto",
                  target: Target = "task") -> str:
    """Valid Asana rich text for a task (or, with `target="project"`, a project, which has no
    headings or rules). `source="auto"` treats the value as HTML only if it holds HTML tags or
    entities, so plain text such as `<jane@example.com>` or `R&D` survives literally."""
    value = text_or_html or ""
    is_html = source == "html" or (source == "auto" and looks_like_html(value))
    allowed = TASK_TAGS if target == "task" else COMMON_TAGS
    if not is_html:
        return f"<body>{escape(clean_text(value))}</body>"
    builder = _Sanitizer(allowed)
    builder.feed(value)
    builder.close()
    result = builder.result()
    if not _acceptable(result, allowed):  # never expected; a safety net that still keeps the text
        return f"<body>{escape(clean_text(builder.plain_text()))}</body>"
    return result


def _acceptable(xml: str, allowed: frozenset[str]) -> bool:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return False
    return all(el.tag in allowed and (el.tag == "a" or not el.attrib) for el in root.iter())


class _Sanitizer(HTMLParser):
    def __init__(self, allowed: frozenset[str]):
        super().__init__(convert_charrefs=True)
        self.allowed = allowed
        self.out: list[str] = ["<body>"]
        self.stack: list[str] = []        # open output tags, innermost last
        self.text: list[str] = []         # plain-text shadow for the fallback
        self.eat_newline = False          # a block just ended: the next source newline is redundant
        self.in_head = False              # <head>...</head> of a whole document holds no content
        self.head_element: str | None = None  # the <title>/<style>... open inside it

    # -- output helpers ---------------------------------------------------------------------------
    def _text(self, data: str) -> None:
        data = clean_text(data)
        if self.eat_newline:
            stripped = data.lstrip(" \t")
            if stripped.startswith("\n"):
                data = stripped[1:]
            if data:
                self.eat_newline = False
        if self.out[-1] in ("<body>", "<li>", "<h1>", "<h2>"):
            data = data.lstrip()  # source layout, not content
        if not data:
            return
        if self.stack and self.stack[-1] in ("ul", "ol"):
            if not data.strip():
                return  # indentation between list items
            self._open("li")
        self.out.append(escape(data))
        self.text.append(data)

    def _literal(self, raw: str) -> None:
        """A tag Asana cannot take, shown as the text it was."""
        self.eat_newline = False
        self._text(raw)

    def _open(self, tag: str, attrs: str = "") -> None:
        if tag == "li":
            lists = [i for i, t in enumerate(self.stack) if t in ("ul", "ol")]
            if not lists:
                self._open("ul")
            elif "li" in self.stack[lists[-1]:]:
                self._close("li")  # HTML lets `<li>` end the previous item implicitly
        self.out.append(f"<{tag}{attrs}>")
        self.stack.append(tag)
        self.eat_newline = False

    def _close(self, tag: str) -> None:
        if tag not in self.stack:
            return  # a stray end tag
        if self.stack[-1] in ("li", "h1", "h2") and not self.out[-1].startswith("<"):
            self.out[-1] = self.out[-1].rstrip()  # source indentation before the end of an item
        while self.stack:
            top = self.stack.pop()
            self.out.append(f"</{top}>")
            if top == tag:
                break
        if tag in _CLOSES_LINE:
            self.eat_newline = True

    def _newline(self) -> None:
        if self.out[-1].endswith("\n") or self.out[-1] in _LINE_DONE:
            return
        if self.stack and self.stack[-1] in ("ul", "ol"):
            return
        self.out.append("\n")
        self.text.append("\n")

    # -- HTMLParser callbacks ---------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, self.get_starttag_text() or f"<{tag}>", empty=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, self.get_starttag_text() or f"<{tag}/>", empty=True)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], raw: str, *, empty: bool) -> None:
        if tag in ("head", "body"):
            self.in_head = tag == "head" and not empty
        elif self.in_head and tag not in _HEAD_ONLY:
            self.in_head = False  # HTML ends <head> implicitly at the first content element
        if self.in_head:
            self.head_element = None if empty else tag
            return
        tag = _RENAME.get(tag, tag)
        if tag in ("h1", "h2") and tag not in self.allowed:  # projects: a heading becomes a bold line
            self._newline()
            tag = "strong"
        elif tag == "hr" and tag not in self.allowed:
            tag = "br"
        if tag in _SKIP or tag in _UNWRAP:
            return
        if tag == "br":
            self.out.append("\n")
            self.text.append("\n")
            self.eat_newline = False
            return
        if tag in _BLOCKS:
            self._newline()
            return
        if tag == "hr":  # a block in Asana: no newline of ours around it
            self.out.append("<hr/>")
            self.eat_newline = True
            return
        if tag == "a":
            href = next((v for k, v in attrs if k == "href" and v), None)
            if "a" in self.stack or not href or not _SAFE_HREF.match(href.strip()):
                return  # unwrap: keep the link text, drop an unusable or nested link
            self._open("a", f' href="{_attr(href.strip())}"')
        elif tag in self.allowed and tag != "body":
            if tag in ("ul", "ol") and self.stack and self.stack[-1] in ("ul", "ol"):
                self._open("li")  # a list directly inside a list belongs to an item
            self._open(tag)
        else:
            self._literal(raw)
            return
        if empty:
            self._close(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self.in_head = False
        if self.in_head:
            self.head_element = None
            return
        tag = _RENAME.get(tag, tag)
        if tag in ("h1", "h2") and tag not in self.allowed:
            if "strong" in self.stack:
                self._close("strong")
                self._newline()
                self.eat_newline = True
            return
        if tag in _SKIP or tag in _UNWRAP or tag in ("br", "hr"):
            return
        if tag in _BLOCKS:
            self._newline()
            self.eat_newline = True
            return
        if tag in self.allowed or tag == "a":
            self._close(tag)
            return
        self._literal(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if self.in_head and data.strip() and self.head_element is None:
            self.in_head = False  # text right after the head's last element is content
        if not self.in_head:
            self._text(data)

    def handle_comment(self, data: str) -> None:  # comments, doctype and PIs carry no content
        pass

    def handle_decl(self, decl: str) -> None:
        pass

    def handle_pi(self, data: str) -> None:
        pass

    def unknown_decl(self, data: str) -> None:  # <![CDATA[...]]> keeps its text
        if data.startswith("CDATA["):
            self._text(data[6:])

    def result(self) -> str:
        while self.stack:
            self.out.append(f"</{self.stack.pop()}>")
        body = "".join(self.out)
        while body.endswith("\n"):  # trailing blank lines are noise in a task description
            body = body[:-1]
        return body + "</body>"

    def plain_text(self) -> str:
        return "".join(self.text)
