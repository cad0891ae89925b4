"""The in-process path (direct.py) gives exactly what the render process gives, takes only
templates that print data, and never starts a render process for them."""
from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from markupsafe import Markup

from hub.mappings import Carry, Limits, TargetRenderer, sample_record
from hub.mappings import direct, pool
from hub.mappings.pool import Job

SMALL = Limits(output_max_chars=40)            # printed values over 160 and outputs over 40 are refused
NAMES = ("deal", "person", "org", "x", "missing")
KEYS = ("title", "a", "Ünï", "k 1")


def jail(limits: Limits, context: dict, jobs: list[Job]) -> list[tuple]:
    """The render process's answer, whatever the template (pool.render would take the fast path)."""
    return [(o.text, o.problem) for o in pool.pool_for(limits.memory_mb).run(limits, context, jobs)]


def fast(limits: Limits, context: dict, jobs: list[Job]) -> list[tuple] | None:
    got = direct.render(limits, context, jobs)
    return None if got is None else [(text, problem) for text, problem, _ in got]


text = st.text(st.sampled_from("ab <>&'\"\n\t\\é€😀\u200b{}%"), max_size=12)
leaves = st.one_of(text, st.integers(-2 ** 70, 2 ** 70), st.booleans(), st.none(),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=200))
values = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
                      max_leaves=12)
records = st.recursive(st.dictionaries(st.sampled_from(KEYS), values, min_size=2, max_size=4),
                       lambda inner: st.dictionaries(st.sampled_from(KEYS), inner | values, min_size=2, max_size=4),
                       max_leaves=4)
# "missing" is never there; the others mostly hold dicts whose keys the templates ask for
contexts = st.fixed_dictionaries({}, optional={name: records | values for name in NAMES[:-1]})
SETTINGS = dict(derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def expressions(draw) -> str:
    expr = draw(st.sampled_from(NAMES))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(KEYS))
        if key.isidentifier() and draw(st.booleans()):
            expr += f".{key}"
        else:
            expr += draw(st.sampled_from([f"[{key!r}]", f'["{key}"]']))
    left, right = draw(st.sampled_from([("{{ ", " }}"), ("{{", "}}"), ("{{- ", " }}"), ("{{ ", " -}}"), ("{{+ ", " }}")]))
    return left + expr + right


literals = st.text(st.sampled_from("ab <>&'\"\n \t\r\né}%#"), max_size=8).map(lambda s: s.replace("\r", "\r\n"))
comment = st.sampled_from(["{# note #}", "  {# note #}\n", "{% raw %}{{ deal.title|upper }}{% endraw %}"])
templates = st.lists(st.one_of(expressions(), literals, comment), max_size=6).map("".join)


@settings(max_examples=100, **SETTINGS)
@given(st.lists(templates, min_size=1, max_size=3), contexts, st.sampled_from([Limits(), SMALL]))
def test_simple_templates_render_exactly_as_in_the_render_process(sources, context, limits):
    assert all(direct.plan(s) is not None for s in sources), sources
    jobs = [Job(html, s) for s in sources for html in (False, True)]
    got = fast(limits, context, jobs)
    if got is not None:         # None: a value this path leaves to the render process (checked below)
        assert got == jail(limits, context, jobs)


def test_the_property_test_data_mostly_takes_the_fast_path():
    """The comparison above means something only if the fast path answers most examples."""
    taken = []

    @settings(max_examples=50, **SETTINGS)
    @given(templates, contexts)
    def probe(source, context):
        taken.append(fast(Limits(), context, [Job(True, source)]) is not None)

    probe()
    assert sum(taken) >= 0.8 * len(taken)


CONTEXT = {"deal": {"id": 7, "title": "R&D <x> 'q' \"d\"", "value": 1.5, "none": None, "won": True,
                    "nested": {"a": None, "b": [1, None, "<i>"]}, "items": "key named like a method"},
           "person": None, "org": {"name": "Ørg"}}


@pytest.mark.parametrize("source", [
    "bench {{ deal.id }}", "{{ deal.title }}: {{ deal.value }}", "{{ deal.none }}|{{ deal.none.deeper }}",
    "{{ deal.nested }} {{ deal['nested']['b'] }}", "{{ missing.a.b }}{{ person.name }}", "{{ deal.won }}\n",
    "  {{- deal.title -}}  \n  {# comment #}\n", "{{ org['name'] }}", "no output at all",
    "{{ deal.title }}" * 30,                    # the output limit, with SMALL
])
@pytest.mark.parametrize("limits", [Limits(), SMALL], ids=["default", "small"])
def test_typical_templates_match_the_render_process(source, limits):
    jobs = [Job(False, source), Job(True, source)]
    got = fast(limits, CONTEXT, jobs)
    assert got is not None and got == jail(limits, CONTEXT, jobs)


def test_limits_are_refused_with_the_render_process_messages():
    context = {"deal": {"title": "x" * 200}}
    assert fast(SMALL, context, [Job(False, "{{ deal.title }}")]) == \
        [(None, "the printed value would be larger than the limit of 160 characters")]
    assert fast(SMALL, {"deal": {"title": "x" * 30}}, [Job(False, "{{ deal.title }}{{ deal.title }}")]) == \
        [(None, "the output is longer than the limit of 40 characters")]
    # at the limits exactly: both pass, one character more is refused, as in the render process
    for size in (20, 21):
        jobs = [Job(html, "{{ deal.title }}" + "y" * 20) for html in (False, True)]
        assert fast(SMALL, {"deal": {"title": "x" * size}}, jobs) == jail(SMALL, {"deal": {"title": "x" * size}}, jobs)
    for size in (160, 161):
        jobs = [Job(html, "{{ deal.title }}") for html in (False, True)]
        limits = Limits(output_max_chars=1000)
        context = {"deal": {"title": "<" * size}}       # the size check counts the text before escaping
        assert fast(SMALL, context, jobs) == jail(SMALL, context, jobs)
        assert fast(limits, {"deal": {"title": "x" * (4000 + size - 160)}}, jobs) == \
            jail(limits, {"deal": {"title": "x" * (4000 + size - 160)}}, jobs)


@pytest.mark.parametrize("source", [
    "{{ deal.title|upper }}", "{{ deal.title ~ '!' }}", "{% for n in notes %}{{ n }}{% endfor %}", "{{ 2**100000 }}",
    "{{ deal.title.upper() }}", "{{ deal.value + 1 }}", "{{ 'literal' }}", "{{ 1 }}", "{{ none }}", "{{ deal.items }}",
    "{{ deal['keys'] }}", "{{ deal.__class__ }}", "{{ deal._private }}", "{{ deal[0] }}", "{{ deal[key] }}",
    "{{ range }}", "{{ self }}", "{{ loop }}", "{% if deal %}x{% endif %}", "{% set a = 1 %}{{ a }}",
    "{{ deal.title if deal }}", "{{ [deal] }}", "{{ deal.title }", "{{ deal['a':'b'] }}",
    "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "{{ deal" + ".a" * 6000 + " }}",    # parsing would recurse
], ids=range(26))
def test_templates_that_do_more_than_print_data_go_to_the_render_process(source):
    assert direct.plan(source) is None
    assert direct.render(Limits(), CONTEXT, [Job(False, "{{ deal.title }}"), Job(True, source)]) is None


@pytest.mark.parametrize("value", [2 ** 5000, Markup("<b>"), ("a", None), {"a": (1,)}, [[[[1]]]] * 1000,
                                   type("Custom", (), {"__str__": lambda self: "custom"})(), 1 + 2j])
def test_values_this_path_does_not_print_go_to_the_render_process(value):
    assert direct.render(Limits(), {"deal": {"v": value}}, [Job(True, "{{ deal.v }}")]) is None
    if not isinstance(value, (dict, list)):      # a look-up on anything but a dict: the sandbox's getattr
        assert direct.render(Limits(), {"deal": value}, [Job(True, "{{ deal.v }}")]) is None


def test_save_time_checks_and_long_templates_go_to_the_render_process():
    assert direct.render(Limits(), CONTEXT, [Job(False, "{{ deal.title }}", ("deal",))]) is None
    assert direct.render(Limits(template_max_chars=10), CONTEXT, [Job(False, "{{ deal.title }}")]) is None


def test_a_simple_batch_starts_no_render_process_and_others_do(monkeypatch):
    started = []

    class NoChild:
        def __init__(self, memory_mb: int):
            started.append(memory_mb)
            raise AssertionError("a render process was started")

    monkeypatch.setattr(pool, "_Child", NoChild)
    limits = Limits(memory_mb=47)           # a pool of its own: no idle process from other tests
    record = sample_record()
    rendered = TargetRenderer(limits).render("bench {{ deal.id }}", "{{ deal.title }}: {{ deal.value }}",
                                             record, Carry(), [])
    assert rendered.name == "bench 1" and "Sample deal: 1,000 EUR" in rendered.html_notes
    outcome = pool.render(limits, CONTEXT, [Job(True, "{{ deal.title }}")])[0]
    assert outcome.text == "R&amp;D &lt;x&gt; &#39;q&#39; &#34;d&#34;" and outcome.problem is None
    assert 0 <= outcome.cpu_seconds < 0.1 and outcome.peak_memory == outcome.baseline_memory == 0
    assert not started
    with pytest.raises(AssertionError, match="render process was started"):
        pool.render(limits, CONTEXT, [Job(False, "{{ deal.title }}"), Job(False, "{{ deal.title|upper }}")])
    assert started == [47]


def test_nan_and_signed_zero_print_as_python_prints_them():
    context = {"deal": {"a": math.nan, "b": -0.0, "c": math.inf, "d": [math.nan, -0.0]}}
    jobs = [Job(html, "{{ deal.a }} {{ deal.b }} {{ deal.c }} {{ deal.d }}") for html in (False, True)]
    assert fast(Limits(), context, jobs) == jail(Limits(), context, jobs) == [("nan -0.0 inf [nan, -0.0]", None)] * 2


def test_templates_with_other_tokens_are_not_even_parsed_in_the_hub(monkeypatch):
    """Parsing recurses (RecursionError, deep stacks in a hub thread); the lexer does not."""
    parsed = []
    env = direct._parser()
    monkeypatch.setattr(env, "parse", lambda source, *a, **k: parsed.append(source) or pytest.fail("parsed"))
    for source in ["{{ " + "(" * 3000 + "deal" + ")" * 3000 + " }} unique 1", "{{ deal|e }} unique 2",
                   "{% if x %}{% endif %} unique 3", "{{ 1 }} unique 4"]:
        assert direct.plan(source) is None
    assert not parsed
