"""JWK (RFC 7517/7518/8037) members to key material and back, and thumbprints.

Parsing is strict: every number is strict base64url; EC and OKP coordinates
have exactly the curve's length; a JWK that mixes the members of two key types,
holds only part of a private key, or names a curve outside the registry is
refused. Whether the key suits an algorithm is decided one layer up, in
:mod:`jwtward.jose.keys`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448, x25519

from jwtward.codecs import b64decode, b64encode, dumps
from jwtward.errors import DecodeError, InvalidKey, UnsupportedAlgorithm
from jwtward.jose.algorithms import describe
from jwtward.jose.key_checks import check_rsa_size
from jwtward.jose.material import (
    EC_CURVES,
    OKP_SIZES,
    Material,
    describe_material,
    public_of,
)

__all__ = ["PRIVATE_MEMBERS", "material_from_jwk", "material_to_jwk", "thumbprint"]

_MEMBERS = {
    "RSA": frozenset({"n", "e", "d", "p", "q", "dp", "dq", "qi", "oth"}),
    "EC": frozenset({"crv", "x", "y", "d"}),
    "OKP": frozenset({"crv", "x", "d"}),
    "oct": frozenset({"k"}),
}
_ALL_MEMBERS = frozenset().union(*_MEMBERS.values())
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_RSA_CRT = ("p", "q", "dp", "dq", "qi")
MAX_PRIVATE_RSA_BITS = 8192
MAX_RECOVERED_RSA_BITS = 4096
_RAW = serialization.Encoding.Raw
_RAW_PUBLIC = serialization.PublicFormat.Raw
_RAW_PRIVATE = serialization.PrivateFormat.Raw
_NO_ENCRYPTION = serialization.NoEncryption()


def _bytes_member(jwk: Mapping[str, Any], name: str, size: int | None = None) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise InvalidKey(f"JWK member {name!r} is missing or not a string")
    try:
        raw = b64decode(value)
    except DecodeError as exc:
        raise InvalidKey(f"JWK member {name!r}: {exc}") from None
    if size is not None and len(raw) != size:
        raise InvalidKey(f"JWK member {name!r} must be exactly {size} bytes, got {len(raw)}")
    return raw


def _int_member(jwk: Mapping[str, Any], name: str) -> int:
    raw = _bytes_member(jwk, name)
    # RFC 7518 §6.3.1: unsigned big-endian, no leading zero octets; a single
    # zero octet is the only encoding of 0, which is never a valid member.
    if not raw or raw[0] == 0:
        raise InvalidKey(f"JWK member {name!r} has leading zero octets or is empty")
    return int.from_bytes(raw, "big")


def _rsa_from_jwk(jwk: Mapping[str, Any]) -> Material:
    if "oth" in jwk:
        raise InvalidKey("multi-prime RSA keys ('oth') are not supported")
    n = _int_member(jwk, "n")
    e = _int_member(jwk, "e")
    # Bounded here, before any arithmetic on them, as well as in check_strength.
    check_rsa_size(n.bit_length(), e)
    public_numbers = rsa.RSAPublicNumbers(e, n)
    present_crt = [name for name in _RSA_CRT if name in jwk]
    if "d" not in jwk:
        if present_crt:
            raise InvalidKey("RSA JWK has CRT members without 'd': ambiguous private key")
        try:
            return public_numbers.public_key()
        except ValueError as exc:
            raise InvalidKey(f"invalid RSA public key: {exc}") from None
    # Building a private key costs a full key check (and, without the CRT
    # members, prime recovery in Python): bounded so that a hostile document
    # cannot buy minutes of CPU per entry.
    limit = MAX_PRIVATE_RSA_BITS if present_crt else MAX_RECOVERED_RSA_BITS
    if n.bit_length() > limit:
        raise InvalidKey(
            f"private RSA JWKs {'' if present_crt else 'without p, q, dp, dq, qi '}"
            f"may have at most {limit} bits"
        )
    d = _int_member(jwk, "d")
    if present_crt and len(present_crt) != len(_RSA_CRT):
        raise InvalidKey("RSA JWK has only some of p, q, dp, dq, qi: ambiguous private key")
    # Every private number is below n; checking that first bounds the cost of
    # the arithmetic below (prime recovery is exponentiation by e * d).
    if not 1 < d < n:
        raise InvalidKey("RSA private exponent 'd' out of range")
    crt = [_int_member(jwk, name) for name in present_crt]
    if any(not 1 < value < n for value in crt):
        raise InvalidKey("RSA CRT member out of range")
    try:
        if crt:
            p, q, dp, dq, qi = crt
        else:
            p, q = rsa.rsa_recover_prime_factors(n, e, d)
            dp, dq, qi = rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q)
        numbers = rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, public_numbers)
        return numbers.private_key()
    except (ValueError, TypeError) as exc:
        raise InvalidKey(f"inconsistent RSA private key: {exc}") from None


def _ec_from_jwk(jwk: Mapping[str, Any]) -> Material:
    crv = jwk.get("crv")
    if not isinstance(crv, str) or crv not in EC_CURVES:
        raise UnsupportedAlgorithm(f"unsupported EC curve {describe(crv)}")
    curve_cls, size = EC_CURVES[crv]
    x = int.from_bytes(_bytes_member(jwk, "x", size), "big")
    y = int.from_bytes(_bytes_member(jwk, "y", size), "big")
    try:
        public = ec.EllipticCurvePublicNumbers(x, y, curve_cls()).public_key()
    except ValueError:
        raise InvalidKey(f"EC point is not on curve {crv}") from None
    canonical = public.public_numbers()
    if (canonical.x, canonical.y) != (x, y):
        # A coordinate at or above the field prime names the same point twice.
        raise InvalidKey(f"EC point coordinates are not reduced modulo the {crv} field prime")
    if "d" not in jwk:
        return public
    d = int.from_bytes(_bytes_member(jwk, "d", size), "big")
    try:
        private = ec.derive_private_key(d, curve_cls())
    except ValueError:
        raise InvalidKey(f"EC private scalar out of range for {crv}") from None
    if private.public_key().public_numbers() != public.public_numbers():
        raise InvalidKey("EC private key does not match its public point")
    return private


_OKP_LOADERS: dict[str, tuple[Any, Any]] = {
    "Ed25519": (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey),
    "Ed448": (ed448.Ed448PublicKey, ed448.Ed448PrivateKey),
    "X25519": (x25519.X25519PublicKey, x25519.X25519PrivateKey),
    "X448": (x448.X448PublicKey, x448.X448PrivateKey),
}


def _okp_from_jwk(jwk: Mapping[str, Any]) -> Material:
    crv = jwk.get("crv")
    if not isinstance(crv, str) or crv not in OKP_SIZES:
        raise UnsupportedAlgorithm(f"unsupported OKP curve {describe(crv)}")
    public_size, private_size = OKP_SIZES[crv]
    public_cls, private_cls = _OKP_LOADERS[crv]
    x = _bytes_member(jwk, "x", public_size)
    try:
        public = public_cls.from_public_bytes(x)
    except ValueError:
        raise InvalidKey(f"invalid {crv} public key") from None
    if "d" not in jwk:
        return public  # type: ignore[no-any-return]
    d = _bytes_member(jwk, "d", private_size)
    try:
        private = private_cls.from_private_bytes(d)
    except ValueError:
        raise InvalidKey(f"invalid {crv} private key") from None
    if private.public_key().public_bytes(_RAW, _RAW_PUBLIC) != x:
        raise InvalidKey(f"{crv} private key does not match its public key 'x'")
    return private  # type: ignore[no-any-return]


def material_from_jwk(jwk: Mapping[str, Any], *, public_only: bool = False) -> Material:
    """Build key material from the key members of ``jwk``.

    With ``public_only`` (a JWK Set expected to hold public keys, such as one
    fetched from an issuer), any private member is refused: a published
    private key is a leak to report, never a key to use.
    """
    kty = jwk.get("kty")
    if not isinstance(kty, str) or kty not in _MEMBERS:
        raise UnsupportedAlgorithm(f"unsupported JWK kty {describe(kty)}")
    foreign = (_ALL_MEMBERS - _MEMBERS[kty]) & jwk.keys()
    if foreign:
        raise InvalidKey(f"JWK of kty {kty} carries members of another key type: {sorted(foreign)}")
    if public_only and PRIVATE_MEMBERS & jwk.keys():
        raise InvalidKey("JWK holds private key members where only public keys are expected")
    if kty == "RSA":
        return _rsa_from_jwk(jwk)
    if kty == "EC":
        return _ec_from_jwk(jwk)
    if kty == "OKP":
        return _okp_from_jwk(jwk)
    return _bytes_member(jwk, "k")


def _int_b64(value: int) -> str:
    return b64encode(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def material_to_jwk(material: Material, *, private: bool) -> dict[str, str]:
    """The key members of ``material`` (``kty`` and the numbers), no metadata."""
    kty, crv, has_private = describe_material(material)
    if private and not has_private:
        raise InvalidKey("this key has no private part to export")
    if isinstance(material, bytes):
        if not private:
            raise InvalidKey("a symmetric key has no public form; export it with private=True")
        return {"kty": "oct", "k": b64encode(material)}
    public = public_of(material)
    out: dict[str, str]
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        out = {"kty": "RSA", "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}
        if private:
            assert isinstance(material, rsa.RSAPrivateKey)  # noqa: S101
            pn = material.private_numbers()
            out |= {
                "d": _int_b64(pn.d),
                "p": _int_b64(pn.p),
                "q": _int_b64(pn.q),
                "dp": _int_b64(pn.dmp1),
                "dq": _int_b64(pn.dmq1),
                "qi": _int_b64(pn.iqmp),
            }
        return out
    if isinstance(public, ec.EllipticCurvePublicKey):
        assert crv is not None  # noqa: S101
        size = EC_CURVES[crv][1]
        numbers_ec = public.public_numbers()
        out = {
            "kty": "EC",
            "crv": crv,
            "x": b64encode(numbers_ec.x.to_bytes(size, "big")),
            "y": b64encode(numbers_ec.y.to_bytes(size, "big")),
        }
        if private:
            assert isinstance(material, ec.EllipticCurvePrivateKey)  # noqa: S101
            d = material.private_numbers().private_value
            out["d"] = b64encode(d.to_bytes(size, "big"))
        return out
    assert crv is not None and not isinstance(public, bytes)  # noqa: S101
    out = {"kty": kty, "crv": crv, "x": b64encode(public.public_bytes(_RAW, _RAW_PUBLIC))}
    if private:
        raw = material.private_bytes(_RAW, _RAW_PRIVATE, _NO_ENCRYPTION)  # type: ignore[union-attr]
        out["d"] = b64encode(raw)
    return out


_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "oct": ("k", "kty"),
}


def thumbprint(material: Material) -> str:
    """RFC 7638 JWK thumbprint (SHA-256): required members, sorted, no spaces."""
    members = material_to_jwk(material, private=isinstance(material, bytes))
    required = {name: members[name] for name in _THUMBPRINT_MEMBERS[members["kty"]]}
    return b64encode(hashlib.sha256(dumps(required)).digest())
