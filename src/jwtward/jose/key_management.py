"""JWE key management (RFC 7518 §4): how the content encryption key travels.

Each function works on a :class:`~jwtward.Key` whose ``alg`` is a key
management algorithm: AES Key Wrap (A128KW/A192KW/A256KW, RFC 3394), AES-GCM
key wrap (A128GCMKW/A192GCMKW/A256GCMKW, ``iv`` and ``tag`` header
parameters), RSA-OAEP (SHA-1) and RSA-OAEP-256/384/512 (MGF1 with the same
hash, empty label), ``dir``, and ECDH-ES (direct or +A128KW/A192KW/A256KW) on
P-256, P-384, P-521, X25519 and X448 with the Concat KDF of RFC 7518 §4.6.2.

Every failure while recovering a CEK (a wrong key, a wrapped key that does not
unwrap, an IV or tag of the wrong length, a CEK of the wrong length for
``enc``, an ephemeral key off the curve or on another curve, an all-zero
X25519/X448 shared secret, a malformed ``epk``, ``apu`` or ``apv``) raises
:class:`~jwtward.errors.DecryptionFailed` with one fixed message, so nothing
tells the causes apart.

Decisions on what the standards leave open:

* AES Key Wrap refuses to wrap or unwrap a key shorter than 16 bytes. RFC 3394
  allows 8-byte inputs only by a special case, and no ``enc`` has a CEK that
  short.
* X25519/X448 with a low-order public key whose shared secret is all zeros is
  refused (RFC 7748 §6.1 allows the check; it stops a sender from forcing a
  known key). Other public keys the curve functions accept (twist points,
  non-canonical encodings) give the RFC 7748 result, as they carry no secret
  the sender did not choose.
* The recipient's ECDH key and the ``epk`` must be on the same curve; EC
  points are validated by pyca/cryptography when the ``epk`` is built.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, x448, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap,
    aes_key_wrap,
)

from jwtward.codecs.base64url import b64decode, b64encode
from jwtward.errors import (
    AlgorithmMismatch,
    DecodeError,
    DecryptionFailed,
    InvalidArgument,
    JWTWardError,
    KeyUsageError,
    UnsupportedAlgorithm,
)
from jwtward.jose.content_encryption import DECRYPTION_FAILED_MESSAGE, content_encryption
from jwtward.jose.jwk import material_from_jwk, material_to_jwk
from jwtward.jose.keys import Key
from jwtward.jose.material import Material

__all__ = [
    "MIN_WRAPPED_KEY_BYTES",
    "aes_gcm_unwrap",
    "aes_gcm_wrap",
    "aes_key_unwrap_cek",
    "aes_key_wrap_cek",
    "concat_kdf",
    "ecdh_es_agree",
    "ecdh_es_derive",
    "new_cek",
    "rsa_oaep_decrypt",
    "rsa_oaep_encrypt",
    "unwrap_cek",
    "wrap_cek",
]

# A CEK shorter than this is never wrapped or unwrapped (see the module docstring).
MIN_WRAPPED_KEY_BYTES = 16

_GCM_IV_BYTES = 12
_GCM_TAG_BYTES = 16

_KW_KEY_BYTES = {"A128KW": 16, "A192KW": 24, "A256KW": 32}
_GCMKW_ALGS = frozenset({"A128GCMKW", "A192GCMKW", "A256GCMKW"})
_OAEP_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "RSA-OAEP": hashes.SHA1,
    "RSA-OAEP-256": hashes.SHA256,
    "RSA-OAEP-384": hashes.SHA384,
    "RSA-OAEP-512": hashes.SHA512,
}
_ECDH_KW = {"ECDH-ES+A128KW": "A128KW", "ECDH-ES+A192KW": "A192KW", "ECDH-ES+A256KW": "A256KW"}

_EcdhPrivate = ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey | x448.X448PrivateKey
_EcdhPublic = ec.EllipticCurvePublicKey | x25519.X25519PublicKey | x448.X448PublicKey


def _failed() -> DecryptionFailed:
    return DecryptionFailed(DECRYPTION_FAILED_MESSAGE)


def _secret_of(key: Key) -> bytes:
    material = key.cryptography_key()
    if not isinstance(material, bytes):
        raise InvalidArgument(f"{key.alg} needs a symmetric key")
    return material


# -- AES Key Wrap (RFC 3394) ---------------------------------------------------


def aes_key_wrap_cek(kek: bytes, cek: bytes) -> bytes:
    """Wrap ``cek`` under ``kek`` with AES Key Wrap; short or ragged CEKs are refused."""
    if len(cek) < MIN_WRAPPED_KEY_BYTES or len(cek) % 8:
        raise InvalidArgument("AES Key Wrap needs a key of at least 16 bytes, in 8-byte blocks")
    return aes_key_wrap(kek, cek)


def aes_key_unwrap_cek(kek: bytes, wrapped: bytes) -> bytes:
    """The key inside ``wrapped``; any failure (or a key under 16 bytes) is DecryptionFailed."""
    if len(wrapped) < MIN_WRAPPED_KEY_BYTES + 8:
        raise _failed()
    with contextlib.suppress(InvalidUnwrap, ValueError):
        return aes_key_unwrap(kek, wrapped)
    raise _failed()


# -- AES-GCM key wrap (RFC 7518 §4.7) --------------------------------------------


def aes_gcm_wrap(kek: bytes, cek: bytes) -> tuple[bytes, dict[str, Any]]:
    """Encrypt ``cek`` with AES-GCM under a fresh 96-bit IV; ``iv`` and ``tag`` go in the header."""
    iv = os.urandom(_GCM_IV_BYTES)
    sealed = AESGCM(kek).encrypt(iv, cek, None)
    encrypted_key, tag = sealed[:-_GCM_TAG_BYTES], sealed[-_GCM_TAG_BYTES:]
    return encrypted_key, {"iv": b64encode(iv), "tag": b64encode(tag)}


def aes_gcm_unwrap(kek: bytes, encrypted_key: bytes, header: Mapping[str, Any]) -> bytes:
    """The CEK sealed by :func:`aes_gcm_wrap`, checked against the header's ``iv`` and ``tag``."""
    iv = _header_bytes(header, "iv")
    tag = _header_bytes(header, "tag")
    if len(iv) != _GCM_IV_BYTES or len(tag) != _GCM_TAG_BYTES:
        raise _failed()
    with contextlib.suppress(InvalidTag, ValueError):
        return AESGCM(kek).decrypt(iv, encrypted_key + tag, None)
    raise _failed()


def _header_bytes(header: Mapping[str, Any], name: str, *, required: bool = True) -> bytes:
    if name not in header and not required:
        return b""  # absent; a present null is malformed, as any non-string
    value = header.get(name)
    if not isinstance(value, str):
        raise _failed()
    with contextlib.suppress(DecodeError):
        return b64decode(value)
    raise _failed()


# -- RSA-OAEP (RFC 7518 §4.3) -----------------------------------------------------


def _oaep(alg: str) -> padding.OAEP:
    hash_cls = _OAEP_HASHES[alg]
    return padding.OAEP(mgf=padding.MGF1(hash_cls()), algorithm=hash_cls(), label=None)


def rsa_oaep_encrypt(key: Key, cek: bytes) -> bytes:
    """Encrypt ``cek`` to the RSA key with the OAEP variant its ``alg`` names."""
    material = key.cryptography_key()
    if isinstance(material, rsa.RSAPrivateKey):
        material = material.public_key()
    if key.alg not in _OAEP_HASHES or not isinstance(material, rsa.RSAPublicKey):
        raise InvalidArgument(f"{key.alg} is not an RSA-OAEP key")
    try:
        return material.encrypt(cek, _oaep(key.alg))
    except ValueError:
        raise InvalidArgument("the key is too long for this RSA key and OAEP hash") from None


def rsa_oaep_decrypt(key: Key, encrypted_key: bytes) -> bytes:
    """The key inside ``encrypted_key``; every failure is the one DecryptionFailed."""
    material = key.cryptography_key()
    if key.alg not in _OAEP_HASHES or not isinstance(material, rsa.RSAPrivateKey):
        raise KeyUsageError(f"{key.alg} decryption needs an RSA-OAEP private key")
    with contextlib.suppress(ValueError):
        return material.decrypt(encrypted_key, _oaep(key.alg))
    raise _failed()


# -- ECDH-ES (RFC 7518 §4.6) ---------------------------------------------------------


def concat_kdf(
    shared_secret: bytes, algorithm_id: str, key_bytes: int, *, apu: bytes = b"", apv: bytes = b""
) -> bytes:
    """The Concat KDF of NIST SP 800-56A as profiled by RFC 7518 §4.6.2 (SHA-256).

    AlgorithmID, PartyUInfo and PartyVInfo are each prefixed with their 32-bit
    big-endian length; SuppPubInfo is the key length in bits; SuppPrivInfo is empty.
    """
    alg_id = algorithm_id.encode("ascii")
    other_info = b"".join(
        (
            struct.pack(">I", len(alg_id)),
            alg_id,
            struct.pack(">I", len(apu)),
            apu,
            struct.pack(">I", len(apv)),
            apv,
            struct.pack(">I", key_bytes * 8),
        )
    )
    return ConcatKDFHash(hashes.SHA256(), key_bytes, other_info).derive(shared_secret)


def _exchange(private: _EcdhPrivate, public: Material) -> bytes:
    """Raw ECDH; the two keys must be on one curve, an all-zero secret is refused."""
    # pyca/cryptography's refusal of an all-zero X25519/X448 secret.
    with contextlib.suppress(ValueError):
        if isinstance(private, ec.EllipticCurvePrivateKey):
            if not (
                isinstance(public, ec.EllipticCurvePublicKey)
                and public.curve.name == private.curve.name
            ):
                raise _failed()
            return private.exchange(ec.ECDH(), public)
        if isinstance(private, x25519.X25519PrivateKey):
            if not isinstance(public, x25519.X25519PublicKey):
                raise _failed()
            return private.exchange(public)
        if not isinstance(public, x448.X448PublicKey):
            raise _failed()
        return private.exchange(public)
    raise _failed()


def ecdh_es_agree(key: Key, epk: object) -> bytes:
    """The raw shared secret of the recipient's private ``key`` and the sender's ``epk`` JWK."""
    private = key.cryptography_key()
    if not key.alg.startswith("ECDH-ES") or not isinstance(
        private, ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey | x448.X448PrivateKey
    ):
        raise KeyUsageError(f"{key.alg} decryption needs an ECDH-ES private key")
    if not isinstance(epk, Mapping) or epk.get("kty") not in ("EC", "OKP"):
        raise _failed()
    public = None
    with contextlib.suppress(JWTWardError, ValueError, TypeError):
        public = material_from_jwk(epk, public_only=True)
    if public is None:
        raise _failed()  # raised outside any handler: no __context__ to leak
    return _exchange(private, public)


def ecdh_es_derive(
    key: Key, epk: object, algorithm_id: str, key_bytes: int, *, apu: bytes = b"", apv: bytes = b""
) -> bytes:
    """The key the recipient derives from ``epk``: ECDH, then the Concat KDF."""
    return concat_kdf(ecdh_es_agree(key, epk), algorithm_id, key_bytes, apu=apu, apv=apv)


def _ecdh_public(key: Key) -> _EcdhPublic:
    material = key.cryptography_key()
    if isinstance(
        material, ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey | x448.X448PrivateKey
    ):
        material = material.public_key()
    if not isinstance(
        material, ec.EllipticCurvePublicKey | x25519.X25519PublicKey | x448.X448PublicKey
    ):
        raise InvalidArgument(f"{key.alg} needs an EC or X25519/X448 key")
    return material


def _ephemeral_for(public: _EcdhPublic) -> _EcdhPrivate:
    if isinstance(public, ec.EllipticCurvePublicKey):
        return ec.generate_private_key(public.curve)
    if isinstance(public, x25519.X25519PublicKey):
        return x25519.X25519PrivateKey.generate()
    return x448.X448PrivateKey.generate()


def _ecdh_es_send(
    key: Key, algorithm_id: str, key_bytes: int, apu: bytes, apv: bytes
) -> tuple[bytes, dict[str, Any]]:
    """A fresh ephemeral key on the recipient's curve: the derived key and the header params."""
    public = _ecdh_public(key)
    ephemeral = _ephemeral_for(public)
    try:
        shared = _exchange(ephemeral, public)
    except DecryptionFailed:
        raise InvalidArgument("the recipient key gives an all-zero shared secret") from None
    params: dict[str, Any] = {"epk": material_to_jwk(ephemeral.public_key(), private=False)}
    if apu:
        params["apu"] = b64encode(apu)
    if apv:
        params["apv"] = b64encode(apv)
    return concat_kdf(shared, algorithm_id, key_bytes, apu=apu, apv=apv), params


# -- the per-alg dispatch -------------------------------------------------------------


_KEY_MANAGEMENT_ALGS = frozenset(
    {*_KW_KEY_BYTES, *_GCMKW_ALGS, *_OAEP_HASHES, *_ECDH_KW, "dir", "ECDH-ES"}
)


def _check_key(key: Key) -> None:
    if key.alg not in _KEY_MANAGEMENT_ALGS:
        raise UnsupportedAlgorithm(f"{key.alg} is not a key management algorithm")


def wrap_cek(key: Key, cek: bytes, enc: str) -> tuple[bytes, dict[str, Any]]:
    """Encrypt a given ``cek`` to ``key``: the JWE Encrypted Key and extra header params.

    Only for algs that carry a CEK of the sender's choosing (key wrap, RSA-OAEP,
    ECDH-ES+A*KW); ``dir`` and ECDH-ES direct fix the CEK themselves: use
    :func:`new_cek` for every alg.
    """
    _check_key(key)
    if len(cek) != content_encryption(enc).key_size:
        raise InvalidArgument(
            f"the CEK must have {content_encryption(enc).key_size} bytes for {enc}"
        )
    alg = key.alg
    if alg in _KW_KEY_BYTES:
        return aes_key_wrap_cek(_secret_of(key), cek), {}
    if alg in _GCMKW_ALGS:
        return aes_gcm_wrap(_secret_of(key), cek)
    if alg in _OAEP_HASHES:
        return rsa_oaep_encrypt(key, cek), {}
    if alg in _ECDH_KW:
        kw = _ECDH_KW[alg]
        kek, params = _ecdh_es_send(key, alg, _KW_KEY_BYTES[kw], b"", b"")
        return aes_key_wrap_cek(kek, cek), params
    raise InvalidArgument(f"{alg} does not wrap a CEK of the sender's choosing; use new_cek")


def new_cek(
    key: Key, enc: str, *, apu: bytes = b"", apv: bytes = b""
) -> tuple[bytes, bytes, dict[str, Any]]:
    """A CEK for ``enc`` under ``key``: ``(cek, encrypted_key, extra_header_params)``.

    ``dir`` uses the key itself, ECDH-ES derives the CEK (AlgorithmID = enc);
    every other alg wraps a fresh random CEK. ``apu``/``apv`` apply to ECDH-ES only.
    """
    _check_key(key)
    size = content_encryption(enc).key_size
    alg = key.alg
    if (apu or apv) and not alg.startswith("ECDH-ES"):
        raise InvalidArgument("apu and apv apply to ECDH-ES only")
    if alg == "dir":
        secret = _secret_of(key)
        if len(secret) != size:
            raise InvalidArgument(f"a dir key for {enc} must have {size} bytes")
        return secret, b"", {}
    if alg == "ECDH-ES":
        cek, params = _ecdh_es_send(key, enc, size, apu, apv)
        return cek, b"", params
    cek = os.urandom(size)
    if alg in _ECDH_KW:
        kw = _ECDH_KW[alg]
        kek, params = _ecdh_es_send(key, alg, _KW_KEY_BYTES[kw], apu, apv)
        return cek, aes_key_wrap_cek(kek, cek), params
    encrypted_key, params = wrap_cek(key, cek, enc)
    return cek, encrypted_key, params


def unwrap_cek(key: Key, encrypted_key: bytes, header: Mapping[str, Any], enc: str) -> bytes:
    """The CEK for ``enc`` that ``encrypted_key`` (and the header's params) carry to ``key``.

    ``header["alg"]`` must be the key's alg (AlgorithmMismatch otherwise; the
    alg is public). Every other failure is the one DecryptionFailed.
    """
    _check_key(key)
    alg = key.alg
    if header.get("alg") != alg:
        raise AlgorithmMismatch("the token's alg is not the algorithm of its key")
    size = content_encryption(enc).key_size
    if alg == "dir":
        secret = _secret_of(key)
        if encrypted_key or len(secret) != size:
            raise _failed()
        return secret
    if alg == "ECDH-ES" or alg in _ECDH_KW:
        apu = _header_bytes(header, "apu", required=False)
        apv = _header_bytes(header, "apv", required=False)
        if alg == "ECDH-ES":
            if encrypted_key:
                raise _failed()
            return ecdh_es_derive(key, header.get("epk"), enc, size, apu=apu, apv=apv)
        kek = ecdh_es_derive(
            key, header.get("epk"), alg, _KW_KEY_BYTES[_ECDH_KW[alg]], apu=apu, apv=apv
        )
        cek = aes_key_unwrap_cek(kek, encrypted_key)
    elif alg in _KW_KEY_BYTES:
        cek = aes_key_unwrap_cek(_secret_of(key), encrypted_key)
    elif alg in _GCMKW_ALGS:
        cek = aes_gcm_unwrap(_secret_of(key), encrypted_key, header)
    else:
        cek = rsa_oaep_decrypt(key, encrypted_key)
    if len(cek) != size:
        raise _failed()
    return cek
