"""Strict JSON for JOSE headers and claims sets.

RFC 7515/7519 require UTF-8 JSON objects; RFC 8725 §3.10 asks for duplicate
member names to be refused. Python's ``json`` module alone accepts duplicate
names (the last one wins), ``NaN``/``Infinity``, lone surrogates, numbers that
overflow to infinity and nesting as deep as the interpreter allows. This module
closes each of those doors and bounds the size before parsing starts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from jwtward.errors import DecodeError

__all__ = ["DEFAULT_MAX_DEPTH", "dumps", "is_numeric_date", "loads_object"]

DEFAULT_MAX_DEPTH = 16


def _refuse_constant(name: str) -> Any:
    raise DecodeError(f"JSON constant {name} is not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise DecodeError("JSON number out of range")
    return value


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise DecodeError("JSON object has duplicate member names")
    return obj


_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_object,
    parse_constant=_refuse_constant,
    parse_float=_finite_float,
)


def _check_tree(value: Any, max_depth: int) -> None:
    """Walk the parsed value: bounded depth, and strings that are real UTF-8."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > max_depth:
                raise DecodeError("JSON nesting too deep")
            for name, member in node.items():
                _check_text(name)
                stack.append((member, depth + 1))
        elif isinstance(node, list):
            if depth > max_depth:
                raise DecodeError("JSON nesting too deep")
            stack.extend((member, depth + 1) for member in node)
        elif isinstance(node, str):
            _check_text(node)


def _check_text(text: str) -> None:
    # A \\ud800-style escape yields a lone surrogate: not valid Unicode text.
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise DecodeError("JSON string holds a lone surrogate") from None


def loads_object(
    data: bytes | str, *, max_size: int = 65536, max_depth: int = DEFAULT_MAX_DEPTH
) -> dict[str, Any]:
    """Parse ``data`` as one strict JSON object.

    Raises :class:`~jwtward.errors.DecodeError` for anything but a UTF-8 JSON
    object within ``max_size`` bytes (characters, for ``str`` input) and
    ``max_depth`` levels, with unique member names, finite numbers and no lone
    surrogates.
    """
    if len(data) > max_size:
        raise DecodeError("JSON text is too large")
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("JSON text is not valid UTF-8") from None
    else:
        text = data
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise DecodeError("JSON text holds a lone surrogate") from None
    if text[:1] != "{":
        # Objects only; this also refuses a UTF-8 BOM and leading whitespace.
        raise DecodeError("JSON text is not an object")
    try:
        value, end = _DECODER.raw_decode(text)
    except DecodeError:
        raise
    except RecursionError:
        raise DecodeError("JSON nesting too deep") from None
    except (ValueError, TypeError):
        # json.JSONDecodeError, or int() past sys.get_int_max_str_digits().
        raise DecodeError("invalid JSON text") from None
    if end != len(text):
        # Nothing may follow the object, not even whitespace: one byte string,
        # one parse, as no whitespace is allowed before it either.
        raise DecodeError("JSON text has data after the object")
    if not isinstance(value, dict):  # pragma: no cover - guaranteed by the first character
        raise DecodeError("JSON text is not an object")
    # The walk is needed only when the text could hide a lone surrogate (an
    # escape) or nest deeper than allowed (more brackets than levels).
    if "\\u" in text or text.count("{") + text.count("[") > max_depth:
        _check_tree(value, max_depth)
    return value


_SCALARS = frozenset({str, int, float, bool, type(None)})
# NumericDates beyond this are not dates (2**53 seconds is 285 million years)
# and would overflow float arithmetic.
MAX_NUMERIC_DATE = 2**53


def _check_names(value: Any) -> None:
    """Refuse non-str member names, which ``json.dumps`` would silently rename
    (``1`` and ``"1"`` would both become ``"1"``: a duplicate name)."""
    stack = [value]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind in _SCALARS:
            continue
        if kind is dict or isinstance(node, Mapping):
            for name, member in node.items():
                if type(name) is not str and not isinstance(name, str):
                    raise DecodeError("JSON member names must be strings")
                if type(member) not in _SCALARS:
                    stack.append(member)
        elif isinstance(node, list | tuple):
            stack.extend(node)


def dumps(value: Mapping[str, Any]) -> bytes:
    """Serialize compactly as UTF-8, refusing values JSON cannot represent."""
    try:
        # json.dumps first: it refuses cycles, which would trap the name walk.
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise DecodeError(f"value cannot be serialized as JSON: {type(exc).__name__}") from None
    _check_names(value)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise DecodeError("value holds a lone surrogate") from None


def is_numeric_date(value: object) -> bool:
    """True for a JSON number usable as a NumericDate: never a bool, never NaN,
    never beyond ±2**53 seconds."""
    if type(value) is int or type(value) is float:
        return -MAX_NUMERIC_DATE <= value <= MAX_NUMERIC_DATE
    return False
