"""JWT encode/decode throughput with full claims validation: jwtward against the peers.

Each library makes and checks the same access token: claims ``iss``, ``sub``,
``aud``, ``scope`` plus ``iat``, ``exp`` (15 minutes) and a random 128-bit
``jti`` made on every call, under a header of ``alg``, ``kid`` and ``typ``.
``jwtward.jwt.encode`` adds ``iat``/``exp``/``jti`` itself; for the peers the
timed call builds them the way an application would. Decoding verifies the
signature and validates ``exp`` (required), ``iss`` and ``aud`` in every
library:

- jwtward: ``jwt.decode(token, key, Policy(issuer=..., audience=...))``
- PyJWT: ``jwt.decode(..., algorithms=[alg], issuer=..., audience=...)`` requiring ``exp``
- joserfc: ``jwt.decode`` then ``JWTClaimsRegistry(iss, aud, exp essential).validate``
- jwcrypto: ``jwt.JWT(jwt=..., key=..., algs=[alg], check_claims={iss, aud, exp})``
- authlib: ``authlib.jose.jwt.decode(..., claims_options=...)`` then ``claims.validate()``

Key objects are made once per library, before timing. Before any timing,
every library must return the claims of its own token and refuse, from
tokens it made itself, an altered signature, an expired token, a wrong
audience and a wrong issuer: a decoder that skips a check would otherwise look
fast. Timing is shared with ``bench_jws.py`` (see ``_timing.py``). Run from the
repository root::

    .venv/bin/python bench/bench_jwt.py [--quick] [--algs HS256,ES256] [--json]
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from _inputs import KID, KeyPair, key_pair, tampered
from _report import (
    Output,
    PeerResult,
    PeerTable,
    environment,
    header,
    json_report,
    main_for,
    missed_summary,
    select,
    target_json,
    timing_facts,
)
from _timing import Noise, Settings, measure
from jwtward import Policy
from jwtward import jwt as jwtward_jwt

ISSUER = "https://auth.example.com"
AUDIENCE = "https://api.example.com"
LIFETIME = 900
BASE_CLAIMS: dict[str, Any] = {
    "iss": ISSUER,
    "sub": "user-1234567890",
    "aud": AUDIENCE,
    "scope": "openid profile email",
}
PEERS = ("PyJWT", "joserfc", "jwcrypto", "authlib")
LIBRARIES = ("jwtward", *PEERS)
OPERATIONS = ("encode", "decode")

Claims = Mapping[str, Any]


@dataclass(frozen=True)
class Case:
    """One row of the table: an ``alg`` and, for EdDSA, the curve of its key."""

    label: str
    alg: str
    crv: str | None
    decode_target: float  # jwtward decode ops/s over the fastest peer's, at least
    encode_target: float = 1.0


CASES = (
    Case("HS256", "HS256", None, 1.5),
    Case("RS256", "RS256", None, 1.2),
    Case("PS256", "PS256", None, 1.2),
    Case("ES256", "ES256", None, 1.1),
    Case("EdDSA", "EdDSA", "Ed25519", 1.0),
)


@dataclass(frozen=True)
class Contender:
    """One library bound to one key pair.

    ``encode`` is the timed call (fresh ``iat``/``exp``/``jti``); ``encode_exact``
    signs exactly the claims given, for the checks before timing; ``decode``
    verifies and validates, returning the claims.
    """

    name: str
    encode: Callable[[], str]
    encode_exact: Callable[[Claims], str]
    decode: Callable[[str], Mapping[str, Any]]


def fresh_claims() -> dict[str, Any]:
    """The claims a peer's caller builds per token: what jwtward.jwt.encode adds itself."""
    now = int(time.time())
    return {**BASE_CLAIMS, "iat": now, "exp": now + LIFETIME, "jti": secrets.token_urlsafe(16)}


# -- the contenders -------------------------------------------------------------


def jwtward_contender(case: Case, keys: KeyPair) -> Contender:
    signing, verifying = keys.private, keys.public
    policy = Policy(issuer=ISSUER, audience=AUDIENCE)
    lifetime = jwtward_jwt.DEFAULT_LIFETIME
    assert lifetime.total_seconds() == LIFETIME

    def encode() -> str:
        return jwtward_jwt.encode(BASE_CLAIMS, signing)

    def encode_exact(claims: Claims) -> str:
        return jwtward_jwt.encode(claims, signing)

    def decode(token: str) -> Mapping[str, Any]:
        return jwtward_jwt.decode(token, verifying, policy)

    return Contender("jwtward", encode, encode_exact, decode)


def pyjwt_contender(case: Case, keys: KeyPair) -> Contender:
    import jwt
    from jwt import PyJWK

    signing = PyJWK(keys.private_jwk, algorithm=case.alg)
    verifying = PyJWK(keys.public_jwk, algorithm=case.alg)
    algorithms = [case.alg]
    headers = {"kid": KID}
    options: Any = {"require": ["exp", "iss", "aud"]}

    def encode_exact(claims: Claims) -> str:
        return jwt.encode(dict(claims), signing, algorithm=case.alg, headers=headers)

    def encode() -> str:
        return encode_exact(fresh_claims())

    def decode(token: str) -> Mapping[str, Any]:
        claims: dict[str, Any] = jwt.decode(
            token,
            verifying,
            algorithms=algorithms,
            issuer=ISSUER,
            audience=AUDIENCE,
            options=options,
        )
        return claims

    return Contender("PyJWT", encode, encode_exact, decode)


def joserfc_contender(case: Case, keys: KeyPair) -> Contender:
    from joserfc import jwt
    from joserfc.jwk import import_key

    signing = import_key(keys.private_jwk)
    verifying = import_key(keys.public_jwk)
    algorithms = [case.alg]
    header = {"alg": case.alg, "kid": KID, "typ": "JWT"}
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": AUDIENCE},
        exp={"essential": True},
    )

    def encode_exact(claims: Claims) -> str:
        return jwt.encode(header, dict(claims), signing, algorithms=algorithms)

    def encode() -> str:
        return encode_exact(fresh_claims())

    def decode(token: str) -> Mapping[str, Any]:
        decoded = jwt.decode(token, verifying, algorithms=algorithms)
        registry.validate(decoded.claims)
        return decoded.claims

    return Contender("joserfc", encode, encode_exact, decode)


def jwcrypto_contender(case: Case, keys: KeyPair) -> Contender:
    from jwcrypto import jwk, jwt

    signing = jwk.JWK(**keys.private_jwk)
    verifying = jwk.JWK(**keys.public_jwk)
    algorithms = [case.alg]
    header = {"alg": case.alg, "kid": KID, "typ": "JWT"}
    check_claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": None}

    def encode_exact(claims: Claims) -> str:
        token = jwt.JWT(header=header, claims=dict(claims))
        token.make_signed_token(signing)
        compact: str = token.serialize()
        return compact

    def encode() -> str:
        return encode_exact(fresh_claims())

    def decode(token: str) -> Mapping[str, Any]:
        # Raises unless the signature verifies and iss, aud and exp pass.
        parsed = jwt.JWT(jwt=token, key=verifying, algs=algorithms, check_claims=check_claims)
        claims: dict[str, Any] = json.loads(parsed.claims)
        return claims

    return Contender("jwcrypto", encode, encode_exact, decode)


def authlib_contender(case: Case, keys: KeyPair) -> Contender:
    from authlib.jose import JsonWebKey, jwt

    signing = JsonWebKey.import_key(keys.private_jwk)
    verifying = JsonWebKey.import_key(keys.public_jwk)
    header = {"alg": case.alg, "kid": KID, "typ": "JWT"}
    claims_options = {
        "iss": {"essential": True, "value": ISSUER},
        "aud": {"essential": True, "value": AUDIENCE},
        "exp": {"essential": True},
    }

    def encode_exact(claims: Claims) -> str:
        token: bytes = jwt.encode(header, dict(claims), signing)
        return token.decode("ascii")

    def encode() -> str:
        return encode_exact(fresh_claims())

    def decode(token: str) -> Mapping[str, Any]:
        claims = jwt.decode(token, verifying, claims_options=claims_options)
        claims.validate()
        return dict(claims)

    return Contender("authlib", encode, encode_exact, decode)


FACTORIES: tuple[Callable[[Case, KeyPair], Contender], ...] = (
    jwtward_contender,
    pyjwt_contender,
    joserfc_contender,
    jwcrypto_contender,
    authlib_contender,
)


# -- checks before timing ------------------------------------------------------------


def _refuses(contender: Contender, token: str, what: str, case: Case) -> None:
    try:
        contender.decode(token)
    except Exception:
        return
    raise AssertionError(f"{contender.name} {case.label} accepted {what}")


def check(case: Case, contender: Contender) -> str:
    """Encode and decode once, refuse the four bad tokens; return the token to time."""
    token = contender.encode()
    decoded = dict(contender.decode(token))
    assert {name: decoded.get(name) for name in BASE_CLAIMS} == BASE_CLAIMS, contender.name
    assert decoded["exp"] - decoded["iat"] == LIFETIME, contender.name
    assert len(decoded["jti"]) == 22, contender.name
    now = int(time.time())
    good = {**BASE_CLAIMS, "iat": now, "exp": now + LIFETIME, "jti": "check"}
    assert dict(contender.decode(contender.encode_exact(good))) == good, contender.name
    _refuses(contender, tampered(token), "an altered signature", case)
    bad_claims = {
        "an expired token": {**good, "iat": now - 7200, "exp": now - 3600},
        "a wrong audience": {**good, "aud": "https://other.example.com"},
        "a wrong issuer": {**good, "iss": "https://other.example.com"},
    }
    for what, claims in bad_claims.items():
        _refuses(contender, contender.encode_exact(claims), what, case)
    return token


# -- one case ------------------------------------------------------------------------


def bench_case(case: Case, settings: Settings, noise: Noise) -> list[PeerResult]:
    keys = key_pair(case.alg, case.crv)
    contenders = [factory(case, keys) for factory in FACTORIES]
    tokens = {c.name: check(case, c) for c in contenders}
    encode_calls: dict[str, Callable[[], object]] = {c.name: c.encode for c in contenders}
    decode_calls: dict[str, Callable[[], object]] = {
        c.name: _bind(c.decode, tokens[c.name]) for c in contenders
    }
    return [
        PeerResult(
            case.label, "encode", *measure(encode_calls, settings, noise), PEERS, case.encode_target
        ),
        PeerResult(
            case.label, "decode", *measure(decode_calls, settings, noise), PEERS, case.decode_target
        ),
    ]


def _bind(decode: Callable[[str], Mapping[str, Any]], token: str) -> Callable[[], object]:
    def call() -> object:
        return decode(token)

    return call


# -- output --------------------------------------------------------------------------

DISTRIBUTIONS = (
    ("jwtward", "jwtward"),
    ("PyJWT", "PyJWT"),
    ("joserfc", "joserfc"),
    ("jwcrypto", "jwcrypto"),
    ("authlib", "Authlib"),
    ("cryptography", "cryptography"),
)


TABLE = PeerTable(LIBRARIES, label_width=8, op_width=8)


def print_header(settings: Settings) -> None:
    print(
        f"{header(environment(DISTRIBUTIONS), DISTRIBUTIONS)}\n"
        f"{settings.rounds} interleaved rounds of ~{settings.batch_seconds:g}s batches, "
        "best batch per library; decode validates exp, iss and aud in every library\n"
        "ops/s (higher is better); /fastest peer: jwtward ops/s over the best peer's;\n"
        "target: the ratio required; 'MISS' marks a row below its target; 'cpu': row read\n"
        "from process_time, since some library never ran a clean batch (busy machine)"
    )
    print(TABLE.heading())


def as_json(results: Sequence[PeerResult], settings: Settings, noise: Noise) -> dict[str, Any]:
    return json_report(
        environment(DISTRIBUTIONS),
        [target_json(r, LIBRARIES) for r in results],
        **timing_facts(settings, noise),
    )


# -- command line ----------------------------------------------------------------------


def select_cases(spec: str | None) -> list[Case]:
    """Cases named in ``spec`` (comma-separated, any case)."""
    return select(CASES, spec, lambda c: (c.label,), lambda c: c.label)


def main(argv: Sequence[str] | None = None) -> int:
    return main_for(
        argv,
        __doc__,
        "HS256,ES256",
        select_cases,
        bench_case,
        Output(print_header, TABLE.print_row, missed_summary, as_json),
        noisy_modules=("authlib.jose",),
    )


if __name__ == "__main__":
    sys.exit(main())
