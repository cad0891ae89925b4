"""Template safety and limits, and the rich text a render produces."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from hub.mappings import Carry, Limits, Mapping, SourceRecord, TargetRenderer, TemplateProblem, sample_record
from hub.mappings.render import Renderer

LIMITS = Limits(template_max_chars=2000, output_max_chars=5000, seconds=0.3, steps=20000)
CONTEXT = {"deal": {"title": "R&D <x>", "value": "1,000 EUR"}, "person": None, "fields": {}}


@pytest.fixture
def html():
    return Renderer(LIMITS, html=True)


@pytest.mark.parametrize("source, message", [
    ("{{ ''.__class__ }}", "'__class__' of a str is not allowed"),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "not allowed"),
    ("{{ deal.__class__.__init__.__globals__ }}", "'__class__' of a dict is not allowed"),
    ("{{ deal|attr('__class__') }}", "not allowed"),
    ("{{ self._TemplateReference__context }}", "not allowed"),
    ("{{ deal.items.__self__ }}", "not allowed"),
    ("{% set x = deal.update({'a': 1}) %}", "not allowed"),
])
def test_escapes_from_the_sandbox_are_refused_with_a_message(html, source, message):
    with pytest.raises(TemplateProblem) as exc:
        html.render(source, CONTEXT)
    assert message in str(exc.value)


@pytest.mark.parametrize("source, message", [
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
     "runs more than 20000 loop iterations"),
    ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
     "runs more than 20000 loop iterations, calls and filters"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", "output is longer than"),
    ("{{ 'x' * 1000000000 }}", "larger than the limit"),
    ("{{ [1] * 1000000000 }}", "larger than the limit"),
    ("{{ 'x'.ljust(1000000000) }}", "larger than the limit"),
    ("{{ '%999999999s' % 'x' }}", "larger than the limit"),
    ("{{ '{:>999999999}'.format(1) }}", "larger than the limit"),
    ("{{ '{:>{}}'.format(1, 999999999) }}", "larger than the limit"),
    ("{{ 9 ** 99999999 }}", "more than 14300 bits"),
    ("{% set a = 'x' * 19000 %}{% set b = a ~ a ~ a %}{{ b|length }}", "larger than the limit"),
    ("{% set a = 'x' * 19000 %}{{ (a ~ a)|replace('x', 'xxxxxxxxxx') }}", "larger than the limit"),
    ("{{ range(100000)|join(',') }}", "larger than the limit"),
    ("{{ lipsum(100000) }}", "'lipsum' is undefined"),
])
def test_huge_loops_and_huge_output_are_refused_by_counts_and_sizes(html, source, message):
    """Refusals that depend only on the template: the same on any machine, however busy (the CPU
    and memory budgets of the render process are tested in test_jail.py)."""
    with pytest.raises(TemplateProblem) as exc:
        html.render(source, CONTEXT)
    assert message in str(exc.value)


def test_template_size_syntax_and_unknown_names_are_checked_before_saving(html):
    with pytest.raises(TemplateProblem, match="at most 2000 are allowed"):
        html.check("x" * 2001, ["deal"])
    with pytest.raises(TemplateProblem, match="line 1: unexpected"):
        html.check("{{ deal.title }", ["deal"])
    with pytest.raises(TemplateProblem, match="unknown name 'dael'"):
        html.check("{{ dael.title }}", ["deal"])
    with pytest.raises(TemplateProblem, match="'__class__' is not allowed"):
        html.check("{{ deal.__class__ }}", ["deal"])
    html.check("{% for n in notes %}{{ n.content }}{% endfor %}{{ deal.title }}", ["deal", "notes"])


def test_user_data_is_escaped_and_missing_data_renders_empty(html):
    assert html.render("{{ deal.title }}|{{ person.name }}|{{ deal.missing.deeper }}", CONTEXT) == "R&amp;D &lt;x&gt;||"
    plain = Renderer(LIMITS, html=False)
    assert plain.render("{{ deal.title }}", CONTEXT) == "R&D <x>"


def record(**data) -> SourceRecord:
    base = {"id": 7, "title": "Deal <7> & co", "value": 1500, "currency": "EUR", "custom_fields": {}}
    return SourceRecord(kind="deal", id="7", data={**base, **data}, url="https://crm.example/deal/7",
                        person={"name": "Ann <A&B>", "emails": [{"value": "ann@example.com", "primary": True}]},
                        org={"name": "O&O", "address": {"value": "Street 1 <b>"}},
                        notes=[{"content": "<p>Pinned <b>bold</b> <script>alert(1)</script> & more</p>"}],
                        files=[{"id": 1, "name": "f.pdf", "file_size": 3}])


def test_descriptions_become_neutral_rich_text():
    """What every target converts: a few tags, well-formed, unknown markup shown as text."""
    renderer = TargetRenderer(LIMITS)
    out = renderer.render("{{ deal.title }} ✓", "Intro: {{ deal.title }} < 5 & <b>bold</b>\n<div>block</div><img src=x>"
                          "<a href=\"javascript:alert(1)\">x</a><i>open", record(), Carry(True, True, True, False), [])
    root = ET.fromstring(f"<body>{out.html_notes}</body>")
    assert {el.tag for el in root.iter()} <= {"body", "strong", "em", "u", "s", "code", "ol", "ul", "li", "a", "h1",
                                              "h2", "hr"}
    assert all(not el.attrib or (el.tag == "a" and el.attrib["href"].startswith(("http", "mailto:")))
               for el in root.iter())
    assert out.name == "Deal <7> & co ✓"
    text = out.html_notes
    assert "Intro: Deal &lt;7&gt; &amp; co &lt; 5 &amp; <strong>bold</strong>" in text
    assert "&lt;img src=x&gt;" in text                                   # unknown tags show as text
    assert "&lt;script&gt;" in text and "<script>" not in text and "javascript" not in text
    assert "Ann &lt;A&amp;B&gt;" in text and 'href="mailto:ann@example.com"' in text
    assert "<strong>Value:</strong> 1,500 EUR" in text and "<h2>Pinned notes</h2>" in text


def test_names_are_one_line_and_fall_back_to_the_title():
    renderer = TargetRenderer(LIMITS)
    out = renderer.render("  {% if false %}x{% endif %}\n ", "", record(), Carry(), [])
    assert out.name == "Deal <7> & co" and out.warnings
    long = renderer.render("{{ 'y' * 900 }}", "", record(), Carry(), [])
    assert len(long.name) == 500 and long.name.endswith("…")
    assert renderer.render("a\n  b\tc", "", record(), Carry(), []).name == "a b c"


def test_a_failing_template_names_its_field():
    renderer = TargetRenderer(LIMITS)
    with pytest.raises(TemplateProblem, match="^description: .*not allowed"):
        renderer.render("ok", "{{ deal.__class__ }}", record(), Carry(), [])


def test_check_does_a_trial_render():
    renderer = TargetRenderer(LIMITS)
    assert renderer.check("{{ deal.title }}", "{{ person.name }} {% for n in notes %}{{ n.content }}{% endfor %}") == {}
    errors = renderer.check("{{ ''.__class__ }}", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
    assert "not allowed" in errors["name_template"]
    assert "runs more than 20000 loop iterations" in errors["description_template"]


def test_mapped_custom_fields_in_the_context_and_details():
    renderer = TargetRenderer(LIMITS)
    tier = Mapping("deal", "a" * 40, "Tier", "enum", {"3": "Gold"})
    seats = Mapping("deal", "b" * 40, "Seats", "double")
    rec = record(custom_fields={"a" * 40: {"type": "enum", "id": 3}, "b" * 40: 40})
    out = renderer.render("{{ fields.tier }} / {{ fields.seats }}", "", rec, Carry(), [tier, seats])
    assert out.name == "Gold / 40"
    assert "<strong>Tier:</strong> Gold" in out.html_notes and "<strong>Seats:</strong> 40" in out.html_notes


def test_sample_record_renders_every_preset_the_connectors_ship():
    from hub import connectors
    renderer = TargetRenderer(LIMITS)
    presets = [p for c in connectors.connectors() for p in c.presets]
    for preset in presets:
        for step in preset.rule.get("steps") or []:
            templates = step.get("templates") or {}
            slots = {slot: (slot in ("notes", "description"), text) for slot, text in templates.items()}
            assert renderer.check_templates(slots) == {}, preset.key
    assert sample_record().title == "Sample deal"


SECTIONS = {"value": "Value:", "contacts": "Contact:", "notes": "Pinned notes"}


@pytest.mark.parametrize("toggle", ["value", "contacts", "notes", "attachments"])
def test_each_data_toggle_alone_carries_only_its_data(toggle):
    carry = Carry(**{k: k == toggle for k in ("value", "contacts", "notes", "attachments")})
    renderer = TargetRenderer(LIMITS)
    out = renderer.render("{{ deal.title }}", "{{ files|join(', ') }}", record(), carry, [])
    assert "<strong>Deal:</strong>" in out.html_notes                   # the title is always there
    for name, marker in SECTIONS.items():
        assert (marker in out.html_notes) == (name == toggle), (name, out.html_notes)
    assert ("Organization:" in out.html_notes) == (toggle == "contacts")
    assert ("f.pdf" in out.html_notes) == (toggle == "attachments")      # file names offered to templates


@pytest.mark.parametrize("source, expected", [
    ("Won by {{ deal.owner }}", "Won by "),
    ("Won by {{ deal.owner | default('nobody', true) }}", "Won by nobody"),
    ("Won by {{ deal.owner | default('nobody') }}", "Won by nobody"),
    ("{{ 'Won by ' ~ deal.owner }}", "Won by "),
    ("{{ 'Won by %s' % deal.owner }}", "Won by "),
    ("{{ 'Won by {}'.format(deal.owner) }}", "Won by "),
    ("{{ [deal.title, deal.owner] | join('/') }}", "T/"),
    ("{{ deal.get('owner') }}|{{ none }}|{{ notes[0].added }}", "||"),
    ("{% if deal.owner is none %}nobody{% endif %}", "nobody"),
])
def test_a_field_without_value_renders_empty_or_the_placeholder_never_none(source, expected):
    context = {"deal": {"title": "T", "owner": None}, "notes": [{"content": "n", "added": None}]}
    for renderer in (Renderer(LIMITS, html=False), Renderer(LIMITS, html=True)):
        assert renderer.render(source, context) == expected


def test_a_legacy_webhook_without_owner_is_not_won_by_none():
    renderer = TargetRenderer(LIMITS)
    legacy = record()
    legacy.owner = None
    out = renderer.render("{{ deal.title }} won by {{ deal.owner }}", "Owner: {{ deal.owner | default('nobody', true) }}",
                          legacy, Carry(), [])
    assert out.name == "Deal <7> & co won by"
    assert "Owner: nobody" in out.html_notes and "None" not in out.html_notes


def test_large_record_data_is_usable_when_the_template_makes_only_small_values():
    notes = [{"content": f"{i:03} " + "n" * 1000} for i in range(500)]     # 500,000 characters of data
    context = {"notes": notes}
    plain = Renderer(LIMITS, html=False)                                      # made values: at most 20,000
    source = ("{{ notes|length }} {{ notes|map(attribute='content')|select|list|length }} "
              "{% for n in notes|sort(attribute='content', reverse=true) %}{% if loop.index <= 2 %}"
              "{{ n.content[:3] }};{% endif %}{% endfor %}")
    assert plain.render(source, context) == "500 500 499;498;"
    with pytest.raises(TemplateProblem, match="the printed value would be larger than the limit of 20000"):
        plain.render("{{ notes }}", context)
    with pytest.raises(TemplateProblem, match="the input of the filter 'tojson' would be larger"):
        plain.render("{{ notes|tojson }}", context)
