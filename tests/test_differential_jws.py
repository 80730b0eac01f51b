"""Differential JWS: jwtward and the peer libraries agree on every signature algorithm.

For each algorithm jwtward offers, a token signed by PyJWT, joserfc or jwcrypto
verifies in jwtward to the same payload, and a token signed by jwtward verifies in
each peer. The keys are made by jwtward and reach the peers only through
jwtward's own exports (JWK for jwcrypto, joserfc and PyJWT's HMAC keys, PEM for
PyJWT's asymmetric keys), so the test also proves that those exports are read
correctly elsewhere. Verifiers on both sides get the public half only.

Where a peer lacks an algorithm, the combination is left out of the exchange
and ``test_peer_gaps_are_real`` proves the peer really refuses it, so a gap
never hides a combination that could run; ``test_every_alg_is_covered`` fails
if jwtward gains a signature algorithm that no case exercises.
"""

from __future__ import annotations

import base64
import functools
import json
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt as pyjwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws as joserfc_jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import import_key as joserfc_import_key
from jwcrypto import jwk as jwcrypto_jwk  # type: ignore[import-untyped]
from jwcrypto import jws as jwcrypto_jws

from jwtward import Key, jws
from jwtward.jose.algorithms import ALGORITHMS


@dataclass(frozen=True)
class Case:
    """One algorithm (and, for EdDSA, one curve) to exchange tokens with."""

    label: str
    alg: str
    crv: str | None = None

    @property
    def deterministic(self) -> bool:
        """HMAC, RSA PKCS#1 v1.5 and EdDSA: one signature per key and input."""
        return self.alg[:2] in ("HS", "RS") or self.alg in ("EdDSA", "Ed25519", "Ed448")


CASES = (
    Case("HS256", "HS256"),
    Case("HS384", "HS384"),
    Case("HS512", "HS512"),
    Case("RS256", "RS256"),
    Case("RS384", "RS384"),
    Case("RS512", "RS512"),
    Case("PS256", "PS256"),
    Case("PS384", "PS384"),
    Case("PS512", "PS512"),
    Case("ES256", "ES256"),
    Case("ES384", "ES384"),
    Case("ES512", "ES512"),
    Case("ES256K", "ES256K"),
    Case("EdDSA-Ed25519", "EdDSA", "Ed25519"),
    Case("EdDSA-Ed448", "EdDSA", "Ed448"),
    Case("Ed25519", "Ed25519"),
    Case("Ed448", "Ed448"),
)

# -- the peers: each signs with the private export and verifies with the public one ----


def _jwk(key: Key, *, private: bool) -> dict[str, Any]:
    # A secret has no public half: HMAC verifiers get the secret JWK.
    return key.to_jwk(private=private or key.kty == "oct")


def _header(key: Key, with_kid: bool) -> dict[str, str]:
    return {"alg": key.alg, "kid": key.kid} if with_kid else {"alg": key.alg}


@functools.cache
def _pyjwt_key(key: Key, private: bool) -> Any:
    if key.kty == "oct":
        return pyjwt.PyJWK(_jwk(key, private=True)).key
    return key.to_pem(private=private)


def _pyjwt_sign(payload: bytes, key: Key, with_kid: bool) -> str:
    headers = {"kid": key.kid} if with_kid else None
    token = pyjwt.api_jws.encode(payload, _pyjwt_key(key, True), algorithm=key.alg, headers=headers)
    return str(token)


def _pyjwt_verify(token: str, key: Key) -> bytes:
    return bytes(pyjwt.api_jws.decode(token, _pyjwt_key(key, False), algorithms=[key.alg]))


@functools.cache
def _joserfc_key(key: Key, private: bool) -> Any:
    return joserfc_import_key(_jwk(key, private=private))


def _quiet_joserfc(call: Callable[[], Any]) -> Any:
    # joserfc warns that the polymorphic "EdDSA" name is deprecated (RFC 9864);
    # jwtward offers it on purpose, so the notice is noise here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=SecurityWarning)
        return call()


def _joserfc_sign(payload: bytes, key: Key, with_kid: bool) -> str:
    return str(
        _quiet_joserfc(
            lambda: joserfc_jws.serialize_compact(
                _header(key, with_kid), payload, _joserfc_key(key, True), algorithms=[key.alg]
            )
        )
    )


def _joserfc_verify(token: str, key: Key) -> bytes:
    found = _quiet_joserfc(
        lambda: joserfc_jws.deserialize_compact(token, _joserfc_key(key, False), [key.alg])
    )
    return bytes(found.payload)


@functools.cache
def _jwcrypto_key(key: Key, private: bool) -> jwcrypto_jwk.JWK:
    return jwcrypto_jwk.JWK(**_jwk(key, private=private))


def _jwcrypto_sign(payload: bytes, key: Key, with_kid: bool) -> str:
    token = jwcrypto_jws.JWS(payload)
    token.add_signature(
        _jwcrypto_key(key, True), alg=key.alg, protected=json.dumps(_header(key, with_kid))
    )
    return str(token.serialize(compact=True))


def _jwcrypto_verify(token: str, key: Key) -> bytes:
    parsed = jwcrypto_jws.JWS()
    parsed.deserialize(token, _jwcrypto_key(key, False), alg=key.alg)
    return bytes(parsed.payload)


@dataclass(frozen=True)
class Peer:
    name: str
    sign: Callable[[bytes, Key, bool], str]
    verify: Callable[[str, Key], bytes]
    # alg -> (short id suffix, reason): combinations the peer cannot do at all.
    unsupported: Mapping[str, tuple[str, str]] = field(default_factory=dict)


_NO_RFC9864 = (
    "peer-lacks-RFC9864-alg",
    "PyJWT only knows the polymorphic 'EdDSA', not the RFC 9864 names",
)
PEERS = (
    Peer(
        "pyjwt",
        _pyjwt_sign,
        _pyjwt_verify,
        unsupported={"Ed25519": _NO_RFC9864, "Ed448": _NO_RFC9864},
    ),
    Peer("joserfc", _joserfc_sign, _joserfc_verify),
    Peer("jwcrypto", _jwcrypto_sign, _jwcrypto_verify),
)


def _combinations(*, supported: bool) -> Iterator[Any]:
    for case in CASES:
        for peer in PEERS:
            if (case.alg not in peer.unsupported) is supported:
                yield pytest.param(case, peer, id=f"{case.label}-{peer.name}")


COMBINATIONS = list(_combinations(supported=True))
GAPS = list(_combinations(supported=False))


@pytest.fixture(scope="module")
def keys() -> dict[str, Key]:
    """One private key per case, made once per module (RSA generation is slow)."""
    return {
        case.label: Key.generate(case.alg, crv=case.crv) if case.crv else Key.generate(case.alg)
        for case in CASES
    }


def _verifier(key: Key) -> Key:
    return key if key.kty == "oct" else key.public_key()


def _segments(token: str) -> tuple[dict[str, Any], bytes, bytes]:
    """Header, signing input and signature of a compact token, decoded leniently."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    signature = base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))
    return header, f"{header_b64}.{payload_b64}".encode("ascii"), signature


payloads = st.binary(max_size=512)
EXCHANGE = settings(max_examples=25, deadline=None)


def test_every_alg_is_covered() -> None:
    """Every signature algorithm in the registry (and both EdDSA curves) has a case."""
    offered = {name for name, spec in ALGORITHMS.items() if spec.is_signature}
    assert {case.alg for case in CASES} == offered
    assert {case.crv for case in CASES if case.alg == "EdDSA"} == {"Ed25519", "Ed448"}
    assert len(COMBINATIONS) + len(GAPS) == len(CASES) * len(PEERS)
    assert len(GAPS) == sum(len(peer.unsupported) for peer in PEERS)


@pytest.mark.parametrize(("case", "peer"), GAPS)
def test_peer_gaps_are_real(case: Case, peer: Peer, keys: dict[str, Key]) -> None:
    """A combination left out of the exchange is one the peer cannot do at all."""
    key = keys[case.label]
    with pytest.raises(Exception) as info:
        peer.sign(b"payload", key, True)
    assert not isinstance(info.value, AssertionError)
    token = jws.sign(b"payload", key)
    with pytest.raises(Exception) as info:
        peer.verify(token, key)
    assert not isinstance(info.value, AssertionError)


@pytest.mark.parametrize(("case", "peer"), COMBINATIONS)
@EXCHANGE
@given(payload=payloads, with_kid=st.booleans())
def test_peer_token_verifies_in_jwtward(
    case: Case, peer: Peer, keys: dict[str, Key], payload: bytes, with_kid: bool
) -> None:
    """A peer's token, with the key's kid or none, verifies to the peer's payload."""
    key = keys[case.label]
    token = peer.sign(payload, key, with_kid)
    header, signing_input, signature = _segments(token)
    assert header["alg"] == case.alg
    assert header.get("kid") == (key.kid if with_kid else None)

    assert jws.verify(token, _verifier(key)) == payload
    assert jws.verify(token.encode("ascii"), _verifier(key)) == payload
    if case.deterministic:
        # Same key, same input: both libraries must produce the very same bytes.
        assert key.sign(signing_input) == signature


@pytest.mark.parametrize(("case", "peer"), COMBINATIONS)
@EXCHANGE
@given(payload=payloads, typ=st.sampled_from([None, "JWT", "at+jwt"]))
def test_jwtward_token_verifies_in_peer(
    case: Case, peer: Peer, keys: dict[str, Key], payload: bytes, typ: str | None
) -> None:
    """A jwtward token verifies in the peer, with the public key only, to the same payload."""
    key = keys[case.label]
    token = jws.sign(payload, key, headers={"typ": typ} if typ else None)
    header, _signing_input, _signature = _segments(token)
    assert header == {"alg": case.alg, "kid": key.kid, **({"typ": typ} if typ else {})}

    assert peer.verify(token, key) == payload
