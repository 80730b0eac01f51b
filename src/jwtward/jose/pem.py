"""PEM and DER key files in and out: PKCS#8, SPKI, PKCS#1, SEC1, X.509.

Only the key is taken from a certificate; the certificate itself is not
validated (chain, dates, usage): trusting it is the caller's decision, made
before the PEM reaches jwtward.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.exceptions import InternalError as _CryptoInternalError
from cryptography.exceptions import UnsupportedAlgorithm as _CryptoUnsupported
from cryptography.hazmat.primitives import serialization

from jwtward.errors import InvalidKey
from jwtward.jose.material import Material, describe_material

__all__ = ["material_from_der", "material_from_pem", "material_to_pem"]

# InternalError: OpenSSL refusing a key it half-parsed (e.g. a curve OID whose
# key length is wrong).
_LOAD_ERRORS = (ValueError, TypeError, _CryptoUnsupported, _CryptoInternalError)


def _password_bytes(password: bytes | str | None) -> bytes | None:
    if password is None:
        return None
    if isinstance(password, str):
        return password.encode("utf-8")
    if isinstance(password, bytes | bytearray | memoryview):
        return bytes(password)
    raise InvalidKey(f"a password must be bytes or str, got {type(password).__name__}")


def _checked(material: Any) -> Material:
    try:
        describe_material(material)
    except TypeError as exc:
        raise InvalidKey(f"unsupported key in PEM/DER: {exc}") from None
    return material  # type: ignore[no-any-return]


def material_from_pem(data: bytes | str, password: bytes | str | None = None) -> Material:
    """Load the key of a PEM document: its private key if it holds one, else
    its public key, else the public key of its certificate."""
    if isinstance(data, str):
        raw = data.encode("ascii", "replace")
    elif isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
    else:
        raise InvalidKey(f"PEM must be bytes or str, got {type(data).__name__}")
    secret = _password_bytes(password)
    try:
        if b"PRIVATE KEY-----" in raw:
            return _checked(serialization.load_pem_private_key(raw, password=secret))
        if b"PUBLIC KEY-----" in raw:
            if secret is not None:
                raise InvalidKey("a password was given for an unencrypted public key")
            return _checked(serialization.load_pem_public_key(raw))
        if b"-----BEGIN CERTIFICATE-----" in raw:
            if secret is not None:
                raise InvalidKey("a password was given for a certificate, which is never encrypted")
            return _checked(x509.load_pem_x509_certificate(raw).public_key())
    except _LOAD_ERRORS as exc:
        raise InvalidKey(f"cannot load PEM key: {_reason(exc)}") from None
    raise InvalidKey("no PEM key or certificate found")


def material_from_der(data: bytes, password: bytes | str | None = None) -> Material:
    """Load a DER private key, public key or certificate (tried in that order)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidKey(f"DER must be bytes, got {type(data).__name__}")
    raw = bytes(data)
    secret = _password_bytes(password)
    try:
        return _checked(serialization.load_der_private_key(raw, password=secret))
    except _LOAD_ERRORS as exc:
        first = exc
    if secret is None:
        try:
            return _checked(serialization.load_der_public_key(raw))
        except _LOAD_ERRORS:
            pass
        try:
            return _checked(x509.load_der_x509_certificate(raw).public_key())
        except _LOAD_ERRORS:
            pass
    raise InvalidKey(f"cannot load DER key: {_reason(first)}")


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]


def material_to_pem(
    material: Material, *, private: bool, password: bytes | str | None = None
) -> bytes:
    """PKCS#8 for private keys (encrypted when a password is given), SPKI else."""
    if isinstance(material, bytes):
        raise InvalidKey("a symmetric key has no PEM form")
    secret = _password_bytes(password)
    if private:
        if not describe_material(material)[2]:
            raise InvalidKey("this key has no private part to export")
        if secret is not None and not secret:
            raise InvalidKey("an empty password would leave the private key unencrypted")
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(secret)
            if secret is not None
            else serialization.NoEncryption()
        )
        try:
            return material.private_bytes(  # type: ignore[union-attr]
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
            )
        except ValueError as exc:  # e.g. a password longer than the format allows
            raise InvalidKey(f"cannot export the private key: {_reason(exc)}") from None
    if secret is not None:
        raise InvalidKey("a password only applies to a private key export")
    public = material.public_key() if describe_material(material)[2] else material  # type: ignore[union-attr]
    return public.public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
