"""JWE key management (RFC 7518 §4) against Wycheproof primitive vectors and RFC 7518 Appendix C.

Decisions the vectors leave open (see jwtward.jose.key_management):
AES Key Wrap of an 8-byte key ("acceptable", ShortKey) is refused, as no CEK
is that short; an all-zero X25519/X448 shared secret ("acceptable",
ZeroSharedSecret) is refused; every other "acceptable" X25519/X448 case
(twist points, non-canonical encodings) gives the RFC 7748 shared secret.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from jwtward.codecs.base64url import b64decode, b64encode
from jwtward.errors import (
    AlgorithmMismatch,
    DecryptionFailed,
    InvalidArgument,
    JWTWardError,
    KeyUsageError,
    UnsupportedAlgorithm,
)
from jwtward.jose.content_encryption import DECRYPTION_FAILED_MESSAGE
from jwtward.jose.jwk import material_to_jwk
from jwtward.jose.key_management import (
    aes_key_unwrap_cek,
    aes_key_wrap_cek,
    concat_kdf,
    ecdh_es_agree,
    ecdh_es_derive,
    new_cek,
    rsa_oaep_decrypt,
    rsa_oaep_encrypt,
    unwrap_cek,
    wrap_cek,
)
from jwtward.jose.keys import Key
from tests.conftest import load_vectors

PRIMITIVES = ("wycheproof", "primitives")


def _tests(name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    data = load_vectors(*PRIMITIVES, name)
    return [(group, test) for group in data["testGroups"] for test in group["tests"]]


def _assert_refused(call: Any, *args: Any) -> None:
    with pytest.raises(DecryptionFailed) as caught:
        call(*args)
    assert str(caught.value) == DECRYPTION_FAILED_MESSAGE


# -- AES Key Wrap -------------------------------------------------------------------

AES_WRAP = _tests("aes_wrap_test.json")
ENC_BY_CEK_SIZE = {16: "A128GCM", 24: "A192GCM", 32: "A256GCM", 48: "A192CBC-HS384"}


@pytest.mark.parametrize(("group", "test"), AES_WRAP, ids=lambda v: str(v.get("tcId", "")))
def test_aes_key_wrap(group: dict[str, Any], test: dict[str, Any]) -> None:
    alg = f"A{group['keySize']}KW"
    key = Key.from_secret(bytes.fromhex(test["key"]), alg=alg)
    kek = key.cryptography_key()
    assert isinstance(kek, bytes)
    msg, ct = bytes.fromhex(test["msg"]), bytes.fromhex(test["ct"])
    if test["result"] == "valid":
        assert aes_key_unwrap_cek(kek, ct) == msg
        assert aes_key_wrap_cek(kek, msg) == ct
        enc = ENC_BY_CEK_SIZE.get(len(msg))
        if enc is not None:
            assert unwrap_cek(key, ct, {"alg": alg}, enc) == msg
    else:
        # "invalid", and the "acceptable" ShortKey cases: refused by decision.
        assert test["result"] == "invalid" or test["flags"] == ["ShortKey"]
        _assert_refused(aes_key_unwrap_cek, kek, ct)


def test_aes_key_wrap_refuses_short_keys_on_the_sending_side() -> None:
    with pytest.raises(InvalidArgument):
        aes_key_wrap_cek(bytes(16), bytes(8))


def test_aes_wrap_vector_count() -> None:
    assert len(AES_WRAP) == 165


# -- RSA-OAEP -------------------------------------------------------------------------

OAEP_FILES = {
    "rsa_oaep_2048_sha1_mgf1sha1_test.json": ("RSA-OAEP", 29),
    "rsa_oaep_2048_sha256_mgf1sha256_test.json": ("RSA-OAEP-256", 29),
    "rsa_oaep_3072_sha256_mgf1sha256_test.json": ("RSA-OAEP-256", 29),
    "rsa_oaep_4096_sha256_mgf1sha256_test.json": ("RSA-OAEP-256", 29),
    "rsa_oaep_2048_sha384_mgf1sha384_test.json": ("RSA-OAEP-384", 28),
    "rsa_oaep_2048_sha512_mgf1sha512_test.json": ("RSA-OAEP-512", 29),
}


def _oaep_cases() -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    cases = []
    for name, (alg, _count) in OAEP_FILES.items():
        # JOSE uses the empty OAEP label only; labelled vectors do not apply.
        cases.extend((name, alg, g, t) for g, t in _tests(name) if t["label"] == "")
    return cases


_OAEP_KEYS: dict[str, Key] = {}


def _oaep_key(name: str, alg: str, group: dict[str, Any]) -> Key:
    if name not in _OAEP_KEYS:
        _OAEP_KEYS[name] = Key.from_pem(group["privateKeyPem"], alg=alg)
    return _OAEP_KEYS[name]


@pytest.mark.parametrize(("name", "alg", "group", "test"), _oaep_cases())
def test_rsa_oaep(name: str, alg: str, group: dict[str, Any], test: dict[str, Any]) -> None:
    key = _oaep_key(name, alg, group)
    ct = bytes.fromhex(test["ct"])
    if test["result"] == "valid":
        msg = bytes.fromhex(test["msg"])
        assert rsa_oaep_decrypt(key, ct) == msg
        assert rsa_oaep_decrypt(key, rsa_oaep_encrypt(key.public_key(), msg)) == msg
    else:
        assert test["result"] == "invalid"
        _assert_refused(rsa_oaep_decrypt, key, ct)


@pytest.mark.parametrize("name", sorted(OAEP_FILES))
def test_rsa_oaep_empty_label_counts(name: str) -> None:
    assert sum(1 for _g, t in _tests(name) if t["label"] == "") == OAEP_FILES[name][1]


def test_rsa_oaep_jwk_agrees_with_pem() -> None:
    for name in (
        "rsa_oaep_2048_sha1_mgf1sha1_test.json",
        "rsa_oaep_2048_sha256_mgf1sha256_test.json",
    ):
        group = load_vectors(*PRIMITIVES, name)["testGroups"][0]
        from_jwk = Key.from_jwk(group["privateKeyJwk"])
        assert from_jwk.alg == OAEP_FILES[name][0]
        assert (
            from_jwk.thumbprint()
            == Key.from_pem(group["privateKeyPem"], alg=from_jwk.alg).thumbprint()
        )


# -- ECDH (P-256/384/521, X25519, X448) ------------------------------------------------

ECDH_FILES = (
    "ecdh_secp256r1_webcrypto_test.json",
    "ecdh_secp384r1_webcrypto_test.json",
    "ecdh_secp521r1_webcrypto_test.json",
    "x25519_jwk_test.json",
    "x448_jwk_test.json",
)
ECDH_CASES = [(name, t) for name in ECDH_FILES for _g, t in _tests(name)]


@pytest.mark.parametrize(("name", "test"), ECDH_CASES)
def test_ecdh_shared_secret(name: str, test: dict[str, Any]) -> None:
    result = test["result"]
    if result == "valid" or (result == "acceptable" and "ZeroSharedSecret" not in test["flags"]):
        key = Key.from_jwk(test["private"], alg="ECDH-ES")
        assert ecdh_es_agree(key, test["public"]) == bytes.fromhex(test["shared"])
    elif result == "acceptable":
        key = Key.from_jwk(test["private"], alg="ECDH-ES")
        _assert_refused(ecdh_es_agree, key, test["public"])
    else:
        assert result == "invalid"
        with pytest.raises(JWTWardError):
            ecdh_es_agree(Key.from_jwk(test["private"], alg="ECDH-ES"), test["public"])


def test_ecdh_zero_shared_secret_cases_exist() -> None:
    zero = [t for _n, t in ECDH_CASES if "ZeroSharedSecret" in t["flags"]]
    assert len(zero) == 42


# -- RFC 7518 Appendix C: ECDH-ES Concat KDF ---------------------------------------------

ALICE_EPHEMERAL = {
    "kty": "EC",
    "crv": "P-256",
    "x": "gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0",
    "y": "SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps",
    "d": "0_NxaRPUMQoAJt50Gz8YiTr8gRTwyEaCumd-MToTmIo",
}
BOB = {
    "kty": "EC",
    "crv": "P-256",
    "x": "weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ",
    "y": "e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck",
    "d": "VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw",
}


def test_rfc7518_appendix_c() -> None:
    bob = Key.from_jwk(BOB, alg="ECDH-ES")
    epk = {k: v for k, v in ALICE_EPHEMERAL.items() if k != "d"}
    header = {"alg": "ECDH-ES", "enc": "A128GCM", "apu": "QWxpY2U", "apv": "Qm9i", "epk": epk}
    assert b64decode(header["apu"]) == b"Alice"
    assert b64decode(header["apv"]) == b"Bob"
    derived = ecdh_es_derive(bob, epk, "A128GCM", 16, apu=b"Alice", apv=b"Bob")
    assert b64encode(derived) == "VqqN6vgjbSBcIijNcacQGg"
    assert unwrap_cek(bob, b"", header, "A128GCM") == derived
    # The sender's side: Alice's ephemeral private key with Bob's public key.
    alice = Key.from_jwk(ALICE_EPHEMERAL, alg="ECDH-ES")
    shared = ecdh_es_agree(alice, {k: v for k, v in BOB.items() if k != "d"})
    assert concat_kdf(shared, "A128GCM", 16, apu=b"Alice", apv=b"Bob") == derived


# -- every alg, both directions, and the one refusal ---------------------------------------

SECRET_SIZES = {"A128KW": 16, "A192KW": 24, "A256KW": 32}


def _key_for(alg: str, crv: str | None = None) -> Key:
    if alg.startswith("ECDH-ES"):
        return Key.generate(alg, crv=crv)
    return Key.generate(alg)


ROUND_TRIPS = [
    ("A128KW", None, "A128GCM"),
    ("A192KW", None, "A192CBC-HS384"),
    ("A256KW", None, "A256CBC-HS512"),
    ("A128GCMKW", None, "A128CBC-HS256"),
    ("A192GCMKW", None, "A256GCM"),
    ("A256GCMKW", None, "A256GCM"),
    ("RSA-OAEP", None, "A256GCM"),
    ("RSA-OAEP-256", None, "A128CBC-HS256"),
    ("RSA-OAEP-384", None, "A256GCM"),
    ("RSA-OAEP-512", None, "A256CBC-HS512"),
    ("ECDH-ES", "P-256", "A256GCM"),
    ("ECDH-ES", "P-384", "A256CBC-HS512"),
    ("ECDH-ES", "P-521", "A128GCM"),
    ("ECDH-ES", "X25519", "A256GCM"),
    ("ECDH-ES", "X448", "A192GCM"),
    ("ECDH-ES+A128KW", "P-256", "A128GCM"),
    ("ECDH-ES+A192KW", "X25519", "A256GCM"),
    ("ECDH-ES+A256KW", "P-521", "A256CBC-HS512"),
]


@pytest.mark.parametrize(("alg", "crv", "enc"), ROUND_TRIPS)
def test_round_trip_and_wrong_key(alg: str, crv: str | None, enc: str) -> None:
    key = _key_for(alg, crv)
    sender = key if key.kty == "oct" else key.public_key()
    cek, encrypted_key, params = new_cek(sender, enc)
    header = {"alg": alg, "enc": enc, **params}
    assert unwrap_cek(key, encrypted_key, header, enc) == cek
    if alg == "ECDH-ES":
        # Direct agreement has nothing to unwrap: another key derives another
        # CEK, which the content's authentication tag then refuses.
        assert unwrap_cek(_key_for(alg, crv), encrypted_key, header, enc) != cek
    else:
        _assert_refused(unwrap_cek, _key_for(alg, crv), encrypted_key, header, enc)
        fixed = bytes(range(len(cek)))
        wrapped, wrap_params = wrap_cek(sender, fixed, enc)
        assert unwrap_cek(key, wrapped, {"alg": alg, **wrap_params}, enc) == fixed
        # A CEK of the wrong length for enc is refused like any other failure.
        other_enc = "A128GCM" if len(cek) != 16 else "A256GCM"
        _assert_refused(unwrap_cek, key, encrypted_key, header, other_enc)


def test_dir_key_is_the_cek() -> None:
    key = Key.from_secret(bytes(range(32)), alg="dir")
    cek, encrypted_key, params = new_cek(key, "A256GCM")
    assert (cek, encrypted_key, params) == (bytes(range(32)), b"", {})
    assert unwrap_cek(key, b"", {"alg": "dir"}, "A256GCM") == cek
    _assert_refused(unwrap_cek, key, b"\x00", {"alg": "dir"}, "A256GCM")
    _assert_refused(unwrap_cek, key, b"", {"alg": "dir"}, "A128GCM")
    with pytest.raises(InvalidArgument):
        new_cek(key, "A128GCM")


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("iv", "AAAAAAAAAAAAAAAA"),
        ("tag", "AAAAAAAAAAAAAAAAAAAAAA"),
        ("iv", "AAAA"),
        ("tag", "AAAA"),
        ("iv", None),
        ("tag", 7),
        ("iv", "not base64!"),
    ],
)
def test_gcm_key_wrap_refuses_altered_iv_or_tag(member: str, value: object) -> None:
    key = Key.generate("A256GCMKW")
    _cek, encrypted_key, params = new_cek(key, "A256GCM")
    header: dict[str, Any] = {"alg": "A256GCMKW", **params, member: value}
    _assert_refused(unwrap_cek, key, encrypted_key, header, "A256GCM")
    assert len(b64decode(params["iv"])) == 12
    assert len(b64decode(params["tag"])) == 16


def _p256_point_off_curve(epk: dict[str, Any]) -> dict[str, Any]:
    y = int.from_bytes(b64decode(epk["y"]), "big") ^ 1
    return {**epk, "y": b64encode(y.to_bytes(32, "big"))}


def test_ecdh_es_refuses_bad_ephemeral_keys() -> None:
    key = Key.generate("ECDH-ES", crv="P-256")
    cek, _encrypted, params = new_cek(key.public_key(), "A128GCM", apu=b"me", apv=b"you")
    header = {"alg": "ECDH-ES", **params}
    assert unwrap_cek(key, b"", header, "A128GCM") == cek
    other_curve = material_to_jwk(
        ec.generate_private_key(ec.SECP384R1()).public_key(), private=False
    )
    x25519_epk = Key.generate("ECDH-ES", crv="X25519").public_key().to_jwk()
    with_private = Key.generate("ECDH-ES", crv="P-256").to_jwk(private=True)
    for epk in (
        _p256_point_off_curve(params["epk"]),
        other_curve,
        x25519_epk,
        with_private,
        None,
        "epk",
        {"kty": "oct", "k": "AAAA"},
    ):
        _assert_refused(unwrap_cek, key, b"", {**header, "epk": epk}, "A128GCM")
    _assert_refused(unwrap_cek, key, b"", {**header, "apu": "bm90="}, "A128GCM")
    # Well-formed but different apu/apv: a different key, found out by the content's tag.
    assert unwrap_cek(key, b"", {**header, "apu": "bm90"}, "A128GCM") != cek
    _assert_refused(unwrap_cek, key, b"", {**header, "apv": 1}, "A128GCM")
    _assert_refused(unwrap_cek, key, b"\x00" * 24, header, "A128GCM")


def test_x25519_low_order_ephemeral_key_is_refused() -> None:
    key = Key.generate("ECDH-ES", crv="X25519")
    zero_point = {"kty": "OKP", "crv": "X25519", "x": b64encode(bytes(32))}
    _assert_refused(unwrap_cek, key, b"", {"alg": "ECDH-ES", "epk": zero_point}, "A128GCM")


def test_one_key_one_alg() -> None:
    key = Key.generate("RSA-OAEP-256")
    cek, encrypted_key, _params = new_cek(key.public_key(), "A256GCM")
    with pytest.raises(AlgorithmMismatch):
        unwrap_cek(key, encrypted_key, {"alg": "RSA-OAEP"}, "A256GCM")
    assert unwrap_cek(key, encrypted_key, {"alg": "RSA-OAEP-256"}, "A256GCM") == cek


def test_keys_that_cannot_unwrap_are_refused_as_misuse() -> None:
    public = Key.generate("RSA-OAEP-256").public_key()
    with pytest.raises(KeyUsageError):
        unwrap_cek(public, b"\x00" * 256, {"alg": "RSA-OAEP-256"}, "A256GCM")
    ecdh_public = Key.generate("ECDH-ES", crv="P-256").public_key()
    with pytest.raises(KeyUsageError):
        ecdh_es_agree(ecdh_public, ecdh_public.to_jwk())
    with pytest.raises(UnsupportedAlgorithm):
        new_cek(Key.generate("ES256"), "A256GCM")
    with pytest.raises(InvalidArgument):
        wrap_cek(Key.generate("A128KW"), bytes(16), "A256GCM")


def test_unwrap_failures_carry_no_chained_cause() -> None:
    """The one DecryptionFailed keeps no __context__ that would tell a log
    which check failed (a bad point, a bad tag, a bad unwrap)."""
    from jwtward import Key
    from jwtward.errors import DecryptionFailed
    from jwtward.jose import key_management as km

    recipient = Key.generate("ECDH-ES")
    off_curve = {"kty": "EC", "crv": "P-256", "x": "A" * 43, "y": "A" * 43}
    kw = Key.generate("A128KW")
    gcm = Key.generate("A128GCMKW")
    calls = [
        lambda: km.unwrap_cek(recipient, b"", {"alg": "ECDH-ES", "epk": off_curve}, "A128GCM"),
        lambda: km.unwrap_cek(kw, bytes(24), {"alg": "A128KW"}, "A128GCM"),
        lambda: km.unwrap_cek(
            gcm, bytes(16), {"alg": "A128GCMKW", "iv": "A" * 16, "tag": "A" * 22}, "A128GCM"
        ),
    ]
    for call in calls:
        with pytest.raises(DecryptionFailed) as info:
            call()
        assert info.value.__context__ is None and info.value.__cause__ is None


@pytest.mark.parametrize("member", ["apu", "apv"])
def test_a_null_apu_or_apv_is_malformed_not_absent(member: str) -> None:
    from jwtward import Key
    from jwtward.errors import DecryptionFailed
    from jwtward.jose import key_management as km

    recipient = Key.generate("ECDH-ES")
    cek, encrypted, params = km.new_cek(recipient.public_key(), "A128GCM")
    header = {"alg": "ECDH-ES", **params}
    assert km.unwrap_cek(recipient, encrypted, header, "A128GCM") == cek
    with pytest.raises(DecryptionFailed):
        km.unwrap_cek(recipient, encrypted, header | {member: None}, "A128GCM")
