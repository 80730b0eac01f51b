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
    InvalidHeader,
    InvalidSignature,
    JWTWardError,
    KeyUsageError,
    MalformedToken,
    TokenTooLarge,
)
from jwtward.jose.headers import FORBIDDEN_HEADERS, ProtectedHeader, parse_protected_header
from jwtward.jose.keys import Key
from jwtward.jose.keyset import KeySet, select_key

__all__ = [
    "DEFAULT_MAX_TOKEN_LENGTH",
    "VerifiedJWS",
    "decode",
    "sign",
    "unverified_header",
    "verify",
]

DEFAULT_MAX_TOKEN_LENGTH = 8192
_RESERVED_BY_KEY = ("alg", "kid")


class UsageError(JWTWardError, TypeError):
    """An argument of the wrong type: a programming error, not bad input data."""


class VerifiedJWS(NamedTuple):
    """A verified token: its protected header, payload and the key that verified it."""

    header: Mapping[str, Any]
    payload: bytes
    key: Key


_MEMO_LIMIT = 16


def _header_segment(key: Key, headers: Mapping[str, Any] | None) -> str:
    """The encoded protected header, memoized per key when every value is a str.

    Only str values are memoized: tuples compare ``1 == True == 1.0`` equal,
    so other scalars could fetch a header made for a different value.
    """
    items = tuple(headers.items()) if headers else ()
    memo = key._header_memo
    try:
        return memo[items]
    except (KeyError, TypeError):
        pass
    segment = _encode_header(key, headers)
    if len(memo) < _MEMO_LIMIT and all(type(value) is str for _name, value in items):
        memo[items] = segment
    return segment


def _encode_header(key: Key, headers: Mapping[str, Any] | None) -> str:
    header: dict[str, Any] = {"alg": key.alg, "kid": key.kid}
    if headers:
        for name, value in headers.items():
            if not isinstance(name, str):
                raise InvalidHeader("header names must be strings")
            if name in FORBIDDEN_HEADERS or name == "enc":
                raise InvalidHeader(f"header {name!r} cannot be set: jwtward would refuse it")
            if name in _RESERVED_BY_KEY:
                if value != header[name]:
                    raise InvalidHeader(f"header {name!r} comes from the key and cannot differ")
                continue
            header[name] = value
    try:
        segment = b64encode(dumps(header))
    except DecodeError as exc:
        raise InvalidHeader(f"header: {exc}") from None
    # Never emit a header that verification would refuse (typ not a string,
    # a kid-like value out of bounds, nesting too deep, ...).
    try:
        parse_protected_header(segment)
    except (MalformedToken, InvalidHeader) as exc:
        raise InvalidHeader(f"jwtward would refuse this header: {exc}") from None
    return segment


def sign(payload: bytes, key: Key, *, headers: Mapping[str, Any] | None = None) -> str:
    """Sign ``payload`` with ``key`` and return the compact JWS.

    The header holds ``alg`` and ``kid`` from the key, then ``headers``
    (for example ``{"typ": "JWT"}``). Headers jwtward would refuse on
    verification cannot be set.
    """
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise UsageError("payload must be bytes; serialize it first")
    if not isinstance(key, Key):
        raise UsageError(f"key must be a Key, got {type(key).__name__}")
    if not key.spec.is_signature:
        raise KeyUsageError(f"{key.alg} is an encryption algorithm; this key cannot sign")
    signing_input = f"{_header_segment(key, headers)}.{b64encode(bytes(payload))}"
    signature = key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{b64encode(signature)}"


def _split(token: str | bytes, max_length: int) -> tuple[bytes, str, str, str]:
    if isinstance(token, str):
        if len(token) > max_length:
            raise TokenTooLarge(f"token is longer than {max_length} characters")
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedToken("token is not ASCII") from None
        text = token
    elif isinstance(token, bytes | bytearray | memoryview):
        if len(token) > max_length:
            raise TokenTooLarge(f"token is longer than {max_length} bytes")
        raw = bytes(token)
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedToken("token is not ASCII") from None
    else:
        raise MalformedToken(f"token must be str or bytes, got {type(token).__name__}")
    parts = text.split(".")
    if len(parts) != 3:
        raise MalformedToken(f"a compact JWS has 3 segments, this token has {min(len(parts), 99)}")
    return raw, parts[0], parts[1], parts[2]


def decode(
    token: str | bytes,
    keys: Key | KeySet,
    *,
    max_length: int = DEFAULT_MAX_TOKEN_LENGTH,
) -> VerifiedJWS:
    """Verify a compact JWS and return its header, payload and verifying key."""
    raw, header_b64, payload_b64, signature_b64 = _split(token, max_length)
    header = parse_protected_header(header_b64)
    _check_signature_header(header)
    key = select_key(keys, header.kid)
    if key.spec is not header.alg:
        raise AlgorithmMismatch(f"token alg {header.alg.name} is not the key's alg {key.alg}")
    signer = key._signer  # the bound signer: the hot path
    if signer is None or not key._can_verify:
        raise KeyUsageError("this key is not permitted to verify")
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
    return VerifiedJWS(header.params, payload, key)


def verify(
    token: str | bytes,
    keys: Key | KeySet,
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
    _raw, header_b64, _payload, _signature = _split(token, max_length)
    header = parse_protected_header(header_b64)
    _check_signature_header(header)
    return header.params


def _check_signature_header(header: ProtectedHeader) -> None:
    if not header.alg.is_signature:
        raise InvalidHeader(f"alg {header.alg.name} is not a signature algorithm")
    if header.enc is not None:
        raise InvalidHeader("a JWS header must not carry 'enc'")
