"""Differential JWE: jwtward and the peer libraries agree on every alg x enc pair.

For each key management algorithm (and, for ECDH-ES, each curve) that jwtward
and a peer (joserfc, jwcrypto) both offer, and each of the six content
encryptions, a token encrypted by jwtward decrypts in the peer to the same
plaintext, and a token encrypted by the peer decrypts in jwtward. Keys are made
by jwtward and reach the peers only as JWKs (senders get the public half where
there is one), so the test also proves that jwtward's JWK export is read
correctly elsewhere and that its ephemeral keys, IVs, tags and Concat KDF
inputs are the ones the RFCs define.

Where no peer offers an algorithm, ``test_peer_gaps_are_real`` proves the peer
really refuses it, so a gap never hides a combination that could run;
``test_every_alg_is_covered`` fails if jwtward gains a key management
algorithm or a content encryption that no case exercises.

Nested JWTs (RFC 7519 §5.2) are exchanged both ways too: the signed-then-
encrypted token of ``jwt.encode(..., encrypt_to=)`` opens and verifies in each
peer, and a peer's nested token is accepted by ``jwt.decode(..., decrypt_with=)``.
"""

from __future__ import annotations

import functools
import json
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jwe as joserfc_jwe
from joserfc import jws as joserfc_jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import import_key as joserfc_import_key
from jwcrypto import jwe as jwcrypto_jwe  # type: ignore[import-untyped]
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws
from jwcrypto.common import JWException  # type: ignore[import-untyped]

from jwtward import Key, Policy, jwe, jwt
from jwtward.jose.algorithms import ALGORITHMS
from jwtward.jose.content_encryption import CONTENT_ENCRYPTIONS

ENCS = (
    "A128GCM",
    "A192GCM",
    "A256GCM",
    "A128CBC-HS256",
    "A192CBC-HS384",
    "A256CBC-HS512",
)
CURVES = ("P-256", "P-384", "P-521", "X25519", "X448")
ECDH_ALGS = ("ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A192KW", "ECDH-ES+A256KW")


@dataclass(frozen=True)
class Case:
    """One key management algorithm (and, for ECDH-ES, one curve)."""

    alg: str
    crv: str | None = None

    @property
    def label(self) -> str:
        return self.alg if self.crv is None else f"{self.alg}-{self.crv}"


CASES = (
    Case("RSA-OAEP"),
    Case("RSA-OAEP-256"),
    Case("A128KW"),
    Case("A192KW"),
    Case("A256KW"),
    Case("A128GCMKW"),
    Case("A192GCMKW"),
    Case("A256GCMKW"),
    Case("dir"),
    *(Case(alg, crv) for alg in ECDH_ALGS for crv in CURVES),
)
# Offered by jwtward, by neither peer: proved refused by both below.
PEER_GAPS = ("RSA-OAEP-384", "RSA-OAEP-512")


@functools.cache
def _key(case: Case, enc: str) -> Key:
    """One key per case (RSA generation is slow); a dir key per enc, as it is bound to one."""
    if case.alg == "dir":
        return Key.generate("dir", enc=enc)
    if case.crv is not None:
        return Key.generate(case.alg, crv=case.crv)
    return Key.generate(case.alg)


def _public_jwk(key: Key) -> dict[str, Any]:
    # A secret has no public half: the sender needs the secret itself.
    return key.to_jwk(private=key.kty == "oct")


# -- the peers ---------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """A peer library reduced to compact JWE encryption and decryption of JWKs."""

    name: str
    # jwcrypto reads an empty decrypted plaintext as "no recipient matched",
    # so an empty plaintext can only travel towards jwtward with it.
    decrypts_empty: bool
    encrypt: Callable[[Mapping[str, Any], Mapping[str, Any], bytes], str]
    decrypt: Callable[[Mapping[str, Any], str, tuple[str, ...]], tuple[dict[str, Any], bytes]]


def _joserfc_encrypt(header: Mapping[str, Any], jwk: Mapping[str, Any], plaintext: bytes) -> str:
    names = [header["alg"], header["enc"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        return joserfc_jwe.encrypt_compact(
            dict(header), plaintext, joserfc_import_key(dict(jwk)), algorithms=names
        )


def _joserfc_decrypt(
    jwk: Mapping[str, Any], token: str, names: tuple[str, ...]
) -> tuple[dict[str, Any], bytes]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        result = joserfc_jwe.decrypt_compact(
            token, joserfc_import_key(dict(jwk)), algorithms=list(names)
        )
    assert result.plaintext is not None
    return dict(result.protected), result.plaintext


def _jwcrypto_encrypt(header: Mapping[str, Any], jwk: Mapping[str, Any], plaintext: bytes) -> str:
    token = jwcrypto_jwe.JWE(plaintext, protected=json.dumps(dict(header)))
    token.add_recipient(jwcrypto_jwk.JWK(**jwk))
    return str(token.serialize(compact=True))


def _jwcrypto_decrypt(
    jwk: Mapping[str, Any], token: str, names: tuple[str, ...]
) -> tuple[dict[str, Any], bytes]:
    parsed = jwcrypto_jwe.JWE(algs=list(names))
    parsed.deserialize(token, jwcrypto_jwk.JWK(**jwk))
    return dict(json.loads(parsed.objects["protected"])), bytes(parsed.payload)


PEERS = (
    Peer("joserfc", True, _joserfc_encrypt, _joserfc_decrypt),
    Peer("jwcrypto", False, _jwcrypto_encrypt, _jwcrypto_decrypt),
)


def _exchange_params() -> Iterator[Any]:
    for case in CASES:
        for enc in ENCS:
            for peer in PEERS:
                yield pytest.param(case, enc, peer, id=f"{case.label}-{enc}-{peer.name}")


# -- the exchange ---------------------------------------------------------------------


def _jwtward_to_peer(case: Case, enc: str, peer: Peer, plaintext: bytes) -> None:
    key = _key(case, enc)
    sender = key if key.kty == "oct" else key.public_key()
    token = jwe.encrypt(plaintext, sender, enc=enc)
    header, opened = peer.decrypt(key.to_jwk(private=True), token, (case.alg, enc))
    assert opened == plaintext
    assert (header["alg"], header["enc"], header["kid"]) == (case.alg, enc, key.kid)


def _peer_to_jwtward(case: Case, enc: str, peer: Peer, plaintext: bytes) -> None:
    key = _key(case, enc)
    header = {"alg": case.alg, "enc": enc, "kid": key.kid}
    token = peer.encrypt(header, _public_jwk(key), plaintext)
    decoded = jwe.decode(token, key)
    assert decoded.plaintext == plaintext
    assert (decoded.header["alg"], decoded.header["enc"]) == (case.alg, enc)
    assert decoded.key is key


@pytest.mark.parametrize(("case", "enc", "peer"), list(_exchange_params()))
def test_jwtward_tokens_decrypt_in_peer(case: Case, enc: str, peer: Peer) -> None:
    _jwtward_to_peer(case, enc, peer, f"jwtward to {peer.name}: {case.label} {enc}".encode())


@pytest.mark.parametrize(("case", "enc", "peer"), list(_exchange_params()))
def test_peer_tokens_decrypt_in_jwtward(case: Case, enc: str, peer: Peer) -> None:
    _peer_to_jwtward(case, enc, peer, f"{peer.name} to jwtward: {case.label} {enc}".encode())


# A few pairings with arbitrary plaintexts: empty, one block, ragged, binary, large.
PROPERTY_CASES = (
    (Case("A256KW"), "A128CBC-HS256"),
    (Case("dir"), "A192CBC-HS384"),
    (Case("ECDH-ES", "X25519"), "A256GCM"),
    (Case("ECDH-ES+A192KW", "P-384"), "A256CBC-HS512"),
    (Case("RSA-OAEP-256"), "A128GCM"),
    (Case("A192GCMKW"), "A192GCM"),
)


@pytest.mark.parametrize(
    ("case", "enc", "peer"),
    [
        pytest.param(case, enc, peer, id=f"{case.label}-{enc}-{peer.name}")
        for case, enc in PROPERTY_CASES
        for peer in PEERS
    ],
)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plaintext=st.binary(max_size=2000))
def test_arbitrary_plaintexts_round_trip_both_ways(
    case: Case, enc: str, peer: Peer, plaintext: bytes
) -> None:
    if plaintext or peer.decrypts_empty:
        _jwtward_to_peer(case, enc, peer, plaintext)
    _peer_to_jwtward(case, enc, peer, plaintext)


# -- coverage and gaps -----------------------------------------------------------------


def test_every_alg_is_covered() -> None:
    """A new key management alg, curve or enc in jwtward must join the exchange."""
    covered = {(case.alg, case.crv) for case in CASES}
    for name, spec in ALGORITHMS.items():
        if spec.use != "enc":
            continue
        if name in PEER_GAPS:
            continue
        if spec.curves:
            for crv in spec.curves:
                assert (name, crv) in covered, f"{name} on {crv} is not exchanged"
        else:
            assert (name, None) in covered, f"{name} is not exchanged"
    assert set(CONTENT_ENCRYPTIONS) == set(ENCS)
    assert all(ALGORITHMS[name].use == "enc" for name in PEER_GAPS)


@pytest.mark.parametrize("alg", PEER_GAPS)
def test_peer_gaps_are_real(alg: str) -> None:
    """Both peers refuse what is left out, so no pair that could run is skipped."""
    key = _key(Case(alg), "A256GCM")
    token = jwe.encrypt(b"gap", key.public_key())
    assert jwe.decrypt(token, key) == b"gap"
    private = key.to_jwk(private=True)
    with pytest.raises(JoseError):
        _joserfc_decrypt(private, token, (alg, "A256GCM"))
    with pytest.raises(JoseError):
        _joserfc_encrypt({"alg": alg, "enc": "A256GCM"}, _public_jwk(key), b"gap")
    with pytest.raises(JWException):
        _jwcrypto_decrypt(private, token, (alg, "A256GCM"))
    with pytest.raises(JWException):
        _jwcrypto_encrypt({"alg": alg, "enc": "A256GCM"}, _public_jwk(key), b"gap")


# -- nested JWTs (RFC 7519 §5.2): sign, then encrypt -------------------------------------

NESTED = (
    (Case("RSA-OAEP-256"), "A256GCM"),
    (Case("ECDH-ES+A256KW", "P-256"), "A128CBC-HS256"),
    (Case("ECDH-ES", "X25519"), "A256CBC-HS512"),
    (Case("A128KW"), "A192GCM"),
)


@functools.cache
def _signing_key() -> Key:
    return Key.generate("ES256")


def _claims() -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "user-7", "iat": now, "exp": now + 300, "role": "reader"}


def _open_nested_in_peer(peer: Peer, enc_key: Key, token: str, enc: str) -> dict[str, Any]:
    """Decrypt with the peer, then verify the inner JWS with the peer: the claims."""
    header, inner = peer.decrypt(enc_key.to_jwk(private=True), token, (enc_key.alg, enc))
    assert header["cty"] == "JWT"
    verify_jwk = _signing_key().to_jwk()
    if peer.name == "joserfc":
        result = joserfc_jws.deserialize_compact(
            inner, joserfc_import_key(verify_jwk), algorithms=["ES256"]
        )
        return dict(json.loads(result.payload))
    signed = jwcrypto_jws.JWS()
    signed.deserialize(inner.decode("ascii"), jwcrypto_jwk.JWK(**verify_jwk), alg="ES256")
    return dict(json.loads(signed.payload))


def _sign_in_peer(peer: Peer, claims: Mapping[str, Any]) -> str:
    signing = _signing_key()
    header = {"alg": "ES256", "typ": "JWT", "kid": signing.kid}
    payload = json.dumps(dict(claims)).encode()
    private = signing.to_jwk(private=True)
    if peer.name == "joserfc":
        return joserfc_jws.serialize_compact(
            header, payload, joserfc_import_key(private), algorithms=["ES256"]
        )
    signed = jwcrypto_jws.JWS(payload)
    signed.add_signature(jwcrypto_jwk.JWK(**private), protected=json.dumps(header))
    return str(signed.serialize(compact=True))


def _nested_params() -> list[Any]:
    return [
        pytest.param(case, enc, peer, id=f"{case.label}-{enc}-{peer.name}")
        for case, enc in NESTED
        for peer in PEERS
    ]


@pytest.mark.parametrize(("case", "enc", "peer"), _nested_params())
def test_jwtward_nested_jwt_opens_and_verifies_in_peer(case: Case, enc: str, peer: Peer) -> None:
    enc_key = _key(case, enc)
    claims = _claims()
    recipient = enc_key if enc_key.kty == "oct" else enc_key.public_key()
    token = jwt.encode(claims, _signing_key(), encrypt_to=recipient, enc=enc)
    assert token.count(".") == 4
    opened = _open_nested_in_peer(peer, enc_key, token, enc)
    assert {name: opened[name] for name in claims} == claims
    assert isinstance(opened["jti"], str)


@pytest.mark.parametrize(("case", "enc", "peer"), _nested_params())
def test_peer_nested_jwt_is_accepted_by_jwtward(case: Case, enc: str, peer: Peer) -> None:
    enc_key = _key(case, enc)
    claims = _claims()
    inner = _sign_in_peer(peer, claims)
    header = {"alg": case.alg, "enc": enc, "kid": enc_key.kid, "cty": "JWT"}
    token = peer.encrypt(header, _public_jwk(enc_key), inner.encode("ascii"))
    decoded = jwt.decode(
        token, _signing_key().public_key(), Policy(typ="JWT"), decrypt_with=enc_key
    )
    assert decoded == claims
