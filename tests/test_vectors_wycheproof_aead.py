"""JWE content encryption: Wycheproof AEAD vectors and tampering, through jwtward's layer.

The vectors run through :mod:`jwtward.jose.content_encryption`, the code every
JWE decryption uses. A ``valid`` case must decrypt to ``msg`` and, encrypted
again with the vector's own IV (``_encrypt_with_iv``), reproduce ``ct`` and
``tag`` exactly. An ``invalid`` case must raise :class:`DecryptionFailed`
with the one message every decryption failure carries.

Which groups apply:

* The three ``a*cbc_hs*`` files are the RFC 7518 §5.2 composites: the key is
  ``MAC_KEY || ENC_KEY`` and the tag the truncated HMAC. Each has one group,
  and all of its cases apply (the ``Ktv`` case is the RFC 7518 Appendix B
  example).
* ``aes_gcm_test.json``: RFC 7518 §5.3 fixes a 96-bit IV and a 128-bit tag,
  with 128/192/256-bit keys. Exactly three groups meet that; the other 42
  differ only in their IV size, and every one of their cases, valid ones
  included, must be refused with the same :class:`DecryptionFailed`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from jwtward.errors import DecryptionFailed, InvalidHeader, InvalidKey, InvalidToken
from jwtward.jose.content_encryption import (
    CONTENT_ENCRYPTIONS,
    DECRYPTION_FAILED_MESSAGE,
    _encrypt_with_iv,
    content_encryption,
    decrypt,
    encrypt,
    generate_cek,
)
from tests.conftest import load_vectors

CBC_HMAC_FILES = {
    "A128CBC-HS256": "a128cbc_hs256_test.json",
    "A192CBC-HS384": "a192cbc_hs384_test.json",
    "A256CBC-HS512": "a256cbc_hs512_test.json",
}
GCM_BY_KEY_BITS = {128: "A128GCM", 192: "A192GCM", 256: "A256GCM"}
ALL_ENCS = sorted(CONTENT_ENCRYPTIONS)


def _primitives(name: str) -> Any:
    return load_vectors("wycheproof", "primitives", name)


def _expect_refused(call: Callable[[], bytes]) -> str | None:
    """``None`` when ``call`` raised exactly the one decryption error, else what went wrong."""
    try:
        call()
    except DecryptionFailed as exc:
        if type(exc) is not DecryptionFailed or str(exc) != DECRYPTION_FAILED_MESSAGE:
            return f"wrong error {type(exc).__name__}: {exc}"
        return None
    except Exception as exc:
        return f"escaped {type(exc).__name__}: {exc}"
    return "accepted"


def _check_case(enc: str, case: Mapping[str, Any]) -> str | None:
    """The verdict mismatch of one Wycheproof case, or ``None`` when it matches."""
    key, iv, aad, msg, ct, tag = (
        bytes.fromhex(case[f]) for f in ("key", "iv", "aad", "msg", "ct", "tag")
    )
    if case["result"] == "valid":
        try:
            plaintext = decrypt(enc, key, iv, ct, tag, aad=aad)
        except DecryptionFailed:
            return "valid case refused"
        if plaintext != msg:
            return "decrypted to the wrong plaintext"
        if _encrypt_with_iv(enc, key, iv, msg, aad) != (iv, ct, tag):
            return "encryption with the vector's IV did not reproduce ct/tag"
        return None
    assert case["result"] == "invalid"
    return _expect_refused(lambda: decrypt(enc, key, iv, ct, tag, aad=aad))


def _mismatches(enc: str, groups: list[Mapping[str, Any]]) -> list[str]:
    return [
        f"tcId {case['tcId']}: {problem}"
        for group in groups
        for case in group["tests"]
        if (problem := _check_case(enc, case)) is not None
    ]


# -- Wycheproof: AES-CBC-HMAC-SHA2 (RFC 7518 §5.2) -------------------------------------


@pytest.mark.parametrize("enc", sorted(CBC_HMAC_FILES))
def test_wycheproof_cbc_hmac(enc: str) -> None:
    data = _primitives(CBC_HMAC_FILES[enc])
    assert data["algorithm"] == enc
    spec = content_encryption(enc)
    (group,) = data["testGroups"]
    assert (group["keySize"], group["ivSize"], group["tagSize"]) == (
        spec.key_size * 8,
        spec.iv_size * 8,
        spec.tag_size * 8,
    )
    cases = group["tests"]
    assert len(cases) == data["numberOfTests"] == 94
    assert sum(c["result"] == "valid" for c in cases) == 67
    assert sum(c["result"] == "invalid" for c in cases) == 27
    assert [c["tcId"] for c in cases if "Ktv" in c["flags"]] == [1]
    assert _mismatches(enc, [group]) == []


# -- Wycheproof: AES-GCM (RFC 7518 §5.3) -----------------------------------------------


def _gcm_groups() -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """(groups RFC 7518 §5.3 allows, the others)."""
    groups = _primitives("aes_gcm_test.json")["testGroups"]
    applies = [
        g
        for g in groups
        if g["ivSize"] == 96 and g["tagSize"] == 128 and g["keySize"] in GCM_BY_KEY_BITS
    ]
    excluded = [g for g in groups if g not in applies]
    return applies, excluded


def test_wycheproof_gcm_group_selection() -> None:
    applies, excluded = _gcm_groups()
    assert sorted(g["keySize"] for g in applies) == [128, 192, 256]
    assert len(excluded) == 42
    # Excluded for exactly one reason: the IV is not 96 bits.
    assert all(g["ivSize"] != 96 for g in excluded)
    assert all(g["tagSize"] == 128 and g["keySize"] in GCM_BY_KEY_BITS for g in excluded)


@pytest.mark.parametrize("key_bits", sorted(GCM_BY_KEY_BITS))
def test_wycheproof_gcm(key_bits: int) -> None:
    applies, _ = _gcm_groups()
    (group,) = [g for g in applies if g["keySize"] == key_bits]
    results = [c["result"] for c in group["tests"]]
    assert "valid" in results
    assert "invalid" in results
    assert _mismatches(GCM_BY_KEY_BITS[key_bits], [group]) == []


def test_wycheproof_gcm_other_iv_sizes_refused() -> None:
    _, excluded = _gcm_groups()
    problems = [
        f"tcId {case['tcId']}: {problem}"
        for group in excluded
        for case in group["tests"]
        if (
            problem := _expect_refused(
                lambda case=case, enc=GCM_BY_KEY_BITS[group["keySize"]]: decrypt(
                    enc,
                    bytes.fromhex(case["key"]),
                    bytes.fromhex(case["iv"]),
                    bytes.fromhex(case["ct"]),
                    bytes.fromhex(case["tag"]),
                    aad=bytes.fromhex(case["aad"]),
                )
            )
        )
        is not None
    ]
    assert problems == []


# -- the registry --------------------------------------------------------------------------


def test_registry_sizes() -> None:
    sizes = {
        name: (spec.key_size, spec.iv_size, spec.tag_size)
        for name, spec in CONTENT_ENCRYPTIONS.items()
    }
    assert sizes == {
        "A128GCM": (16, 12, 16),
        "A192GCM": (24, 12, 16),
        "A256GCM": (32, 12, 16),
        "A128CBC-HS256": (32, 16, 16),
        "A192CBC-HS384": (48, 16, 24),
        "A256CBC-HS512": (64, 16, 32),
    }


@pytest.mark.parametrize("enc", ["A128CBC", "a128gcm", "A256GCMKW", "none", "", "dir"])
def test_unknown_enc_refused_as_header(enc: str) -> None:
    with pytest.raises(InvalidHeader, match="unsupported enc"):
        decrypt(enc, b"\0" * 32, b"\0" * 12, b"", b"\0" * 16, aad=b"")
    with pytest.raises(InvalidHeader, match="unsupported enc"):
        encrypt(enc, b"\0" * 32, b"x", b"")
    with pytest.raises(InvalidHeader, match="unsupported enc"):
        generate_cek(enc)


def test_non_string_enc_refused_as_header() -> None:
    with pytest.raises(InvalidHeader, match="unsupported enc"):
        content_encryption(128)


@pytest.mark.parametrize("enc", ALL_ENCS)
def test_generate_cek_length_and_freshness(enc: str) -> None:
    first, second = generate_cek(enc), generate_cek(enc)
    assert len(first) == len(second) == content_encryption(enc).key_size
    assert first != second


@pytest.mark.parametrize("enc", ALL_ENCS)
def test_encrypt_uses_a_fresh_iv(enc: str) -> None:
    cek = generate_cek(enc)
    first = encrypt(enc, cek, b"same plaintext", b"aad")
    second = encrypt(enc, cek, b"same plaintext", b"aad")
    assert len(first[0]) == content_encryption(enc).iv_size
    assert first[0] != second[0]
    assert first[1] != second[1]


@pytest.mark.parametrize("enc", ALL_ENCS)
def test_encrypt_refuses_wrong_cek_length(enc: str) -> None:
    size = content_encryption(enc).key_size
    for bad in (0, size - 1, size + 1, size // 2):
        with pytest.raises(InvalidKey, match="CEK"):
            encrypt(enc, b"k" * bad, b"x", b"")


# -- tampering: every failure is the same error ------------------------------------------


def _sealed(enc: str) -> tuple[bytes, bytes, bytes, bytes, bytes, bytes]:
    """(cek, iv, ciphertext, tag, aad, plaintext) of one fresh encryption."""
    cek = generate_cek(enc)
    aad = b"eyJhbGciOiJkaXIiLCJlbmMiOiJBMTI4R0NNIn0"
    plaintext = b"The true sign of intelligence is not knowledge but imagination."
    iv, ciphertext, tag = encrypt(enc, cek, plaintext, aad)
    return cek, iv, ciphertext, tag, aad, plaintext


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@pytest.mark.parametrize("enc", ALL_ENCS)
def test_round_trip(enc: str) -> None:
    cek, iv, ciphertext, tag, aad, plaintext = _sealed(enc)
    assert decrypt(enc, cek, iv, ciphertext, tag, aad=aad) == plaintext


@pytest.mark.parametrize("enc", ALL_ENCS)
def test_truncated_and_extended_tags_refused(enc: str) -> None:
    cek, iv, ciphertext, tag, aad, _ = _sealed(enc)
    variants = [tag[:n] for n in range(len(tag))]
    variants += [tag + b"\0", tag + tag, tag + b"\xff" * 16]
    problems = [
        (len(t), p)
        for t in variants
        if (p := _expect_refused(lambda t=t: decrypt(enc, cek, iv, ciphertext, t, aad=aad)))
    ]
    assert problems == []


@pytest.mark.parametrize("enc", ALL_ENCS)
def test_every_flipped_bit_refused(enc: str) -> None:
    """One flipped bit anywhere in IV, ciphertext, tag, AAD or the authenticating key: refused.

    The ENC_KEY half of a CBC-HMAC CEK is the one input the tag does not
    cover (RFC 7518 §5.2 authenticates the ciphertext, not the key that
    decrypts it); the key management layer protects the CEK. A flipped bit
    there must still never yield the plaintext: see the next test.
    """
    cek, iv, ciphertext, tag, aad, _ = _sealed(enc)
    spec = content_encryption(enc)
    authenticating_key = cek[: spec.key_size // 2] if spec.is_cbc_hmac else cek
    parts = {"cek": authenticating_key, "iv": iv, "ciphertext": ciphertext, "tag": tag, "aad": aad}
    problems = []
    for name, value in parts.items():
        for bit in range(len(value) * 8):
            changed = dict(parts, **{name: _flip(value, bit)})
            full_cek = changed["cek"] + cek[len(authenticating_key) :]
            problem = _expect_refused(
                lambda c=changed, k=full_cek: decrypt(
                    enc, k, c["iv"], c["ciphertext"], c["tag"], aad=c["aad"]
                )
            )
            if problem is not None:
                problems.append((name, bit, problem))
    assert problems == []


@pytest.mark.parametrize("enc", sorted(CBC_HMAC_FILES))
def test_flipped_enc_key_bit_never_yields_the_plaintext(enc: str) -> None:
    cek, iv, ciphertext, tag, aad, plaintext = _sealed(enc)
    half = content_encryption(enc).key_size // 2
    outcomes = []
    for bit in range(half * 8, len(cek) * 8):
        try:
            outcomes.append(decrypt(enc, _flip(cek, bit), iv, ciphertext, tag, aad=aad))
        except DecryptionFailed as exc:
            assert str(exc) == DECRYPTION_FAILED_MESSAGE
    assert plaintext not in outcomes


@pytest.mark.parametrize("enc", ALL_ENCS)
def test_wrong_lengths_and_garbage_refused(enc: str) -> None:
    cek, iv, ciphertext, tag, aad, _ = _sealed(enc)
    spec = content_encryption(enc)
    cases: dict[str, tuple[bytes, bytes, bytes, bytes, bytes]] = {
        "empty cek": (b"", iv, ciphertext, tag, aad),
        "short cek": (cek[:-1], iv, ciphertext, tag, aad),
        "long cek": (cek + b"\0", iv, ciphertext, tag, aad),
        "half cek": (cek[: spec.key_size // 2], iv, ciphertext, tag, aad),
        "empty iv": (cek, b"", ciphertext, tag, aad),
        "short iv": (cek, iv[:-1], ciphertext, tag, aad),
        "long iv": (cek, iv + b"\0", ciphertext, tag, aad),
        "empty tag": (cek, iv, ciphertext, b"", aad),
        "empty ciphertext": (cek, iv, b"", tag, aad),
        "truncated ciphertext": (cek, iv, ciphertext[:-1], tag, aad),
        "extended ciphertext": (cek, iv, ciphertext + b"\0" * 16, tag, aad),
        "dropped last block": (cek, iv, ciphertext[:-16], tag, aad),
        "other aad": (cek, iv, ciphertext, tag, aad + b"."),
        "no aad": (cek, iv, ciphertext, tag, b""),
        "all empty": (b"", b"", b"", b"", b""),
        "garbage": (
            b"\xff" * spec.key_size,
            b"\0" * spec.iv_size,
            b"junk",
            b"\0" * spec.tag_size,
            b"",
        ),
        "other key": (generate_cek(enc), iv, ciphertext, tag, aad),
    }
    problems = {
        label: p
        for label, (k, i, c, t, a) in cases.items()
        if (p := _expect_refused(lambda k=k, i=i, c=c, t=t, a=a: decrypt(enc, k, i, c, t, aad=a)))
    }
    assert problems == {}


@pytest.mark.parametrize("enc", sorted(CBC_HMAC_FILES))
def test_bad_padding_under_a_valid_mac_is_the_same_error(enc: str) -> None:
    """A ciphertext whose MAC verifies but whose padding is wrong: the same error.

    Built with the key (an attacker cannot do this): raw CBC blocks with a
    last byte that is no valid PKCS#7 pad, then the genuine RFC 7518 tag over
    them. Only the padding check can refuse it, and its error must be the one
    a bad tag gives.
    """
    spec = content_encryption(enc)
    cek, aad = generate_cek(enc), b"aad"
    iv = b"\x01" * spec.iv_size
    enc_key = cek[spec.key_size // 2 :]
    for last_block in (b"A" * 15 + b"\x00", b"A" * 15 + b"\x11", b"A" * 14 + b"\x01\x02"):
        encryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).encryptor()
        ciphertext = encryptor.update(b"B" * 16 + last_block) + encryptor.finalize()
        tag = _rfc7518_tag(enc, cek, aad, iv, ciphertext)
        problem = _expect_refused(lambda c=ciphertext, t=tag: decrypt(enc, cek, iv, c, t, aad=aad))
        assert problem is None


def _rfc7518_tag(enc: str, cek: bytes, aad: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """RFC 7518 §5.2.2.1 step 5-6, written independently of the module under test."""
    spec = content_encryption(enc)
    digest = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
    assert spec.mac_hash is not None
    al = (len(aad) * 8).to_bytes(8, "big")
    mac = hmac.new(cek[: spec.key_size // 2], aad + iv + ciphertext + al, digest[spec.mac_hash])
    return mac.digest()[: spec.tag_size]


@pytest.mark.parametrize("enc", sorted(CBC_HMAC_FILES))
def test_independent_tag_formula_matches(enc: str) -> None:
    """Guards the padding test above: its tag formula agrees with the layer's."""
    cek, iv, ciphertext, tag, aad, _ = _sealed(enc)
    assert _rfc7518_tag(enc, cek, aad, iv, ciphertext) == tag


def test_all_failures_share_one_type_and_message() -> None:
    errors: list[DecryptionFailed] = []
    for enc in ALL_ENCS:
        cek, iv, ciphertext, tag, aad, _ = _sealed(enc)
        for args in (
            (cek[:-1], iv, ciphertext, tag),
            (cek, iv[:-1], ciphertext, tag),
            (cek, iv, ciphertext, tag[:-1]),
            (cek, iv, ciphertext, _flip(tag, 0)),
            (cek, iv, _flip(ciphertext, 3), tag),
            (cek, iv, b"", tag),
        ):
            with pytest.raises(DecryptionFailed) as info:
                decrypt(enc, *args, aad=aad)
            errors.append(info.value)
    assert {type(e) for e in errors} == {DecryptionFailed}
    assert {str(e) for e in errors} == {DECRYPTION_FAILED_MESSAGE}
    # No chained exception either: a log walking __context__ must not learn
    # which check failed.
    assert all(e.__cause__ is None and e.__context__ is None for e in errors)
    assert issubclass(DecryptionFailed, InvalidToken)
    assert DecryptionFailed.status_code == 401


@settings(max_examples=60, deadline=None)
@given(
    enc=st.sampled_from(ALL_ENCS),
    plaintext=st.binary(max_size=300),
    aad=st.binary(max_size=100),
)
def test_round_trip_property(enc: str, plaintext: bytes, aad: bytes) -> None:
    cek = generate_cek(enc)
    iv, ciphertext, tag = encrypt(enc, cek, plaintext, aad)
    spec = content_encryption(enc)
    assert len(tag) == spec.tag_size
    if spec.is_cbc_hmac:
        assert len(ciphertext) == (len(plaintext) // 16 + 1) * 16
    else:
        assert len(ciphertext) == len(plaintext)
    assert decrypt(enc, cek, iv, ciphertext, tag, aad=aad) == plaintext
