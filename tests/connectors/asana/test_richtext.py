"""Rich text: the sandbox (which validates html_notes as Asana documents) accepts what we produce,
and the words survive. Unit cases pin the translation rules."""
from __future__ import annotations

import random
import xml.etree.ElementTree as ET

import pytest

from hub.connectors.asana.richtext import looks_like_html, to_html_notes

def canonical(xml: str) -> str:
    return ET.canonicalize(xml)


NASTY = {
    "script": ("<script>alert('x')</script>Deal won", ["<script>alert('x')</script>Deal won"]),
    "nbsp-and-entities": ("Globex&nbsp;Inc. &mdash; R&amp;D &bogus; 5 &lt; 6", ["Globex\xa0Inc. — R&D &bogus; 5 < 6"]),
    "bare-ampersand-text": ("R&D < $50k > 10 && a<b", ["R&D < $50k > 10 && a<b"]),
    "unclosed": ("<b>bold <i>both <u>all", ["bold both all"]),
    "misnested": ("<b><i>x</b> y</i> <li>loose item", ["x y", "loose item"]),
    "emoji": ("Won 🎉 by 👩‍💻 Dana — ✓ <b>große</b> 漢字", ["Won 🎉 by 👩‍💻 Dana — ✓ große 漢字"]),
    "long": ("Line of text & more <b>bold</b>\n" * 5000, ["Line of text & more bold"]),
    "long-plain": ("x" * 200_000, ["x" * 1000]),
    "html-document": ("<!DOCTYPE html><html><head><title>T</title><style>p{}</style></head><body>"
                      "<h3>Hi</h3><p>One</p><div>Two<br/>Three</div><table><tr><td>c</td></tr></table>"
                      "</body></html>", ["Hi", "One\nTwo\nThree", "c"]),
    "links": ("<a href='javascript:alert(1)'>bad</a> <a href=\"https://x.example/?a=1&b=2\" onclick='x' "
              "target=_blank>good</a> <a>none</a> <a href=/relative>rel</a>", ["bad good none rel"]),
    "attributes": ("<strong class='x' style='color:red'>s</strong><ul id=l><li data-x=1>i</li></ul>", ["s", "i"]),
    "control-chars": ("a\x00b\x07c\x0bd\r\ne\ud800f\ufffe", ["abcd\nef"]),
    "cdata-comment": ("<b>x</b><!-- secret --><![CDATA[<y>]]>", ["x<y>"]),
    "nested-lists": ("<ul><li>a<ul><li>b</li></ul></li><ul><li>c</li></ul></ul><ol>\n<li>1\n<li>2</ol>", ["a", "b", "c", "1", "2"]),
    "email-in-angles": ("Reply to <jane@example.com> & <sales@acme.example>", ["<jane@example.com> & <sales@acme.example>"]),
    "body-xml-tricks": ("<body><body>x</body></body><?xml version='1.0'?><!ENTITY x 'y'>]]>", ["x"]),
    "already-asana": ('<body><h2>Deal</h2><ul><li><strong>Amount:</strong> 1</li></ul>Notes\n'
                      '<a href="https://crm.example/deals/1">Open</a><hr/></body>', ["Deal", "Amount: 1", "Notes", "Open"]),
    "empty": ("", []),
}


@pytest.mark.parametrize("name", list(NASTY))
def test_the_sandbox_accepts_it_and_the_text_survives(dana, ids, name):
    source, expected = NASTY[name]
    html = to_html_notes(source)
    task = dana.client.create_task(ids["org"], name, html_notes=html)
    stored = dana.client.task(task["gid"], fields=["html_notes", "notes"])
    assert canonical(stored["html_notes"]) == canonical(html)  # stored as sent, nothing repaired
    for fragment in expected:
        assert fragment in stored["notes"]
    if "script" in name:
        assert "<script>" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize("name", ["html-document", "already-asana", "unclosed", "long"])
def test_project_notes_drop_task_only_tags(dana, ids, name):
    html = to_html_notes(NASTY[name][0], target="project")
    assert "<h1>" not in html and "<h2>" not in html and "<hr" not in html
    project = dana.client.create_project(ids["personal"], name, html_notes=html)
    stored = dana.client.json("GET", "projects/{project_gid}", path_params={"project_gid": project["gid"]}, params={"opt_fields": "html_notes"})["data"]
    assert canonical(stored["html_notes"]) == canonical(html)


@pytest.mark.parametrize("source, expected", [
    ("plain\ntext & <stuff>", "<body>plain\ntext &amp; &lt;stuff&gt;</body>"),
    ("<b>Amount:</b> 5\n<i>note</i>", "<body><strong>Amount:</strong> 5\n<em>note</em></body>"),
    ("<p>One</p>\n<p>Two</p>", "<body>One\nTwo</body>"),
    ("<ul>\n  <li>a</li>\n  <li>b\n</ul>\nafter", "<body><ul><li>a</li><li>b</li></ul>after</body>"),
    ("<h4>Sub</h4>\ntext", "<body><h2>Sub</h2>text</body>"),
    ("<script>x()</script>", "<body>&lt;script&gt;x()&lt;/script&gt;</body>"),
    ('<a href="https://a.example/?q=1&amp;r=&quot;2&quot;">A</a>',
     '<body><a href="https://a.example/?q=1&amp;r=&quot;2&quot;">A</a></body>'),
    ("<li>orphan</li>", "<body><ul><li>orphan</li></ul></body>"),
    ("x<br>y<hr>z", "<body>x\ny<hr/>z</body>"),
    ("<head><title>T</title>Hello <b>w</b>", "<body>Hello <strong>w</strong></body>"),
])
def test_translation_rules(source, expected):
    assert to_html_notes(source) == expected


def test_project_headings_become_bold_lines():
    assert to_html_notes("<h1>Title</h1>\nText<hr>end", target="project") == \
        "<body><strong>Title</strong>\nText\nend</body>"


def test_source_can_be_forced():
    assert to_html_notes("<b>x</b>", source="text") == "<body>&lt;b&gt;x&lt;/b&gt;</body>"
    assert to_html_notes("a <jane@example.com>", source="html") == "<body>a &lt;jane@example.com&gt;</body>"


def test_html_detection():
    assert looks_like_html("<p>x</p>") and looks_like_html("a&nbsp;b") and looks_like_html("<BR/>")
    assert not looks_like_html("R&D < 50k") and not looks_like_html("<jane@example.com>")


PIECES = ["<b>", "</b>", "<i>", "</i>", "<p>", "</p>", "<ul>", "</ul>", "<ol>", "<li>", "</li>", "<br>", "<hr/>",
          "<h1>", "</h2>", "<h5>", "<a href='https://e.example/?a=1&b=2'>", "<a href=x>", "</a>", "<script>",
          "</script>", "<div class=x>", "</div>", "<span>", "<img src=x>", "<table><tr><td>", "<!--", "-->",
          "&nbsp;", "&amp;", "&", "<", ">", "&#128512;", "&#x0;", "\n", "  ", "\x00", "\ud83d", "]]>", "<![CDATA[",
          "text", "R&D", "😀", "<body>", "</body>", "<?pi x?>", "<code>", "<s>", "<u>", "\"", "'"]


def test_random_markup_is_always_accepted(dana, ids):
    """Deterministic fuzz: whatever soup a template renders, Asana (the sandbox) takes the result."""
    rng = random.Random(20260615)
    for i in range(120):
        soup = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 40)))
        if i % 2:
            dana.client.create_task(ids["personal"], f"fuzz {i}", html_notes=to_html_notes(soup))
        else:
            dana.client.create_project(ids["personal"], f"fuzz {i}", html_notes=to_html_notes(soup, target="project"))
