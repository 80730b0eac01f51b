"""Behaviour of the strict codecs (``jwtward.codecs``): base64url and JSON.

Every layer above trusts these two functions to accept exactly one spelling of
each value and to refuse everything JSON or base64url cannot mean, so each rule
is pinned here at its boundary: the last accepted input and the first refused.
"""

from __future__ import annotations

import base64
import itertools
import math
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jwtward.codecs import b64decode, b64encode, dumps, is_numeric_date, loads_object
from jwtward.codecs.strict_json import DEFAULT_MAX_DEPTH
from jwtward.errors import DecodeError, JWTWardError

URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# -- base64url -----------------------------------------------------------------


def lenient_decode(text: str) -> bytes:
    """The common lenient idiom: pad blindly, skip whitespace, allow both alphabets."""
    return base64.urlsafe_b64decode(text + "==")


def lenient_variants(canonical: str) -> Iterator[str]:
    """Other spellings a lenient decoder maps to the same bytes as ``canonical``."""
    remainder = len(canonical) % 4
    if remainder:
        yield canonical + "=" * (4 - remainder)  # RFC 4648 padding
        yield canonical + "="  # partial or excess padding
    yield canonical + "===="
    # Non-zero unused trailing bits: 4 unused bits after 2 chars, 2 after 3.
    unused = {2: 0x0F, 3: 0x03}.get(remainder)
    if unused is not None:
        index = URL_ALPHABET.index(canonical[-1])
        for low in range(1, unused + 1):
            yield canonical[:-1] + URL_ALPHABET[(index & ~unused) | low]
    standard = canonical.replace("-", "+").replace("_", "/")
    if standard != canonical:
        yield standard
    for blank in (" ", "\n", "\r\n", "\t"):
        yield blank + canonical
        yield canonical + blank
        middle = len(canonical) // 2
        yield canonical[:middle] + blank + canonical[middle:]


@given(st.binary(max_size=200))
def test_b64_round_trip(data: bytes) -> None:
    """Encoding then decoding gives back the bytes; the text is unpadded URL-safe."""
    text = b64encode(data)
    assert set(text) <= set(URL_ALPHABET)
    assert len(text) == math.ceil(len(data) * 4 / 3)
    assert b64decode(text) == data
    assert b64decode(text.encode("ascii")) == data
    assert b64decode(bytearray(text, "ascii")) == data
    assert b64decode(memoryview(text.encode("ascii"))) == data


@given(st.binary(max_size=64))
def test_b64_refuses_every_lenient_alias(data: bytes) -> None:
    """Any other string a lenient decoder reads as the same bytes is refused."""
    canonical = b64encode(data)
    variants = [v for v in dict.fromkeys(lenient_variants(canonical)) if v != canonical]
    # Never vacuous: blanks give 12 aliases (4 for b""), "====" one more.
    assert len(variants) >= (13 if data else 5)
    for text in variants:
        assert lenient_decode(text) == data, text  # really an alias of the same bytes
        with pytest.raises(DecodeError):
            b64decode(text)
        with pytest.raises(DecodeError):
            b64decode(text.encode("ascii"))


@given(st.text(alphabet=URL_ALPHABET + "=+/ \n", max_size=40))
def test_b64_accepted_text_is_the_canonical_encoding(text: str) -> None:
    """Whatever b64decode accepts is exactly what b64encode would have written."""
    try:
        data = b64decode(text)
    except DecodeError:
        return
    assert b64encode(data) == text


@pytest.mark.parametrize(("length", "n_bytes"), [(1, None), (2, 1), (3, 2)])
def test_b64_short_strings_exhaustively_form_a_bijection(length: int, n_bytes: int | None) -> None:
    """Of all strings of one length, exactly one per byte string is accepted."""
    accepted: dict[bytes, str] = {}
    for chars in itertools.product(URL_ALPHABET, repeat=length):
        text = "".join(chars)
        try:
            data = b64decode(text)
        except DecodeError:
            continue
        assert data not in accepted, (text, accepted.get(data))
        assert b64encode(data) == text
        accepted[data] = text
    assert len(accepted) == (0 if n_bytes is None else 256**n_bytes)


@pytest.mark.parametrize(
    "text",
    [
        "Q",  # impossible length
        "QUJDR",
        "QQ==",
        "QQ=",
        "=",
        "QR",  # non-zero unused bits
        "QUK",
        "+w",  # standard alphabet
        "/w",
        "QU JD",
        "QUJD\n",
        "QUJD.",
        "QU%4",
        "QUJ\x00",
        "QUJé",
        "\uff31\uff35\uff2a\uff24",  # full-width QUJD: str.isalnum() would say yes
        "\u0663\u0663",  # Arabic-Indic digits
    ],
)
def test_b64_refuses_non_canonical_text(text: str) -> None:
    """Padding, other alphabets, blanks and impossible lengths are all refused."""
    with pytest.raises(DecodeError):
        b64decode(text)


@pytest.mark.parametrize("value", [b"QU\xffD", b"\xc3\xa9\xc3\xa9", 1234, None, ["QUJD"]])
def test_b64_refuses_non_ascii_bytes_and_other_types(value: Any) -> None:
    """Only ASCII str or bytes-like input is base64url text; the error is typed."""
    with pytest.raises(DecodeError):
        b64decode(value)


def test_decode_error_is_a_jwtward_error() -> None:
    """The codec error belongs to the one error tree of the library."""
    assert issubclass(DecodeError, JWTWardError)


# -- loads_object: what a JSON object is ----------------------------------------


def obj(text: str, **kwargs: Any) -> dict[str, Any]:
    return loads_object(text, **kwargs)


@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_loads_object_parses_an_object(as_bytes: bool) -> None:
    """The normal case: a UTF-8 object with nested values comes back as dicts."""
    text = '{"a":1,"b":[true,null,"é",1.5],"c":{"d":"x"}}'
    data: str | bytes = text.encode("utf-8") if as_bytes else text
    assert loads_object(data) == {"a": 1, "b": [True, None, "é", 1.5], "c": {"d": "x"}}


@pytest.mark.parametrize(
    "text",
    ["[]", "[{}]", "1", '"a"', "null", "true", "", " {}", "\n{}", "\ufeff{}", "{"],
)
def test_loads_object_accepts_objects_only(text: str) -> None:
    """Arrays, scalars, empty text, leading blanks or a BOM are not an object."""
    with pytest.raises(DecodeError):
        loads_object(text)
    with pytest.raises(DecodeError):
        loads_object(text.encode("utf-8"))


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":"\xff"}',
        b'{"a":"\xc3"}',  # truncated sequence
        b'{"a":"\xc0\xaf"}',  # overlong "/"
        b'{"a":"\xed\xa0\x80"}',  # a surrogate encoded as UTF-8
        b"\xef\xbb\xbf{}",  # UTF-8 BOM
        "{}".encode("utf-16"),
        "{}".encode("utf-16-le"),
        "{}".encode("utf-32"),
    ],
)
def test_loads_object_requires_utf8(data: bytes) -> None:
    """Bytes must be UTF-8 without BOM; other encodings are refused, never guessed."""
    with pytest.raises(DecodeError):
        loads_object(data)


def test_loads_object_decodes_utf8_text() -> None:
    """Non-ASCII UTF-8 (and escaped surrogate pairs) decode to the right characters."""
    assert loads_object('{"é":"😀"}'.encode()) == {"é": "😀"}
    assert loads_object(b'{"a":"\\ud83d\\ude00"}') == {"a": "😀"}


@pytest.mark.parametrize("max_size", [2, 10, 100, 4096])
def test_loads_object_max_size_boundary(max_size: int) -> None:
    """An object of exactly max_size bytes parses; one byte more is refused."""
    filler = max_size - len('{"a":""}')
    at_limit = '{"a":"' + "x" * filler + '"}' if filler >= 0 else "{" + " " * (max_size - 2) + "}"
    assert len(at_limit) == max_size
    for data in (at_limit, at_limit.encode("ascii")):
        loads_object(data, max_size=max_size)
    past = at_limit[:-1] + " }"
    for data in (past, past.encode("ascii")):
        with pytest.raises(DecodeError):
            loads_object(data, max_size=max_size)


def test_loads_object_default_max_size() -> None:
    """The default bound is 64 KiB."""
    at_limit = '{"a":"' + "x" * (65536 - 8) + '"}'
    assert len(at_limit) == 65536
    assert len(loads_object(at_limit)["a"]) == 65536 - 8
    with pytest.raises(DecodeError):
        loads_object(at_limit[:-1] + " }")


def nested_objects(depth: int) -> str:
    """``depth`` levels of objects: ``{"a":{"a":{}}}`` is depth 3."""
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


def nested_arrays(depth: int) -> str:
    """One object holding ``depth - 1`` levels of arrays, with a scalar at the bottom."""
    return '{"a":' + "[" * (depth - 1) + "1" + "]" * (depth - 1) + "}"


@pytest.mark.parametrize("max_depth", [1, 2, 4, DEFAULT_MAX_DEPTH, 40])
@pytest.mark.parametrize("shape", [nested_objects, nested_arrays], ids=["objects", "arrays"])
def test_loads_object_max_depth_boundary(max_depth: int, shape: Any) -> None:
    """Nesting of exactly max_depth containers parses; one level more is refused."""
    assert isinstance(loads_object(shape(max_depth), max_depth=max_depth), dict)
    with pytest.raises(DecodeError):
        loads_object(shape(max_depth + 1), max_depth=max_depth)


def test_loads_object_default_max_depth() -> None:
    """Without max_depth the default bound (16) applies; scalars add no level."""
    assert DEFAULT_MAX_DEPTH == 16
    loads_object(nested_objects(16))
    loads_object('{"a":' + nested_arrays(15) + "}")
    with pytest.raises(DecodeError):
        loads_object(nested_objects(17))
    with pytest.raises(DecodeError):
        loads_object('{"a":[{"b":' + nested_arrays(14) + "}]}")


def test_loads_object_refuses_nesting_past_the_interpreter_limit() -> None:
    """Nesting deep enough to exhaust the parser's recursion is a DecodeError."""
    depth = 200_000
    text = '{"a":' + "[" * depth + "]" * depth + "}"
    with pytest.raises(DecodeError):
        loads_object(text, max_size=len(text), max_depth=depth + 10)


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1,"a":1}',
        '{"a":1,"a":2}',
        '{"a":1,"\\u0061":2}',  # the same name, once escaped
        '{"x":{"b":1,"b":2}}',
        '{"x":[1,{"b":1,"c":0,"b":2}]}',
        '{"x":{"y":{"z":[[{"k":null,"k":null}]]}}}',
    ],
)
def test_loads_object_refuses_duplicate_names_at_any_depth(text: str) -> None:
    """Duplicate member names are refused wherever they are (RFC 8725 §3.10)."""
    with pytest.raises(DecodeError):
        loads_object(text)


def test_loads_object_allows_the_same_name_in_sibling_objects() -> None:
    """Uniqueness is per object: the same name in two objects is fine."""
    assert loads_object('{"a":{"k":1},"b":{"k":2},"k":3}') == {"a": {"k": 1}, "b": {"k": 2}, "k": 3}


@pytest.mark.parametrize(
    "text",
    [
        '{"a":NaN}',
        '{"a":Infinity}',
        '{"a":-Infinity}',
        '{"a":[1,{"b":NaN}]}',
        '{"a":1e400}',
        '{"a":-1e400}',
        '{"a":1.5e999999}',
        '{"a":[0,' + "9" * 400 + ".0]}",
    ],
)
def test_loads_object_refuses_non_finite_numbers(text: str) -> None:
    """NaN, the infinities and numbers overflowing to infinity are refused."""
    with pytest.raises(DecodeError):
        loads_object(text)


def test_loads_object_keeps_finite_numbers() -> None:
    """Large but finite floats and ints parse to their values."""
    value = loads_object('{"f":1.7976931348623157e308,"i":-12345678901234567890}')
    assert value == {"f": 1.7976931348623157e308, "i": -12345678901234567890}


@pytest.fixture
def int_digit_limit() -> Iterator[int]:
    """Python's int string limit, pinned to its default (4300) for the test."""
    previous = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(4300)
    try:
        yield 4300
    finally:
        sys.set_int_max_str_digits(previous)


def test_loads_object_integer_digit_limit(int_digit_limit: int) -> None:
    """An integer at the interpreter's digit limit parses; one digit more is refused."""
    at_limit = "9" * int_digit_limit
    assert loads_object('{"n":' + at_limit + "}")["n"] == int(at_limit)
    for text in ('{"n":' + at_limit + "9}", '{"n":[-1' + at_limit + "]}"):
        with pytest.raises(DecodeError):
            loads_object(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"\\ud800":1}',
        '{"\\udfff":1}',
        '{"a":"\\ud800"}',
        '{"a":"x\\udc00y"}',
        '{"a":"\\ude00\\ud83d"}',  # a pair in the wrong order
        '{"a":["ok","\\ud800"]}',
        '{"a":{"\\udbff":0}}',
        '{"a":[{"b":{"c":"\\ud83d"}}]}',
    ],
)
def test_loads_object_refuses_lone_surrogates(text: str) -> None:
    """Escaped lone surrogates, in names or values at any depth, are not text."""
    with pytest.raises(DecodeError):
        loads_object(text)
    with pytest.raises(DecodeError):
        loads_object(text.encode("ascii"))


@pytest.mark.parametrize("text", ['{"\ud800":1}', '{"a":"\udfff"}', '{"a":["\ud83d"]}'])
def test_loads_object_refuses_raw_lone_surrogates_in_str_input(text: str) -> None:
    """A str argument holding a surrogate code point is refused like the escaped form."""
    with pytest.raises(DecodeError):
        loads_object(text)


@pytest.mark.parametrize(
    "text",
    ["{}x", "{}{}", '{"a":1}}', "{} []", "{}\x00", '{"a":1},', '{"a":1} "b"', "{}//"],
)
def test_loads_object_refuses_trailing_garbage(text: str) -> None:
    """Anything after the object (other than JSON whitespace) is refused."""
    with pytest.raises(DecodeError):
        loads_object(text)


@pytest.mark.parametrize(
    "text",
    ['{"a":"\n"}', '{"a":"\x01"}', "{'a':1}", '{"a":1,}', '{"a":01}', '{"a":.5}', "{a:1}"],
)
def test_loads_object_refuses_invalid_json(text: str) -> None:
    """Raw control characters, single quotes, trailing commas, leading zeros: not JSON."""
    with pytest.raises(DecodeError):
        loads_object(text)


# -- dumps ---------------------------------------------------------------------


def test_dumps_is_compact_utf8() -> None:
    """No blanks between tokens and non-ASCII written as UTF-8, not escaped."""
    assert dumps({"a": [1, 2], "é": "😀"}) == '{"a":[1,2],"é":"😀"}'.encode()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.text(), json_values, max_size=5))
def test_dumps_round_trips_through_loads_object(value: dict[str, Any]) -> None:
    """Whatever dumps writes, loads_object reads back as the same value."""
    assert loads_object(dumps(value), max_size=1 << 20) == value


@pytest.mark.parametrize(
    "value",
    [
        {"a": object()},
        {"a": b"bytes"},
        {"a": {1, 2}},
        {"a": Decimal("1.5")},
        {"a": float("nan")},
        {"a": float("inf")},
        {"a": [float("-inf")]},
        {"a": "\ud800"},
        {"\udfff": 1},
        {"a": {"b": ["\ud83d"]}},
    ],
    ids=[
        "object",
        "bytes",
        "set",
        "decimal",
        "nan",
        "inf",
        "-inf",
        "surrogate-value",
        "surrogate-name",
        "nested-surrogate",
    ],
)
def test_dumps_refuses_what_json_cannot_represent(value: dict[str, Any]) -> None:
    """Values with no JSON form raise DecodeError, never TypeError or ValueError."""
    with pytest.raises(DecodeError):
        dumps(value)


def test_dumps_refuses_circular_values() -> None:
    """A value that contains itself is refused with the typed error."""
    value: dict[str, Any] = {}
    value["self"] = value
    with pytest.raises(DecodeError):
        dumps(value)


@pytest.mark.parametrize(
    "value",
    [{1: "a"}, {None: "a"}, {True: "a"}, {1.5: "a"}, {1: "a", "1": "b"}, {"true": 1, True: 2}],
    ids=["int", "none", "bool", "float", "int-collides", "bool-collides"],
)
def test_dumps_refuses_member_names_that_are_not_strings(value: dict[Any, Any]) -> None:
    """JSON names are strings: other keys are refused rather than silently renamed.

    Silent renaming breaks the round trip, and when two keys collide ({1, "1"})
    it writes an object with duplicate names that loads_object itself refuses.
    """
    with pytest.raises(DecodeError):
        dumps(value)


# -- is_numeric_date -------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [0, 1, -1, 1_700_000_000, 2**53, -(2**53), 0.0, 1.5, -2.25, 2.0**53]
)
def test_is_numeric_date_accepts_finite_numbers(value: float) -> None:
    """Ints and finite floats up to ±2**53 seconds are NumericDates (RFC 7519 §2)."""
    assert is_numeric_date(value) is True


@pytest.mark.parametrize("value", [2**53 + 1, -(2**53) - 1, 2**70, 10**400, 1e300, -1e300])
def test_is_numeric_date_refuses_dates_beyond_2_to_53(value: float) -> None:
    """285 million years is no date, and larger values overflow float arithmetic
    (``10**400 + 0.5`` raises OverflowError) in the claim checks."""
    assert is_numeric_date(value) is False


@pytest.mark.parametrize(
    "value",
    [True, False, float("nan"), float("inf"), float("-inf"), "1", None, [1], Decimal(1)],
)
def test_is_numeric_date_refuses_bools_non_finite_and_non_numbers(value: object) -> None:
    """Booleans are not numbers here (``exp: true``), nor NaN, infinity or text."""
    assert is_numeric_date(value) is False


def test_is_numeric_date_on_parsed_json() -> None:
    """The check agrees with what loads_object yields for JSON numbers and literals."""
    parsed = loads_object('{"a":1,"b":1.5,"c":true,"d":"1","e":null}')
    assert [name for name, v in parsed.items() if is_numeric_date(v)] == ["a", "b"]
