"""Compact JWS sign/verify throughput: jwtward against PyJWT, joserfc and jwcrypto.

Every library signs the same ~200-byte claims payload with the same key, under
an equivalent protected header (``alg`` and ``kid`` only), and verifies a token
it made itself. Key objects are made once per library, outside the timed loops,
so the numbers measure the per-call cost of ``sign`` and ``verify`` and nothing
else. Before any timing, each library must return the payload for its own token
and refuse a token whose signature was altered: a verifier that does not verify
would otherwise look fast.

Rounds are interleaved (every library runs one batch per round, in a rotating
order) and the best batch per library counts, so machine noise hits all of them
alike. Time is read from ``perf_counter``; a batch during which the process lost
the CPU (its ``process_time`` well below its wall time) is run again, and a row
in which some library never got a clean batch is read from the CPU clock for
every library instead, and marked so. Run from the repository root::

    .venv/bin/python bench/bench_jws.py [--quick] [--algs HS256,ES256] [--json]
"""

from __future__ import annotations

import json
import platform
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import jwt
from jwt import PyJWK

from _timing import (
    MAX_ATTEMPTS,
    Noise,
    Settings,
    measure,
    parse_args,
    run_cases,
    source_revision,
)
from jwtward import Key, jws

KID = "bench-key-2026"
PEERS = ("PyJWT", "joserfc", "jwcrypto")
LIBRARIES = ("jwtward", *PEERS)
OPERATIONS = ("sign", "verify")

# A typical access token's claims: compact JSON of about 200 bytes.
PAYLOAD = json.dumps(
    {
        "iss": "https://auth.example.com",
        "sub": "user-1234567890",
        "aud": "https://api.example.com",
        "iat": 1767225600,
        "nbf": 1767225600,
        "exp": 1767226500,
        "jti": "5b3f1c2e8d4a4f6b9c1d2e7a",
        "scope": "openid profile email",
    },
    separators=(",", ":"),
).encode()


@dataclass(frozen=True)
class Case:
    """One row of the table: a JWS ``alg`` and, for EdDSA, the curve of its key."""

    label: str
    alg: str
    crv: str | None = None


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
    Case("EdDSA/Ed25519", "EdDSA", "Ed25519"),
    Case("EdDSA/Ed448", "EdDSA", "Ed448"),
)


@dataclass(frozen=True)
class Contender:
    """One library bound to one key pair: how it signs, and how it verifies a token."""

    name: str
    sign: Callable[[], str]
    verify: Callable[[str], bytes]


@dataclass(frozen=True)
class Keys:
    """The key of one case, as JWKs every library can load into its own key object."""

    signing: Key
    verifying: Key
    private_jwk: dict[str, Any]
    public_jwk: dict[str, Any]


@dataclass(frozen=True)
class Result:
    case: str
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
    def vs_pyjwt(self) -> float:
        return self.ops_per_second["jwtward"] / self.ops_per_second["PyJWT"]


# -- the contenders -------------------------------------------------------------


def make_keys(case: Case) -> Keys:
    signing = Key.generate(case.alg, kid=KID, crv=case.crv)
    private_jwk = signing.to_jwk(private=True)
    if private_jwk["kty"] == "oct":
        return Keys(signing, signing, private_jwk, private_jwk)
    return Keys(signing, signing.public_key(), private_jwk, signing.to_jwk())


def jwtward_contender(case: Case, keys: Keys) -> Contender:
    signing, verifying = keys.signing, keys.verifying

    def sign() -> str:
        return jws.sign(PAYLOAD, signing)

    def verify(token: str) -> bytes:
        return jws.verify(token, verifying)

    return Contender("jwtward", sign, verify)


def pyjwt_contender(case: Case, keys: Keys) -> Contender:
    api = jwt.PyJWS()
    signing = PyJWK(keys.private_jwk, algorithm=case.alg)
    verifying = PyJWK(keys.public_jwk, algorithm=case.alg)
    algorithms = [case.alg]
    # PyJWT adds "typ": "JWT" unless told not to; the other libraries send alg + kid only.
    headers: dict[str, Any] = {"kid": KID, "typ": None}

    def sign() -> str:
        return api.encode(PAYLOAD, signing, algorithm=case.alg, headers=headers)

    def verify(token: str) -> bytes:
        payload: bytes = api.decode(token, verifying, algorithms=algorithms)
        return payload

    return Contender("PyJWT", sign, verify)


def joserfc_contender(case: Case, keys: Keys) -> Contender:
    from joserfc import jws as joserfc_jws
    from joserfc.jwk import import_key

    registry = joserfc_jws.JWSRegistry(algorithms=[case.alg])
    signing = import_key(keys.private_jwk)
    verifying = import_key(keys.public_jwk)
    protected = {"alg": case.alg, "kid": KID}

    def sign() -> str:
        return joserfc_jws.serialize_compact(protected, PAYLOAD, signing, registry=registry)

    def verify(token: str) -> bytes:
        return joserfc_jws.deserialize_compact(token, verifying, registry=registry).payload

    return Contender("joserfc", sign, verify)


def jwcrypto_contender(case: Case, keys: Keys) -> Contender:
    from jwcrypto import jwk as jwcrypto_jwk
    from jwcrypto import jws as jwcrypto_jws

    signing = jwcrypto_jwk.JWK(**keys.private_jwk)
    verifying = jwcrypto_jwk.JWK(**keys.public_jwk)
    protected = json.dumps({"alg": case.alg, "kid": KID}, separators=(",", ":"))

    def sign() -> str:
        token = jwcrypto_jws.JWS(PAYLOAD)
        token.add_signature(signing, None, protected=protected)
        compact: str = token.serialize(compact=True)
        return compact

    def verify(token: str) -> bytes:
        parsed = jwcrypto_jws.JWS()
        parsed.deserialize(token, key=verifying, alg=case.alg)  # raises unless it verifies
        payload: bytes = parsed.payload
        return payload

    return Contender("jwcrypto", sign, verify)


FACTORIES: tuple[Callable[[Case, Keys], Contender], ...] = (
    jwtward_contender,
    pyjwt_contender,
    joserfc_contender,
    jwcrypto_contender,
)


# -- checks before timing ------------------------------------------------------------


def _tampered(token: str) -> str:
    """The token with one signature character changed in the middle (real signature bits)."""
    head, _, signature = token.rpartition(".")
    middle = len(signature) // 2
    swapped = "B" if signature[middle] == "A" else "A"
    return f"{head}.{signature[:middle]}{swapped}{signature[middle + 1 :]}"


def check(case: Case, contender: Contender) -> str:
    """Sign once, verify once, refuse a forgery once; return the token to time."""
    token = contender.sign()
    header = json.loads(jwt.utils.base64url_decode(token.split(".")[0]))
    assert header == {"alg": case.alg, "kid": KID}, (contender.name, header)
    assert contender.verify(token) == PAYLOAD, contender.name
    try:
        contender.verify(_tampered(token))
    except Exception:  # noqa: S110 - each library raises its own error type; any refusal will do
        pass
    else:
        raise AssertionError(f"{contender.name} {case.label} accepted an altered signature")
    return token


# -- timing (see _timing.py) -------------------------------------------------------


def bench_case(case: Case, settings: Settings, noise: Noise) -> list[Result]:
    keys = make_keys(case)
    contenders = [factory(case, keys) for factory in FACTORIES]
    tokens = {c.name: check(case, c) for c in contenders}
    sign_calls: dict[str, Callable[[], object]] = {c.name: c.sign for c in contenders}
    verify_calls: dict[str, Callable[[], object]] = {
        c.name: _bind(c.verify, tokens[c.name]) for c in contenders
    }
    return [
        Result(case.label, "sign", *measure(sign_calls, settings, noise)),
        Result(case.label, "verify", *measure(verify_calls, settings, noise)),
    ]


def _bind(verify: Callable[[str], bytes], token: str) -> Callable[[], bytes]:
    def call() -> bytes:
        return verify(token)

    return call


# -- output --------------------------------------------------------------------------


def environment() -> dict[str, str]:
    versions = {
        name: metadata.version(dist)
        for name, dist in (
            ("jwtward", "jwtward"),
            ("PyJWT", "PyJWT"),
            ("joserfc", "joserfc"),
            ("jwcrypto", "jwcrypto"),
            ("cryptography", "cryptography"),
        )
    }
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
    print(
        f"Python {env['python']} ({env['implementation']}) on {env['platform']}\n"
        f"jwtward {env['jwtward']} ({env['jwtward_revision']}), PyJWT {env['PyJWT']}, "
        f"joserfc {env['joserfc']}, jwcrypto {env['jwcrypto']}, "
        f"cryptography {env['cryptography']}\n"
        f"payload {len(PAYLOAD)} bytes; {settings.rounds} interleaved rounds of "
        f"~{settings.batch_seconds:g}s batches, best batch per library\n"
        "ops/s (higher is better); ratios: jwtward ops/s over the peer's (>1: jwtward faster)\n"
        "'<': jwtward slower than the fastest peer; 'cpu': row read from process_time, since\n"
        "some library never ran a batch without being descheduled (busy machine)"
    )
    columns = "".join(f"{name:>11}" for name in LIBRARIES)
    print(f"\n{'alg':<14}{'op':<7}{columns}   {'/fastest peer':<23}{'/PyJWT':>7}")
    print("-" * (14 + 7 + 11 * len(LIBRARIES) + 3 + 23 + 9))


def print_row(result: Result) -> None:
    columns = "".join(f"{result.ops_per_second[name]:>11,.0f}" for name in LIBRARIES)
    fastest = f"{result.vs_fastest_peer:.3f}x ({result.fastest_peer})"
    slower = "<" if result.vs_fastest_peer < 1 else " "
    clock = "cpu" if result.clock == "cpu" else ""
    line = (
        f"{result.case:<14}{result.operation:<7}{columns}   {fastest:<23}"
        f"{result.vs_pyjwt:>6.3f}x {slower} {clock}"
    )
    print(line.rstrip(), flush=True)


def slower_cases(results: Sequence[Result]) -> list[Result]:
    return [r for r in results if r.vs_fastest_peer < 1]


def print_summary(results: Sequence[Result], noise: Noise) -> None:
    print(
        f"\nbatches: {noise.batches}; descheduled (tried again up to {MAX_ATTEMPTS} times unless"
        f" the machine stayed busy): {noise.descheduled}; rows read from the CPU clock:"
        f" {noise.cpu_rows}"
    )
    slower = slower_cases(results)
    if not slower:
        print("summary: jwtward is at least as fast as the fastest peer for every alg and op")
        return
    listed = ", ".join(
        f"{r.case} {r.operation} ({r.vs_fastest_peer:.3f}x of {r.fastest_peer})" for r in slower
    )
    print(f"summary: jwtward is slower than the fastest peer for: {listed}")


def as_json(results: Sequence[Result], settings: Settings, noise: Noise) -> dict[str, Any]:
    return {
        "environment": environment(),
        "payload_bytes": len(PAYLOAD),
        "rounds": settings.rounds,
        "batch_seconds": settings.batch_seconds,
        "batches": {"total": noise.batches, "descheduled": noise.descheduled},
        "results": [
            {
                "alg": r.case,
                "op": r.operation,
                "ops_per_second": {name: round(r.ops_per_second[name], 1) for name in LIBRARIES},
                "clock": r.clock,
                "fastest_peer": r.fastest_peer,
                "jwtward_vs_fastest_peer": round(r.vs_fastest_peer, 4),
                "jwtward_vs_pyjwt": round(r.vs_pyjwt, 4),
            }
            for r in results
        ],
        "slower_than_fastest_peer": [
            {"alg": r.case, "op": r.operation, "fastest_peer": r.fastest_peer}
            for r in slower_cases(results)
        ],
    }


# -- command line ----------------------------------------------------------------------


def select_cases(spec: str | None) -> list[Case]:
    """Cases named in ``spec`` (comma-separated, any case); ``EdDSA`` names both curves."""
    if spec is None:
        return list(CASES)
    wanted = {name.strip().lower() for name in spec.split(",") if name.strip()}
    chosen = [c for c in CASES if c.label.lower() in wanted or c.alg.lower() in wanted]
    known = {c.label.lower() for c in CASES} | {c.alg.lower() for c in CASES}
    unknown = sorted(wanted - known)
    if unknown or not chosen:
        names = ", ".join(c.label for c in CASES)
        raise SystemExit(f"unknown alg(s) {', '.join(unknown) or spec!r}; choose from {names}")
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    description = __doc__.split("\n\n")[0] if __doc__ else None
    args, settings = parse_args(argv, description, "HS256,ES256,EdDSA/Ed448")
    cases = select_cases(args.algs)
    # Peers warn on some algs (EdDSA deprecation and the like); the warning
    # machinery still runs on each call, only the printing is silenced.
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
