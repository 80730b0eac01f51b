"""Strict base64url (RFC 4648 §5) without padding, as JOSE requires.

Lenient decoders accept padding, whitespace, the standard alphabet and
non-zero unused trailing bits. Each of those lets two different strings decode
to the same bytes, which breaks any check that compares encoded forms (and is
how several signature-malleability bugs began). Here exactly one encoding of
each byte string is accepted.
"""

from __future__ import annotations

import binascii

from jwtward.errors import DecodeError

__all__ = ["b64decode", "b64encode"]

_URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_STD_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# One translation does two jobs: the URL alphabet becomes the standard one,
# and every other byte ('+', '/', '=', whitespace, non-ASCII) becomes '!',
# which binascii's strict mode refuses. No separate alphabet scan is needed.
_FROM_URL = bytes(
    _STD_ALPHABET[_URL_ALPHABET.index(byte)] if byte in _URL_ALPHABET else ord("!")
    for byte in range(256)
)
_TO_URL = bytes.maketrans(b"+/", b"-_")
# A final group of 2 characters holds 12 bits for 1 byte: its last character
# has 4 unused low bits. A final group of 3 holds 18 bits for 2 bytes: 2 unused
# bits. Canonical encodings leave those bits zero.
_CANONICAL_LAST_AFTER_2 = frozenset(c for i, c in enumerate(_URL_ALPHABET) if i & 0x0F == 0)
_CANONICAL_LAST_AFTER_3 = frozenset(c for i, c in enumerate(_URL_ALPHABET) if i & 0x03 == 0)
_PADDING = (b"", None, b"==", b"=")


def b64encode(data: bytes) -> str:
    """Encode ``data`` as unpadded base64url text."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_TO_URL).decode("ascii")


def b64decode(text: str | bytes) -> bytes:
    """Decode unpadded base64url, refusing every non-canonical form.

    Raises :class:`~jwtward.errors.DecodeError` for padding, whitespace, any
    character outside the URL-safe alphabet, an impossible length, or unused
    trailing bits that are not zero.
    """
    if type(text) is bytes:
        raw = text
    elif isinstance(text, str):
        try:
            raw = text.encode("ascii")
        except UnicodeEncodeError:
            raise DecodeError("base64url text must be ASCII") from None
    elif isinstance(text, bytes | bytearray | memoryview):
        raw = bytes(text)
    else:
        raise DecodeError("base64url input must be str or bytes")
    remainder = len(raw) % 4
    padding = _PADDING[remainder]
    if padding is None:
        raise DecodeError("base64url text has an impossible length")
    if (remainder == 2 and raw[-1] not in _CANONICAL_LAST_AFTER_2) or (
        remainder == 3 and raw[-1] not in _CANONICAL_LAST_AFTER_3
    ):
        # Also reached by a final character outside the alphabet.
        raise DecodeError("base64url text has non-zero unused trailing bits")
    try:
        return binascii.a2b_base64(raw.translate(_FROM_URL) + padding, strict_mode=True)
    except binascii.Error:
        raise DecodeError("base64url text has a character outside the URL-safe alphabet") from None
