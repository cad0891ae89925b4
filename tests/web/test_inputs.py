"""hub.inputs: the one JSON parser and number reader every route uses."""
from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings, strategies as st
from marshmallow import Schema, ValidationError

from hub import inputs
from hub.inputs import InputError, parse_json, to_int, to_number


def refused(raw) -> dict[str, str]:
    with pytest.raises(InputError) as exc:
        parse_json(raw)
    return exc.value.fields


@pytest.mark.parametrize("raw, field", [
    (json.dumps({"a": 1}).encode("utf-16"), "body"),
    (json.dumps({"a": 1}).encode("utf-16-be"), "body"),
    (json.dumps({"a": 1}).encode("utf-32"), "body"),
    (json.dumps({"a": 1}).encode("utf-8-sig"), "body"),
    ("\ufeff{}", "body"),
    (b'{"a": "\xc3"}', "body"),
    (b'{"a": 1e400}', "a"),
    (b'{"a": [1, -1e400]}', "a.1"),
    (b'{"a": {"b": NaN}}', "a.b"),
    (b'{"a": Infinity}', "a"),
    (b"-Infinity", "body"),
    (b'{"a": 9223372036854775808}', "a"),
    (b'{"a": -9223372036854775809}', "a"),
    (b'[' + b"9" * 5000 + b"]", "body"),
    (b'{"name": "\\ud800"}', "name"),
    (b'{"rule": {"conditions": [{"value": "x\\udfff"}]}}', "rule.conditions.0.value"),
    (b'{"\\udc00": 1}', "(key)"),
    (b'{"a": "\\u0000"}', "a"),
    (b"[" * 65 + b"]" * 65, "body"),
])
def test_refused_with_the_field_named(raw, field):
    assert field in refused(raw)


def test_what_is_fine_passes():
    assert parse_json(b'{"a": [1, 2.5, -9223372036854775808, "\\ud83d\\ude00", "\\u00e9", null, true]}') == \
        {"a": [1, 2.5, -2**63, "\U0001F600", "é", None, True]}
    assert parse_json(b"[" * 64 + b"]" * 64) is not None
    assert parse_json('{"s": "[[[[{{{{"}') == {"s": "[[[[{{{{"}        # brackets in strings do not count
    assert parse_json(b'{"s": "\\" [[[["}') == {"s": '" [[[['}


def test_deep_nesting_costs_one_flat_pass():
    """100,000 levels: refused before json.loads recurses (no RecursionError); CPU time, not wall."""
    for raw in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
                b'"' + b"[" * 100_000 + b'"'):
        start = time.process_time()
        try:
            parse_json(raw)
        except InputError as exc:
            assert exc.fields == {"body": "nested deeper than 64 levels"}
        assert time.process_time() - start < 2.0


@pytest.mark.parametrize("value", ["²", "١٢", "1e400", "inf", "nan", "-inf", "1.5", "", " ", "0x10", True, None,
                                   float("inf"), float("nan"), 1.5, [1], "9" * 21, 2**63])
def test_to_int_refuses(value):
    with pytest.raises(InputError) as exc:
        to_int(value, "limit")
    assert list(exc.value.fields) == ["limit"]


def test_to_int_and_to_number_take_plain_numbers():
    assert to_int(" 42 ", "x") == 42 and to_int(7.0, "x") == 7 and to_int("-3", "x") == -3
    with pytest.raises(InputError, match="between 1 and 5"):
        to_int("6", "x", low=1, high=5)
    assert to_number("1.5", "x") == 1.5 and to_number("2e3", "x") == 2000.0 and to_number(3, "x") == 3.0
    for bad in ("1e400", "inf", "nan", "²", "١.٥", True, float("nan"), 10**400, "1e99999"):
        with pytest.raises(InputError):
            to_number(bad, "x")


def test_marshmallow_fields_refuse_what_to_int_refuses():
    class S(Schema):
        n = inputs.Integer(low=0, high=100)
        f = inputs.Float(low=0, high=1)

    assert S().load({"n": "12", "f": "0.5"}) == {"n": 12, "f": 0.5}
    for data in ({"n": "١٢"}, {"n": "²"}, {"n": 1e300}, {"n": 101}, {"f": float("inf")}, {"f": "nan"}, {"f": 2}):
        with pytest.raises(ValidationError) as exc:
            S().load(data)
        assert set(exc.value.messages) == set(data)


_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
            | st.floats(allow_nan=True, allow_infinity=True) | st.text(alphabet=st.characters(codec=None), max_size=8)
            | st.sampled_from(["\x00", "\ud800", "a\udfffb", "NaN", "1e400", "\\u0000"]))
_DOCUMENTS = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=4) | st.sampled_from(["\x00", "\ud83d"]), inner,
                                            max_size=4), max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(_DOCUMENTS, st.booleans(), st.booleans())
def test_the_walk_is_skipped_only_where_it_would_refuse_nothing(value, ascii_only, as_bytes):
    """parse_json walks the value (check_value) only when its text may hold what the walk refuses;
    whatever the document, the answer (value, or the field refused) is the walk's."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    try:
        expected = ("ok", inputs.check_value(json.loads(text)))
    except InputError as exc:
        expected = ("refused", exc.fields)
    raw = text.encode("utf-8", "surrogatepass") if as_bytes else text
    try:
        got = ("ok", (parse_json(raw), None)[1])
    except InputError as exc:
        got = ("refused", exc.fields)
    if as_bytes and not ascii_only and any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        assert got[0] == "refused" and got[1] == {"body": got[1]["body"]}   # not UTF-8: the body is refused
    else:
        assert got == expected
