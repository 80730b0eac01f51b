"""Compact JWS (RFC 7515): ``sign`` and ``verify``, bytes in and bytes out.

Verification order, each step refusing with a typed error before the next
does any work: length bound, shape (three segments, ASCII), protected header
(strict and policed, see :mod:`jwtward.jose.headers`), key by ``kid``, the
key's ``alg`` equal to the header's (invariant 1), the signature, and last the
strict decoding of the payload.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from jwtward.codecs import b64decode, b64encode, dumps
from jwtward.errors import (
    AlgorithmMismatch,
    DecodeError,
    InvalidArgument,
    InvalidHeader,
    InvalidSignature,
    KeyNotFound,
    KeyUsageError,
    MalformedToken,
)
from jwtward.jose.compact import DEFAULT_MAX_TOKEN_LENGTH, split_compact, to_ascii_bytes
from jwtward.jose.headers import (
    FORBIDDEN_HEADERS,
    HeaderCache,
    ProtectedHeader,
    parse_protected_header,
)
from jwtward.jose.keys import Key
from jwtward.jose.keyset import KeySet, KeySource, select_key

__all__ = [
    "DEFAULT_MAX_TOKEN_LENGTH",
    "VerifiedJWS",
    "decode",
    "sign",
    "unverified_header",
    "verify",
]

_RESERVED_BY_KEY = ("alg", "kid")
_MEMO_LIMIT = 16

HeaderItems = tuple[tuple[str, Any], ...]

# Headers of JWS tokens whose signature verified with a trusted key. JWS only:
# a decryption proves nothing about who made a token, so no other layer may
# put headers here.
_VERIFIED_HEADERS = HeaderCache()


class VerifiedJWS(NamedTuple):
    """A verified token: its protected header, payload and the key that verified it."""

    header: Mapping[str, Any]
    payload: bytes
    key: Key


# -- signing ------------------------------------------------------------------


def _header_segment(key: Key, headers: Mapping[str, Any] | None) -> str:
    """The encoded protected header, memoized per key when every value is a str.

    The items are read once, and the memo stores exactly what was encoded
    from them. Only str values are memoized: tuples compare ``1 == True ==
    1.0`` equal, so other scalars could fetch a header made for another value.
    """
    if headers is None:
        items: HeaderItems = ()
    elif isinstance(headers, Mapping):
        items = tuple(headers.items())
    else:
        raise InvalidArgument(f"headers must be a mapping, got {type(headers).__name__}")
    if not all(type(name) is str and type(value) is str for name, value in items):
        return _encode_header(key, items)
    memo = key._header_memo
    segment = memo.get(items)
    if segment is None:
        segment = _encode_header(key, items)
        if len(memo) < _MEMO_LIMIT:
            memo[items] = segment
    return segment


def _encode_header(key: Key, items: HeaderItems) -> str:
    header: dict[str, Any] = {"alg": key.alg, "kid": key.kid}
    for name, value in items:
        if not isinstance(name, str):
            raise InvalidArgument("header names must be strings")
        if name in FORBIDDEN_HEADERS or name == "enc":
            raise InvalidArgument(f"header {name!r} cannot be set: jwtward would refuse it")
        if name in _RESERVED_BY_KEY:
            if value != header[name]:
                raise InvalidArgument(f"header {name!r} comes from the key and cannot differ")
            continue
        header[name] = value
    try:
        segment = b64encode(dumps(header))
    except DecodeError as exc:
        raise InvalidArgument(f"header: {exc}") from None
    # Never emit a header that verification would refuse (typ not a string,
    # too many members, nesting too deep, ...).
    try:
        parse_protected_header(segment)
    except (MalformedToken, InvalidHeader) as exc:
        raise InvalidArgument(f"jwtward would refuse this header: {exc}") from None
    return segment


def sign(payload: bytes, key: Key, *, headers: Mapping[str, Any] | None = None) -> str:
    """Sign ``payload`` with ``key`` and return the compact JWS.

    The header holds ``alg`` and ``kid`` from the key, then ``headers``
    (for example ``{"typ": "JWT"}``). Headers jwtward would refuse on
    verification cannot be set (:class:`~jwtward.errors.InvalidArgument`).
    """
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise InvalidArgument("payload must be bytes; serialize it first")
    if not isinstance(key, Key):
        raise InvalidArgument(f"key must be a Key, got {type(key).__name__}")
    signer = key._signer
    if signer is None or not key._can_sign:
        key.sign(b"")  # raises the KeyUsageError that says why
        raise KeyUsageError("this key cannot sign")  # pragma: no cover - sign() raised
    signing_input = f"{_header_segment(key, headers)}.{b64encode(bytes(payload))}"
    return f"{signing_input}.{b64encode(signer.sign(signing_input.encode('ascii')))}"


# -- verification ---------------------------------------------------------------


def _check_signature_header(header: ProtectedHeader) -> None:
    if not header.alg.is_signature:
        raise InvalidHeader(f"alg {header.alg.name} is not a signature algorithm")
    if header.enc is not None:
        raise InvalidHeader("a JWS header must not carry 'enc'")


def decode(
    token: str | bytes,
    keys: Key | KeySet | KeySource,
    *,
    max_length: int = DEFAULT_MAX_TOKEN_LENGTH,
) -> VerifiedJWS:
    """Verify a compact JWS and return its header, payload and verifying key."""
    raw = to_ascii_bytes(token, max_length)
    header_b64, payload_b64, signature_b64 = split_compact(raw, 3, "JWS")
    header = _VERIFIED_HEADERS.get(header_b64)
    seen_before = header is not None
    if header is None:
        header = parse_protected_header(header_b64)
    _check_signature_header(header)
    key = select_key(keys, header.kid)
    if key.spec is not header.alg:
        raise AlgorithmMismatch(f"token alg {header.alg.name} is not the key's alg {key.alg}")
    signer = key._signer  # the bound signer: the hot path
    if signer is None or not key._can_verify:
        # The token chose this key by kid: a client's fault, not a server error.
        raise KeyNotFound("the key the token names is not permitted to verify")
    try:
        signature = b64decode(signature_b64)
    except DecodeError as exc:
        raise MalformedToken(f"signature: {exc}") from None
    if not signer.verify(raw[: len(header_b64) + 1 + len(payload_b64)], signature):
        raise InvalidSignature("signature verification failed")
    try:
        payload = b64decode(payload_b64)
    except DecodeError as exc:
        raise MalformedToken(f"payload: {exc}") from None
    if not seen_before:
        _VERIFIED_HEADERS.remember(header_b64, header)
    return VerifiedJWS(header.params, payload, key)


def verify(
    token: str | bytes,
    keys: Key | KeySet | KeySource,
    *,
    max_length: int = DEFAULT_MAX_TOKEN_LENGTH,
) -> bytes:
    """Verify a compact JWS with ``keys`` and return its payload.

    ``keys`` is one :class:`~jwtward.Key` or a :class:`~jwtward.KeySet`; the
    token's ``kid`` selects the key (a lone key, or the only key of a set,
    serves a token without ``kid``). Raises an
    :class:`~jwtward.errors.InvalidToken` subclass for every bad token.
    """
    return decode(token, keys, max_length=max_length).payload


def unverified_header(
    token: str | bytes, *, max_length: int = DEFAULT_MAX_TOKEN_LENGTH
) -> Mapping[str, Any]:
    """The policed protected header of a token, WITHOUT verifying anything.

    For routing only (for example, picking a key set by ``kid``); never trust
    it for anything else.
    """
    header_b64, _payload, _signature = split_compact(to_ascii_bytes(token, max_length), 3, "JWS")
    header = parse_protected_header(header_b64)
    _check_signature_header(header)
    return header.params
