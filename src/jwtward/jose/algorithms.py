"""The JWA registry: every algorithm jwtward offers, and nothing else.

Each entry says which key type and curve it needs, what the key is for
(``sig`` or ``enc``) and how strong the key must be. Signature algorithms also
know how to bind a key into a :class:`Signer` once, so that the hot path of
signing and verifying does no lookups, parsing or conversions beyond the
primitive itself.

Names absent from the registry are refused everywhere. ``none`` is absent
under every spelling (invariant 2); so are RSA1_5 and PBES2 (invariant 8).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from jwtward.errors import UnsupportedAlgorithm

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "Signer",
    "algorithm",
]

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)
PublicKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)

MIN_RSA_BITS = 2048
MAX_RSA_BITS = 16384


class Signer(Protocol):
    """One key bound to one signature algorithm."""

    def sign(self, data: bytes) -> bytes: ...

    def verify(self, data: bytes, signature: bytes) -> bool: ...


@dataclass(frozen=True, slots=True)
class Algorithm:
    """What a JWA algorithm name requires of its key.

    ``curves`` lists the curves allowed for EC/OKP keys (one for ECDSA, the
    Edwards curves for EdDSA); ``secret_sizes`` the allowed lengths of an oct
    key in bytes (``None``: at least ``min_secret``).
    """

    name: str
    ktys: tuple[str, ...]
    use: str
    curves: tuple[str, ...] = ()
    hash_name: str | None = None
    min_secret: int = 0
    secret_sizes: tuple[int, ...] | None = None

    @property
    def is_signature(self) -> bool:
        return self.use == "sig"


# -- signature algorithms -----------------------------------------------------

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

_EC_ENC_CURVES = ("P-256", "P-384", "P-521", "X25519", "X448")

_ALL = (
    Algorithm("HS256", ("oct",), "sig", hash_name="sha256", min_secret=32),
    Algorithm("HS384", ("oct",), "sig", hash_name="sha384", min_secret=48),
    Algorithm("HS512", ("oct",), "sig", hash_name="sha512", min_secret=64),
    Algorithm("RS256", ("RSA",), "sig", hash_name="sha256"),
    Algorithm("RS384", ("RSA",), "sig", hash_name="sha384"),
    Algorithm("RS512", ("RSA",), "sig", hash_name="sha512"),
    Algorithm("PS256", ("RSA",), "sig", hash_name="sha256"),
    Algorithm("PS384", ("RSA",), "sig", hash_name="sha384"),
    Algorithm("PS512", ("RSA",), "sig", hash_name="sha512"),
    Algorithm("ES256", ("EC",), "sig", curves=("P-256",), hash_name="sha256"),
    Algorithm("ES384", ("EC",), "sig", curves=("P-384",), hash_name="sha384"),
    Algorithm("ES512", ("EC",), "sig", curves=("P-521",), hash_name="sha512"),
    Algorithm("ES256K", ("EC",), "sig", curves=("secp256k1",), hash_name="sha256"),
    Algorithm("EdDSA", ("OKP",), "sig", curves=("Ed25519", "Ed448")),
    Algorithm("Ed25519", ("OKP",), "sig", curves=("Ed25519",)),
    Algorithm("Ed448", ("OKP",), "sig", curves=("Ed448",)),
    # Key management algorithms (JWE). Keys for them can be made and moved
    # now; the JWE layer gives them their operations.
    Algorithm("RSA-OAEP", ("RSA",), "enc", hash_name="sha1"),
    Algorithm("RSA-OAEP-256", ("RSA",), "enc", hash_name="sha256"),
    Algorithm("RSA-OAEP-384", ("RSA",), "enc", hash_name="sha384"),
    Algorithm("RSA-OAEP-512", ("RSA",), "enc", hash_name="sha512"),
    Algorithm("A128KW", ("oct",), "enc", secret_sizes=(16,)),
    Algorithm("A192KW", ("oct",), "enc", secret_sizes=(24,)),
    Algorithm("A256KW", ("oct",), "enc", secret_sizes=(32,)),
    Algorithm("A128GCMKW", ("oct",), "enc", secret_sizes=(16,)),
    Algorithm("A192GCMKW", ("oct",), "enc", secret_sizes=(24,)),
    Algorithm("A256GCMKW", ("oct",), "enc", secret_sizes=(32,)),
    # dir: the key is the CEK itself, so its size is that of some enc.
    Algorithm("dir", ("oct",), "enc", secret_sizes=(16, 24, 32, 48, 64)),
    Algorithm("ECDH-ES", ("EC", "OKP"), "enc", curves=_EC_ENC_CURVES),
    Algorithm("ECDH-ES+A128KW", ("EC", "OKP"), "enc", curves=_EC_ENC_CURVES),
    Algorithm("ECDH-ES+A192KW", ("EC", "OKP"), "enc", curves=_EC_ENC_CURVES),
    Algorithm("ECDH-ES+A256KW", ("EC", "OKP"), "enc", curves=_EC_ENC_CURVES),
)

ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in _ALL}

# Names that are registered elsewhere but refused here, with the reason, so the
# error tells a user that the refusal is deliberate.
_REFUSED = {
    "RSA1_5": "RSA1_5 is not offered: its padding oracle is unfixable (RFC 8725 §3.2)",
    "PBES2-HS256+A128KW": "PBES2 is not offered: password-based keys are too weak for tokens",
    "PBES2-HS384+A192KW": "PBES2 is not offered: password-based keys are too weak for tokens",
    "PBES2-HS512+A256KW": "PBES2 is not offered: password-based keys are too weak for tokens",
}

# The algorithm a signing key gets when its JWK names only a curve.
CURVE_DEFAULT_SIG_ALG = {
    "P-256": "ES256",
    "P-384": "ES384",
    "P-521": "ES512",
    "secp256k1": "ES256K",
    "Ed25519": "EdDSA",
    "Ed448": "EdDSA",
}


def describe(value: object, limit: int = 32) -> str:
    """A short, escaped rendering of an untrusted value for an error message.

    Only strings are shown (escaped and cut); other values by their type, so
    no ``repr`` of a huge or deeply nested value runs.
    """
    if not isinstance(value, str):
        return f"<{type(value).__name__}>"
    text = repr(value[:limit])
    return text if len(value) <= limit else text + "..."


def algorithm(name: object) -> Algorithm:
    """The registry entry for ``name``, or :class:`UnsupportedAlgorithm`."""
    if isinstance(name, str):
        found = ALGORITHMS.get(name)
        if found is not None:
            return found
        if name.lower() == "none":
            raise UnsupportedAlgorithm("alg 'none' (unsecured JWS) is never accepted")
        reason = _REFUSED.get(name)
        if reason is not None:
            raise UnsupportedAlgorithm(reason)
    raise UnsupportedAlgorithm(f"unsupported alg {describe(name)}")
