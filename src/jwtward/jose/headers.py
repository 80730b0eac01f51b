"""The protected header of a compact JWS or JWE, parsed and policed once.

Refused here for every token (invariants 2, 3, 5): headers that would carry
or locate a key (``jku``, ``x5u``, ``jwk``, ``x5c``), ``crit`` (jwtward
understands no extension), RFC 7797 ``b64``, ``zip`` (compression oracles
and bombs), an ``alg`` outside the registry (``none`` in every spelling
included), and a ``kid`` that is not a short printable string.

:class:`HeaderCache` keeps parsed headers by their encoded form: a service
sees the same few headers over and over, and the cached value is immutable.
The JWS layer fills its cache only once a signature made with a trusted key
covered the header, so forged tokens cannot fill it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from jwtward.codecs import b64decode, loads_object
from jwtward.errors import DecodeError, InvalidHeader, InvalidKey, MalformedToken
from jwtward.jose.algorithms import Algorithm, algorithm, describe
from jwtward.jose.key_checks import check_kid

__all__ = [
    "FORBIDDEN_HEADERS",
    "HeaderCache",
    "ProtectedHeader",
    "parse_protected_header",
]

MAX_HEADER_BYTES = 2048
MAX_HEADER_DEPTH = 4
MAX_HEADER_MEMBERS = 32

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


def parse_protected_header(segment: str | bytes) -> ProtectedHeader:
    """Decode and police the first segment of a compact token."""
    if len(segment) > MAX_HEADER_BYTES * 4 // 3 + 4:
        raise MalformedToken("protected header is too large")
    try:
        params = loads_object(
            b64decode(segment), max_size=MAX_HEADER_BYTES, max_depth=MAX_HEADER_DEPTH
        )
    except DecodeError as exc:
        raise MalformedToken(f"protected header: {exc}") from None
    if len(params) > MAX_HEADER_MEMBERS:
        raise MalformedToken(f"protected header has more than {MAX_HEADER_MEMBERS} members")
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
    if "kid" in params:  # a null kid is malformed, not absent
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


class HeaderCache:
    """A bounded map from encoded header segments to parsed headers.

    Filled only by callers that have verified the token the header came
    with. When full it starts over: a service uses a handful of headers, so
    a refill costs one parse each.
    """

    __slots__ = ("_entries", "_limit")

    def __init__(self, limit: int = 256) -> None:
        self._entries: dict[bytes, ProtectedHeader] = {}
        self._limit = limit

    def get(self, segment: bytes) -> ProtectedHeader | None:
        return self._entries.get(segment)

    def remember(self, segment: bytes, header: ProtectedHeader) -> None:
        if len(self._entries) >= self._limit:
            self._entries.clear()
        self._entries[segment] = header

    def clear(self) -> None:
        self._entries.clear()
