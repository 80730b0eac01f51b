"""Adversarial tests of the JWE layer and nested JWTs (DESIGN.md invariants 1, 3, 5, 8).

Each test mounts one attack and asserts the exact jwtward error class (``type(e)
is X``, not a subclass). Wherever it can, the attacker's token is encrypted
properly under the legitimate key, so that the only thing wrong with it is the
attack under test: a refusal for another reason would not prove the defence.
Tokens are forged here from the AES, HMAC and RSA primitives directly, not with
jwtward's own, so a forgery does not inherit a bug of the code under test.

Once a key is chosen, every cryptographic failure must be one
:class:`~jwtward.errors.DecryptionFailed` with one message and no chained
exception (no padding, MAC or curve-check oracle); :func:`decryption_failed`
checks all three, and ``test_every_decryption_failure_reads_the_same`` checks
that the messages of all of them are one string.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap

import jwtward.jwe as jwe_module
from jwtward import Key, KeySet, Policy, jwe, jws, jwt
from jwtward.errors import (
    AlgorithmMismatch,
    DecryptionFailed,
    ExpiredToken,
    InvalidArgument,
    InvalidHeader,
    InvalidSignature,
    InvalidType,
    JWTWardError,
    KeyNotFound,
    KeyUsageError,
    MalformedToken,
    TokenTooLarge,
)
from jwtward.jose import content_encryption as content_module
from jwtward.jose.key_management import unwrap_cek

FAILED_MESSAGE = "token decryption failed"
ENCS = (
    "A128GCM",
    "A192GCM",
    "A256GCM",
    "A128CBC-HS256",
    "A192CBC-HS384",
    "A256CBC-HS512",
)
# enc -> (CEK bytes, IV bytes, tag bytes, MAC hash for CBC-HMAC or None)
ENC_SPEC: dict[str, tuple[int, int, int, Callable[[], Any] | None]] = {
    "A128GCM": (16, 12, 16, None),
    "A192GCM": (24, 12, 16, None),
    "A256GCM": (32, 12, 16, None),
    "A128CBC-HS256": (32, 16, 16, hashlib.sha256),
    "A192CBC-HS384": (48, 16, 24, hashlib.sha384),
    "A256CBC-HS512": (64, 16, 32, hashlib.sha512),
}


# -- forging tokens with primitives, independent of jwtward ---------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def header_segment(header: dict[str, Any] | str) -> str:
    text = header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))
    return b64(text.encode())


def seal(
    enc: str, cek: bytes, plaintext: bytes, aad: str, *, padded: bytes | None = None
) -> tuple[bytes, bytes, bytes]:
    """(iv, ciphertext, tag) for ``enc``; ``padded`` replaces the CBC padding step."""
    _size, iv_size, tag_size, mac_hash = ENC_SPEC[enc]
    iv = os.urandom(iv_size)
    if mac_hash is None:
        sealed = AESGCM(cek).encrypt(iv, plaintext, aad.encode("ascii"))
        return iv, sealed[:-16], sealed[-16:]
    half = len(cek) // 2
    mac_key, enc_key = cek[:half], cek[half:]
    if padded is None:
        padder = sym_padding.PKCS7(128).padder()
        padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    aad_bytes = aad.encode("ascii")
    mac_input = aad_bytes + iv + ciphertext + (len(aad_bytes) * 8).to_bytes(8, "big")
    tag = hmac.new(mac_key, mac_input, mac_hash).digest()[:tag_size]
    return iv, ciphertext, tag


def forge(
    header: dict[str, Any] | str,
    cek: bytes,
    plaintext: bytes,
    *,
    encrypted_key: bytes = b"",
    enc: str | None = None,
    padded: bytes | None = None,
) -> str:
    """A compact JWE with this exact header, properly encrypted under ``cek``."""
    protected = header_segment(header)
    if enc is None:
        assert isinstance(header, dict)
        enc = header["enc"]
    iv, ciphertext, tag = seal(enc, cek, plaintext, protected, padded=padded)
    return ".".join((protected, b64(encrypted_key), b64(iv), b64(ciphertext), b64(tag)))


def replace_segment(token: str, index: int, segment: str) -> str:
    parts = token.split(".")
    parts[index] = segment
    return ".".join(parts)


def rewrite_header(token: str, **changes: Any) -> str:
    """The token with members of its protected header changed (None removes)."""
    header = json.loads(unb64(token.split(".", maxsplit=1)[0]))
    for name, value in changes.items():
        if value is None:
            header.pop(name, None)
        else:
            header[name] = value
    return replace_segment(token, 0, header_segment(header))


def flip_bit(data: bytes, index: int = 0) -> bytes:
    changed = bytearray(data)
    changed[index] ^= 0x01
    return bytes(changed)


# -- assertions ------------------------------------------------------------------------


def refused(error: type[JWTWardError], call: Callable[[], object]) -> JWTWardError:
    """Run ``call`` and require exactly ``error`` (not a subclass, not a parent)."""
    with pytest.raises(JWTWardError) as info:
        call()
    assert type(info.value) is error, f"expected {error.__name__}, got {info.value!r}"
    return info.value


def decryption_failed(call: Callable[[], object]) -> str:
    """The one error, the one message, and nothing chained that names the check that failed."""
    error = refused(DecryptionFailed, call)
    assert str(error) == FAILED_MESSAGE
    assert error.__context__ is None
    assert error.__cause__ is None
    return str(error)


# -- keys (generated once per module) ------------------------------------------------


@pytest.fixture(scope="module")
def dir_key() -> Key:
    return Key.generate("dir", enc="A256GCM", kid="dir-1")


@pytest.fixture(scope="module")
def kw_key() -> Key:
    return Key.generate("A256KW", kid="kw-1")


@pytest.fixture(scope="module")
def rsa_key() -> Key:
    return Key.generate("RSA-OAEP-256", kid="rsa-1")


@pytest.fixture(scope="module")
def sign_key() -> Key:
    return Key.generate("ES256", kid="sig-1")


def secret_of(key: Key) -> bytes:
    return unb64(key.to_jwk(private=True)["k"])


# -- compression bombs --------------------------------------------------------------

BOMB_EXPANDED = 100 * 1024 * 1024


@pytest.fixture(scope="module")
def deflate_bomb() -> bytes:
    """About 100 KB of raw DEFLATE (RFC 1951, as RFC 7516 ``zip: DEF``) inflating to 100 MB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1024 * 1024)
    stream = b"".join(packer.compress(chunk) for _ in range(BOMB_EXPANDED // len(chunk)))
    stream += packer.flush()
    assert 50_000 < len(stream) < 250_000
    return stream


def _spy(monkeypatch: pytest.MonkeyPatch, target: Any, name: str, calls: list[str]) -> None:
    original = getattr(target, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(f"{getattr(target, '__name__', target)}.{name}")
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, spy)


@pytest.fixture
def work_spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records any inflation, key unwrapping or content decryption that runs."""
    calls: list[str] = []
    _spy(monkeypatch, zlib, "decompress", calls)
    _spy(monkeypatch, zlib, "decompressobj", calls)
    _spy(monkeypatch, jwe_module, "unwrap_cek", calls)
    _spy(monkeypatch, jwe_module, "_decrypt_parts", calls)
    _spy(monkeypatch, content_module, "decrypt", calls)
    _spy(monkeypatch, AESGCM, "decrypt", calls)
    return calls


def test_work_spy_sees_honest_work(dir_key: Key, work_spy: list[str]) -> None:
    """The control for the spy: a token that decrypts is seen unwrapping and decrypting."""
    token = jwe.encrypt(b"fine", dir_key)
    work_spy.clear()
    assert jwe.decrypt(token, dir_key) == b"fine"
    assert "jwtward.jwe._decrypt_parts" in work_spy
    assert "jwtward.jwe.unwrap_cek" in work_spy
    assert "jwtward.jose.content_encryption.decrypt" in work_spy
    assert "AESGCM.decrypt" in work_spy
    before = len(work_spy)
    zlib.decompress(zlib.compress(b"x"))
    assert work_spy[before:] == ["zlib.decompress"]


def _timed_refusal(error: type[JWTWardError], call: Callable[[], object]) -> float:
    """The best of three timings of a refusal (one run of a busy host is noise)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        refused(error, call)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize(
    "route", [("dir", "A256GCM"), ("A256KW", "A128CBC-HS256"), ("A256KW", "A256GCM")], ids=str
)
def test_deflate_bomb_is_refused_before_any_work(
    route: tuple[str, str],
    dir_key: Key,
    kw_key: Key,
    deflate_bomb: bytes,
    work_spy: list[str],
) -> None:
    """zip is refused on sight: nothing is unwrapped, decrypted or inflated, nothing allocated."""
    alg, enc = route
    key = dir_key if alg == "dir" else kw_key
    cek = secret_of(key) if alg == "dir" else os.urandom(ENC_SPEC[enc][0])
    wrapped = b"" if alg == "dir" else aes_key_wrap(secret_of(key), cek)
    header = {"alg": alg, "enc": enc, "kid": key.kid, "zip": "DEF"}
    token = forge(header, cek, deflate_bomb, encrypted_key=wrapped)
    limit = len(token) + 1
    tracemalloc.start()
    try:
        elapsed = _timed_refusal(InvalidHeader, lambda: jwe.decrypt(token, key, max_length=limit))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 0.010
    assert peak < 5 * 1024 * 1024
    assert work_spy == []
    # At the default length bound the bomb never even reaches the header.
    refused(TokenTooLarge, lambda: jwe.decrypt(token, key))
    assert work_spy == []


def test_small_zip_token_is_refused_too(dir_key: Key) -> None:
    """Not a matter of size: any zip, even a well-behaved one, is refused."""
    header = {"alg": "dir", "enc": "A256GCM", "zip": "DEF"}
    packed = zlib.compress(b'{"sub":"x"}')[2:-4]
    token = forge(header, secret_of(dir_key), packed)
    error = refused(InvalidHeader, lambda: jwe.decrypt(token, dir_key))
    assert "zip" in str(error)


# -- refused algorithms --------------------------------------------------------------------

PBES2 = ("PBES2-HS256+A128KW", "PBES2-HS384+A192KW", "PBES2-HS512+A256KW")


@pytest.mark.parametrize("alg", PBES2)
def test_pbes2_with_a_huge_iteration_count_is_refused_at_once(
    alg: str, kw_key: Key, work_spy: list[str]
) -> None:
    header = {"alg": alg, "enc": "A256GCM", "p2s": b64(os.urandom(16)), "p2c": 10**9}
    token = forge(header, os.urandom(32), b"x", encrypted_key=os.urandom(40))
    assert _timed_refusal(InvalidHeader, lambda: jwe.decrypt(token, kw_key)) < 0.010
    assert work_spy == []


def test_rsa1_5_is_refused(rsa_key: Key) -> None:
    header = {"alg": "RSA1_5", "enc": "A128CBC-HS256", "kid": rsa_key.kid}
    token = forge(header, os.urandom(32), b"x", encrypted_key=os.urandom(256))
    refused(InvalidHeader, lambda: jwe.decrypt(token, rsa_key))


@pytest.mark.parametrize("spelling", ["none", "None", "NONE", "nOnE", "NoNe"])
def test_alg_none_is_refused_in_every_spelling(spelling: str, dir_key: Key) -> None:
    token = forge({"alg": spelling, "enc": "A256GCM"}, secret_of(dir_key), b"x")
    refused(InvalidHeader, lambda: jwe.decrypt(token, dir_key))


@pytest.mark.parametrize("alg", ["HS256", "RS256"])
def test_signature_alg_in_a_five_part_token_is_refused(alg: str, dir_key: Key) -> None:
    token = forge({"alg": alg, "enc": "A256GCM"}, secret_of(dir_key), b"x")
    refused(InvalidHeader, lambda: jwe.decrypt(token, dir_key))


# -- ECDH-ES ephemeral keys ---------------------------------------------------------------

EC_CURVES = ("P-256", "P-384", "P-521")


@pytest.fixture(scope="module")
def ecdh_keys() -> dict[str, Key]:
    return {
        crv: Key.generate("ECDH-ES", crv=crv, kid=f"ecdh-{crv}")
        for crv in (*EC_CURVES, "X25519", "X448")
    }


@pytest.fixture
def unwrap_spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """How each CEK recovery ended: 'refused' or 'unwrapped'.

    A tampered header also breaks the tag, so the refusal alone would not show
    that the ephemeral key itself was rejected; this shows where it happened.
    """
    outcomes: list[str] = []
    original = unwrap_cek

    def spy(*args: Any, **kwargs: Any) -> bytes:
        try:
            cek = original(*args, **kwargs)
        except DecryptionFailed:
            outcomes.append("refused")
            raise
        outcomes.append("unwrapped")
        return cek

    monkeypatch.setattr(jwe_module, "unwrap_cek", spy)
    return outcomes


def _epk_of(token: str) -> dict[str, Any]:
    epk: dict[str, Any] = json.loads(unb64(token.split(".", maxsplit=1)[0]))["epk"]
    return epk


def _bump(coordinate: str) -> str:
    raw = unb64(coordinate)
    value = int.from_bytes(raw, "big") + 1
    return b64(value.to_bytes(len(raw), "big"))


@pytest.mark.parametrize("crv", EC_CURVES)
@pytest.mark.parametrize("coordinate", ["x", "y"])
def test_epk_off_the_curve_is_refused(
    crv: str, coordinate: str, ecdh_keys: dict[str, Key], unwrap_spy: list[str]
) -> None:
    key = ecdh_keys[crv]
    token = jwe.encrypt(b"secret", key.public_key())
    epk = _epk_of(token)
    epk[coordinate] = _bump(epk[coordinate])
    decryption_failed(lambda: jwe.decrypt(rewrite_header(token, epk=epk), key))
    assert unwrap_spy == ["refused"]


def test_untampered_ecdh_token_unwraps(ecdh_keys: dict[str, Key], unwrap_spy: list[str]) -> None:
    """The control for the spy: an honest token reaches 'unwrapped'."""
    key = ecdh_keys["P-256"]
    assert jwe.decrypt(jwe.encrypt(b"secret", key.public_key()), key) == b"secret"
    assert unwrap_spy == ["unwrapped"]


@pytest.mark.parametrize(
    ("recipient", "sender"),
    [
        ("P-256", "P-384"),
        ("P-384", "P-521"),
        ("P-521", "P-256"),
        ("X25519", "X448"),
        ("X448", "X25519"),
        ("P-256", "X25519"),
        ("X25519", "P-256"),
    ],
)
def test_epk_on_another_curve_is_refused(
    recipient: str, sender: str, ecdh_keys: dict[str, Key], unwrap_spy: list[str]
) -> None:
    key = ecdh_keys[recipient]
    foreign_epk = _epk_of(jwe.encrypt(b"x", ecdh_keys[sender].public_key()))
    unwrap_spy.clear()
    token = jwe.encrypt(b"secret", key.public_key())
    decryption_failed(lambda: jwe.decrypt(rewrite_header(token, epk=foreign_epk), key))
    assert unwrap_spy == ["refused"]


ZERO_X25519 = b64(bytes(32))
# A point of order 8 on Curve25519 (RFC 7748 §6.1 low-order points): the shared secret is zero.
ORDER_8_X25519 = b64(
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
)


@pytest.mark.parametrize(
    "epk",
    [
        pytest.param({"kty": "OKP", "crv": "X25519", "x": ZERO_X25519}, id="x25519-zero"),
        pytest.param({"kty": "OKP", "crv": "X25519", "x": ORDER_8_X25519}, id="x25519-order8"),
        pytest.param({"kty": "RSA", "n": b64(b"\xff" * 256), "e": "AQAB"}, id="kty-rsa"),
        pytest.param({"kty": "oct", "k": b64(bytes(32))}, id="kty-oct"),
        pytest.param({"crv": "X25519", "x": ZERO_X25519}, id="no-kty"),
        pytest.param({"kty": "OKP", "crv": "X25519"}, id="no-x"),
        pytest.param({"kty": "OKP", "crv": "X25519", "x": "not base64!"}, id="x-not-b64"),
        pytest.param({"kty": "OKP", "crv": "X25519", "x": b64(bytes(31))}, id="x-short"),
        pytest.param({"kty": "OKP", "crv": "X25519", "x": 7}, id="x-number"),
        pytest.param("OKP X25519", id="string"),
        pytest.param([ZERO_X25519], id="list"),
        pytest.param(None, id="missing"),
    ],
)
def test_bad_x25519_epk_is_refused(
    epk: Any, ecdh_keys: dict[str, Key], unwrap_spy: list[str]
) -> None:
    key = ecdh_keys["X25519"]
    token = jwe.encrypt(b"secret", key.public_key())
    unwrap_spy.clear()
    decryption_failed(lambda: jwe.decrypt(rewrite_header(token, epk=epk), key))
    assert unwrap_spy == ["refused"]


P25519 = 2**255 - 19
P448 = 2**448 - 2**224 - 1


@pytest.mark.parametrize(
    ("crv", "u"),
    [
        ("X25519", 0),
        ("X25519", 1),
        ("X25519", P25519 - 1),
        ("X25519", P25519),
        ("X25519", P25519 + 1),
        ("X448", 0),
        ("X448", 1),
        ("X448", P448 - 1),
    ],
    ids=[
        "x25519-0",
        "x25519-1",
        "x25519-p-1",
        "x25519-p",
        "x25519-p+1",
        "x448-0",
        "x448-1",
        "x448-p-1",
    ],
)
def test_low_order_montgomery_points_are_refused(
    crv: str, u: int, ecdh_keys: dict[str, Key], unwrap_spy: list[str]
) -> None:
    """Points whose shared secret is all zeros (RFC 7748 §6): a sender-chosen known key."""
    key = ecdh_keys[crv]
    size = 32 if crv == "X25519" else 56
    epk = {"kty": "OKP", "crv": crv, "x": b64(u.to_bytes(size, "little"))}
    token = jwe.encrypt(b"secret", key.public_key())
    unwrap_spy.clear()
    decryption_failed(lambda: jwe.decrypt(rewrite_header(token, epk=epk), key))
    assert unwrap_spy == ["refused"]


def test_epk_with_a_private_member_is_refused(
    ecdh_keys: dict[str, Key], unwrap_spy: list[str]
) -> None:
    """An honest ephemeral key, but carrying a private part: not a public key, refused."""
    key = ecdh_keys["X25519"]
    token = jwe.encrypt(b"secret", key.public_key())
    epk = {**_epk_of(token), "d": key.to_jwk(private=True)["d"]}
    unwrap_spy.clear()
    decryption_failed(lambda: jwe.decrypt(rewrite_header(token, epk=epk), key))
    assert unwrap_spy == ["refused"]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"y": None}, id="no-y"),
        pytest.param({"crv": "P-999"}, id="unknown-crv"),
        pytest.param({"kty": "OKP"}, id="kty-okp"),
        pytest.param({"x": "AA"}, id="x-short"),
    ],
)
def test_malformed_ec_epk_is_refused(
    change: dict[str, Any], ecdh_keys: dict[str, Key], unwrap_spy: list[str]
) -> None:
    key = ecdh_keys["P-256"]
    token = jwe.encrypt(b"secret", key.public_key())
    epk = _epk_of(token)
    for name, value in change.items():
        if value is None:
            del epk[name]
        else:
            epk[name] = value
    unwrap_spy.clear()
    decryption_failed(lambda: jwe.decrypt(rewrite_header(token, epk=epk), key))
    assert unwrap_spy == ["refused"]


# -- tampering once the key is chosen: one error, one message ---------------------------


def _mutations(
    *,
    dir_keys: dict[str, Key],
    kw_key: Key,
    rsa_key: Key,
    ecdh_key: Key,
    other_rsa: Key,
    gcmkw_key: Key,
) -> Iterator[tuple[str, str, Key]]:
    """(label, token, key): each a token that must fail with the one DecryptionFailed."""
    for enc in ENCS:
        key = dir_keys[enc]
        token = jwe.encrypt(b"attack at dawn, or a little later", key)
        head, ek, iv_s, ct_s, tag_s = token.split(".")
        iv, ct, tag = unb64(iv_s), unb64(ct_s), unb64(tag_s)
        yield f"{enc}-tag-truncated", replace_segment(token, 4, b64(tag[:-1])), key
        yield f"{enc}-tag-halved", replace_segment(token, 4, b64(tag[: len(tag) // 2])), key
        yield f"{enc}-tag-extended", replace_segment(token, 4, b64(tag + b"\x00")), key
        yield f"{enc}-tag-empty", replace_segment(token, 4, ""), key
        yield f"{enc}-tag-flipped", replace_segment(token, 4, b64(flip_bit(tag))), key
        yield f"{enc}-tag-last-bit", replace_segment(token, 4, b64(flip_bit(tag, -1))), key
        yield f"{enc}-iv-truncated", replace_segment(token, 2, b64(iv[:-1])), key
        yield f"{enc}-iv-empty", replace_segment(token, 2, ""), key
        wrong_iv = os.urandom(16 if len(iv) == 12 else 12)
        yield f"{enc}-iv-wrong-length", replace_segment(token, 2, b64(wrong_iv)), key
        yield f"{enc}-iv-flipped", replace_segment(token, 2, b64(flip_bit(iv))), key
        yield f"{enc}-ct-flipped", replace_segment(token, 3, b64(flip_bit(ct))), key
        yield f"{enc}-ct-last-flipped", replace_segment(token, 3, b64(flip_bit(ct, -1))), key
        yield f"{enc}-ct-truncated", replace_segment(token, 3, b64(ct[:-1])), key
        yield f"{enc}-ct-empty", replace_segment(token, 3, ""), key
        yield f"{enc}-ct-not-b64", replace_segment(token, 3, ct_s[:-1] + "!"), key
        yield f"{enc}-aad-changed", rewrite_header(token, typ="JWT"), key
        yield f"{enc}-ek-for-dir", replace_segment(token, 1, b64(os.urandom(40))), key
        assert ek == "" and head
        cek = secret_of(key)
        header = {"alg": "dir", "enc": enc, "kid": key.kid}
        if ENC_SPEC[enc][3] is not None:
            # A valid MAC over ciphertext whose padding is wrong: only the key
            # holder could make this, and it must still read as the same failure.
            for label, padded in (
                ("zero", b"sixteen bytes!!\x00"),
                ("too-long", b"sixteen bytes!!\x11"),
                ("inconsistent", b"fourteen bytes\x01\x02"),
                ("whole-block-bad", bytes([16] * 15) + b"\x0f"),
            ):
                bad = forge(header, cek, b"", padded=padded)
                yield f"{enc}-padding-{label}", bad, key
            # Classic padding-oracle move: flip the last IV byte with a stale MAC.
            forged = forge(header, cek, b"0123456789")
            yield (
                f"{enc}-cbc-iv-edit",
                replace_segment(forged, 2, b64(flip_bit(unb64(forged.split(".")[2]), -1))),
                key,
            )
    # Key wrapping: wrong lengths, wrong CEK sizes, wrong keys.
    kek = secret_of(kw_key)
    token = jwe.encrypt(b"x", kw_key)
    wrapped = unb64(token.split(".")[1])
    yield "kw-ek-short", replace_segment(token, 1, b64(wrapped[:-8])), kw_key
    yield "kw-ek-long", replace_segment(token, 1, b64(wrapped + bytes(8))), kw_key
    yield "kw-ek-ragged", replace_segment(token, 1, b64(wrapped[:-1])), kw_key
    yield "kw-ek-empty", replace_segment(token, 1, ""), kw_key
    yield "kw-ek-flipped", replace_segment(token, 1, b64(flip_bit(wrapped))), kw_key
    short_cek = os.urandom(16)
    kw_header = {"alg": "A256KW", "enc": "A256GCM", "kid": kw_key.kid}
    yield (
        "kw-cek-too-short",
        forge(kw_header, os.urandom(32), b"x", encrypted_key=aes_key_wrap(kek, short_cek)),
        kw_key,
    )
    yield (
        "kw-cek-too-long",
        forge(kw_header, os.urandom(32), b"x", encrypted_key=aes_key_wrap(kek, os.urandom(40))),
        kw_key,
    )
    # RSA-OAEP: a CEK of the wrong size, a key made for another modulus size.
    public = rsa_key.cryptography_key()
    assert isinstance(public, rsa.RSAPrivateKey)
    oaep = asym_padding.OAEP(
        mgf=asym_padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
    )
    rsa_header = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": rsa_key.kid}
    for size in (16, 31, 33, 64):
        cek = os.urandom(size)
        encrypted = public.public_key().encrypt(cek, oaep)
        yield (
            f"rsa-cek-{size}-bytes",
            forge(rsa_header, os.urandom(32), b"x", encrypted_key=encrypted),
            rsa_key,
        )
    other = other_rsa.cryptography_key()
    assert isinstance(other, rsa.RSAPrivateKey)
    cek = os.urandom(32)
    yield (
        "rsa-ek-other-modulus",
        forge(rsa_header, cek, b"x", encrypted_key=other.public_key().encrypt(cek, oaep)),
        rsa_key,
    )
    rsa_token = jwe.encrypt(b"x", rsa_key.public_key())
    rsa_ek = unb64(rsa_token.split(".")[1])
    yield "rsa-ek-short", replace_segment(rsa_token, 1, b64(rsa_ek[:-1])), rsa_key
    yield "rsa-ek-long", replace_segment(rsa_token, 1, b64(rsa_ek + b"\x00")), rsa_key
    yield "rsa-ek-flipped", replace_segment(rsa_token, 1, b64(flip_bit(rsa_ek, -1))), rsa_key
    yield "rsa-ek-empty", replace_segment(rsa_token, 1, ""), rsa_key
    # ECDH-ES direct carries no encrypted key: a non-empty one is refused.
    ecdh_token = jwe.encrypt(b"x", ecdh_key.public_key())
    yield "ecdh-es-ek-present", replace_segment(ecdh_token, 1, b64(os.urandom(40))), ecdh_key
    for label, party in (
        ("apu-not-b64", {"apu": "not base64!"}),
        ("apu-number", {"apu": 5}),
        ("apv-null", {"apv": None}),
        ("apv-object", {"apv": {"id": "x"}}),
    ):
        bad = _set_members(ecdh_token, party)
        yield f"ecdh-es-{label}", bad, ecdh_key
    # AES-GCM key wrap: the header's iv and tag seal the CEK.
    gcmkw_token = jwe.encrypt(b"x", gcmkw_key)
    params = json.loads(unb64(gcmkw_token.split(".", maxsplit=1)[0]))
    iv, tag = unb64(params["iv"]), unb64(params["tag"])
    for label, change in (
        ("iv-short", {"iv": b64(iv[:-1])}),
        ("iv-long", {"iv": b64(iv + b"\x00")}),
        ("iv-number", {"iv": 12}),
        ("iv-missing", {"iv": None}),
        ("tag-flipped", {"tag": b64(flip_bit(tag))}),
        ("tag-short", {"tag": b64(tag[:-1])}),
        ("tag-missing", {"tag": None}),
    ):
        yield f"gcmkw-{label}", _set_members(gcmkw_token, change), gcmkw_key
    wrapped = unb64(gcmkw_token.split(".")[1])
    yield "gcmkw-ek-flipped", replace_segment(gcmkw_token, 1, b64(flip_bit(wrapped))), gcmkw_key
    yield "gcmkw-ek-short", replace_segment(gcmkw_token, 1, b64(wrapped[:-1])), gcmkw_key


def _set_members(token: str, changes: dict[str, Any]) -> str:
    """The token with header members set; None sets a JSON null, except iv/tag: removed."""
    header = json.loads(unb64(token.split(".", maxsplit=1)[0]))
    for name, value in changes.items():
        if value is None and name in ("iv", "tag"):
            del header[name]
        else:
            header[name] = value
    return replace_segment(token, 0, header_segment(header))


@pytest.fixture(scope="module")
def mutations(kw_key: Key, rsa_key: Key, ecdh_keys: dict[str, Key]) -> list[tuple[str, str, Key]]:
    dir_keys = {enc: Key.generate("dir", enc=enc) for enc in ENCS}
    other_rsa = Key.generate("RSA-OAEP-256", size=3072)
    gcmkw_key = Key.generate("A192GCMKW", kid="gcmkw-1")
    return list(
        _mutations(
            dir_keys=dir_keys,
            kw_key=kw_key,
            rsa_key=rsa_key,
            ecdh_key=ecdh_keys["P-256"],
            other_rsa=other_rsa,
            gcmkw_key=gcmkw_key,
        )
    )


def test_tampered_tokens_all_fail_alike(mutations: list[tuple[str, str, Key]]) -> None:
    failures: dict[str, str] = {}
    for label, token, key in mutations:
        try:
            failures[label] = decryption_failed(functools.partial(jwe.decrypt, token, key))
        except AssertionError as exc:
            raise AssertionError(f"{label}: {exc}") from exc
    assert len(failures) == len(mutations) >= 130  # labels are unique, none was lost


def test_every_decryption_failure_reads_the_same(
    mutations: list[tuple[str, str, Key]], ecdh_keys: dict[str, Key]
) -> None:
    """No oracle: wrong key, bad tag, bad padding and a curve attack give one string."""
    messages = set()
    for _label, token, key in mutations:
        with pytest.raises(DecryptionFailed) as info:
            jwe.decrypt(token, key)
        messages.add(str(info.value))
    key = ecdh_keys["P-256"]
    token = jwe.encrypt(b"x", key.public_key())
    epk = _epk_of(token)
    epk["y"] = _bump(epk["y"])
    with pytest.raises(DecryptionFailed) as info:
        jwe.decrypt(rewrite_header(token, epk=epk), key)
    messages.add(str(info.value))
    assert messages == {FAILED_MESSAGE}


def test_honest_tokens_decrypt(mutations: list[tuple[str, str, Key]], kw_key: Key) -> None:
    """The control: the keys the mutations use do decrypt what was not tampered with."""
    keys = {key.kid: key for _label, _token, key in mutations}
    for key in keys.values():
        sender = key if key.kty == "oct" else key.public_key()
        assert jwe.decrypt(jwe.encrypt(b"fine", sender), key) == b"fine"
    assert kw_key.kid in keys


def test_wrong_symmetric_key_fails_like_a_bad_tag(kw_key: Key) -> None:
    """Another key with the token's kid: the wrap fails and the error is the same one."""
    impostor = Key.generate("A256KW", kid=kw_key.kid)
    decryption_failed(lambda: jwe.decrypt(jwe.encrypt(b"x", kw_key), impostor))


# -- header refusals ------------------------------------------------------------------------


def _with_member(dir_key: Key, name: str, value: Any) -> str:
    header = {"alg": "dir", "enc": "A256GCM", "kid": dir_key.kid, name: value}
    return forge(header, secret_of(dir_key), b"x")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("jku", "https://attacker.example/jwks.json"),
        ("x5u", "https://attacker.example/cert.pem"),
        ("jwk", {"kty": "oct", "k": b64(bytes(32))}),
        ("x5c", ["MIIB"]),
        ("crit", ["exp"]),
        ("zip", "DEF"),
        ("b64", False),
    ],
)
def test_forbidden_header_is_refused(
    name: str, value: Any, dir_key: Key, work_spy: list[str]
) -> None:
    token = _with_member(dir_key, name, value)
    refused(InvalidHeader, lambda: jwe.decrypt(token, dir_key))
    refused(InvalidHeader, lambda: jwe.unverified_header(token))
    assert work_spy == []


def test_control_token_decrypts(dir_key: Key) -> None:
    """The forger makes tokens jwtward accepts: refusals above are the header's doing."""
    assert jwe.decrypt(_with_member(dir_key, "typ", "JWT"), dir_key) == b"x"


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ('{"alg":"dir","enc":"A256GCM","alg":"dir"}', MalformedToken),
        ('{"alg":"dir","enc":"A256GCM","enc":"A128GCM"}', MalformedToken),
        ({"alg": "dir", "enc": "A256GCM", "pad": "p" * 3000}, MalformedToken),
        ({"alg": "dir", "enc": "A256GCM", "kid": "dir-1\n"}, InvalidHeader),
        ({"alg": "dir", "enc": "A256GCM", "kid": "dir\x00-1"}, InvalidHeader),
        ({"alg": "dir", "enc": "A256GCM", "kid": "\u202edir-1"}, InvalidHeader),
        ({"alg": "dir", "enc": "A512GCM"}, InvalidHeader),
        ({"alg": "dir", "enc": "a256gcm"}, InvalidHeader),
        ({"alg": "dir"}, InvalidHeader),
        ({"alg": "dir", "enc": ["A256GCM"]}, InvalidHeader),
        ({"alg": "dir", "enc": None}, InvalidHeader),
        ({"alg": "dir", "enc": 256}, InvalidHeader),
        ({"enc": "A256GCM"}, InvalidHeader),
        ('["dir"]', MalformedToken),
    ],
    ids=[
        "duplicate-alg",
        "duplicate-enc",
        "oversized",
        "kid-newline",
        "kid-nul",
        "kid-bidi",
        "unknown-enc",
        "enc-wrong-case",
        "missing-enc",
        "enc-list",
        "enc-null",
        "enc-number",
        "missing-alg",
        "not-an-object",
    ],
)
def test_bad_header_is_refused(
    header: dict[str, Any] | str, error: type[JWTWardError], dir_key: Key, work_spy: list[str]
) -> None:
    token = forge(header, secret_of(dir_key), b"x", enc="A256GCM")
    refused(error, lambda: jwe.decrypt(token, dir_key, max_length=20_000))
    assert work_spy == []


def test_non_canonical_base64url_header_is_refused(dir_key: Key) -> None:
    token = _with_member(dir_key, "typ", "JWT")
    head = token.split(".", maxsplit=1)[0]
    padded = head + "=" * (-len(head) % 4)
    assert padded != head
    refused(MalformedToken, lambda: jwe.decrypt(replace_segment(token, 0, padded), dir_key))
    # Same bytes, non-zero trailing bits: decodes leniently elsewhere, refused here.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    assert len(head) % 4 in (2, 3)
    last = alphabet.index(head[-1])
    unused = 0b1111 if len(head) % 4 == 2 else 0b11
    assert last & unused == 0
    sloppy = head[:-1] + alphabet[last | 1]
    assert unb64(sloppy) == unb64(head)
    refused(MalformedToken, lambda: jwe.decrypt(replace_segment(token, 0, sloppy), dir_key))
    standard = head.replace("-", "+").replace("_", "/")
    if standard != head:
        refused(MalformedToken, lambda: jwe.decrypt(replace_segment(token, 0, standard), dir_key))


def test_oversized_token_is_refused_before_any_parsing(
    dir_key: Key, monkeypatch: pytest.MonkeyPatch, work_spy: list[str]
) -> None:
    token = jwe.encrypt(os.urandom(9000), dir_key)  # encrypting parses its own header
    _spy(monkeypatch, jwe_module, "parse_protected_header", work_spy)
    _spy(monkeypatch, jwe_module, "split_compact", work_spy)
    refused(TokenTooLarge, lambda: jwe.decrypt(token, dir_key))
    refused(TokenTooLarge, lambda: jwe.decrypt(token.encode(), dir_key))
    refused(TokenTooLarge, lambda: jwe.decrypt(token[:100], dir_key, max_length=99))
    assert work_spy == []
    assert len(jwe.decrypt(token, dir_key, max_length=len(token))) == 9000


def test_wrong_segment_counts_are_malformed(dir_key: Key, sign_key: Key) -> None:
    signed = jws.sign(b"payload", sign_key)
    encrypted = jwe.encrypt(b"payload", dir_key)
    refused(MalformedToken, lambda: jwe.decrypt(signed, dir_key))
    refused(MalformedToken, lambda: jws.verify(encrypted, sign_key.public_key()))
    refused(MalformedToken, lambda: jwe.decrypt(encrypted + ".", dir_key))
    refused(MalformedToken, lambda: jwe.decrypt(encrypted.rsplit(".", 1)[0], dir_key))
    refused(MalformedToken, lambda: jwe.decrypt("." * 4, dir_key))


# -- one key, one alg (invariant 1) ----------------------------------------------------------


def test_rsa_oaep_256_key_never_decrypts_rsa_oaep(rsa_key: Key) -> None:
    """Same RSA key pair and kid, other OAEP hash: the alg decides, not the material."""
    sibling = Key.from_jwk({**rsa_key.to_jwk(private=True), "alg": "RSA-OAEP"})
    assert sibling.kid == rsa_key.kid
    token = jwe.encrypt(b"x", sibling.public_key())
    assert jwe.decrypt(token, sibling) == b"x"
    refused(AlgorithmMismatch, lambda: jwe.decrypt(token, rsa_key))


def test_encryption_and_signature_keys_never_cross(kw_key: Key) -> None:
    """One secret, two keys with one kid: HS256 never decrypts, A256KW never verifies."""
    secret = secret_of(kw_key)
    mac_key = Key.from_secret(secret, alg="HS256", kid=kw_key.kid)
    signed = jws.sign(b"payload", mac_key)
    encrypted = jwe.encrypt(b"payload", kw_key)
    refused(AlgorithmMismatch, lambda: jws.verify(signed, kw_key))
    refused(AlgorithmMismatch, lambda: jwe.decrypt(encrypted, mac_key))
    refused(KeyUsageError, lambda: jwe.encrypt(b"x", mac_key))
    refused(KeyUsageError, lambda: jws.sign(b"x", kw_key))
    # A key management alg in a three-part token is a header refusal.
    forged = header_segment({"alg": "A256KW", "kid": kw_key.kid}) + "." + b64(b"p") + ".c2ln"
    refused(InvalidHeader, lambda: jws.verify(forged, kw_key))


def test_dir_key_serves_its_one_enc(dir_key: Key) -> None:
    """A 32-byte A256GCM key also fits A128CBC-HS256, and is still refused for it."""
    assert dir_key.enc == "A256GCM"
    header = {"alg": "dir", "enc": "A128CBC-HS256", "kid": dir_key.kid}
    token = forge(header, secret_of(dir_key), b"x")
    decryption_failed(lambda: jwe.decrypt(token, dir_key))
    refused(InvalidArgument, lambda: jwe.encrypt(b"x", dir_key, enc="A128CBC-HS256"))
    assert jwe.decrypt(jwe.encrypt(b"x", dir_key, enc="A256GCM"), dir_key) == b"x"


def test_public_key_cannot_decrypt(rsa_key: Key, ecdh_keys: dict[str, Key]) -> None:
    """The token chose the key by kid; a public key cannot decrypt: a KeyNotFound."""
    for key in (rsa_key, ecdh_keys["X25519"], ecdh_keys["P-521"]):
        public = key.public_key()
        token = jwe.encrypt(b"x", public)
        refused(KeyNotFound, functools.partial(jwe.decrypt, token, public))
        assert jwe.decrypt(token, key) == b"x"


# -- nested JWTs -------------------------------------------------------------------------------

NOW = 1_800_000_000


def _clock() -> float:
    return float(NOW)


def _nested(sign_key: Key, enc_key: Key, **claims: Any) -> str:
    body = {"sub": "user-1", **claims}
    return jwt.encode(body, sign_key, encrypt_to=enc_key, clock=_clock)


def test_nested_jwt_control(sign_key: Key, kw_key: Key) -> None:
    token = _nested(sign_key, kw_key)
    claims = jwt.decode(token, sign_key, Policy(clock=_clock), decrypt_with=kw_key)
    assert claims["sub"] == "user-1"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"sub": "user-1", "exp": NOW + 60}, id="no-dots"),
        pytest.param({"sub": "a.b.c", "exp": NOW + 60}, id="two-dots-in-claims"),
    ],
)
def test_encrypted_but_unsigned_claims_are_refused(
    body: dict[str, Any], sign_key: Key, kw_key: Key
) -> None:
    token = jwe.encrypt(json.dumps(body).encode(), kw_key, headers={"cty": "JWT"})
    refused(
        MalformedToken,
        lambda: jwt.decode(token, sign_key, Policy(clock=_clock), decrypt_with=kw_key),
    )


def test_plain_jws_is_refused_when_decryption_is_expected(sign_key: Key, kw_key: Key) -> None:
    signed = jwt.encode({"sub": "user-1"}, sign_key, clock=_clock)
    assert jwt.decode(signed, sign_key, Policy(clock=_clock))["sub"] == "user-1"
    refused(
        MalformedToken,
        lambda: jwt.decode(signed, sign_key, Policy(clock=_clock), decrypt_with=kw_key),
    )


def test_nested_token_is_refused_without_decrypt_with(sign_key: Key, kw_key: Key) -> None:
    token = _nested(sign_key, kw_key)
    refused(MalformedToken, lambda: jwt.decode(token, sign_key, Policy(clock=_clock)))


@pytest.mark.parametrize("cty", [None, "json", "application/json", "JWS", "JWE", ""])
def test_nested_token_without_cty_jwt_is_refused(
    cty: str | None, sign_key: Key, kw_key: Key
) -> None:
    inner = jwt.encode({"sub": "user-1"}, sign_key, clock=_clock)
    headers = None if cty is None else {"cty": cty}
    token = jwe.encrypt(inner.encode(), kw_key, headers=headers)
    refused(
        InvalidHeader,
        lambda: jwt.decode(token, sign_key, Policy(clock=_clock), decrypt_with=kw_key),
    )


def test_nested_cty_compares_without_case(sign_key: Key, kw_key: Key) -> None:
    inner = jwt.encode({"sub": "user-1"}, sign_key, clock=_clock)
    token = jwe.encrypt(inner.encode(), kw_key, headers={"cty": "jwt"})
    claims = jwt.decode(token, sign_key, Policy(clock=_clock), decrypt_with=kw_key)
    assert claims["sub"] == "user-1"


def test_inner_jws_by_an_unknown_key_is_refused(sign_key: Key, kw_key: Key) -> None:
    stranger = Key.generate("ES256", kid="stranger")
    token = _nested(stranger, kw_key)
    refused(
        KeyNotFound,
        lambda: jwt.decode(token, sign_key, Policy(clock=_clock), decrypt_with=kw_key),
    )
    impostor = Key.generate("ES256", kid=sign_key.kid)
    token = _nested(impostor, kw_key)
    refused(
        InvalidSignature,
        lambda: jwt.decode(token, sign_key, Policy(clock=_clock), decrypt_with=kw_key),
    )


def test_expired_inner_token_is_refused(sign_key: Key, kw_key: Key) -> None:
    token = _nested(sign_key, kw_key, iat=NOW - 3600, exp=NOW - 60)
    error = refused(
        ExpiredToken,
        lambda: jwt.decode(token, sign_key, Policy(clock=_clock), decrypt_with=kw_key),
    )
    assert getattr(error, "claim", None) == "exp"


def test_jwe_inside_a_jwe_is_refused(sign_key: Key, kw_key: Key, dir_key: Key) -> None:
    inner = _nested(sign_key, dir_key)
    token = jwe.encrypt(inner.encode(), kw_key, headers={"cty": "JWT"})
    refused(
        MalformedToken,
        lambda: jwt.decode(
            token, sign_key, Policy(clock=_clock), decrypt_with=KeySet([kw_key, dir_key])
        ),
    )


def test_policy_typ_is_checked_inside_and_outside(sign_key: Key, kw_key: Key) -> None:
    policy = Policy(typ="at+jwt", clock=_clock)
    good = jwt.encode({"sub": "u"}, sign_key, typ="at+jwt", encrypt_to=kw_key, clock=_clock)
    assert jwt.decode(good, sign_key, policy, decrypt_with=kw_key)["sub"] == "u"
    # Inner typ wrong, outer typ absent: the inner header is checked.
    inner_wrong = jwt.encode({"sub": "u"}, sign_key, typ="rt+jwt", clock=_clock)
    token = jwe.encrypt(inner_wrong.encode(), kw_key, headers={"cty": "JWT"})
    refused(InvalidType, lambda: jwt.decode(token, sign_key, policy, decrypt_with=kw_key))
    # Inner typ right, outer typ wrong: the outer header is checked when it has one.
    inner_right = jwt.encode({"sub": "u"}, sign_key, typ="at+jwt", clock=_clock)
    token = jwe.encrypt(inner_right.encode(), kw_key, headers={"cty": "JWT", "typ": "rt+jwt"})
    refused(InvalidType, lambda: jwt.decode(token, sign_key, policy, decrypt_with=kw_key))
    # Outer typ absent, inner right: accepted.
    token = jwe.encrypt(inner_right.encode(), kw_key, headers={"cty": "JWT"})
    assert jwt.decode(token, sign_key, policy, decrypt_with=kw_key)["sub"] == "u"
    # Both made by encode with a typ the policy does not accept.
    token = jwt.encode({"sub": "u"}, sign_key, typ="JWT", encrypt_to=kw_key, clock=_clock)
    refused(InvalidType, lambda: jwt.decode(token, sign_key, policy, decrypt_with=kw_key))


# -- key sets --------------------------------------------------------------------------------------


def test_kid_selects_among_several_encryption_keys(
    kw_key: Key, rsa_key: Key, dir_key: Key, ecdh_keys: dict[str, Key]
) -> None:
    keys = [kw_key, rsa_key, dir_key, ecdh_keys["P-384"], ecdh_keys["X448"]]
    keyset = KeySet(keys)
    for key in keys:
        sender = key if key.kty == "oct" else key.public_key()
        token = jwe.encrypt(key.kid.encode(), sender)
        decoded = jwe.decode(token, keyset)
        assert decoded.plaintext == key.kid.encode()
        assert decoded.key is key
    unknown = Key.generate("A256KW", kid="nobody")
    refused(KeyNotFound, lambda: jwe.decrypt(jwe.encrypt(b"x", unknown), keyset))
    # A token naming no kid cannot pick among several keys.
    header = {"alg": "dir", "enc": "A256GCM"}
    anonymous = forge(header, secret_of(dir_key), b"x")
    assert jwe.decrypt(anonymous, dir_key) == b"x"
    refused(KeyNotFound, lambda: jwe.decrypt(anonymous, keyset))
    # A kid that names a key of another alg is a mismatch, never a fallback.
    misdirected = forge({**header, "kid": kw_key.kid}, secret_of(dir_key), b"x")
    refused(AlgorithmMismatch, lambda: jwe.decrypt(misdirected, keyset))
