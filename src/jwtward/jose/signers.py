"""Signers: one key bound to one JWS signature algorithm, ready for the hot path.

Binding happens once, when a :class:`~jwtward.Key` is made; signing and
verifying then do no lookups, parsing or conversions beyond the primitive.
Every verifier checks the signature's exact length and form before the
primitive sees it, and answers with a bool (exceptions cost time on a path an
attacker drives).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from jwtward.errors import InvalidKey
from jwtward.jose.algorithms import Algorithm
from jwtward.jose.material import Material, describe_material, public_of

__all__ = [
    "CURVE_ORDERS",
    "ECDSASigner",
    "EdDSASigner",
    "HMACSigner",
    "RSASigner",
    "Signer",
    "bind_signer",
]


class Signer(Protocol):
    """One key bound to one signature algorithm."""

    def sign(self, data: bytes) -> bytes: ...

    def verify(self, data: bytes, signature: bytes) -> bool: ...


_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class HMACSigner:
    """HS256/384/512 over a raw secret."""

    __slots__ = ("_digest", "_secret")

    def __init__(self, secret: bytes, hash_name: str) -> None:
        self._secret = secret
        self._digest = getattr(hashlib, hash_name)

    def sign(self, data: bytes) -> bytes:
        return hmac.digest(self._secret, data, self._digest)

    def verify(self, data: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(hmac.digest(self._secret, data, self._digest), signature)


class RSASigner:
    """RS* (PKCS#1 v1.5) and PS* (PSS, MGF1 with the same hash, salt = hash length)."""

    __slots__ = ("_hash", "_padding", "_private", "_public")

    def __init__(
        self,
        private: rsa.RSAPrivateKey | None,
        public: rsa.RSAPublicKey,
        hash_name: str,
        pss: bool,
    ) -> None:
        self._private = private
        self._public = public
        self._hash = _HASHES[hash_name]()
        self._padding: padding.AsymmetricPadding
        if pss:
            self._padding = padding.PSS(
                mgf=padding.MGF1(self._hash), salt_length=self._hash.digest_size
            )
        else:
            self._padding = padding.PKCS1v15()

    def sign(self, data: bytes) -> bytes:
        assert self._private is not None  # noqa: S101 - Key checks before calling
        return self._private.sign(data, self._padding, self._hash)

    def verify(self, data: bytes, signature: bytes) -> bool:
        # RFC 7518 §3.3: the signature is exactly as long as the modulus.
        if len(signature) != (self._public.key_size + 7) // 8:
            return False
        try:
            self._public.verify(signature, data, self._padding, self._hash)
        except _CryptoInvalidSignature:
            return False
        return True


class ECDSASigner:
    """ES*: the JWS signature is raw ``r || s``, each exactly the curve's size.

    DER signatures, short or long encodings and ``r`` or ``s`` outside
    ``[1, n-1]`` (the "psychic signature", CVE-2022-21449) are refused before
    the primitive sees them.
    """

    __slots__ = ("_hash", "_order", "_private", "_public", "_size")

    def __init__(
        self,
        private: ec.EllipticCurvePrivateKey | None,
        public: ec.EllipticCurvePublicKey,
        hash_name: str,
        order: int,
    ) -> None:
        self._private = private
        self._public = public
        self._hash = ec.ECDSA(_HASHES[hash_name]())
        self._size = (public.curve.key_size + 7) // 8
        self._order = order

    def sign(self, data: bytes) -> bytes:
        assert self._private is not None  # noqa: S101 - Key checks before calling
        r, s = decode_dss_signature(self._private.sign(data, self._hash))
        return r.to_bytes(self._size, "big") + s.to_bytes(self._size, "big")

    def verify(self, data: bytes, signature: bytes) -> bool:
        size = self._size
        if len(signature) != 2 * size:
            return False
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        if not (0 < r < self._order and 0 < s < self._order):
            return False
        try:
            self._public.verify(encode_dss_signature(r, s), data, self._hash)
        except _CryptoInvalidSignature:
            return False
        return True


class EdDSASigner:
    """EdDSA (RFC 8037) and the fully specified Ed25519 / Ed448 (RFC 9864)."""

    __slots__ = ("_private", "_public", "_size")

    def __init__(
        self,
        private: ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey | None,
        public: ed25519.Ed25519PublicKey | ed448.Ed448PublicKey,
    ) -> None:
        self._private = private
        self._public = public
        self._size = 64 if isinstance(public, ed25519.Ed25519PublicKey) else 114

    def sign(self, data: bytes) -> bytes:
        assert self._private is not None  # noqa: S101 - Key checks before calling
        return self._private.sign(data)

    def verify(self, data: bytes, signature: bytes) -> bool:
        if len(signature) != self._size:
            return False
        try:
            self._public.verify(signature, data)
        except _CryptoInvalidSignature:
            return False
        return True


# -- the registry ---------------------------------------------------------------

CURVE_ORDERS = {
    "P-256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "P-384": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
    "P-521": int(
        "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
        "A51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
        16,
    ),
    "secp256k1": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
}


def bind_signer(spec: Algorithm, material: Material) -> Signer | None:
    if not spec.is_signature:
        return None
    hash_name = spec.hash_name or ""
    if isinstance(material, bytes):
        return HMACSigner(material, hash_name)
    public = public_of(material)
    private = material if material is not public else None
    if isinstance(public, rsa.RSAPublicKey):
        return RSASigner(private, public, hash_name, pss=spec.name.startswith("PS"))  # type: ignore[arg-type]
    if isinstance(public, ec.EllipticCurvePublicKey):
        crv = describe_material(public)[1]
        assert crv is not None  # noqa: S101
        return ECDSASigner(private, public, hash_name, CURVE_ORDERS[crv])  # type: ignore[arg-type]
    if isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return EdDSASigner(private, public)  # type: ignore[arg-type]
    raise InvalidKey(f"{spec.name} cannot use this key")  # pragma: no cover - strength check
