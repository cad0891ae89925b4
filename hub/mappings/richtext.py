"""Neutral rich text: what the templates and the CRM's notes give, cut down to a few tags every
target can convert (`strong em u s code ul ol li a h1 h2 hr`, text with newlines). User values are
escaped by the templates' autoescape; this makes the admin's own markup and the CRM's note HTML
safe too: unknown tags show as text, links keep only http(s) and mailto addresses, and the result
is well-formed. Each target turns it into its own format (`TaskSpec.notes_html`)."""
from __future__ import annotations

from html.parser import HTMLParser

from markupsafe import escape

KEEP = frozenset({"strong", "em", "u", "s", "code", "ul", "ol", "li", "a", "h1", "h2"})
RENAME = {"b": "strong", "i": "em", "strike": "s", "del": "s", "ins": "u", "tt": "code", "kbd": "code",
          "samp": "code", "var": "em", "cite": "em", "h3": "h2", "h4": "h2", "h5": "h2", "h6": "h2"}
LINES = frozenset({"p", "div", "br"})
SCHEMES = ("http://", "https://", "mailto:")


class _Clean(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.stack: list[str] = []

    def _newline(self) -> None:
        if self.out and not self.out[-1].endswith("\n"):
            self.out.append("\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, empty=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, empty=True)

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], *, empty: bool) -> None:
        tag = RENAME.get(tag, tag)
        if tag in LINES:
            if tag == "br":
                self.out.append("\n")
            else:
                self._newline()
            return
        if tag == "hr":
            self._newline()
            self.out.append("<hr/>")
            return
        if tag not in KEEP:
            self.out.append(str(escape(self.get_starttag_text() or "")))
            return
        if empty:
            return
        if tag == "a":
            href = next((v for k, v in attrs if k == "href" and v), "").strip()
            self.out.append(f'<a href="{escape(href)}">' if href.lower().startswith(SCHEMES) else "<a>")
        else:
            self.out.append(f"<{tag}>")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        tag = RENAME.get(tag, tag)
        if tag in LINES:
            if tag != "br":
                self._newline()
            return
        if tag == "hr":
            return
        if tag not in KEEP:
            self.out.append(str(escape(f"</{tag}>")))
            return
        if tag not in self.stack:
            return                      # a stray closing tag: dropped
        while self.stack:
            open_tag = self.stack.pop()
            self.out.append(f"</{open_tag}>")
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        self.out.append(str(escape(data)))

    def handle_comment(self, data: str) -> None:
        pass

    def unknown_decl(self, data: str) -> None:
        if data.upper().startswith("CDATA["):
            self.out.append(str(escape(data[6:])))

    def result(self) -> str:
        self.close()
        while self.stack:
            self.out.append(f"</{self.stack.pop()}>")
        return "".join(self.out).strip("\n")


def clean_html(html: str) -> str:
    """`html` as neutral rich text (see the module's docstring)."""
    parser = _Clean()
    parser.feed(html)
    return parser.result()
