"""Token stores for the shared token-service suite: one factory per kind, isolated per use.

The suite in ``test_token_service.py`` runs every rule of the token
lifecycle against every store, so the factories here must give each use a
store of its own: a fresh dict (memory), a fresh file (SQLite), a random key
prefix (Redis) or a random schema (PostgreSQL), removed afterwards so that
neither a failed test nor a test run leaves anything behind on a shared server.

Redis and PostgreSQL are reached through ``JWTWARD_TEST_REDIS_URL`` and
``JWTWARD_TEST_POSTGRES_DSN``. A server that cannot be reached skips the
test with a visible reason on a developer machine, and fails it under
``CI=true``: in CI a missing server is a broken pipeline, not a reason to
report green. The server-backed store modules are imported only inside the
factories, so the memory and SQLite runs do not depend on their drivers.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

from jwtward.tokens import (
    AsyncTokenStore,
    MemoryTokenStore,
    SQLiteTokenStore,
    ThreadedStore,
    TokenStore,
)

__all__ = [
    "STORE_KINDS",
    "make_async_store",
    "make_sync_store",
    "postgres_dsn",
    "redis_key_expiries",
    "redis_url",
]

STORE_KINDS: tuple[str, ...] = ("memory", "sqlite", "redis", "postgres")

_DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
# Short: an absent server must cost a second once, not a timeout per test.
_PROBE_TIMEOUT = 2


def redis_url() -> str:
    return os.environ.get("JWTWARD_TEST_REDIS_URL", _DEFAULT_REDIS_URL)


def postgres_dsn() -> str:
    return os.environ.get("JWTWARD_TEST_POSTGRES_DSN", _DEFAULT_POSTGRES_DSN)


def _unusable(reason: str) -> NoReturn:
    """Skip with ``reason``, or fail under CI=true, where every store must be tested."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: every token store must be tested)")
    pytest.skip(reason)


@functools.cache
def _redis_problem() -> str | None:
    """Why the test Redis cannot be used, or None; probed once per test run."""
    try:
        import redis
    except ImportError:
        return "the redis package is not installed"
    client = redis.Redis.from_url(
        redis_url(), socket_connect_timeout=_PROBE_TIMEOUT, socket_timeout=_PROBE_TIMEOUT
    )
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        # The URL is not printed: it may carry a password.
        return f"Redis at $JWTWARD_TEST_REDIS_URL is unreachable ({type(exc).__name__})"
    finally:
        client.close()
    return None


@functools.cache
def _postgres_problem() -> str | None:
    """Why the test PostgreSQL cannot be used, or None; probed once per test run."""
    try:
        import psycopg
    except ImportError:
        return "the psycopg package is not installed"
    try:
        with psycopg.connect(postgres_dsn(), connect_timeout=_PROBE_TIMEOUT) as conn:
            conn.execute("SELECT 1")
    except (psycopg.Error, OSError) as exc:
        return f"PostgreSQL at $JWTWARD_TEST_POSTGRES_DSN is unreachable ({type(exc).__name__})"
    return None


def _require(kind: str) -> None:
    problem = _redis_problem() if kind == "redis" else _postgres_problem()
    if problem is not None:
        _unusable(problem)


def _new_redis_prefix() -> str:
    # Only [a-z0-9:-]: nothing a SCAN pattern would read as a wildcard.
    return f"jwtward-test:{secrets.token_hex(8)}:"


def _new_postgres_schema() -> str:
    return f"jwtward_test_{secrets.token_hex(8)}"


def _drop_redis_prefix(prefix: str) -> None:
    """Delete every key under ``prefix`` (SCAN, never KEYS: the server may be shared)."""
    import redis

    client = redis.Redis.from_url(redis_url(), socket_timeout=10)
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


def _drop_postgres_schema(schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(postgres_dsn(), autocommit=True, connect_timeout=10) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


def redis_key_expiries(prefix: str) -> dict[str, int]:
    """Every key under ``prefix`` and its absolute expiry in ms (-1: none), via PEXPIRETIME.

    The Redis store deletes nothing in ``purge_expired``: it documents that
    every key expires by itself at the time its record names. The suite
    checks that promise through this view of the server.
    """
    import redis

    client = redis.Redis.from_url(redis_url(), socket_timeout=10)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        expiries: list[Any] = [client.pexpiretime(key) for key in keys]
    finally:
        client.close()
    return {
        key.decode()[len(prefix):]: int(expiry) for key, expiry in zip(keys, expiries, strict=True)
    }


def _sqlite_path(tmp_path: Path) -> Path:
    # A fresh file per store, so a test may open several stores under one tmp_path.
    return tmp_path / f"tokens-{secrets.token_hex(4)}.sqlite3"


@contextmanager
def make_sync_store(kind: str, tmp_path: Path) -> Iterator[TokenStore]:
    """A fresh, empty sync store of ``kind``; closed and removed when the block ends."""
    if kind == "memory":
        yield MemoryTokenStore()
    elif kind == "sqlite":
        sqlite_store = SQLiteTokenStore(_sqlite_path(tmp_path))
        try:
            yield sqlite_store
        finally:
            sqlite_store.close()
    elif kind == "redis":
        _require(kind)
        from jwtward.tokens.redis_store import RedisTokenStore

        prefix = _new_redis_prefix()
        redis_store = RedisTokenStore.from_url(redis_url(), prefix=prefix)
        try:
            yield redis_store
        finally:
            try:
                redis_store.close()
            finally:
                _drop_redis_prefix(prefix)
    elif kind == "postgres":
        _require(kind)
        from jwtward.tokens.postgres_store import PostgresTokenStore

        schema = _new_postgres_schema()
        pg_store = PostgresTokenStore(postgres_dsn(), schema=schema)
        try:
            yield pg_store
        finally:
            try:
                pg_store.close()
            finally:
                _drop_postgres_schema(schema)
    else:
        raise ValueError(f"unknown store kind {kind!r}")


@asynccontextmanager
async def make_async_store(kind: str, tmp_path: Path) -> AsyncIterator[AsyncTokenStore]:
    """A fresh, empty async store of ``kind``: native for Redis and PostgreSQL, else threaded.

    Memory and SQLite exist only synchronously; services use them from
    asyncio through :class:`ThreadedStore`, so that is what is tested.
    """
    if kind in ("memory", "sqlite"):
        with make_sync_store(kind, tmp_path) as inner:
            yield ThreadedStore(inner)
    elif kind == "redis":
        _require(kind)
        from jwtward.tokens.redis_store import AsyncRedisTokenStore

        prefix = _new_redis_prefix()
        redis_store = AsyncRedisTokenStore.from_url(redis_url(), prefix=prefix)
        try:
            yield redis_store
        finally:
            try:
                await redis_store.close()
            finally:
                _drop_redis_prefix(prefix)
    elif kind == "postgres":
        _require(kind)
        from jwtward.tokens.postgres_store import AsyncPostgresTokenStore

        schema = _new_postgres_schema()
        pg_store = AsyncPostgresTokenStore(postgres_dsn(), schema=schema)
        try:
            yield pg_store
        finally:
            try:
                await pg_store.close()
            finally:
                _drop_postgres_schema(schema)
    else:
        raise ValueError(f"unknown store kind {kind!r}")
