"""Refuse Edwards-curve public keys of small order or in non-canonical form.

An Ed25519 or Ed448 public key that is a point of small order (the identity,
or a point in the cofactor subgroup) lets anyone forge signatures that
verify: with ``A`` the identity, ``R`` the identity and ``S = 0`` satisfy
the verification equation for every message. The primitive library checks
neither this nor the canonical encoding of the key, so jwtward does, once, when
a key is made (invariant 4). The arithmetic here runs only at key import, on
public data; it is not constant time and need not be.
"""

from __future__ import annotations

__all__ = ["is_weak_edwards_public_key"]

# Ed25519: -x^2 + y^2 = 1 + d x^2 y^2 over GF(2^255 - 19), cofactor 8.
_P25519 = 2**255 - 19
_D25519 = (-121665 * pow(121666, -1, _P25519)) % _P25519
_SQRT_M1 = pow(2, (_P25519 - 1) // 4, _P25519)

# Ed448: x^2 + y^2 = 1 + d x^2 y^2 over GF(2^448 - 2^224 - 1), cofactor 4.
_P448 = 2**448 - 2**224 - 1
_D448 = -39081 % _P448


def _decode_25519(encoded: bytes) -> tuple[int, int] | None:
    y = int.from_bytes(encoded, "little") & ((1 << 255) - 1)
    sign = encoded[31] >> 7
    if y >= _P25519:
        return None
    u = (y * y - 1) % _P25519
    v = (_D25519 * y * y + 1) % _P25519
    x2 = u * pow(v, -1, _P25519) % _P25519
    x = pow(x2, (_P25519 + 3) // 8, _P25519)
    if (x * x - x2) % _P25519 != 0:
        x = x * _SQRT_M1 % _P25519
    if (x * x - x2) % _P25519 != 0:
        return None  # not on the curve
    if x == 0 and sign:
        return None  # "negative zero": a second encoding of the same point
    if x & 1 != sign:
        x = _P25519 - x
    return x, y


def _decode_448(encoded: bytes) -> tuple[int, int] | None:
    if encoded[56] & 0x7F:
        return None
    y = int.from_bytes(encoded[:56], "little")
    sign = encoded[56] >> 7
    if y >= _P448:
        return None
    u = (y * y - 1) % _P448
    v = (_D448 * y * y - 1) % _P448
    x2 = u * pow(v, -1, _P448) % _P448
    x = pow(x2, (_P448 + 1) // 4, _P448)
    if (x * x - x2) % _P448 != 0:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = _P448 - x
    return x, y


def _double(point: tuple[int, int], a: int, d: int, p: int) -> tuple[int, int]:
    """Twisted Edwards doubling (complete for both curves: d is a non-square)."""
    x, y = point
    xy = x * y % p
    dxy2 = d * xy * xy % p
    x3 = 2 * xy * pow(1 + dxy2, -1, p) % p
    y3 = (y * y - a * x * x) * pow(1 - dxy2, -1, p) % p
    return x3, y3


def is_weak_edwards_public_key(crv: str, encoded: bytes) -> bool:
    """True if ``encoded`` is not a canonical point of large order on ``crv``.

    ``crv`` is ``Ed25519`` or ``Ed448``; any other name returns False.
    """
    if crv == "Ed25519":
        point = _decode_25519(encoded) if len(encoded) == 32 else None
        a, d, p, doublings = -1, _D25519, _P25519, 3
    elif crv == "Ed448":
        point = _decode_448(encoded) if len(encoded) == 57 else None
        a, d, p, doublings = 1, _D448, _P448, 2
    else:
        return False
    if point is None:
        return True
    for _ in range(doublings):  # multiply by the cofactor (8 or 4)
        point = _double(point, a, d, p)
    return point == (0, 1)
