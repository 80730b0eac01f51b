"""Regressions from the review of JWE keys: dir binding and JWK Set robustness."""

from __future__ import annotations

import pytest

from jwtward import Key, KeySet, jwe
from jwtward.errors import InvalidKey, KeyNotFound, UnsupportedAlgorithm


@pytest.fixture(scope="module")
def oaep() -> Key:
    return Key.generate("RSA-OAEP-256")


@pytest.fixture(scope="module")
def rs256() -> Key:
    return Key.generate("RS256")


def test_an_enc_member_on_a_non_dir_key_is_ignored(oaep: Key, rs256: Key) -> None:
    doc = {"keys": [rs256.public_key().to_jwk(), {**oaep.public_key().to_jwk(), "enc": "A256GCM"}]}
    keys = KeySet.from_jwks(doc)
    assert sorted(k.alg for k in keys) == ["RS256", "RSA-OAEP-256"]
    assert keys.select(oaep.kid).enc is None


def test_a_non_oct_key_whose_alg_names_an_enc_is_skippable(oaep: Key, rs256: Key) -> None:
    doc = {"keys": [rs256.public_key().to_jwk(), {**oaep.public_key().to_jwk(), "alg": "A256GCM"}]}
    with pytest.raises(UnsupportedAlgorithm):
        KeySet.from_jwks(doc)
    assert [k.alg for k in KeySet.from_jwks(doc, ignore_unsupported=True)] == ["RS256"]


def test_alg_argument_may_name_the_enc_of_a_dir_key() -> None:
    bound = Key.generate("dir", enc="A128GCM")
    jwk = bound.to_jwk(private=True)
    del jwk["alg"], jwk["enc"]
    key = Key.from_jwk(jwk, alg="A128GCM")
    assert (key.alg, key.enc) == ("dir", "A128GCM")
    assert jwe.decrypt(jwe.encrypt(b"x", bound), key) == b"x"
    with pytest.raises(InvalidKey):
        Key.from_jwk({**jwk, "alg": "A128GCM"}, alg="A256GCM")


def test_dir_jwk_round_trip_keeps_the_binding() -> None:
    key = Key.generate("dir", enc="A128CBC-HS256")
    again = Key.from_jwk(key.to_jwk(private=True))
    assert again.enc == "A128CBC-HS256"
    with pytest.raises(InvalidKey):
        Key.from_jwk({**key.to_jwk(private=True), "enc": "A256GCM", "alg": "A128GCM"})


@pytest.mark.parametrize("enc", [["A128GCM"], 5, "A999GCM"])
def test_generate_refuses_a_malformed_enc(enc: object) -> None:
    with pytest.raises(InvalidKey):
        Key.generate("dir", enc=enc)  # type: ignore[arg-type]


def test_key_agreement_ops_count_for_ecdh_keys_only(oaep: Key) -> None:
    rsa = Key.from_jwk({**oaep.to_jwk(private=True), "key_ops": ["deriveBits"]})
    with pytest.raises(KeyNotFound):
        jwe.decrypt(jwe.encrypt(b"x", oaep), rsa)
    ecdh = Key.generate("ECDH-ES")
    agreeing = Key.from_jwk({**ecdh.to_jwk(private=True), "key_ops": ["deriveKey"]})
    assert jwe.decrypt(jwe.encrypt(b"x", ecdh.public_key()), agreeing) == b"x"
