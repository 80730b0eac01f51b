"""The login rate limiters, one suite over the four backends.

Memory and SQLite always run. Redis (``$JWTWARD_TEST_REDIS_URL``) and
PostgreSQL (``$JWTWARD_TEST_POSTGRES_DSN``) run against real servers; when a
server cannot be reached their cases skip, except under ``CI=true`` where
they fail. Each test gets its own Redis key prefix / PostgreSQL schema under
the module's random one (:mod:`tests.servers`), removed when the module ends.

Times are whole seconds near the real clock: the Redis limiter decides by
the caller's ``now`` but lets Redis expire the entry by the server's clock,
so a ``now`` far from the real time would make Redis drop a fresh window.
"""

from __future__ import annotations

import hashlib
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from psycopg import sql

from jwtward.errors import InvalidArgument, StoreUnavailable
from jwtward.server.ratelimit import (
    MemoryRateLimiter,
    PostgresRateLimiter,
    RateDecision,
    RateLimiter,
    RateLimits,
    RedisRateLimiter,
    SQLiteRateLimiter,
    address_key,
    hash_key,
    username_key,
)
from tests.servers import PostgresServer, RedisServer, postgres_server
from tests.servers import redis_server as shared_redis

WINDOW = 300.0


# -- the servers of this run -------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with shared_redis("ratelimit", socket_timeout=5) as server:
        yield server


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PostgresServer]:
    with postgres_server("ratelimit") as server:
        yield server


# -- one backend under test --------------------------------------------------------------


@dataclass
class Backend:
    """A limiter and a way to look at what its backend holds, bypassing the limiter."""

    name: str
    limiter: RateLimiter
    digests: Callable[[], set[bytes]]  # the stored key digests
    raw: Callable[[], bytes]  # everything stored, as bytes, to search for clear text
    purges: bool  # False where the backend expires entries itself (Redis)
    state: Callable[[], object]  # the stored entries, to compare before and after


def _memory() -> Iterator[Backend]:
    limiter = MemoryRateLimiter()
    yield Backend(
        "memory",
        limiter,
        lambda: set(limiter.stored_digests()),
        lambda: repr(limiter.__dict__).encode(),
        purges=True,
        state=lambda: repr(limiter.__dict__),
    )


def _sqlite(tmp_path: Path) -> Iterator[Backend]:
    path = tmp_path / "limits.db"
    limiter = SQLiteRateLimiter(path)

    def rows() -> list[tuple[Any, ...]]:
        # A connection of its own: the limiter's committed state as another process sees it.
        import sqlite3

        limiter.ping()  # the table exists once the limiter has been used
        db = sqlite3.connect(path)
        try:
            return db.execute("SELECT * FROM jwtward_rate_limits").fetchall()
        finally:
            db.close()

    def raw() -> bytes:
        files = [p for p in tmp_path.iterdir() if p.name.startswith("limits.db")]
        return b"".join(p.read_bytes() for p in files) + repr(rows()).encode()

    # (The -shm file changes on every read: rows, not bytes, are the state.)
    yield Backend(
        "sqlite", limiter, lambda: {bytes(r[0]) for r in rows()}, raw, purges=True, state=rows
    )
    limiter.close()


def _redis(server: RedisServer) -> Iterator[Backend]:
    prefix = server.new_prefix()
    limiter = RedisRateLimiter(server.url, prefix=prefix)
    head = prefix + "rl:"

    def digests() -> set[bytes]:
        found = set()
        for key in server.keys(prefix):
            text = key.decode()
            assert text.startswith(head)
            found.add(bytes.fromhex(text[len(head) :]))
        return found

    def raw() -> bytes:
        parts = []
        for key in sorted(server.keys(prefix)):
            parts.append(key)
            fields: dict[bytes, bytes] = server.client.hgetall(key)  # type: ignore[assignment]
            parts.extend(name + b"=" + value for name, value in sorted(fields.items()))
        return b"\n".join(parts)

    yield Backend("redis", limiter, digests, raw, purges=False, state=raw)
    limiter.close()


def _postgres(server: PostgresServer) -> Iterator[Backend]:
    schema = server.new_schema()
    limiter = PostgresRateLimiter(server.dsn, schema=schema, timeout=5.0)
    table = sql.SQL("{}.rate_limits").format(sql.Identifier(schema))

    def rows() -> list[tuple[Any, ...]]:
        limiter.ping()  # the table exists once the limiter has been used
        return server.query(sql.SQL("SELECT * FROM {}").format(table))

    def raw() -> bytes:
        text = server.query(sql.SQL("SELECT t::text FROM {} AS t").format(table))
        return repr(text).encode() + repr(rows()).encode()

    yield Backend(
        "postgres", limiter, lambda: {bytes(r[0]) for r in rows()}, raw, purges=True, state=rows
    )
    limiter.close()


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    name = request.param
    if name == "memory":
        yield from _memory()
    elif name == "sqlite":
        yield from _sqlite(tmp_path)
    elif name == "redis":
        yield from _redis(request.getfixturevalue("redis_server"))
    else:
        yield from _postgres(request.getfixturevalue("pg_server"))


@pytest.fixture
def t0() -> float:
    """A whole second near the real clock (see the module docstring)."""
    return float(int(time.time()))


# -- the shared suite --------------------------------------------------------------------


def test_is_a_rate_limiter(backend: Backend) -> None:
    assert isinstance(backend.limiter, RateLimiter)
    backend.limiter.ping()


def test_exactly_limit_failures_are_allowed(backend: Backend, t0: float) -> None:
    lim = backend.limiter
    key = username_key("boundary")
    for n in range(1, 4):
        assert lim.check(key, limit=3, window=WINDOW, now=t0) == RateDecision(True, n - 1, 0)
        assert lim.hit(key, limit=3, window=WINDOW, now=t0) == RateDecision(True, n, 0)
    # Three failures recorded: no fourth attempt (check blocks before any password work).
    assert lim.check(key, limit=3, window=WINDOW, now=t0) == RateDecision(False, 3, 300)
    # A fourth failure (a racing request) is refused, and counted.
    assert lim.hit(key, limit=3, window=WINDOW, now=t0 + 10) == RateDecision(False, 4, 290)
    assert lim.hit(key, limit=3, window=WINDOW, now=t0 + 20) == RateDecision(False, 5, 280)
    assert lim.check(key, limit=3, window=WINDOW, now=t0 + 20) == RateDecision(False, 5, 280)
    # The same state read against a higher limit: the count is what decides.
    assert lim.check(key, limit=6, window=WINDOW, now=t0 + 20) == RateDecision(True, 5, 0)


def test_limit_of_one(backend: Backend, t0: float) -> None:
    lim = backend.limiter
    assert lim.hit("k1", limit=1, window=60, now=t0) == RateDecision(True, 1, 0)
    assert lim.check("k1", limit=1, window=60, now=t0) == RateDecision(False, 1, 60)
    assert lim.hit("k1", limit=1, window=60, now=t0) == RateDecision(False, 2, 60)


def test_window_expiry(backend: Backend, t0: float) -> None:
    lim = backend.limiter
    key = address_key("198.51.100.7")
    for _ in range(3):
        lim.hit(key, limit=2, window=WINDOW, now=t0)
    assert lim.check(key, limit=2, window=WINDOW, now=t0 + WINDOW - 1) == RateDecision(
        False, 3, 1
    )
    # Part of a second left is still a whole second to wait.
    assert lim.check(key, limit=2, window=WINDOW, now=t0 + WINDOW - 0.5).retry_after == 1
    # At the window's end the key is free again, without anything being written.
    assert lim.check(key, limit=2, window=WINDOW, now=t0 + WINDOW) == RateDecision(True, 0, 0)
    # The next failure opens a new window that starts at that failure.
    t1 = t0 + WINDOW + 5
    assert lim.hit(key, limit=2, window=WINDOW, now=t1) == RateDecision(True, 1, 0)
    assert lim.hit(key, limit=2, window=WINDOW, now=t1 + 1) == RateDecision(True, 2, 0)
    assert lim.check(key, limit=2, window=WINDOW, now=t1 + 1) == RateDecision(False, 2, 299)
    assert lim.hit(key, limit=2, window=WINDOW, now=t1 + 100) == RateDecision(False, 3, 200)


def test_refused_failures_do_not_extend_the_window(backend: Backend, t0: float) -> None:
    """A fixed window: hammering a blocked key does not keep it blocked for longer."""
    lim = backend.limiter
    for step in range(10):
        lim.hit("hammer", limit=1, window=60, now=t0 + step * 5)
    assert lim.check("hammer", limit=1, window=60, now=t0 + 59).retry_after == 1
    assert lim.check("hammer", limit=1, window=60, now=t0 + 60).allowed


def test_check_is_read_only(backend: Backend, t0: float) -> None:
    lim = backend.limiter
    for _ in range(5):
        assert lim.check("unknown", limit=1, window=WINDOW, now=t0) == RateDecision(True, 0, 0)
    assert backend.digests() == set()
    lim.hit("seen", limit=3, window=WINDOW, now=t0)
    lim.hit("seen", limit=3, window=WINDOW, now=t0)
    before = backend.state()
    for _ in range(10):
        assert lim.check("seen", limit=3, window=WINDOW, now=t0 + 1) == RateDecision(True, 2, 0)
    # Even a check after the window's end leaves the ended window as it was.
    assert lim.check("seen", limit=3, window=WINDOW, now=t0 + WINDOW) == RateDecision(True, 0, 0)
    assert backend.state() == before
    assert backend.digests() == {hash_key("seen")}
    assert lim.hit("seen", limit=3, window=WINDOW, now=t0 + 2) == RateDecision(True, 3, 0)


def test_reset(backend: Backend, t0: float) -> None:
    lim = backend.limiter
    alice, bob = username_key("alice"), username_key("bob")
    for _ in range(4):
        lim.hit(alice, limit=3, window=WINDOW, now=t0)
    lim.hit(bob, limit=3, window=WINDOW, now=t0)
    assert not lim.check(alice, limit=3, window=WINDOW, now=t0).allowed
    lim.reset(alice)
    assert lim.check(alice, limit=3, window=WINDOW, now=t0) == RateDecision(True, 0, 0)
    assert lim.check(bob, limit=3, window=WINDOW, now=t0) == RateDecision(True, 1, 0)
    assert backend.digests() == {hash_key(bob)}
    lim.reset(alice)  # nothing left to forget: no error
    lim.reset("never-seen")
    assert lim.hit(alice, limit=3, window=WINDOW, now=t0 + 1) == RateDecision(True, 1, 0)


def test_keys_are_hashed_at_rest(backend: Backend, t0: float) -> None:
    lim = backend.limiter
    user = username_key("correct-horse-battery-user")
    addr = address_key("203.0.113.77")
    lim.hit(user, limit=5, window=WINDOW, now=t0)
    lim.hit(addr, limit=20, window=WINDOW, now=t0)
    assert backend.digests() == {hash_key(user), hash_key(addr)}
    raw = backend.raw()
    assert raw  # the inspection does see the stored entries
    for clear in (b"correct-horse-battery-user", b"203.0.113.77", b"user:", b"addr:"):
        assert clear not in raw
        assert clear.hex().encode() not in raw


def test_fifty_concurrent_hits_count_exactly_fifty(backend: Backend, t0: float) -> None:
    lim = backend.limiter
    start = threading.Barrier(50)

    def one(_: int) -> RateDecision:
        start.wait(timeout=10)
        return lim.hit("crowd", limit=10, window=WINDOW, now=t0)

    with ThreadPoolExecutor(max_workers=50) as pool:
        decisions = list(pool.map(one, range(50)))
    # Each failure saw a distinct count: no increment was lost or repeated.
    assert sorted(d.count for d in decisions) == list(range(1, 51))
    assert sorted(d.count for d in decisions if d.allowed) == list(range(1, 11))
    assert all(d.retry_after == 300 for d in decisions if not d.allowed)
    assert lim.check("crowd", limit=10, window=WINDOW, now=t0) == RateDecision(False, 50, 300)


def test_purge_expired(backend: Backend, t0: float) -> None:
    lim = backend.limiter
    lim.hit("short", limit=5, window=10, now=t0)
    lim.hit("long", limit=5, window=100, now=t0)
    assert lim.purge_expired(t0 + 9) == 0
    assert backend.digests() == {hash_key("short"), hash_key("long")}
    if backend.purges:
        assert lim.purge_expired(t0 + 10) == 1
        assert backend.digests() == {hash_key("long")}
        assert lim.purge_expired(t0 + 10) == 0
    else:  # Redis expires each entry itself, at its window's end by the server clock
        assert lim.purge_expired(t0 + 10) == 0
    assert lim.check("short", limit=5, window=10, now=t0 + 10) == RateDecision(True, 0, 0)
    assert lim.check("long", limit=5, window=100, now=t0 + 10) == RateDecision(True, 1, 0)


@pytest.mark.parametrize(
    ("limit", "window", "now"),
    [
        (0, 60.0, 0.0),
        (-1, 60.0, 0.0),
        (True, 60.0, 0.0),
        (2.0, 60.0, 0.0),
        (3, 0.0, 0.0),
        (3, -5.0, 0.0),
        (3, math.inf, 0.0),
        (3, math.nan, 0.0),
        (3, 60.0, math.nan),
        (3, 60.0, math.inf),
    ],
)
def test_bad_arguments_are_refused(
    backend: Backend, limit: Any, window: Any, now: Any
) -> None:
    lim = backend.limiter
    with pytest.raises(InvalidArgument):
        lim.hit("k", limit=limit, window=window, now=now)
    with pytest.raises(InvalidArgument):
        lim.check("k", limit=limit, window=window, now=now)
    with pytest.raises(InvalidArgument):
        lim.hit(b"k", limit=3, window=60.0, now=0.0)  # type: ignore[arg-type]
    assert backend.digests() == set()


# -- backends that are down --------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _every_call(limiter: RateLimiter) -> list[Callable[[], object]]:
    return [
        lambda: limiter.hit("k", limit=3, window=60, now=time.time()),
        lambda: limiter.check("k", limit=3, window=60, now=time.time()),
        lambda: limiter.reset("k"),
        lambda: limiter.purge_expired(time.time()),
        limiter.ping,
    ]


def _down_limiter(name: str, tmp_path: Path) -> RateLimiter:
    port = _closed_port()
    if name == "sqlite":
        return SQLiteRateLimiter(tmp_path)  # a directory, not a database file
    if name == "redis":
        return RedisRateLimiter(f"redis://127.0.0.1:{port}/0", prefix="down:")
    return PostgresRateLimiter(
        f"postgresql://postgres:pw-that-must-not-leak@127.0.0.1:{port}/test", timeout=0.5
    )


@pytest.mark.parametrize("name", ["sqlite", "redis", "postgres"])
def test_backend_down_is_store_unavailable(name: str, tmp_path: Path) -> None:
    limiter = _down_limiter(name, tmp_path)
    try:
        for index, call in enumerate(_every_call(limiter)):
            if name == "redis" and index == 3:
                continue  # purge_expired: see test_redis_purge_never_contacts_the_server
            started = time.monotonic()
            with pytest.raises(StoreUnavailable) as caught:
                call()
            assert time.monotonic() - started < 3
            assert caught.value.__cause__ is None
            assert "pw-that-must-not-leak" not in str(caught.value)
    finally:
        limiter.close()
    assert "pw-that-must-not-leak" not in repr(limiter)


def test_redis_purge_never_contacts_the_server(tmp_path: Path) -> None:
    """purge_expired has nothing to do on Redis, so it answers even with the server down."""
    limiter = _down_limiter("redis", tmp_path)
    assert limiter.purge_expired(time.time()) == 0
    with pytest.raises(StoreUnavailable):
        limiter.ping()


def test_closed_postgres_limiter_is_unavailable(pg_server: PostgresServer, t0: float) -> None:
    limiter = PostgresRateLimiter(pg_server.dsn, schema=pg_server.new_schema())
    limiter.hit("k", limit=1, window=60, now=t0)
    limiter.close()
    with pytest.raises(StoreUnavailable):
        limiter.check("k", limit=1, window=60, now=t0)


# -- backend specifics -------------------------------------------------------------------


def test_redis_entry_expires_with_its_window(redis_server: RedisServer) -> None:
    prefix = redis_server.new_prefix()
    limiter = RedisRateLimiter(redis_server.client, prefix=prefix)
    now = time.time()
    limiter.hit("ttl", limit=3, window=WINDOW, now=now)
    key = limiter.redis_key("ttl")
    assert key == prefix + "rl:" + hash_key("ttl").hex()
    ttl_ms = redis_server.client.pttl(key)
    assert WINDOW * 1000 - 5000 < ttl_ms <= WINDOW * 1000
    # A second failure leaves the expiry where the first put it.
    limiter.hit("ttl", limit=3, window=WINDOW, now=now + 1)
    assert redis_server.client.pttl(key) <= ttl_ms
    # A short window really disappears from the server.
    limiter.hit("brief", limit=3, window=0.2, now=time.time())
    assert redis_server.client.exists(limiter.redis_key("brief")) == 1
    time.sleep(0.35)
    assert redis_server.client.exists(limiter.redis_key("brief")) == 0
    limiter.close()  # the client was given: it stays open
    assert redis_server.client.ping()


def test_redis_refuses_a_decoding_client(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        with pytest.raises(InvalidArgument):
            RedisRateLimiter(client)
    finally:
        client.close()


def test_postgres_shares_its_schema_with_the_token_store(pg_server: PostgresServer) -> None:
    from jwtward.tokens.postgres_store import PostgresTokenStore

    schema = pg_server.new_schema()
    limiter = PostgresRateLimiter(pg_server.dsn, schema=schema)
    store = PostgresTokenStore(pg_server.dsn, schema=schema)
    try:
        limiter.ping()
        store.ping()  # the token store migrates into the schema the limiter created
        tables = pg_server.query(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        )
        names = {row[0] for row in tables}
        assert {"rate_limits", "rate_limit_schema_version", "schema_version"} <= names
        assert {"families", "refresh_tokens"} <= names
        # A second limiter on the migrated schema applies nothing again.
        again = PostgresRateLimiter(pg_server.dsn, schema=schema)
        again.ping()
        again.close()
        versions = pg_server.query(
            sql.SQL("SELECT version FROM {}.rate_limit_schema_version").format(
                sql.Identifier(schema)
            )
        )
        assert versions == [(1,)]
    finally:
        limiter.close()
        store.close()


@pytest.mark.parametrize("schema", ["", "Upper", "a-b", "x" * 64, "1abc", 'a"b'])
def test_postgres_refuses_bad_schema_names(schema: str) -> None:
    with pytest.raises(InvalidArgument):
        PostgresRateLimiter("postgresql://127.0.0.1/none", schema=schema)


def test_postgres_needs_exactly_one_of_dsn_and_pool() -> None:
    with pytest.raises(InvalidArgument):
        PostgresRateLimiter()
    with pytest.raises(InvalidArgument):
        PostgresRateLimiter("postgresql://127.0.0.1/none", pool=object())  # type: ignore[arg-type]


def test_sqlite_shares_its_file_with_the_token_store(tmp_path: Path, t0: float) -> None:
    from jwtward.tokens.sqlite_store import SQLiteTokenStore

    path = tmp_path / "shared.db"
    store = SQLiteTokenStore(path)
    limiter = SQLiteRateLimiter(path)
    try:
        store.ping()
        assert limiter.hit("k", limit=1, window=60, now=t0) == RateDecision(True, 1, 0)
        # A second limiter on the file (another process, say) sees the same count.
        other = SQLiteRateLimiter(path)
        assert other.check("k", limit=1, window=60, now=t0) == RateDecision(False, 1, 60)
        other.close()
        assert os.stat(path).st_mode & 0o777 == 0o600
    finally:
        limiter.close()
        store.close()


# -- keys and defaults -------------------------------------------------------------------


def test_hash_key_is_domain_separated_sha256() -> None:
    assert hash_key("user:alice") == hashlib.sha256(b"jwtward.ratelimit:user:alice").digest()
    assert hash_key("user:alice") != hashlib.sha256(b"user:alice").digest()
    assert len(hash_key("")) == 32
    with pytest.raises(InvalidArgument):
        hash_key(b"user:alice")  # type: ignore[arg-type]


def test_username_and_address_keys_never_collide() -> None:
    assert username_key("10.0.0.1") != address_key("10.0.0.1")
    assert username_key("alice") == "user:alice"
    assert address_key("2001:db8::1") == "addr:2001:db8::1"


def test_rate_limit_defaults() -> None:
    limits = RateLimits()
    assert (limits.username_limit, limits.username_window) == (5, 300.0)
    assert (limits.address_limit, limits.address_window) == (20, 300.0)
    custom = RateLimits(username_limit=3, username_window=60, address_limit=50)
    assert (custom.username_limit, custom.username_window, custom.address_limit) == (3, 60, 50)
    for bad in (
        {"username_limit": 0},
        {"address_limit": True},
        {"username_window": 0},
        {"address_window": math.nan},
    ):
        with pytest.raises(InvalidArgument):
            RateLimits(**bad)
