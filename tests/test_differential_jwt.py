"""jwtward's JWT claims layer against PyJWT and joserfc, in both directions.

Keys are made by jwtward and exported (JWK, PEM, raw secret) to the peers, so
the only thing that differs between the libraries is their JWT handling:
tokens made by a peer with the same claims decode in jwtward under a matching
Policy; expired, wrong-audience, wrong-issuer and not-yet-valid peer tokens are
refused with the right jwtward error; and jwtward's tokens pass the peers'
own claim validation (and fail it when they should).
"""

from __future__ import annotations

import base64
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt as pyjwt
import pytest
from joserfc import jwt as joserfc_jwt
from joserfc.errors import JoseError
from joserfc.jwk import import_key

from jwtward import Key, KeySet, Policy
from jwtward import jwt as jwtward_jwt
from jwtward.errors import (
    ClaimError,
    ExpiredToken,
    InvalidClaim,
    InvalidToken,
    InvalidType,
    MissingClaim,
    NotYetValid,
)

T = 1_767_225_600
ISSUER = "https://issuer.example"
AUDIENCE = "https://api.example"
ALGS = [("HS256", None), ("RS256", None), ("ES256", None), ("EdDSA", "Ed25519")]
ALG_IDS = [alg for alg, _ in ALGS]


@dataclass(frozen=True)
class Pair:
    """A jwtward signing key and the key that verifies it."""

    signing: Key
    verifying: Key


_PAIRS: dict[str, Pair] = {}


@pytest.fixture(params=ALGS, ids=ALG_IDS)
def pair(request: pytest.FixtureRequest) -> Pair:
    alg, crv = request.param
    if alg not in _PAIRS:
        signing = Key.generate(alg, kid=f"diff-{alg.lower()}", crv=crv)
        verifying = signing if alg.startswith("HS") else signing.public_key()
        _PAIRS[alg] = Pair(signing, verifying)
    return _PAIRS[alg]


def at(instant: float) -> Callable[[], float]:
    return lambda: instant


def claims_at(now: int, **changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-42",
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "3f6a1c0e-peer",
        "scope": "read write",
        "roles": ["admin", "ops"],
        "profile": {"name": "Zoë", "age": 42, "ratio": 0.5, "verified": True, "note": None},
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def matching_policy(now: float, **options: Any) -> Policy:
    return Policy(issuer=ISSUER, audience=AUDIENCE, clock=at(now), **options)


# -- the peers, with keys exported from jwtward --------------------------------------


def _secret(key: Key) -> bytes:
    k = key.to_jwk(private=True)["k"]
    return base64.urlsafe_b64decode(k + "=" * (-len(k) % 4))


def pyjwt_encode(claims: dict[str, Any], pair: Pair, *, kid: bool = True) -> str:
    key = pair.signing
    material: Any = _secret(key) if key.alg.startswith("HS") else key.to_pem(private=True)
    headers = {"kid": key.kid} if kid else None
    return pyjwt.encode(claims, material, algorithm=key.alg, headers=headers)


def pyjwt_decode(token: str, pair: Pair, **options: Any) -> dict[str, Any]:
    key = pair.verifying
    material: Any = _secret(key) if key.alg.startswith("HS") else pyjwt.PyJWK(key.to_jwk())
    decoded: dict[str, Any] = pyjwt.decode(
        token,
        material,
        algorithms=[key.alg],
        issuer=ISSUER,
        audience=AUDIENCE,
        options={"require": ["exp", "iss", "aud"]},
        **options,
    )
    return decoded


def joserfc_encode(claims: dict[str, Any], pair: Pair, *, typ: str = "JWT") -> str:
    key = pair.signing
    header = {"alg": key.alg, "kid": key.kid, "typ": typ}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc flags EdDSA as deprecated in favour of Ed25519
        return joserfc_jwt.encode(
            header, claims, import_key(key.to_jwk(private=True)), algorithms=[key.alg]
        )


def joserfc_decode(token: str, pair: Pair, *, now: int | None = None) -> dict[str, Any]:
    key = pair.verifying
    jwk = key.to_jwk(private=key.alg.startswith("HS"))  # a secret has no public form
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        decoded = joserfc_jwt.decode(token, import_key(jwk), algorithms=[key.alg])
    registry = joserfc_jwt.JWTClaimsRegistry(
        now=now,
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": AUDIENCE},
        exp={"essential": True},
    )
    registry.validate(decoded.claims)
    return decoded.claims


PEER_ENCODERS: dict[str, Callable[[dict[str, Any], Pair], str]] = {
    "PyJWT": pyjwt_encode,
    "joserfc": joserfc_encode,
}
PEERS = list(PEER_ENCODERS)


# -- peer tokens decode in jwtward ----------------------------------------------------


@pytest.mark.parametrize("peer", PEERS)
def test_peer_token_decodes_with_matching_policy(peer: str, pair: Pair) -> None:
    claims = claims_at(T)
    token = PEER_ENCODERS[peer](claims, pair)
    assert jwtward_jwt.decode(token, pair.verifying, matching_policy(T + 1)) == claims


@pytest.mark.parametrize("peer", PEERS)
def test_peer_token_decodes_with_a_keyset_from_jwks(peer: str, pair: Pair) -> None:
    other = Key.generate(pair.signing.alg, kid="other-key", crv=pair.signing.crv)
    public = [pair.verifying, other if other.alg.startswith("HS") else other.public_key()]
    jwks = KeySet(public).to_jwks(private=pair.signing.alg.startswith("HS"))
    claims = claims_at(T, aud=["someone-else", AUDIENCE])
    token = PEER_ENCODERS[peer](claims, pair)
    assert jwtward_jwt.decode(token, KeySet.from_jwks(jwks), matching_policy(T)) == claims


def test_pyjwt_token_without_kid_decodes_with_a_lone_key(pair: Pair) -> None:
    claims = claims_at(T)
    token = pyjwt_encode(claims, pair, kid=False)
    assert jwtward_jwt.decode(token, pair.verifying, matching_policy(T)) == claims


def test_joserfc_access_token_type(pair: Pair) -> None:
    claims = claims_at(T)
    policy = matching_policy(T, typ="at+jwt")
    accepted = joserfc_encode(claims, pair, typ="at+jwt")
    assert jwtward_jwt.decode(accepted, pair.verifying, policy) == claims
    with pytest.raises(InvalidType):
        jwtward_jwt.decode(joserfc_encode(claims, pair), pair.verifying, policy)


# -- bad peer tokens are refused with the right error ----------------------------------


@dataclass(frozen=True)
class BadToken:
    """Claims changed from a good token, and the refusal they must earn at time T."""

    changes: dict[str, Any]
    error: type[InvalidToken]
    claim: str


BAD_TOKENS = {
    "expired": BadToken({"iat": T - 1200, "nbf": T - 1200, "exp": T - 600}, ExpiredToken, "exp"),
    "expired at the leeway": BadToken({"exp": T - 30}, ExpiredToken, "exp"),
    "wrong aud": BadToken({"aud": "https://other.example"}, InvalidClaim, "aud"),
    "wrong aud list": BadToken({"aud": ["https://a.example", "b"]}, InvalidClaim, "aud"),
    "no aud": BadToken({"aud": None}, MissingClaim, "aud"),
    "wrong iss": BadToken({"iss": "https://evil.example"}, InvalidClaim, "iss"),
    "no iss": BadToken({"iss": None}, MissingClaim, "iss"),
    "not yet valid": BadToken({"nbf": T + 3600, "exp": T + 7200}, NotYetValid, "nbf"),
    "issued in the future": BadToken({"iat": T + 3600, "nbf": None}, InvalidClaim, "iat"),
    "no exp": BadToken({"exp": None}, MissingClaim, "exp"),
}


@pytest.mark.parametrize("peer", PEERS)
@pytest.mark.parametrize("bad", list(BAD_TOKENS.values()), ids=list(BAD_TOKENS))
def test_bad_peer_token_refused(peer: str, pair: Pair, bad: BadToken) -> None:
    token = PEER_ENCODERS[peer](claims_at(T, **bad.changes), pair)
    with pytest.raises(bad.error) as caught:
        jwtward_jwt.decode(token, pair.verifying, matching_policy(T))
    assert isinstance(caught.value, ClaimError)
    assert caught.value.claim == bad.claim
    assert caught.value.error == "invalid_token"
    assert caught.value.status_code == 401


@pytest.mark.parametrize("peer", PEERS)
def test_peer_token_with_aud_refused_by_a_policy_without_audience(peer: str, pair: Pair) -> None:
    token = PEER_ENCODERS[peer](claims_at(T), pair)
    with pytest.raises(InvalidClaim) as caught:
        jwtward_jwt.decode(token, pair.verifying, Policy(issuer=ISSUER, clock=at(T)))
    assert caught.value.claim == "aud"


@pytest.mark.parametrize("peer", PEERS)
def test_peer_token_over_max_lifetime_refused(peer: str, pair: Pair) -> None:
    token = PEER_ENCODERS[peer](claims_at(T), pair)
    assert jwtward_jwt.decode(
        token, pair.verifying, matching_policy(T, max_lifetime=timedelta(minutes=10))
    )
    with pytest.raises(InvalidClaim):
        jwtward_jwt.decode(
            token, pair.verifying, matching_policy(T, max_lifetime=timedelta(minutes=9))
        )


# -- jwtward tokens pass the peers' validation ---------------------------------------------


def jwtward_token(pair: Pair, **changes: Any) -> tuple[str, dict[str, Any]]:
    """A jwtward token made now (the peers read the real clock), with its claims."""
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "roles": ["a"], **changes}
    token = jwtward_jwt.encode(claims, pair.signing, typ="at+jwt")
    return token, jwtward_jwt.decode(token, pair.verifying, matching_policy(time.time()))


def test_jwtward_token_decodes_in_pyjwt(pair: Pair) -> None:
    token, claims = jwtward_token(pair)
    assert pyjwt_decode(token, pair) == claims
    assert pyjwt.get_unverified_header(token) == {
        "alg": pair.signing.alg,
        "kid": pair.signing.kid,
        "typ": "at+jwt",
    }


def test_jwtward_token_decodes_in_joserfc(pair: Pair) -> None:
    token, claims = jwtward_token(pair)
    assert joserfc_decode(token, pair) == claims


def test_jwtward_token_with_audience_list_decodes_in_peers(pair: Pair) -> None:
    token, claims = jwtward_token(pair, aud=["other", AUDIENCE])
    assert pyjwt_decode(token, pair) == claims
    assert joserfc_decode(token, pair) == claims


def test_jwtward_bad_tokens_fail_the_peers_validation(pair: Pair) -> None:
    now = int(time.time())
    expired = jwtward_jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE}, pair.signing, clock=at(now - 3600)
    )
    wrong_aud = jwtward_jwt.encode({"iss": ISSUER, "aud": "https://other.example"}, pair.signing)
    wrong_iss = jwtward_jwt.encode({"iss": "https://evil.example", "aud": AUDIENCE}, pair.signing)
    with pytest.raises(pyjwt.ExpiredSignatureError):
        pyjwt_decode(expired, pair)
    with pytest.raises(pyjwt.InvalidAudienceError):
        pyjwt_decode(wrong_aud, pair)
    with pytest.raises(pyjwt.InvalidIssuerError):
        pyjwt_decode(wrong_iss, pair)
    for token in (expired, wrong_aud, wrong_iss):
        with pytest.raises(JoseError):
            joserfc_decode(token, pair)


def test_jwtward_lifetime_and_jti_as_the_peers_read_them(pair: Pair) -> None:
    token = jwtward_jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE}, pair.signing, lifetime=timedelta(minutes=5)
    )
    for claims in (pyjwt_decode(token, pair), joserfc_decode(token, pair)):
        assert claims["exp"] - claims["iat"] == 300
        assert isinstance(claims["jti"], str)
        assert len(base64.urlsafe_b64decode(claims["jti"] + "==")) == 16
