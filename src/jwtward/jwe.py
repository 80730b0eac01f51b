"""Compact JWE (RFC 7516): ``encrypt`` and ``decrypt``, bytes in and bytes out.

Decryption order, each step refusing before the next does any work: length
bound, shape (five segments, ASCII), protected header (strict and policed
as for JWS: no ``zip``, ``jku``/``x5u``/``jwk``/``x5c``, ``crit``; ``alg`` a
key management algorithm, ``enc`` a content encryption jwtward offers), key
by ``kid`` with the key's ``alg`` equal to the header's (invariant 1), then
the cryptography.

Once a key is chosen, every failure is one
:class:`~jwtward.errors.DecryptionFailed` with one message (invariant 8): a
segment that is not base64url, a wrapped key that does not unwrap, an IV or
tag of the wrong length, a bad tag, bad padding, an ephemeral key off its
curve. When the CEK cannot be recovered, decryption carries on with a random
CEK (RFC 7516 §11.5), so a wrong key and a tampered ciphertext end in the same
place, at much the same time.

Decrypting proves that the sender knew the recipient's public key, nothing
more: with RSA-OAEP and ECDH-ES anyone can make a token that decrypts. Use
nested JWTs (:func:`jwtward.jwt.encode` with ``encrypt_to=``) to know who sent
the content.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, NamedTuple

from jwtward.codecs import b64decode, b64encode, dumps, loads_object
from jwtward.errors import (
    AlgorithmMismatch,
    DecodeError,
    DecryptionFailed,
    InvalidArgument,
    InvalidHeader,
    KeyNotFound,
    KeyUsageError,
    MalformedToken,
)
from jwtward.jose import content_encryption as _content
from jwtward.jose.compact import DEFAULT_MAX_TOKEN_LENGTH, split_compact, to_ascii_bytes
from jwtward.jose.content_encryption import (
    DECRYPTION_FAILED_MESSAGE,
    ContentEncryption,
    content_encryption,
)
from jwtward.jose.headers import (
    FORBIDDEN_HEADERS,
    MAX_HEADER_BYTES,
    MAX_HEADER_MEMBERS,
    HeaderCache,
    ProtectedHeader,
    parse_protected_header,
)
from jwtward.jose.key_management import new_cek, unwrap_cek
from jwtward.jose.keys import Key
from jwtward.jose.keyset import KeySet, KeySource, select_key

__all__ = [
    "DEFAULT_ENC",
    "DEFAULT_MAX_TOKEN_LENGTH",
    "DecryptedJWE",
    "decode",
    "decrypt",
    "encrypt",
    "unverified_header",
]

DEFAULT_ENC = "A256GCM"

_RESERVED_BY_KEY = ("alg", "kid", "enc")
# Header parameters that key management writes itself; a caller never sets them
# (``apu``/``apv`` excepted, for ECDH-ES, see ``encrypt``).
_KEY_MANAGEMENT_PARAMS = frozenset({"epk", "iv", "tag", "p2s", "p2c"})
_PARTY_INFO = ("apu", "apv")
_MEMO_LIMIT = 16

# Headers of tokens that decrypted: the parsed form is a pure function of the
# encoded bytes, so a hit is exactly what parsing would give; filling it only
# after success keeps garbage tokens from churning it.
_DECRYPTED_HEADERS = HeaderCache()


class DecryptedJWE(NamedTuple):
    """A decrypted token: its protected header, plaintext and the key that decrypted it."""

    header: Mapping[str, Any]
    plaintext: bytes
    key: Key


def _failed() -> DecryptionFailed:
    return DecryptionFailed(DECRYPTION_FAILED_MESSAGE)


# -- encryption --------------------------------------------------------------------


def _choose_enc(key: Key, enc: object) -> str:
    if enc is None:
        return key.enc or DEFAULT_ENC
    if not isinstance(enc, str):
        raise InvalidArgument("enc must be a content encryption name such as 'A256GCM'")
    try:
        name = content_encryption(enc).name
    except InvalidHeader as exc:
        raise InvalidArgument(str(exc)) from None
    if key.enc is not None and key.enc != name:
        raise InvalidArgument(f"this dir key is bound to {key.enc}, not {name}")
    return name


def _header_items(headers: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    if headers is None:
        return ()
    if not isinstance(headers, Mapping):
        raise InvalidArgument(f"headers must be a mapping, got {type(headers).__name__}")
    items = tuple(headers.items())
    for name, _value in items:
        if not isinstance(name, str):
            raise InvalidArgument("header names must be strings")
        if name in FORBIDDEN_HEADERS or name in _KEY_MANAGEMENT_PARAMS:
            raise InvalidArgument(f"header {name!r} cannot be set: jwtward would refuse it")
    return items


def _party_info(key: Key, items: tuple[tuple[str, Any], ...]) -> tuple[bytes, bytes]:
    """``apu``/``apv`` given as base64url header values, for ECDH-ES keys only."""
    found = {name: value for name, value in items if name in _PARTY_INFO}
    if not found:
        return b"", b""
    if not key.alg.startswith("ECDH-ES"):
        raise InvalidArgument("apu and apv apply to ECDH-ES only")
    decoded: dict[str, bytes] = {}
    for name, value in found.items():
        if not isinstance(value, str):
            raise InvalidArgument(f"header {name!r} must be a base64url string")
        try:
            decoded[name] = b64decode(value)
        except DecodeError as exc:
            raise InvalidArgument(f"header {name!r}: {exc}") from None
    return decoded.get("apu", b""), decoded.get("apv", b"")


def _encode_header(
    key: Key, enc: str, items: tuple[tuple[str, Any], ...], params: Mapping[str, Any]
) -> str:
    header: dict[str, Any] = {"alg": key.alg, "enc": enc, "kid": key.kid}
    for name, value in items:
        if name in _RESERVED_BY_KEY:
            if value != header[name]:
                raise InvalidArgument(f"header {name!r} comes from the key and cannot differ")
            continue
        if name not in _PARTY_INFO:  # key management writes those, decoded and checked
            header[name] = value
    header.update(params)
    try:
        segment = b64encode(dumps(header))
    except DecodeError as exc:
        raise InvalidArgument(f"header: {exc}") from None
    # Never emit a header that decryption would refuse.
    try:
        parse_protected_header(segment)
    except (MalformedToken, InvalidHeader) as exc:
        raise InvalidArgument(f"jwtward would refuse this header: {exc}") from None
    return segment


def _header_segment(
    key: Key, enc: str, items: tuple[tuple[str, Any], ...], params: Mapping[str, Any]
) -> str:
    """The encoded header, memoized per key when it is the same every time.

    Values other than str are never memoized (see :mod:`jwtward.jws`).
    Per-token parameters (an ephemeral key, a GCM key-wrap IV and tag) are
    jwtward's own: once the fixed part of the header has passed the policing
    (memoized), they are added and only the size bound is checked again.
    """
    if not all(type(value) is str for _name, value in items):
        return _encode_header(key, enc, items, params)
    memo_key = (("\x00enc", enc), *items)
    memo = key._header_memo
    segment = memo.get(memo_key)
    if segment is None:
        segment = _encode_header(key, enc, items, {})
        if len(memo) < _MEMO_LIMIT:
            memo[memo_key] = segment
    if not params:
        return segment
    header = dict(loads_object(b64decode(segment)))
    header.update(params)
    if len(header) > MAX_HEADER_MEMBERS:
        raise InvalidArgument(f"a header has at most {MAX_HEADER_MEMBERS} members")
    encoded = dumps(header)
    if len(encoded) > MAX_HEADER_BYTES:
        raise InvalidArgument(f"the header would exceed {MAX_HEADER_BYTES} bytes")
    return b64encode(encoded)


def encrypt(
    plaintext: bytes,
    key: Key,
    *,
    enc: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """Encrypt ``plaintext`` to ``key`` and return the compact JWE.

    ``enc`` is the content encryption, ``A256GCM`` by default (a ``dir`` key
    uses the one it is bound to). The header holds ``alg``, ``enc`` and
    ``kid`` from the key and ``enc``, the key management parameters, then
    ``headers`` (for example ``{"cty": "JWT"}``). For ECDH-ES keys,
    ``headers`` may give ``apu``/``apv`` (base64url) to bind the parties into
    the key derivation.
    """
    if not isinstance(plaintext, bytes | bytearray | memoryview):
        raise InvalidArgument("plaintext must be bytes; serialize it first")
    if not isinstance(key, Key):
        raise InvalidArgument(f"key must be a Key, got {type(key).__name__}")
    if not key._can_encrypt:
        raise KeyUsageError(
            f"{key.alg} is a signature algorithm; this key cannot encrypt"
            if key.use != "enc"
            else "key_ops of this key do not permit encryption"
        )
    enc_name = _choose_enc(key, enc)
    items = _header_items(headers)
    apu, apv = _party_info(key, items)
    cek, encrypted_key, params = new_cek(key, enc_name, apu=apu, apv=apv)
    header_b64 = _header_segment(key, enc_name, items, params)
    iv, ciphertext, tag = _content.encrypt(
        enc_name, cek, bytes(plaintext), header_b64.encode("ascii")
    )
    return ".".join(
        (
            header_b64,
            b64encode(encrypted_key),
            b64encode(iv),
            b64encode(ciphertext),
            b64encode(tag),
        )
    )


# -- decryption --------------------------------------------------------------------------


def _check_encryption_header(header: ProtectedHeader) -> ContentEncryption:
    """The header's enc, once alg and enc are known to be for a JWE."""
    if header.alg.is_signature:
        raise InvalidHeader(f"alg {header.alg.name} is a signature algorithm, not a JWE alg")
    if header.enc is None:
        raise InvalidHeader("a JWE header must carry 'enc'")
    return content_encryption(header.enc)


def decode(
    token: str | bytes,
    keys: Key | KeySet | KeySource,
    *,
    max_length: int = DEFAULT_MAX_TOKEN_LENGTH,
) -> DecryptedJWE:
    """Decrypt a compact JWE and return its header, plaintext and decrypting key."""
    raw = to_ascii_bytes(token, max_length)
    header_b64, key_b64, iv_b64, ciphertext_b64, tag_b64 = split_compact(raw, 5, "JWE")
    header = _DECRYPTED_HEADERS.get(header_b64)
    seen_before = header is not None
    if header is None:
        header = parse_protected_header(header_b64)
    enc = _check_encryption_header(header)
    key = select_key(keys, header.kid)
    if key.spec is not header.alg:
        raise AlgorithmMismatch(f"token alg {header.alg.name} is not the key's alg {key.alg}")
    if not key._can_decrypt:
        # The token chose this key by kid: a client's fault, not a server error.
        raise KeyNotFound("the key the token names is not permitted to decrypt")
    plaintext = _decrypt_parts(
        key, header, enc, header_b64, (key_b64, iv_b64, ciphertext_b64, tag_b64)
    )
    if not seen_before:
        _DECRYPTED_HEADERS.remember(header_b64, header)
    return DecryptedJWE(header.params, plaintext, key)


def _decrypt_parts(
    key: Key,
    header: ProtectedHeader,
    enc: ContentEncryption,
    header_b64: bytes,
    segments: tuple[bytes, bytes, bytes, bytes],
) -> bytes:
    """From here on every failure is the one DecryptionFailed, raised outside any handler.

    Failures are recorded in flags and raised after the ``try`` blocks, so
    the error never carries the real cause as its ``__context__``.
    """
    key_b64, iv_b64, ciphertext_b64, tag_b64 = segments
    decoded = True
    try:
        encrypted_key = b64decode(key_b64) if key_b64 else b""
        iv = b64decode(iv_b64)
        ciphertext = b64decode(ciphertext_b64)
        tag = b64decode(tag_b64)
    except DecodeError:
        decoded = False
    if not decoded or (key.enc is not None and key.enc != enc.name):
        raise _failed()  # (a dir key serves its one enc only)
    try:
        cek = unwrap_cek(key, encrypted_key, header.params, enc.name)
        cek_recovered = True
    except DecryptionFailed:
        # RFC 7516 §11.5: go on with a random CEK, so that a key that does not
        # unwrap fails where a bad tag does.
        cek = os.urandom(enc.key_size)
        cek_recovered = False
    try:
        plaintext = _content.decrypt(enc, cek, iv, ciphertext, tag, aad=header_b64)
    except DecryptionFailed:
        plaintext = None
    if plaintext is None or not cek_recovered:
        raise _failed()
    return plaintext


def decrypt(
    token: str | bytes,
    keys: Key | KeySet | KeySource,
    *,
    max_length: int = DEFAULT_MAX_TOKEN_LENGTH,
) -> bytes:
    """Decrypt a compact JWE with ``keys`` and return its plaintext.

    ``keys`` is one :class:`~jwtward.Key` or a :class:`~jwtward.KeySet`; the
    token's ``kid`` selects the key. Raises an
    :class:`~jwtward.errors.InvalidToken` subclass for every bad token;
    every cryptographic failure is :class:`~jwtward.errors.DecryptionFailed`
    with one message.
    """
    return decode(token, keys, max_length=max_length).plaintext


def unverified_header(
    token: str | bytes, *, max_length: int = DEFAULT_MAX_TOKEN_LENGTH
) -> Mapping[str, Any]:
    """The policed protected header of a JWE, WITHOUT decrypting anything (for routing)."""
    header_b64 = split_compact(to_ascii_bytes(token, max_length), 5, "JWE")[0]
    header = parse_protected_header(header_b64)
    _check_encryption_header(header)
    return header.params
