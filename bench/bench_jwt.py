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
import platform
import secrets
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from _timing import (
    MAX_ATTEMPTS,
    Noise,
    Settings,
    measure,
    parse_args,
    run_cases,
    source_revision,
)
from jwtward import Key, Policy
from jwtward import jwt as jwtward_jwt

KID = "bench-key-2026"
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
class Keys:
    """The key of one case, as JWKs every library can load into its own key object."""

    signing: Key
    verifying: Key
    private_jwk: dict[str, Any]
    public_jwk: dict[str, Any]


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


@dataclass(frozen=True)
class Result:
    case: Case
    operation: str
    ops_per_second: dict[str, float]
    clock: str  # "wall" (perf_counter) or "cpu" (process_time, when the machine was busy)

    @property
    def fastest_peer(self) -> str:
        return max(PEERS, key=lambda name: self.ops_per_second[name])

    @property
    def vs_fastest_peer(self) -> float:
        return self.ops_per_second["jwtward"] / self.ops_per_second[self.fastest_peer]

    @property
    def target(self) -> float:
        return self.case.decode_target if self.operation == "decode" else self.case.encode_target

    @property
    def met(self) -> bool:
        return self.vs_fastest_peer >= self.target


def fresh_claims() -> dict[str, Any]:
    """The claims a peer's caller builds per token: what jwtward.jwt.encode adds itself."""
    now = int(time.time())
    return {**BASE_CLAIMS, "iat": now, "exp": now + LIFETIME, "jti": secrets.token_urlsafe(16)}


# -- the contenders -------------------------------------------------------------


def make_keys(case: Case) -> Keys:
    signing = Key.generate(case.alg, kid=KID, crv=case.crv)
    private_jwk = signing.to_jwk(private=True)
    if private_jwk["kty"] == "oct":
        return Keys(signing, signing, private_jwk, private_jwk)
    return Keys(signing, signing.public_key(), private_jwk, signing.to_jwk())


def jwtward_contender(case: Case, keys: Keys) -> Contender:
    signing, verifying = keys.signing, keys.verifying
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


def pyjwt_contender(case: Case, keys: Keys) -> Contender:
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


def joserfc_contender(case: Case, keys: Keys) -> Contender:
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


def jwcrypto_contender(case: Case, keys: Keys) -> Contender:
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


def authlib_contender(case: Case, keys: Keys) -> Contender:
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


FACTORIES: tuple[Callable[[Case, Keys], Contender], ...] = (
    jwtward_contender,
    pyjwt_contender,
    joserfc_contender,
    jwcrypto_contender,
    authlib_contender,
)


# -- checks before timing ------------------------------------------------------------


def _tampered(token: str) -> str:
    """The token with one signature character changed in the middle (real signature bits)."""
    head, _, signature = token.rpartition(".")
    middle = len(signature) // 2
    swapped = "B" if signature[middle] == "A" else "A"
    return f"{head}.{signature[:middle]}{swapped}{signature[middle + 1 :]}"


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
    _refuses(contender, _tampered(token), "an altered signature", case)
    bad_claims = {
        "an expired token": {**good, "iat": now - 7200, "exp": now - 3600},
        "a wrong audience": {**good, "aud": "https://other.example.com"},
        "a wrong issuer": {**good, "iss": "https://other.example.com"},
    }
    for what, claims in bad_claims.items():
        _refuses(contender, contender.encode_exact(claims), what, case)
    return token


# -- one case ------------------------------------------------------------------------


def bench_case(case: Case, settings: Settings, noise: Noise) -> list[Result]:
    keys = make_keys(case)
    contenders = [factory(case, keys) for factory in FACTORIES]
    tokens = {c.name: check(case, c) for c in contenders}
    encode_calls: dict[str, Callable[[], object]] = {c.name: c.encode for c in contenders}
    decode_calls: dict[str, Callable[[], object]] = {
        c.name: _bind(c.decode, tokens[c.name]) for c in contenders
    }
    return [
        Result(case, "encode", *measure(encode_calls, settings, noise)),
        Result(case, "decode", *measure(decode_calls, settings, noise)),
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


def environment() -> dict[str, str]:
    versions = {name: metadata.version(dist) for name, dist in DISTRIBUTIONS}
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        **versions,
        "jwtward_revision": source_revision(),
    }


def print_header(settings: Settings) -> None:
    env = environment()
    versions = ", ".join(f"{name} {env[name]}" for name, _ in DISTRIBUTIONS if name != "jwtward")
    print(
        f"Python {env['python']} ({env['implementation']}) on {env['platform']}\n"
        f"jwtward {env['jwtward']} ({env['jwtward_revision']}), {versions}\n"
        f"{settings.rounds} interleaved rounds of ~{settings.batch_seconds:g}s batches, "
        "best batch per library; decode validates exp, iss and aud in every library\n"
        "ops/s (higher is better); /fastest peer: jwtward ops/s over the best peer's;\n"
        "target: the ratio required; 'MISS' marks a row below its target; 'cpu': row read\n"
        "from process_time, since some library never ran a clean batch (busy machine)"
    )
    columns = "".join(f"{name:>10}" for name in LIBRARIES)
    print(f"\n{'alg':<8}{'op':<8}{columns}   {'/fastest peer':<22}{'target':>7}")
    print("-" * (8 + 8 + 10 * len(LIBRARIES) + 3 + 22 + 7 + 9))


def print_row(result: Result) -> None:
    columns = "".join(f"{result.ops_per_second[name]:>10,.0f}" for name in LIBRARIES)
    fastest = f"{result.vs_fastest_peer:.3f}x ({result.fastest_peer})"
    verdict = "ok" if result.met else "MISS"
    clock = " cpu" if result.clock == "cpu" else ""
    print(
        f"{result.case.label:<8}{result.operation:<8}{columns}   {fastest:<22}"
        f"{result.target:>6.1f}x  {verdict}{clock}",
        flush=True,
    )


def print_summary(results: Sequence[Result], noise: Noise) -> None:
    print(
        f"\nbatches: {noise.batches}; descheduled (tried again up to {MAX_ATTEMPTS} times unless"
        f" the machine stayed busy): {noise.descheduled}; rows read from the CPU clock:"
        f" {noise.cpu_rows}"
    )
    missed = [r for r in results if not r.met]
    if not missed:
        print("summary: jwtward meets every target")
        return
    listed = ", ".join(
        f"{r.case.label} {r.operation} ({r.vs_fastest_peer:.3f}x of {r.fastest_peer}, "
        f"target {r.target:.1f}x)"
        for r in missed
    )
    print(f"summary: jwtward misses the target for: {listed}")


def as_json(results: Sequence[Result], settings: Settings, noise: Noise) -> dict[str, Any]:
    return {
        "environment": environment(),
        "rounds": settings.rounds,
        "batch_seconds": settings.batch_seconds,
        "batches": {"total": noise.batches, "descheduled": noise.descheduled},
        "results": [
            {
                "alg": r.case.label,
                "op": r.operation,
                "ops_per_second": {name: round(r.ops_per_second[name], 1) for name in LIBRARIES},
                "clock": r.clock,
                "fastest_peer": r.fastest_peer,
                "jwtward_vs_fastest_peer": round(r.vs_fastest_peer, 4),
                "target": r.target,
                "met": r.met,
            }
            for r in results
        ],
    }


# -- command line ----------------------------------------------------------------------


def select_cases(spec: str | None) -> list[Case]:
    """Cases named in ``spec`` (comma-separated, any case)."""
    if spec is None:
        return list(CASES)
    wanted = {name.strip().lower() for name in spec.split(",") if name.strip()}
    chosen = [c for c in CASES if c.label.lower() in wanted]
    unknown = sorted(wanted - {c.label.lower() for c in CASES})
    if unknown or not chosen:
        names = ", ".join(c.label for c in CASES)
        raise SystemExit(f"unknown alg(s) {', '.join(unknown) or spec!r}; choose from {names}")
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    description = __doc__.split("\n\n")[0] if __doc__ else None
    args, settings = parse_args(argv, description, "HS256,ES256")
    cases = select_cases(args.algs)
    # Peers warn (authlib.jose deprecation, EdDSA, ...); the warning machinery
    # still runs on each call, only the printing is silenced. authlib.jose adds
    # an "always" filter for its own warnings on import: importing it here,
    # inside catch_warnings (recording, so nothing is printed), drops that filter
    # again on the way out.
    with warnings.catch_warnings(record=True):
        import authlib.jose  # noqa: F401
    warnings.simplefilter("ignore")
    return run_cases(
        cases,
        bench_case,
        settings,
        as_json=args.json,
        print_header=print_header,
        print_row=print_row,
        print_summary=print_summary,
        to_json=as_json,
    )


if __name__ == "__main__":
    sys.exit(main())
