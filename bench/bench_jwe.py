"""Compact JWE encrypt/decrypt throughput: jwtward against joserfc, jwcrypto and authlib.

Every library encrypts the same ~200-byte claims JSON with ``enc`` A256GCM
under a protected header of ``alg``, ``enc`` and ``kid`` (plus the ``epk`` that
ECDH-ES adds), for the key management algorithms ``dir``, ``A256KW``,
``RSA-OAEP-256`` and ``ECDH-ES`` (P-256). Encryption uses the public key
where there is one. Key objects are made once per library, outside the timed
loops, as a service would hold them.

Every library decrypts the same tokens: a pool of distinct tokens made before
timing, which each decrypt call walks through in turn. The pool is larger than
any per-header memo a library might keep, so an ECDH-ES header (a fresh ``epk``
in every real token) is never seen twice in a row, as in real traffic; ``dir``
and ``A256KW`` tokens share one header, as they do in real traffic too. Before
any timing, every library must decrypt every token of the pool, and every
library's own token, to the plaintext, and refuse a token whose tag was
altered: a decrypter that does not decrypt would otherwise look fast.

Timing is shared with ``bench_jws.py`` (see ``_timing.py``). Run from the
repository root::

    .venv/bin/python bench/bench_jwe.py [--quick] [--algs dir,ECDH-ES] [--json]
"""

from __future__ import annotations

import base64
import itertools
import json
import platform
import sys
import warnings
from collections.abc import Callable, Sequence
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
from jwtward import Key, jwe

KID = "bench-key-2026"
ENC = "A256GCM"
PEERS = ("joserfc", "jwcrypto", "authlib")
LIBRARIES = ("jwtward", *PEERS)
OPERATIONS = ("encrypt", "decrypt")
# Distinct tokens every library decrypts in turn: more than a header memo of a
# few hundred entries holds, so that no per-token header is served from memory.
POOL_SIZE = 512

# A typical access token's claims: compact JSON of about 200 bytes.
PLAINTEXT = json.dumps(
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
    """One row pair of the table: a key management ``alg``, its curve, and the targets."""

    label: str
    alg: str
    crv: str | None
    target: float  # jwtward ops/s over the fastest peer's, at least, for both operations


CASES = (
    Case("dir", "dir", None, 2.0),
    Case("A256KW", "A256KW", None, 2.0),
    Case("RSA-OAEP-256", "RSA-OAEP-256", None, 1.0),
    Case("ECDH-ES/P-256", "ECDH-ES", "P-256", 1.0),
)


@dataclass(frozen=True)
class Keys:
    """The key of one case: jwtward's own, and JWKs every peer loads into its key object."""

    decrypting: Key
    encrypting: Key
    private_jwk: dict[str, Any]
    public_jwk: dict[str, Any]


@dataclass(frozen=True)
class Contender:
    """One library bound to one key: how it encrypts, and how it decrypts a token."""

    name: str
    encrypt: Callable[[], str]
    decrypt: Callable[[str], bytes]


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
        return self.case.target

    @property
    def met(self) -> bool:
        return self.vs_fastest_peer >= self.target


# -- the contenders -------------------------------------------------------------


def make_keys(case: Case) -> Keys:
    enc = ENC if case.alg == "dir" else None
    decrypting = Key.generate(case.alg, kid=KID, crv=case.crv, enc=enc)
    private_jwk = decrypting.to_jwk(private=True)
    # A dir key's JWK names the enc it is bound to; the peers take the alg and
    # enc from the header they are given, so they get the JWK without it.
    private_jwk.pop("enc", None)
    if private_jwk["kty"] == "oct":
        return Keys(decrypting, decrypting, private_jwk, private_jwk)
    return Keys(decrypting, decrypting.public_key(), private_jwk, decrypting.to_jwk())


def jwtward_contender(case: Case, keys: Keys) -> Contender:
    encrypting, decrypting = keys.encrypting, keys.decrypting

    def encrypt() -> str:
        return jwe.encrypt(PLAINTEXT, encrypting, enc=ENC)

    def decrypt(token: str) -> bytes:
        return jwe.decrypt(token, decrypting)

    return Contender("jwtward", encrypt, decrypt)


def joserfc_contender(case: Case, keys: Keys) -> Contender:
    from joserfc import jwe as joserfc_jwe
    from joserfc.jwk import import_key

    registry = joserfc_jwe.JWERegistry(algorithms=[case.alg, ENC])
    encrypting = import_key(keys.public_jwk)
    decrypting = import_key(keys.private_jwk)
    protected = {"alg": case.alg, "enc": ENC, "kid": KID}

    def encrypt() -> str:
        return joserfc_jwe.encrypt_compact(protected, PLAINTEXT, encrypting, registry=registry)

    def decrypt(token: str) -> bytes:
        plaintext = joserfc_jwe.decrypt_compact(token, decrypting, registry=registry).plaintext
        assert plaintext is not None
        return plaintext

    return Contender("joserfc", encrypt, decrypt)


def jwcrypto_contender(case: Case, keys: Keys) -> Contender:
    from jwcrypto import jwe as jwcrypto_jwe
    from jwcrypto import jwk as jwcrypto_jwk

    encrypting = jwcrypto_jwk.JWK(**keys.public_jwk)
    decrypting = jwcrypto_jwk.JWK(**keys.private_jwk)
    algs = [case.alg, ENC]
    protected = json.dumps({"alg": case.alg, "enc": ENC, "kid": KID}, separators=(",", ":"))

    def encrypt() -> str:
        token = jwcrypto_jwe.JWE(PLAINTEXT, protected=protected, algs=algs)
        token.add_recipient(encrypting)
        compact: str = token.serialize(compact=True)
        return compact

    def decrypt(token: str) -> bytes:
        parsed = jwcrypto_jwe.JWE(algs=algs)
        parsed.deserialize(token, key=decrypting)  # raises unless it decrypts
        plaintext: bytes = parsed.payload
        return plaintext

    return Contender("jwcrypto", encrypt, decrypt)


def authlib_contender(case: Case, keys: Keys) -> Contender:
    from authlib.jose import JsonWebEncryption, JsonWebKey

    api = JsonWebEncryption(algorithms=[case.alg, ENC])
    encrypting = JsonWebKey.import_key(keys.public_jwk)
    decrypting = JsonWebKey.import_key(keys.private_jwk)
    protected = {"alg": case.alg, "enc": ENC, "kid": KID}

    def encrypt() -> str:
        token: bytes = api.serialize_compact(protected, PLAINTEXT, encrypting)
        return token.decode("ascii")

    def decrypt(token: str) -> bytes:
        plaintext: bytes = api.deserialize_compact(token, decrypting)["payload"]
        return plaintext

    return Contender("authlib", encrypt, decrypt)


FACTORIES: tuple[Callable[[Case, Keys], Contender], ...] = (
    jwtward_contender,
    joserfc_contender,
    jwcrypto_contender,
    authlib_contender,
)


# -- checks before timing ------------------------------------------------------------


def _header(token: str) -> dict[str, Any]:
    segment = token.split(".", maxsplit=1)[0]
    padded = segment + "=" * (-len(segment) % 4)
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return header


def _tampered(token: str) -> str:
    """The token with one tag character changed in the middle (real tag bits)."""
    head, _, tag = token.rpartition(".")
    middle = len(tag) // 2
    swapped = "B" if tag[middle] == "A" else "A"
    return f"{head}.{tag[:middle]}{swapped}{tag[middle + 1 :]}"


def make_pool(keys: Keys) -> list[str]:
    """The tokens every library decrypts: distinct ones (fresh CEK, IV and, for ECDH-ES, epk)."""
    pool = [jwe.encrypt(PLAINTEXT, keys.encrypting, enc=ENC) for _ in range(POOL_SIZE)]
    assert len(set(pool)) == POOL_SIZE
    return pool


def check(case: Case, contenders: Sequence[Contender], pool: Sequence[str]) -> None:
    """Each library's token has the same header and decrypts in every library, as does the pool.

    Every library must also refuse a token whose tag was altered, so that none
    is timed on a path that skips the authentication check.
    """
    expected = {"alg", "enc", "kid"} | ({"epk"} if case.alg.startswith("ECDH-ES") else set())
    own = {c.name: c.encrypt() for c in contenders}
    for name, token in own.items():
        header = _header(token)
        assert set(header) == expected, (name, header)
        assert (header["alg"], header["enc"], header["kid"]) == (case.alg, ENC, KID), (name, header)
    for contender in contenders:
        for maker, token in own.items():
            assert contender.decrypt(token) == PLAINTEXT, (contender.name, "token of", maker)
        for token in pool:
            assert contender.decrypt(token) == PLAINTEXT, contender.name
        try:
            contender.decrypt(_tampered(pool[0]))
        except Exception:  # noqa: S110 - each library raises its own error type; any refusal will do
            pass
        else:
            raise AssertionError(f"{contender.name} {case.label} accepted an altered tag")


# -- timing (see _timing.py) -------------------------------------------------------


def bench_case(case: Case, settings: Settings, noise: Noise) -> list[Result]:
    keys = make_keys(case)
    contenders = [factory(case, keys) for factory in FACTORIES]
    pool = make_pool(keys)
    check(case, contenders, pool)
    encrypt_calls: dict[str, Callable[[], object]] = {c.name: c.encrypt for c in contenders}
    decrypt_calls: dict[str, Callable[[], object]] = {
        c.name: _bind(c.decrypt, pool) for c in contenders
    }
    return [
        Result(case, "encrypt", *measure(encrypt_calls, settings, noise)),
        Result(case, "decrypt", *measure(decrypt_calls, settings, noise)),
    ]


def _bind(decrypt: Callable[[str], bytes], pool: Sequence[str]) -> Callable[[], bytes]:
    """One decryption per call, walking the pool in turn (the same walk for every library)."""
    tokens = itertools.cycle(pool)

    def call() -> bytes:
        return decrypt(next(tokens))

    return call


# -- output --------------------------------------------------------------------------

DISTRIBUTIONS = (
    ("jwtward", "jwtward"),
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
        f"enc {ENC}, plaintext {len(PLAINTEXT)} bytes; decrypt walks a pool of {POOL_SIZE} "
        "tokens, the same for every library\n"
        f"{settings.rounds} interleaved rounds of ~{settings.batch_seconds:g}s batches, "
        "best batch per library\n"
        "ops/s (higher is better); /fastest peer: jwtward ops/s over the best peer's;\n"
        "target: the ratio required; 'MISS' marks a row below its target; 'cpu': row read\n"
        "from process_time, since some library never ran a clean batch (busy machine)"
    )
    columns = "".join(f"{name:>10}" for name in LIBRARIES)
    print(f"\n{'alg':<14}{'op':<9}{columns}   {'/fastest peer':<22}{'target':>7}")
    print("-" * (14 + 9 + 10 * len(LIBRARIES) + 3 + 22 + 7 + 9))


def print_row(result: Result) -> None:
    columns = "".join(f"{result.ops_per_second[name]:>10,.0f}" for name in LIBRARIES)
    fastest = f"{result.vs_fastest_peer:.3f}x ({result.fastest_peer})"
    verdict = "ok" if result.met else "MISS"
    clock = " cpu" if result.clock == "cpu" else ""
    print(
        f"{result.case.label:<14}{result.operation:<9}{columns}   {fastest:<22}"
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
        "enc": ENC,
        "plaintext_bytes": len(PLAINTEXT),
        "pool_size": POOL_SIZE,
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
    """Cases named in ``spec`` (comma-separated, any case; a label or an alg)."""
    if spec is None:
        return list(CASES)
    wanted = {name.strip().lower() for name in spec.split(",") if name.strip()}
    chosen = [c for c in CASES if {c.label.lower(), c.alg.lower()} & wanted]
    known = {c.label.lower() for c in CASES} | {c.alg.lower() for c in CASES}
    unknown = sorted(wanted - known)
    if unknown or not chosen:
        names = ", ".join(c.label for c in CASES)
        raise SystemExit(f"unknown alg(s) {', '.join(unknown) or spec!r}; choose from {names}")
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    description = __doc__.split("\n\n")[0] if __doc__ else None
    args, settings = parse_args(argv, description, "dir,ECDH-ES")
    cases = select_cases(args.algs)
    # Peers warn (authlib.jose deprecation, ...); the warning machinery still
    # runs on each call, only the printing is silenced. authlib.jose adds an
    # "always" filter for its own warnings on import: importing it here, inside
    # catch_warnings (recording, so nothing is printed), drops that filter
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
