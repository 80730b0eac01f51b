"""What compact JWS and JWE share before any parsing: the token as bounded ASCII.

The length bound is applied before anything is copied or decoded (invariant
5), so an oversized token costs nothing but the comparison.
"""

from __future__ import annotations

from jwtward.errors import InvalidArgument, MalformedToken, TokenTooLarge

__all__ = ["DEFAULT_MAX_TOKEN_LENGTH", "split_compact", "to_ascii_bytes"]

DEFAULT_MAX_TOKEN_LENGTH = 8192


def to_ascii_bytes(token: object, max_length: int) -> bytes:
    """The token as ASCII bytes, refused by length before anything is copied."""
    if type(max_length) is not int or max_length < 0:
        raise InvalidArgument("max_length must be a non-negative int")
    if isinstance(token, str):
        if len(token) > max_length:
            raise TokenTooLarge(f"token is longer than {max_length} characters")
        try:
            return token.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedToken("token is not ASCII") from None
    if isinstance(token, bytes | bytearray | memoryview):
        size = token.nbytes if isinstance(token, memoryview) else len(token)
        if size > max_length:
            raise TokenTooLarge(f"token is longer than {max_length} bytes")
        raw = bytes(token)
        if not raw.isascii():
            raise MalformedToken("token is not ASCII")
        return raw
    raise MalformedToken(f"token must be str or bytes, got {type(token).__name__}")


def split_compact(raw: bytes, count: int, kind: str) -> list[bytes]:
    """The ``count`` dot-separated segments of a compact ``kind`` (JWS: 3, JWE: 5)."""
    found = raw.count(b".") + 1
    if found != count:
        hint = ""
        if kind == "JWE" and found == 3:
            hint = " (it looks like a signed token, not an encrypted one)"
        elif kind == "JWS" and found == 5:
            hint = " (it looks like an encrypted token, not a signed one)"
        shown = found if found < 100 else "over 99"
        raise MalformedToken(f"a compact {kind} has {count} segments, this token has {shown}{hint}")
    return raw.split(b".")
