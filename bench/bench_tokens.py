"""Token service throughput per store: verify (signature, claims, revocation) and refresh.

``TokenService.verify(access_token)`` checks the ES256 signature, the claims
(``typ`` ``at+jwt``, ``iss``, ``aud``, ``exp``, ``iat``, ``jti``, ``sub``,
``sid``, lifetime) and then asks the store whether the token, its session or
its subject was revoked. Each verify row times it next to
``jwtward.jwt.decode(token, ring, policy)`` with the same policy, in the same
interleaved rounds, so the difference between the two is what the service and
its store add to one request.

Stores: ``memory`` (MemoryTokenStore), ``sqlite`` (SQLiteTokenStore on a temp
file), ``redis`` (RedisTokenStore.from_url, a random key prefix removed
afterwards), ``postgres`` (PostgresTokenStore, a random schema dropped
afterwards), and ``redis-async`` / ``postgres-async``: AsyncTokenService over
the asyncio stores, each timed call being
``loop.run_until_complete(service.verify(token))`` on one event loop (so the
row includes one loop round trip per call). A server that cannot be reached
makes its rows print as skipped; a benchmark is not a test.

Each refresh row rotates a different, pre-issued refresh token per call: every
timed call is a real rotation (a refresh token can only be used once). Before
any timing, every store must return the subject from verify and refuse a
revoked access token, an access token of a revoked session, one of a subject
logged out everywhere, and a reused refresh token; after timing, the timed
token itself is revoked and must be refused. So no store is timed on a path
that skips the revocation check. Run from the repository root::

    .venv/bin/python bench/bench_tokens.py [--quick] [--stores memory,redis] [--json]

Servers: ``JWTWARD_TEST_REDIS_URL`` (default redis://127.0.0.1:6379/0) and
``JWTWARD_TEST_POSTGRES_DSN`` (default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import math
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from _report import (
    Output,
    environment,
    header,
    json_report,
    noise_line,
    parse_args,
    run_cases,
    select,
    timing_facts,
)
from _timing import MAX_ATTEMPTS, Noise, Settings, measure, measure_wall
from jwtward import Policy
from jwtward import jwt as jwtward_jwt
from jwtward.errors import JWTWardError, RefreshTokenReuse, RevokedToken
from jwtward.keys import KeyRing
from jwtward.tokens import (
    ACCESS_TYP,
    AccessClaims,
    AsyncTokenService,
    MemoryTokenStore,
    SQLiteTokenStore,
    TokenPair,
    TokenService,
    flows,
)

T = TypeVar("T")

ISSUER = "https://auth.example.com"
AUDIENCE = "https://api.example.com"
SUBJECT = "user-1234567890"
SCOPE = "openid profile email"
ACCESS_LIFETIME = timedelta(minutes=15)
LEEWAY = timedelta(seconds=30)
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
DECODE = "jwt.decode"
SERVICE = "service"

# Refresh rows: how many rotations a probe times to size the token pool, and
# how far the calibrated batch may outgrow the probe's estimate (a warm
# store is faster than the probe saw).
PROBE_ROTATIONS = 32
POOL_SLACK = 2.0


@dataclass(frozen=True)
class Case:
    """One store, and whether its verify / refresh calls wait (on a server, on fsync).

    A waiting call is timed by the wall clock only (see ``measure_wall``).
    """

    label: str
    verify_waits: bool
    refresh_waits: bool


CASES = (
    Case("memory", verify_waits=False, refresh_waits=False),
    Case("sqlite", verify_waits=False, refresh_waits=True),  # a rotation commits with fsync
    Case("redis", verify_waits=True, refresh_waits=True),
    Case("postgres", verify_waits=True, refresh_waits=True),
    Case("redis-async", verify_waits=True, refresh_waits=True),
    Case("postgres-async", verify_waits=True, refresh_waits=True),
)
OPERATIONS = ("verify", "verify-same", "refresh")

# The service may keep a memo of verified tokens (skipping the signature
# check on a repeat, never the store). The verify rows walk a pool of
# distinct tokens larger than that memo, oldest first, so every call misses
# it and pays for the signature; verify-same repeats one token, as repeat
# requests with one bearer token do.
_MEMO_SIZE: int = getattr(flows, "VERIFIED_CACHE_SIZE", 0)
VERIFY_POOL = max(512, _MEMO_SIZE + _MEMO_SIZE // 4 + 64)


@dataclass(frozen=True)
class Result:
    case: Case
    operation: str  # one of OPERATIONS
    ops_per_second: dict[str, float]  # DECODE (verify rows only) and SERVICE
    clock: str  # "wall" or "cpu" (see _timing.measure)
    skipped: str | None = None

    @property
    def slowdown(self) -> float:
        """How many times longer verify takes than the plain decode."""
        return self.ops_per_second[DECODE] / self.ops_per_second[SERVICE]

    @property
    def added_us(self) -> float:
        """Microseconds the service and its store add to one verify."""
        return 1e6 / self.ops_per_second[SERVICE] - 1e6 / self.ops_per_second[DECODE]


@dataclass
class Harness:
    """One service over one store, driven through plain calls (async ones run on a loop)."""

    issue: Callable[[str], TokenPair]
    verify: Callable[[str], AccessClaims]
    refresh: Callable[[str], TokenPair]
    revoke: Callable[[str], None]
    revoke_subject: Callable[[str], None]


# -- stores ---------------------------------------------------------------------------


class Unreachable(Exception):
    """The store's server (or its driver) is not there: the row is skipped, not failed."""


def access_policy() -> Policy:
    """What TokenService.verify checks before the store, for the plain decode baseline."""
    return Policy(
        issuer=ISSUER,
        audience=AUDIENCE,
        typ=ACCESS_TYP,
        require=("iat", "jti", "sub", "sid"),
        leeway=LEEWAY,
        max_lifetime=ACCESS_LIFETIME,
    )


def sync_harness(ring: KeyRing, store: Any) -> Harness:
    service = TokenService(
        ring,
        issuer=ISSUER,
        audience=AUDIENCE,
        store=store,
        access_lifetime=ACCESS_LIFETIME,
        leeway=LEEWAY,
    )
    return Harness(
        issue=lambda subject: service.issue(subject, scope=SCOPE),
        verify=service.verify,
        refresh=service.refresh,
        revoke=service.revoke,
        revoke_subject=service.revoke_subject,
    )


def async_harness(ring: KeyRing, store: Any, loop: asyncio.AbstractEventLoop) -> Harness:
    service = AsyncTokenService(
        ring,
        issuer=ISSUER,
        audience=AUDIENCE,
        store=store,
        access_lifetime=ACCESS_LIFETIME,
        leeway=LEEWAY,
    )

    def run(make: Callable[[str], Awaitable[T]]) -> Callable[[str], T]:
        def call(argument: str) -> T:
            return loop.run_until_complete(make(argument))

        return call

    async def issue(subject: str) -> TokenPair:
        return await service.issue(subject, scope=SCOPE)

    return Harness(
        issue=run(issue),
        verify=run(service.verify),
        refresh=run(service.refresh),
        revoke=run(service.revoke),
        revoke_subject=run(service.revoke_subject),
    )


def _unreachable(what: str, exc: BaseException) -> Unreachable:
    return Unreachable(f"{what}: {type(exc).__name__}: {exc}")


@contextmanager
def open_memory(ring: KeyRing) -> Iterator[Harness]:
    yield sync_harness(ring, MemoryTokenStore())


@contextmanager
def open_sqlite(ring: KeyRing) -> Iterator[Harness]:
    with tempfile.TemporaryDirectory(prefix="jwtward-bench-") as directory:
        store = SQLiteTokenStore(Path(directory) / "tokens.sqlite3")
        try:
            yield sync_harness(ring, store)
        finally:
            store.close()


def _redis_url() -> str:
    return os.environ.get("JWTWARD_TEST_REDIS_URL", DEFAULT_REDIS_URL)


def _postgres_dsn() -> str:
    return os.environ.get("JWTWARD_TEST_POSTGRES_DSN", DEFAULT_POSTGRES_DSN)


def _drop_redis_prefix(url: str, prefix: str) -> None:
    """Delete every key the run wrote (the prefix is random, so nothing else matches)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)
    finally:
        client.close()


def _drop_postgres_schema(dsn: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@contextmanager
def _event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _passed(value: T) -> T:
    """What a synchronous store's call returned, as is (the counterpart of running it on a loop)."""
    return value


@contextmanager
def _served(
    ring: KeyRing,
    make_store: Callable[[], Any],
    where: str,
    cleanup: Callable[[], None],
    asynchronous: bool,
) -> Iterator[Harness]:
    """A harness over a server's store, if the server answers; its data is removed afterwards."""
    with _event_loop() if asynchronous else nullcontext() as loop:
        run: Callable[[Any], object] = loop.run_until_complete if loop else _passed
        store = make_store()
        reached = False  # nothing to clean up on a server the run never reached
        try:
            try:
                run(store.ping())
            except JWTWardError as exc:
                raise _unreachable(f"cannot reach {where}", exc) from None
            reached = True
            yield async_harness(ring, store, loop) if loop else sync_harness(ring, store)
        finally:
            run(store.close())
            if reached:
                _cleanup(cleanup)


def open_redis(ring: KeyRing, asynchronous: bool = False) -> AbstractContextManager[Harness]:
    url = _redis_url()
    try:
        from jwtward.tokens import redis_store
    except ImportError as exc:
        raise _unreachable("redis driver not installed", exc) from None
    prefix = f"jwtward-bench:{secrets.token_hex(8)}:"
    kind = redis_store.AsyncRedisTokenStore if asynchronous else redis_store.RedisTokenStore
    return _served(
        ring,
        partial(kind.from_url, url, prefix=prefix),
        f"Redis at {url}",
        partial(_drop_redis_prefix, url, prefix),
        asynchronous,
    )


def open_postgres(ring: KeyRing, asynchronous: bool = False) -> AbstractContextManager[Harness]:
    dsn = _postgres_dsn()
    try:
        from jwtward.tokens import postgres_store
    except ImportError as exc:
        raise _unreachable("psycopg not installed", exc) from None
    schema = f"jwtward_bench_{secrets.token_hex(8)}"
    kind = (
        postgres_store.AsyncPostgresTokenStore
        if asynchronous
        else postgres_store.PostgresTokenStore
    )
    return _served(
        ring,
        partial(kind, dsn, schema=schema, timeout=5.0),
        f"PostgreSQL at {dsn}",
        partial(_drop_postgres_schema, dsn, schema),
        asynchronous,
    )


def _cleanup(action: Callable[[], None]) -> None:
    """Remove the run's data; a server that is gone leaves nothing to remove (or can't)."""
    try:
        action()
    except Exception as exc:
        print(f"warning: cleanup failed: {type(exc).__name__}: {exc}", file=sys.stderr)


OPENERS: dict[str, Callable[[KeyRing], AbstractContextManager[Harness]]] = {
    "memory": open_memory,
    "sqlite": open_sqlite,
    "redis": open_redis,
    "postgres": open_postgres,
    "redis-async": partial(open_redis, asynchronous=True),
    "postgres-async": partial(open_postgres, asynchronous=True),
}


# -- checks before and after timing -----------------------------------------------


def _refuses(call: Callable[[], object], error: type[Exception], what: str, case: Case) -> None:
    try:
        call()
    except error:
        return
    raise AssertionError(f"{case.label}: {what} was not refused with {error.__name__}")


def check(case: Case, harness: Harness, ring: KeyRing, policy: Policy) -> str:
    """Verify and refuse what the store must refuse; return the access token to repeat."""
    pair = harness.issue(SUBJECT)
    claims = harness.verify(pair.access_token)
    assert claims.subject == SUBJECT, case.label
    assert claims.session_id == pair.session_id, case.label
    assert claims.scopes == frozenset(SCOPE.split()), case.label
    assert jwtward_jwt.decode(pair.access_token, ring, policy)["sub"] == SUBJECT, case.label

    revoked = harness.issue(SUBJECT)
    harness.revoke(revoked.access_token)
    _refuses(partial(harness.verify, revoked.access_token), RevokedToken, "a revoked token", case)
    # The decode baseline still accepts it: the store is the only difference between them.
    assert jwtward_jwt.decode(revoked.access_token, ring, policy)["sub"] == SUBJECT

    ended = harness.issue(SUBJECT)
    harness.revoke(ended.refresh_token)
    _refuses(partial(harness.verify, ended.access_token), RevokedToken, "a revoked session", case)

    logged_out = harness.issue("user-logged-out")
    time.sleep(0.01)  # the cutoff must come after the session's creation time
    harness.revoke_subject("user-logged-out")
    _refuses(
        partial(harness.verify, logged_out.access_token), RevokedToken, "a logged-out subject", case
    )

    rotated = harness.issue(SUBJECT)
    successor = harness.refresh(rotated.refresh_token)
    assert harness.verify(successor.access_token).subject == SUBJECT, case.label
    _refuses(
        partial(harness.refresh, rotated.refresh_token), RefreshTokenReuse, "a reused refresh", case
    )
    _refuses(
        partial(harness.verify, successor.access_token), RevokedToken, "a reused session", case
    )

    assert harness.verify(pair.access_token).subject == SUBJECT, case.label
    return pair.access_token


def check_after(
    case: Case, harness: Harness, tokens: Sequence[str], first_rotated: str | None
) -> None:
    """The timed tokens (the repeated one too) still go through the revocation check.

    The timed rotations were real: the first rotated token is now a reuse.
    """
    for token in tokens:
        harness.revoke(token)
        _refuses(partial(harness.verify, token), RevokedToken, "a timed token, revoked", case)
    if first_rotated is not None:
        _refuses(
            partial(harness.refresh, first_rotated), RefreshTokenReuse, "a timed refresh", case
        )


# -- timing ----------------------------------------------------------------------------


class RotationPool:
    """One pre-issued refresh token per timed call; running out stops the run loudly."""

    def __init__(self, harness: Harness, size: int) -> None:
        self._refresh = harness.refresh
        self.tokens = [harness.issue(f"user-{i}").refresh_token for i in range(size)]
        self._next = iter(self.tokens).__next__
        self.used = 0

    def __call__(self) -> object:
        try:
            token = self._next()
        except StopIteration:
            raise SystemExit("refresh pool exhausted: rerun (the probe underestimated)") from None
        self.used += 1
        return self._refresh(token)


def rotation_pool(harness: Harness, settings: Settings, waits: bool) -> RotationPool:
    """Enough fresh refresh tokens for calibration plus every batch ``measure`` may run."""
    probe = [harness.issue(f"probe-{i}").refresh_token for i in range(PROBE_ROTATIONS)]
    start = time.perf_counter()
    for token in probe:
        harness.refresh(token)
    per_call = (time.perf_counter() - start) / PROBE_ROTATIONS
    batches = settings.rounds * (1 if waits else MAX_ATTEMPTS) + 1  # +1: calibration
    per_batch = math.ceil(POOL_SLACK * settings.batch_seconds / per_call)
    return RotationPool(harness, per_batch * batches + 64)


def bench_case(
    case: Case, settings: Settings, noise: Noise, ring: KeyRing, report_skips: bool
) -> list[Result]:
    policy = access_policy()
    verify_timer = measure_wall if case.verify_waits else measure
    refresh_timer = measure_wall if case.refresh_waits else measure
    decode = jwtward_jwt.decode
    try:
        with OPENERS[case.label](ring) as harness:
            token = check(case, harness, ring, policy)
            verify = harness.verify
            pool = [harness.issue(f"user-{i}").access_token for i in range(VERIFY_POOL)]
            for sample in (pool[0], pool[-1]):
                assert verify(sample).subject == decode(sample, ring, policy)["sub"]
            next_decoded = itertools.cycle(pool).__next__
            next_verified = itertools.cycle(pool).__next__
            distinct: dict[str, Callable[[], object]] = {
                DECODE: lambda: decode(next_decoded(), ring, policy),
                SERVICE: lambda: verify(next_verified()),
            }
            same: dict[str, Callable[[], object]] = {
                DECODE: lambda: decode(token, ring, policy),
                SERVICE: lambda: verify(token),
            }
            gc.collect()
            rows = [
                Result(case, "verify", *verify_timer(distinct, settings, noise)),
                Result(case, "verify-same", *verify_timer(same, settings, noise)),
            ]
            rotations = rotation_pool(harness, settings, case.refresh_waits)
            gc.collect()
            rows.append(
                Result(case, "refresh", *refresh_timer({SERVICE: rotations}, settings, noise))
            )
            first = rotations.tokens[0] if rotations.used else None
            check_after(case, harness, (token, pool[0], pool[-1]), first)
            return rows
    except Unreachable as exc:
        if report_skips:
            print(f"{case.label}: skipped ({exc})", file=sys.stderr)
        return [Result(case, op, {}, "-", skipped=str(exc)) for op in OPERATIONS]


# -- output --------------------------------------------------------------------------

DISTRIBUTIONS = (
    ("jwtward", "jwtward"),
    ("cryptography", "cryptography"),
    ("redis", "redis"),
    ("psycopg", "psycopg"),
)


def print_header(settings: Settings) -> None:
    env = environment(DISTRIBUTIONS, optional=True)
    print(
        f"{header(env, DISTRIBUTIONS)}\n"
        f"ES256; {settings.rounds} interleaved rounds of ~{settings.batch_seconds:g}s batches, "
        "best batch per call\n"
        "ops/s (higher is better); jwt.decode: signature and claims only, same policy;\n"
        "service: TokenService.verify (AsyncTokenService.verify via loop.run_until_complete\n"
        "for *-async), i.e. decode + revocation check in the store; x decode: how many times\n"
        "longer verify takes; +us: microseconds the service and store add per verify;\n"
        f"verify: {VERIFY_POOL} distinct tokens in turn (no memo hit); verify-same: one token;\n"
        "refresh: one real rotation per call; 'cpu': row read from process_time (busy\n"
        "machine); server rows are always read from the wall clock"
    )
    print(f"\n{'store':<16}{'op':<13}{DECODE:>12}{SERVICE:>12}{'x decode':>10}{'+us':>10}")
    print("-" * (16 + 13 + 12 + 12 + 10 + 10 + 4))


def print_row(result: Result) -> None:
    head = f"{result.case.label:<16}{result.operation:<13}"
    if result.skipped is not None:
        if result.operation == OPERATIONS[0]:  # one line per store
            print(f"{result.case.label:<16}SKIPPED, every row: {result.skipped}", flush=True)
        return
    clock = " cpu" if result.clock == "cpu" else ""
    service = f"{result.ops_per_second[SERVICE]:>12,.0f}"
    if result.operation == "refresh":
        print(f"{head}{'':>12}{service}{clock}", flush=True)
        return
    print(
        f"{head}{result.ops_per_second[DECODE]:>12,.0f}{service}"
        f"{result.slowdown:>9.2f}x{result.added_us:>+10.1f}{clock}",
        flush=True,
    )


def print_summary(results: Sequence[Result], noise: Noise) -> None:
    print(noise_line(noise))
    skipped = sorted({r.case.label for r in results if r.skipped is not None})
    if skipped:
        print(f"skipped (server not reachable): {', '.join(skipped)}")


def as_json(results: Sequence[Result], settings: Settings, noise: Noise) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for r in results:
        row: dict[str, Any] = {"store": r.case.label, "op": r.operation}
        if r.skipped is not None:
            row["skipped"] = r.skipped
        else:
            row["ops_per_second"] = {k: round(v, 1) for k, v in r.ops_per_second.items()}
            row["clock"] = r.clock
            if r.operation != "refresh":
                row["verify_vs_decode_time"] = round(r.slowdown, 4)
                row["added_us_per_verify"] = round(r.added_us, 2)
        rows.append(row)
    return json_report(
        environment(DISTRIBUTIONS, optional=True),
        rows,
        alg="ES256",
        **timing_facts(settings, noise),
    )


# -- command line ----------------------------------------------------------------------


def select_cases(spec: str | None) -> list[Case]:
    """Cases named in ``spec`` (comma-separated, any case)."""
    return select(CASES, spec, lambda c: (c.label,), lambda c: c.label, noun="store(s)")


def main(argv: Sequence[str] | None = None) -> int:
    # --stores is this benchmark's own option; the rest are the shared ones.
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--stores")
    chosen, rest = own.parse_known_args(argv)
    names = ", ".join(c.label for c in CASES)
    doc = (__doc__.split("\n\n")[0] if __doc__ else "") + (
        f" --stores picks rows (comma-separated: {names})."
    )
    args, settings = parse_args(rest, doc, "(none: ES256 only; use --stores)")
    if args.algs is not None:
        raise SystemExit("this benchmark is ES256 only; choose rows with --stores")
    cases = select_cases(chosen.stores)
    ring = KeyRing.generate("ES256")
    return run_cases(
        cases,
        partial(bench_case, ring=ring, report_skips=args.json),
        settings,
        Output(print_header, print_row, print_summary, as_json),
        as_json=args.json,
    )


if __name__ == "__main__":
    sys.exit(main())
