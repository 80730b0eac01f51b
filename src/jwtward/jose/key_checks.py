"""What makes a key acceptable: strength, consistency and permitted operations.

Invariant 4 lives here. Every route that makes a :class:`~jwtward.Key` (JWK,
PEM, DER, secret, generation, cryptography object) passes through
:func:`check_strength`, so no route can skip a check.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InternalError as _CryptoInternalError
from cryptography.exceptions import UnsupportedAlgorithm as _CryptoUnsupported
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519, rsa

from jwtward.codecs import loads_object
from jwtward.errors import DecodeError, InvalidKey, KeyUsageError
from jwtward.jose.algorithms import MAX_RSA_BITS, MIN_RSA_BITS, Algorithm
from jwtward.jose.edwards import is_weak_edwards_public_key
from jwtward.jose.material import Material, describe_material, public_of

__all__ = [
    "MAX_KID_LENGTH",
    "OPS_BY_USE",
    "PUBLIC_OPS",
    "check_key_ops",
    "check_kid",
    "check_rsa_size",
    "check_strength",
    "looks_like_a_key_file",
]

MAX_KID_LENGTH = 256

OPS_BY_USE = {
    "sig": frozenset({"sign", "verify"}),
    "enc": frozenset({"encrypt", "decrypt", "wrapKey", "unwrapKey", "deriveKey", "deriveBits"}),
}
PUBLIC_OPS = frozenset({"verify", "encrypt", "wrapKey"})
_RAW = serialization.Encoding.Raw
_RAW_PUBLIC = serialization.PublicFormat.Raw
_KEY_FILE_PREFIXES = (b"-----BEGIN", b"ssh-rsa ", b"ssh-ed25519 ", b"ssh-ed448 ", b"ecdsa-sha2-")


def check_kid(kid: object) -> str:
    """A ``kid`` is an opaque, short, printable string; anything else is refused."""
    if not isinstance(kid, str):
        raise InvalidKey(f"kid must be a string, got {type(kid).__name__}")
    if not 0 < len(kid) <= MAX_KID_LENGTH:
        raise InvalidKey(f"kid must be 1 to {MAX_KID_LENGTH} characters long")
    if not kid.isprintable():
        raise InvalidKey("kid must not contain control or separator characters")
    return kid


def check_key_ops(key_ops: object, use: str) -> frozenset[str] | None:
    if key_ops is None:
        return None
    if not isinstance(key_ops, list | tuple | frozenset | set) or not all(
        isinstance(op, str) for op in key_ops
    ):
        raise InvalidKey("key_ops must be a list of strings")
    ops = frozenset(key_ops)
    if len(ops) != len(key_ops):
        raise InvalidKey("key_ops has duplicate values")
    if not ops:
        raise InvalidKey("key_ops is empty: the key would permit nothing")
    if not ops <= OPS_BY_USE[use]:
        raise KeyUsageError(f"key_ops {sorted(ops)} do not fit a key for use {use!r}")
    return ops


def check_strength(spec: Algorithm, material: Material) -> None:
    """Refuse a key of the wrong type, curve or size for ``spec`` (invariant 4)."""
    try:
        kty, crv, _has_private = describe_material(material)
    except TypeError as exc:
        raise InvalidKey(str(exc)) from None
    if kty not in spec.ktys:
        raise InvalidKey(f"{spec.name} needs a {'/'.join(spec.ktys)} key, got {kty}")
    if spec.curves and crv not in spec.curves:
        raise InvalidKey(f"{spec.name} needs a key on {' or '.join(spec.curves)}, got {crv}")
    if isinstance(material, bytes):
        if looks_like_a_key_file(material):
            raise InvalidKey(
                "this secret is an encoded public/private key (PEM, DER, JWK or SSH): "
                "using one as a symmetric secret is the key-confusion attack"
            )
        if spec.secret_sizes is not None:
            if len(material) not in spec.secret_sizes:
                sizes = ", ".join(str(s) for s in spec.secret_sizes)
                raise InvalidKey(f"{spec.name} needs a secret of {sizes} bytes")
        elif len(material) < spec.min_secret:
            raise InvalidKey(
                f"{spec.name} needs a secret of at least {spec.min_secret} bytes "
                f"(RFC 7518 §3.2), got {len(material)}"
            )
    elif isinstance(material, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        public_rsa = public_of(material)
        assert isinstance(public_rsa, rsa.RSAPublicKey)  # noqa: S101
        check_rsa_size(material.key_size, public_rsa.public_numbers().e)
    elif crv in ("Ed25519", "Ed448"):
        public = public_of(material)
        assert isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)  # noqa: S101
        if is_weak_edwards_public_key(crv, public.public_bytes(_RAW, _RAW_PUBLIC)):
            raise InvalidKey(f"{crv} public key is of small order or not canonical")


def check_rsa_size(bits: int, exponent: int) -> None:
    """RSA moduli of 2048 to 16384 bits; an odd public exponent from 3 to 2**64.

    The upper bounds keep verification cheap: a huge modulus or exponent turns
    every verification into a denial of service.
    """
    if bits < MIN_RSA_BITS:
        raise InvalidKey(f"RSA keys must have at least {MIN_RSA_BITS} bits, got {bits}")
    if bits > MAX_RSA_BITS:
        raise InvalidKey(f"RSA keys may have at most {MAX_RSA_BITS} bits, got {bits}")
    if exponent.bit_length() > 64 or exponent < 3 or exponent % 2 == 0:
        raise InvalidKey("RSA public exponent must be odd, at least 3 and below 2**64")


def looks_like_a_key_file(secret: bytes) -> bool:
    """True for bytes that are an encoded public/private key, not a random secret.

    Passing a PEM, DER, JWK or SSH key as an HMAC secret is the shape of the
    key-confusion attack; no honest caller needs it. Each test is specific
    enough that a random secret never trips it.
    """
    stripped = secret.strip()
    if stripped.startswith(_KEY_FILE_PREFIXES):
        return True
    if stripped.startswith(b"{"):
        try:
            return "kty" in loads_object(stripped, max_size=1 << 16)
        except DecodeError:
            return False
    if secret[:1] == b"\x30":  # DER SEQUENCE: is it a key or certificate?
        return _parses_as_der_key(secret)
    return False


def _parses_as_der_key(data: bytes) -> bool:
    """True if cryptography reads ``data`` as any key or certificate, of any
    type (DSA and brainpool included), or asks for its password."""
    loaders = (
        lambda: serialization.load_der_private_key(data, password=None),
        lambda: serialization.load_der_public_key(data),
        lambda: x509.load_der_x509_certificate(data),
    )
    for load in loaders:
        try:
            load()
        except TypeError:
            return True  # an encrypted private key: it needs a password
        except (ValueError, _CryptoUnsupported, _CryptoInternalError):
            continue
        return True
    return False
