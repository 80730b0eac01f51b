"""JWE content encryption (RFC 7518 §5): the ``enc`` algorithms and their AEAD.

Two families, both on pyca/cryptography:

* ``A128GCM`` / ``A192GCM`` / ``A256GCM``: AES-GCM with a 96-bit IV and a
  128-bit tag (RFC 7518 §5.3). Other IV or tag sizes are never accepted.
* ``A128CBC-HS256`` / ``A192CBC-HS384`` / ``A256CBC-HS512``: AES-CBC with
  PKCS#7 padding, authenticated by HMAC (RFC 7518 §5.2). The CEK is
  ``MAC_KEY || ENC_KEY``; the tag is the first half of
  ``HMAC(MAC_KEY, AAD || IV || ciphertext || AL)`` with ``AL`` the AAD length
  in bits as a 64-bit big-endian integer. The tag is compared in constant
  time *before* anything is decrypted, and the padding is looked at only
  after the tag has passed.

Every decryption failure raises :class:`~jwtward.errors.DecryptionFailed`
with one fixed message, whatever check failed, so no caller (and no client
watching the answers) can tell a bad tag from bad padding or a wrong length:
there is no padding or MAC oracle to query. An unknown ``enc`` is a header
refusal (:class:`~jwtward.errors.InvalidHeader`), decided before any key is
touched.
"""

from __future__ import annotations

import contextlib
import hmac
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jwtward.errors import DecryptionFailed, InvalidHeader, InvalidKey
from jwtward.jose.algorithms import describe

__all__ = [
    "CONTENT_ENCRYPTIONS",
    "DECRYPTION_FAILED_MESSAGE",
    "ContentEncryption",
    "content_encryption",
    "decrypt",
    "encrypt",
    "generate_cek",
]

DECRYPTION_FAILED_MESSAGE = "token decryption failed"

_AES_BLOCK_BITS = 128


@dataclass(frozen=True, slots=True)
class ContentEncryption:
    """What one ``enc`` algorithm needs: sizes in bytes, and its MAC hash.

    ``mac_hash`` names the HMAC hash of a CBC-HMAC composite and is ``None``
    for AES-GCM, whose tag comes from GHASH.
    """

    name: str
    key_size: int
    iv_size: int
    tag_size: int
    mac_hash: str | None = None

    @property
    def is_cbc_hmac(self) -> bool:
        return self.mac_hash is not None


_ALL = (
    ContentEncryption("A128GCM", key_size=16, iv_size=12, tag_size=16),
    ContentEncryption("A192GCM", key_size=24, iv_size=12, tag_size=16),
    ContentEncryption("A256GCM", key_size=32, iv_size=12, tag_size=16),
    ContentEncryption("A128CBC-HS256", key_size=32, iv_size=16, tag_size=16, mac_hash="sha256"),
    ContentEncryption("A192CBC-HS384", key_size=48, iv_size=16, tag_size=24, mac_hash="sha384"),
    ContentEncryption("A256CBC-HS512", key_size=64, iv_size=16, tag_size=32, mac_hash="sha512"),
)

CONTENT_ENCRYPTIONS: dict[str, ContentEncryption] = {e.name: e for e in _ALL}

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def content_encryption(enc: object) -> ContentEncryption:
    """The registry entry for ``enc``, or :class:`InvalidHeader` for any other value."""
    if isinstance(enc, str):
        found = CONTENT_ENCRYPTIONS.get(enc)
        if found is not None:
            return found
    raise InvalidHeader(f"unsupported enc {describe(enc)}")


def generate_cek(enc: str) -> bytes:
    """A fresh random content encryption key of the length ``enc`` requires."""
    return os.urandom(content_encryption(enc).key_size)


def encrypt(enc: str, cek: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes, bytes]:
    """Encrypt ``plaintext`` under ``cek``; returns ``(iv, ciphertext, tag)``.

    The IV is fresh from the OS random source on every call: with GCM a
    repeated IV under one key would leak the authentication key.
    """
    spec = content_encryption(enc)
    return _encrypt_with_iv(spec.name, cek, os.urandom(spec.iv_size), plaintext, aad)


def _encrypt_with_iv(
    enc: str, cek: bytes, iv: bytes, plaintext: bytes, aad: bytes
) -> tuple[bytes, bytes, bytes]:
    """Encrypt with a given IV. Internal: only known-answer tests choose the IV."""
    spec = content_encryption(enc)
    if len(cek) != spec.key_size:
        raise InvalidKey(f"{spec.name} needs a {spec.key_size}-byte CEK, got {len(cek)} bytes")
    if len(iv) != spec.iv_size:
        raise InvalidKey(f"{spec.name} needs a {spec.iv_size}-byte IV, got {len(iv)} bytes")
    if spec.mac_hash is None:
        sealed = AESGCM(cek).encrypt(iv, plaintext, aad)
        return iv, sealed[: -spec.tag_size], sealed[-spec.tag_size :]
    mac_key, enc_key = _split_cek(spec, cek)
    padder = padding.PKCS7(_AES_BLOCK_BITS).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    return (
        iv,
        ciphertext,
        _cbc_hmac_tag(spec, spec.mac_hash, mac_key, aad=aad, iv=iv, ciphertext=ciphertext),
    )


def decrypt(
    enc: str | ContentEncryption,
    cek: bytes,
    iv: bytes,
    ciphertext: bytes,
    tag: bytes,
    *,
    aad: bytes,
) -> bytes:
    """Authenticate and decrypt; the plaintext, or :class:`DecryptionFailed`.

    ``aad`` is keyword-only: it is the ASCII of the encoded protected header
    (RFC 7516 §5.2), and naming it keeps it from being swapped with the tag.

    An unknown ``enc`` is refused as a header (:class:`InvalidHeader`); every
    other failure is one :class:`DecryptionFailed` with one message.
    """
    spec = enc if isinstance(enc, ContentEncryption) else content_encryption(enc)
    if len(cek) != spec.key_size or len(iv) != spec.iv_size or len(tag) != spec.tag_size:
        raise DecryptionFailed(DECRYPTION_FAILED_MESSAGE)
    if spec.mac_hash is None:
        # Caught, then raised outside the handler: no __context__ on the
        # error tells a log which check failed.
        try:
            return AESGCM(cek).decrypt(iv, ciphertext + tag, aad)
        except (InvalidTag, ValueError):
            pass
        raise DecryptionFailed(DECRYPTION_FAILED_MESSAGE)
    return _cbc_hmac_decrypt(
        spec, spec.mac_hash, cek, iv=iv, ciphertext=ciphertext, tag=tag, aad=aad
    )


def _cbc_hmac_decrypt(
    spec: ContentEncryption,
    hash_name: str,
    cek: bytes,
    *,
    iv: bytes,
    ciphertext: bytes,
    tag: bytes,
    aad: bytes,
) -> bytes:
    """RFC 7518 §5.2.2.2: the MAC first, in constant time; padding only after it passed."""
    mac_key, enc_key = _split_cek(spec, cek)
    expected = _cbc_hmac_tag(spec, hash_name, mac_key, aad=aad, iv=iv, ciphertext=ciphertext)
    if not hmac.compare_digest(expected, tag):
        raise DecryptionFailed(DECRYPTION_FAILED_MESSAGE)
    block = _AES_BLOCK_BITS // 8
    if not ciphertext or len(ciphertext) % block:
        raise DecryptionFailed(DECRYPTION_FAILED_MESSAGE)
    decryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(_AES_BLOCK_BITS).unpadder()
    with contextlib.suppress(ValueError):
        return unpadder.update(padded) + unpadder.finalize()
    raise DecryptionFailed(DECRYPTION_FAILED_MESSAGE)


def _split_cek(spec: ContentEncryption, cek: bytes) -> tuple[bytes, bytes]:
    """``MAC_KEY || ENC_KEY``: the first half authenticates, the second encrypts."""
    half = spec.key_size // 2
    return cek[:half], cek[half:]


def _cbc_hmac_tag(
    spec: ContentEncryption,
    hash_name: str,
    mac_key: bytes,
    *,
    aad: bytes,
    iv: bytes,
    ciphertext: bytes,
) -> bytes:
    """The first ``tag_size`` bytes of ``HMAC(MAC_KEY, AAD || IV || ciphertext || AL)``."""
    mac = crypto_hmac.HMAC(mac_key, _HASHES[hash_name]())
    mac.update(aad)
    mac.update(iv)
    mac.update(ciphertext)
    mac.update((len(aad) * 8).to_bytes(8, "big"))
    return mac.finalize()[: spec.tag_size]
