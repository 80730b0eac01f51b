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
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK

from _inputs import CLAIMS_JSON, KID, KeyPair, key_pair, tampered
from _report import (
    Output,
    PeerResult,
    PeerTable,
    environment,
    header,
    json_report,
    main_for,
    noise_line,
    peer_json,
    select,
    timing_facts,
)
from _timing import Noise, Settings, measure
from jwtward import jws

PEERS = ("PyJWT", "joserfc", "jwcrypto")
LIBRARIES = ("jwtward", *PEERS)
OPERATIONS = ("sign", "verify")

PAYLOAD = CLAIMS_JSON


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


# A row is "slower" when jwtward's ratio to the fastest peer is below its target of 1.
Result = PeerResult


# -- the contenders -------------------------------------------------------------


def jwtward_contender(case: Case, keys: KeyPair) -> Contender:
    signing, verifying = keys.private, keys.public

    def sign() -> str:
        return jws.sign(PAYLOAD, signing)

    def verify(token: str) -> bytes:
        return jws.verify(token, verifying)

    return Contender("jwtward", sign, verify)


def pyjwt_contender(case: Case, keys: KeyPair) -> Contender:
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


def joserfc_contender(case: Case, keys: KeyPair) -> Contender:
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


def jwcrypto_contender(case: Case, keys: KeyPair) -> Contender:
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


FACTORIES: tuple[Callable[[Case, KeyPair], Contender], ...] = (
    jwtward_contender,
    pyjwt_contender,
    joserfc_contender,
    jwcrypto_contender,
)


# -- checks before timing ------------------------------------------------------------


def check(case: Case, contender: Contender) -> str:
    """Sign once, verify once, refuse a forgery once; return the token to time."""
    token = contender.sign()
    header = json.loads(jwt.utils.base64url_decode(token.split(".")[0]))
    assert header == {"alg": case.alg, "kid": KID}, (contender.name, header)
    assert contender.verify(token) == PAYLOAD, contender.name
    try:
        contender.verify(tampered(token))
    except Exception:  # noqa: S110 - each library raises its own error type; any refusal will do
        pass
    else:
        raise AssertionError(f"{contender.name} {case.label} accepted an altered signature")
    return token


# -- timing (see _timing.py) -------------------------------------------------------


def bench_case(case: Case, settings: Settings, noise: Noise) -> list[Result]:
    keys = key_pair(case.alg, case.crv)
    contenders = [factory(case, keys) for factory in FACTORIES]
    tokens = {c.name: check(case, c) for c in contenders}
    sign_calls: dict[str, Callable[[], object]] = {c.name: c.sign for c in contenders}
    verify_calls: dict[str, Callable[[], object]] = {
        c.name: _bind(c.verify, tokens[c.name]) for c in contenders
    }
    return [
        Result(case.label, "sign", *measure(sign_calls, settings, noise), PEERS),
        Result(case.label, "verify", *measure(verify_calls, settings, noise), PEERS),
    ]


def _bind(verify: Callable[[str], bytes], token: str) -> Callable[[], bytes]:
    def call() -> bytes:
        return verify(token)

    return call


# -- output --------------------------------------------------------------------------


DISTRIBUTIONS = (
    ("jwtward", "jwtward"),
    ("PyJWT", "PyJWT"),
    ("joserfc", "joserfc"),
    ("jwcrypto", "jwcrypto"),
    ("cryptography", "cryptography"),
)
TABLE = PeerTable(LIBRARIES, label_width=14, op_width=7, column_width=11)


def print_header(settings: Settings) -> None:
    print(
        f"{header(environment(DISTRIBUTIONS), DISTRIBUTIONS)}\n"
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
    columns = TABLE.columns(result)
    fastest = f"{result.vs_fastest_peer:.3f}x ({result.fastest_peer})"
    slower = "<" if result.vs_fastest_peer < 1 else " "
    clock = "cpu" if result.clock == "cpu" else ""
    line = (
        f"{result.label:<14}{result.operation:<7}{columns}   {fastest:<23}"
        f"{result.vs('PyJWT'):>6.3f}x {slower} {clock}"
    )
    print(line.rstrip(), flush=True)


def slower_cases(results: Sequence[Result]) -> list[Result]:
    return [r for r in results if not r.met]


def print_summary(results: Sequence[Result], noise: Noise) -> None:
    print(noise_line(noise))
    slower = slower_cases(results)
    if not slower:
        print("summary: jwtward is at least as fast as the fastest peer for every alg and op")
        return
    listed = ", ".join(
        f"{r.label} {r.operation} ({r.vs_fastest_peer:.3f}x of {r.fastest_peer})" for r in slower
    )
    print(f"summary: jwtward is slower than the fastest peer for: {listed}")


def as_json(results: Sequence[Result], settings: Settings, noise: Noise) -> dict[str, Any]:
    return {
        **json_report(
            environment(DISTRIBUTIONS),
            [peer_json(r, LIBRARIES, jwtward_vs_pyjwt=round(r.vs("PyJWT"), 4)) for r in results],
            payload_bytes=len(PAYLOAD),
            **timing_facts(settings, noise),
        ),
        "slower_than_fastest_peer": [
            {"alg": r.label, "op": r.operation, "fastest_peer": r.fastest_peer}
            for r in slower_cases(results)
        ],
    }


# -- command line ----------------------------------------------------------------------


def select_cases(spec: str | None) -> list[Case]:
    """Cases named in ``spec`` (comma-separated, any case); ``EdDSA`` names both curves."""
    return select(CASES, spec, lambda c: (c.label, c.alg), lambda c: c.label)


def main(argv: Sequence[str] | None = None) -> int:
    return main_for(
        argv,
        __doc__,
        "HS256,ES256,EdDSA/Ed448",
        select_cases,
        bench_case,
        Output(print_header, print_row, print_summary, as_json),
    )


if __name__ == "__main__":
    sys.exit(main())
