"""Key material: the pyca/cryptography objects behind a :class:`~jwtward.Key`.

This module knows which JOSE key type (``kty``) and curve (``crv``) each
cryptography object is, and nothing about algorithms or uses.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448, x25519

__all__ = [
    "EC_CURVES",
    "OKP_SIZES",
    "Material",
    "PrivateMaterial",
    "PublicMaterial",
    "describe_material",
    "public_of",
]

PrivateMaterial = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | x25519.X25519PrivateKey
    | x448.X448PrivateKey
)
PublicMaterial = (
    rsa.RSAPublicKey
    | ec.EllipticCurvePublicKey
    | ed25519.Ed25519PublicKey
    | ed448.Ed448PublicKey
    | x25519.X25519PublicKey
    | x448.X448PublicKey
)
# bytes: the secret of an oct key.
Material = PrivateMaterial | PublicMaterial | bytes

# JOSE curve name -> (cryptography curve class, field size in bytes)
EC_CURVES: dict[str, tuple[type[ec.EllipticCurve], int]] = {
    "P-256": (ec.SECP256R1, 32),
    "P-384": (ec.SECP384R1, 48),
    "P-521": (ec.SECP521R1, 66),
    "secp256k1": (ec.SECP256K1, 32),
}
_EC_NAMES: dict[str, str] = {cls().name: jose for jose, (cls, _size) in EC_CURVES.items()}

# OKP curve name -> (public key size, private key size)
OKP_SIZES: dict[str, tuple[int, int]] = {
    "Ed25519": (32, 32),
    "Ed448": (57, 57),
    "X25519": (32, 32),
    "X448": (56, 56),
}

_OKP_TYPES: tuple[tuple[type, str], ...] = (
    (ed25519.Ed25519PrivateKey, "Ed25519"),
    (ed25519.Ed25519PublicKey, "Ed25519"),
    (ed448.Ed448PrivateKey, "Ed448"),
    (ed448.Ed448PublicKey, "Ed448"),
    (x25519.X25519PrivateKey, "X25519"),
    (x25519.X25519PublicKey, "X25519"),
    (x448.X448PrivateKey, "X448"),
    (x448.X448PublicKey, "X448"),
)


def describe_material(material: Material) -> tuple[str, str | None, bool]:
    """Return ``(kty, crv, has_private_part)``; ``crv`` is None for RSA and oct.

    Raises ``TypeError`` for cryptography key types JOSE has no name for (DSA,
    DH, curves outside the registry); callers turn it into ``InvalidKey``.
    """
    if isinstance(material, bytes):
        return "oct", None, True
    if isinstance(material, rsa.RSAPrivateKey):
        return "RSA", None, True
    if isinstance(material, rsa.RSAPublicKey):
        return "RSA", None, False
    if isinstance(material, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        crv = _EC_NAMES.get(material.curve.name)
        if crv is None:
            raise TypeError(f"EC curve {material.curve.name} has no JOSE name")
        return "EC", crv, isinstance(material, ec.EllipticCurvePrivateKey)
    for cls, crv in _OKP_TYPES:
        if isinstance(material, cls):
            return "OKP", crv, "Private" in cls.__name__
    raise TypeError(f"{type(material).__name__} is not a JOSE key type")


def public_of(material: Material) -> PublicMaterial | bytes:
    """The public half of ``material``; a secret is its own (it has no other)."""
    if isinstance(
        material,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey
        | x25519.X25519PrivateKey
        | x448.X448PrivateKey,
    ):
        return material.public_key()
    return material
