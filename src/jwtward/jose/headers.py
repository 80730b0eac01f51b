"""The protected header of a compact JWS or JWE, parsed and policed once.

Refused here for every token (invariants 2, 3, 5): headers that would carry
or locate a key (``jku``, ``x5u``, ``jwk``, ``x5c``), ``crit`` (jwtward
understands no extension), RFC 7797 ``b64``, ``zip`` (compression oracles
and bombs), an ``alg`` outside the registry (``none`` in every spelling
included), and a ``kid`` that is not a short printable string.

Parsed headers are cached by their encoded form: a service sees the same few
headers over and over, and the cached value is immutable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from jwtward.codecs import b64decode, loads_object
from jwtward.errors import DecodeError, InvalidHeader, InvalidKey, MalformedToken
from jwtward.jose.algorithms import Algorithm, algorithm, describe
from jwtward.jose.keys import check_kid

__all__ = ["FORBIDDEN_HEADERS", "ProtectedHeader", "parse_protected_header"]

MAX_HEADER_BYTES = 4096
MAX_HEADER_DEPTH = 4

FORBIDDEN_HEADERS: Mapping[str, str] = MappingProxyType(
    {
        "jku": "keys are never fetched from a URL the token names",
        "x5u": "keys are never fetched from a URL the token names",
        "jwk": "keys are never taken from the token itself",
        "x5c": "keys are never taken from the token itself",
        "crit": "no critical header extension is understood",
        "b64": "unencoded payloads (RFC 7797) are not supported",
        "zip": "compressed tokens are refused",
    }
)
_STRING_MEMBERS = ("typ", "cty", "enc")


@dataclass(frozen=True, slots=True)
class ProtectedHeader:
    """A policed protected header: the algorithm entry and the members as parsed."""

    alg: Algorithm
    kid: str | None
    typ: str | None
    enc: str | None
    params: Mapping[str, Any]


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({name: _freeze(member) for name, member in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(member) for member in value)
    return value


@lru_cache(maxsize=1024)
def parse_protected_header(segment: str) -> ProtectedHeader:
    """Decode and police the first segment of a compact token."""
    if len(segment) > MAX_HEADER_BYTES * 4 // 3 + 4:
        raise MalformedToken("protected header is too large")
    try:
        params = loads_object(
            b64decode(segment), max_size=MAX_HEADER_BYTES, max_depth=MAX_HEADER_DEPTH
        )
    except DecodeError as exc:
        raise MalformedToken(f"protected header: {exc}") from None
    for name, reason in FORBIDDEN_HEADERS.items():
        if name in params:
            raise InvalidHeader(f"header {name!r} is refused: {reason}")
    if "alg" not in params:
        raise InvalidHeader("header has no 'alg'")
    try:
        alg = algorithm(params["alg"])
    except InvalidKey as exc:
        raise InvalidHeader(str(exc)) from None
    kid = params.get("kid")
    if kid is not None:
        try:
            check_kid(kid)
        except InvalidKey as exc:
            raise InvalidHeader(f"header 'kid': {exc}") from None
    for name in _STRING_MEMBERS:
        if name in params and not isinstance(params[name], str):
            raise InvalidHeader(f"header {name!r} must be a string, got {describe(params[name])}")
    return ProtectedHeader(
        alg=alg,
        kid=kid,
        typ=params.get("typ"),
        enc=params.get("enc"),
        params=_freeze(params),
    )
