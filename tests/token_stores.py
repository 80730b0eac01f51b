"""Token stores for the shared token-service suite: one factory per kind, isolated per use.

The suite in ``test_token_service.py`` runs every rule of the token
lifecycle against every store, so the factories here must give each use a
store of its own: a fresh dict (memory), a fresh file (SQLite), a random key
prefix (Redis) or a random schema (PostgreSQL), removed afterwards so that
neither a failed test nor a test run leaves anything behind on a shared server.

Redis and PostgreSQL are reached, isolated and cleaned through
:mod:`tests.servers`: a server that cannot be reached skips the test with a
visible reason on a developer machine, and fails it under ``CI=true``. The
server-backed store modules are imported only inside the
factories, so the memory and SQLite runs do not depend on their drivers.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from jwtward.tokens import (
    AsyncTokenStore,
    MemoryTokenStore,
    SQLiteTokenStore,
    ThreadedStore,
    TokenStore,
)
from tests.servers import (
    drop_postgres_schema,
    drop_redis_prefix,
    new_postgres_schema,
    new_redis_prefix,
    postgres_dsn,
    redis_keys,
    redis_url,
    require,
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


def redis_key_expiries(prefix: str) -> dict[str, int]:
    """Every key under ``prefix`` and its absolute expiry in ms (-1: none), via PEXPIRETIME.

    The Redis store deletes nothing in ``purge_expired``: it documents that
    every key expires by itself at the time its record names. The suite
    checks that promise through this view of the server.
    """
    import redis

    client = redis.Redis.from_url(redis_url(), socket_timeout=10)
    try:
        keys = redis_keys(prefix, client)
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
        require(kind)
        from jwtward.tokens.redis_store import RedisTokenStore

        prefix = new_redis_prefix()
        redis_store = RedisTokenStore.from_url(redis_url(), prefix=prefix)
        try:
            yield redis_store
        finally:
            try:
                redis_store.close()
            finally:
                drop_redis_prefix(prefix)
    elif kind == "postgres":
        require(kind)
        from jwtward.tokens.postgres_store import PostgresTokenStore

        schema = new_postgres_schema()
        pg_store = PostgresTokenStore(postgres_dsn(), schema=schema)
        try:
            yield pg_store
        finally:
            try:
                pg_store.close()
            finally:
                drop_postgres_schema(schema)
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
        require(kind)
        from jwtward.tokens.redis_store import AsyncRedisTokenStore

        prefix = new_redis_prefix()
        redis_store = AsyncRedisTokenStore.from_url(redis_url(), prefix=prefix)
        try:
            yield redis_store
        finally:
            try:
                await redis_store.close()
            finally:
                drop_redis_prefix(prefix)
    elif kind == "postgres":
        require(kind)
        from jwtward.tokens.postgres_store import AsyncPostgresTokenStore

        schema = new_postgres_schema()
        pg_store = AsyncPostgresTokenStore(postgres_dsn(), schema=schema)
        try:
            yield pg_store
        finally:
            try:
                await pg_store.close()
            finally:
                drop_postgres_schema(schema)
    else:
        raise ValueError(f"unknown store kind {kind!r}")
