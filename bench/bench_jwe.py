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
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from _inputs import CLAIMS_JSON, KID, KeyPair, key_pair, tampered
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
from jwtward import jwe

ENC = "A256GCM"
PEERS = ("joserfc", "jwcrypto", "authlib")
LIBRARIES = ("jwtward", *PEERS)
OPERATIONS = ("encrypt", "decrypt")
# Distinct tokens every library decrypts in turn: more than a header memo of a
# few hundred entries holds, so that no per-token header is served from memory.
POOL_SIZE = 512

PLAINTEXT = CLAIMS_JSON


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
class Contender:
    """One library bound to one key: how it encrypts, and how it decrypts a token."""

    name: str
    encrypt: Callable[[], str]
    decrypt: Callable[[str], bytes]


# -- the contenders -------------------------------------------------------------


def jwtward_contender(case: Case, keys: KeyPair) -> Contender:
    encrypting, decrypting = keys.public, keys.private

    def encrypt() -> str:
        return jwe.encrypt(PLAINTEXT, encrypting, enc=ENC)

    def decrypt(token: str) -> bytes:
        return jwe.decrypt(token, decrypting)

    return Contender("jwtward", encrypt, decrypt)


def joserfc_contender(case: Case, keys: KeyPair) -> Contender:
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


def jwcrypto_contender(case: Case, keys: KeyPair) -> Contender:
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


def authlib_contender(case: Case, keys: KeyPair) -> Contender:
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


FACTORIES: tuple[Callable[[Case, KeyPair], Contender], ...] = (
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


def make_pool(keys: KeyPair) -> list[str]:
    """The tokens every library decrypts: distinct ones (fresh CEK, IV and, for ECDH-ES, epk)."""
    pool = [jwe.encrypt(PLAINTEXT, keys.public, enc=ENC) for _ in range(POOL_SIZE)]
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
            contender.decrypt(tampered(pool[0]))
        except Exception:  # noqa: S110 - each library raises its own error type; any refusal will do
            pass
        else:
            raise AssertionError(f"{contender.name} {case.label} accepted an altered tag")


# -- timing (see _timing.py) -------------------------------------------------------


def bench_case(case: Case, settings: Settings, noise: Noise) -> list[PeerResult]:
    keys = key_pair(case.alg, case.crv, ENC if case.alg == "dir" else None)
    contenders = [factory(case, keys) for factory in FACTORIES]
    pool = make_pool(keys)
    check(case, contenders, pool)
    encrypt_calls: dict[str, Callable[[], object]] = {c.name: c.encrypt for c in contenders}
    decrypt_calls: dict[str, Callable[[], object]] = {
        c.name: _bind(c.decrypt, pool) for c in contenders
    }
    return [
        PeerResult(case.label, op, *measure(calls, settings, noise), PEERS, case.target)
        for op, calls in (("encrypt", encrypt_calls), ("decrypt", decrypt_calls))
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


TABLE = PeerTable(LIBRARIES, label_width=14, op_width=9)


def print_header(settings: Settings) -> None:
    print(
        f"{header(environment(DISTRIBUTIONS), DISTRIBUTIONS)}\n"
        f"enc {ENC}, plaintext {len(PLAINTEXT)} bytes; decrypt walks a pool of {POOL_SIZE} "
        "tokens, the same for every library\n"
        f"{settings.rounds} interleaved rounds of ~{settings.batch_seconds:g}s batches, "
        "best batch per library\n"
        "ops/s (higher is better); /fastest peer: jwtward ops/s over the best peer's;\n"
        "target: the ratio required; 'MISS' marks a row below its target; 'cpu': row read\n"
        "from process_time, since some library never ran a clean batch (busy machine)"
    )
    print(TABLE.heading())


def as_json(results: Sequence[PeerResult], settings: Settings, noise: Noise) -> dict[str, Any]:
    return json_report(
        environment(DISTRIBUTIONS),
        [target_json(r, LIBRARIES) for r in results],
        enc=ENC,
        plaintext_bytes=len(PLAINTEXT),
        pool_size=POOL_SIZE,
        **timing_facts(settings, noise),
    )


# -- command line ----------------------------------------------------------------------


def select_cases(spec: str | None) -> list[Case]:
    """Cases named in ``spec`` (comma-separated, any case; a label or an alg)."""
    return select(CASES, spec, lambda c: (c.label, c.alg), lambda c: c.label)


def main(argv: Sequence[str] | None = None) -> int:
    return main_for(
        argv,
        __doc__,
        "dir,ECDH-ES",
        select_cases,
        bench_case,
        Output(print_header, TABLE.print_row, missed_summary, as_json),
        noisy_modules=("authlib.jose",),
    )


if __name__ == "__main__":
    sys.exit(main())
