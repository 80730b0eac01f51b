"""The shared Redis and PostgreSQL servers of the test suite: reaching them, isolating, cleaning up.

Every test that needs a real server comes through here, so that one rule
holds everywhere: the servers are ``$JWTWARD_TEST_REDIS_URL`` and
``$JWTWARD_TEST_POSTGRES_DSN`` (defaults: the local ones), a server that
cannot be reached skips the test with a visible reason on a developer
machine, and fails it under ``CI=true``, where a missing server is a broken
pipeline rather than a reason to report green.

A server may be shared with other runs, so a test writes only under a random
Redis key prefix or in a random PostgreSQL schema, and everything is removed
afterwards (SCAN, never KEYS; DROP SCHEMA ... CASCADE). The module fixtures
built on :func:`postgres_server` and :func:`redis_server` also check that
nothing of the run is left behind. The drivers are imported lazily, so that
importing this module costs nothing to a run without them.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    import redis

__all__ = [
    "PostgresServer",
    "RedisServer",
    "drop_postgres_schema",
    "drop_redis_prefix",
    "new_postgres_schema",
    "new_redis_prefix",
    "postgres_dsn",
    "postgres_server",
    "redis_keys",
    "redis_server",
    "redis_url",
    "require",
    "unusable",
]

_DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
# Short: an absent server must cost a second once, not a timeout per test.
_PROBE_TIMEOUT = 2
_DELETE_BATCH = 1000


def redis_url() -> str:
    return os.environ.get("JWTWARD_TEST_REDIS_URL", _DEFAULT_REDIS_URL)


def postgres_dsn() -> str:
    return os.environ.get("JWTWARD_TEST_POSTGRES_DSN", _DEFAULT_POSTGRES_DSN)


def unusable(reason: str) -> NoReturn:
    """Skip with ``reason``, or fail under CI=true, where every server-backed test must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: every server-backed test must run)")
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


def require(kind: str) -> None:
    """Skip (or fail under CI=true) unless the server ``kind`` needs can be used.

    ``kind`` names a store: "redis", "postgres" or "postgresql" need their
    server; anything else (memory, sqlite, file) needs none.
    """
    if kind == "redis":
        problem = _redis_problem()
    elif kind in ("postgres", "postgresql"):
        problem = _postgres_problem()
    else:
        return
    if problem is not None:
        unusable(problem)


# -- isolation and cleanup --------------------------------------------------------------


def new_redis_prefix(tag: str = "") -> str:
    # Only [a-z0-9:-] (and the caller's tag): nothing a SCAN pattern would read as a wildcard.
    return f"jwtward-test:{tag + ':' if tag else ''}{secrets.token_hex(8)}:"


def new_postgres_schema(tag: str = "") -> str:
    return f"jwtward_test_{tag + '_' if tag else ''}{secrets.token_hex(8)}"


def _redis_client(**options: Any) -> redis.Redis:
    import redis

    options.setdefault("socket_timeout", 10)
    return redis.Redis.from_url(redis_url(), **options)


def redis_keys(prefix: str, client: redis.Redis | None = None) -> list[bytes]:
    """Every key under ``prefix`` (SCAN: the server may be shared)."""
    if client is not None:
        return list(client.scan_iter(match=prefix + "*", count=1000))
    own = _redis_client()
    try:
        return redis_keys(prefix, own)
    finally:
        own.close()


def drop_redis_prefix(prefix: str, client: redis.Redis | None = None) -> None:
    """Delete every key under ``prefix``, in batches (SCAN, never KEYS)."""
    if client is None:
        own = _redis_client()
        try:
            drop_redis_prefix(prefix, own)
        finally:
            own.close()
        return
    keys = redis_keys(prefix, client)
    for start in range(0, len(keys), _DELETE_BATCH):
        client.delete(*keys[start : start + _DELETE_BATCH])


def drop_postgres_schema(schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(postgres_dsn(), autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# -- module-wide servers ----------------------------------------------------------------


class PostgresServer:
    """The test database: its DSN, and the schemas of one module, all under one random prefix."""

    def __init__(self, tag: str) -> None:
        self.dsn = postgres_dsn()
        self.prefix = new_postgres_schema(tag)
        self.schemas: list[str] = []

    @functools.cached_property
    def schema(self) -> str:
        """One schema of the module, shared by the tests that need no fresh one."""
        return self.new_schema()

    def new_schema(self) -> str:
        name = f"{self.prefix}_{len(self.schemas)}"
        self.schemas.append(name)
        return name

    def query(self, text: Any, params: Any = None) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(text, params)
            return cur.fetchall() if cur.description else []

    def table(self, schema: str, table: str, columns: str = "*") -> list[tuple[Any, ...]]:
        """Every row of ``schema.table`` (``columns``: a literal list written by the tests)."""
        from psycopg import sql

        query = sql.SQL("SELECT {} FROM {}.{}").format(
            sql.SQL(columns), sql.Identifier(schema), sql.Identifier(table)
        )
        return self.query(query)

    def schema_exists(self, name: str) -> bool:
        return bool(self.query("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)))

    def drop_all(self) -> None:
        """Drop every schema of the module, and check that none under its prefix is left."""
        for name in self.schemas:
            drop_postgres_schema(name)
        leftover = self.query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (self.prefix + "%",)
        )
        assert leftover == []


@contextmanager
def postgres_server(tag: str) -> Iterator[PostgresServer]:
    """The body of a module fixture: the server (or skip/fail), its schemas dropped at the end."""
    require("postgres")
    server = PostgresServer(tag)
    try:
        yield server
    finally:
        server.drop_all()


class RedisServer:
    """The test Redis: a client, and the key prefixes of one module, under one random prefix."""

    def __init__(self, tag: str, **client_options: Any) -> None:
        self.url = redis_url()
        self.client = _redis_client(**client_options)
        self.prefix = new_redis_prefix(tag)
        self._count = 0

    def new_prefix(self) -> str:
        prefix = f"{self.prefix}{self._count}:"
        self._count += 1
        return prefix

    def keys(self, prefix: str) -> list[bytes]:
        return redis_keys(prefix, self.client)

    def cleanup(self) -> None:
        """Delete every key of the module, check that none is left, and close the client."""
        try:
            drop_redis_prefix(self.prefix, self.client)
            assert self.keys(self.prefix) == []
        finally:
            self.client.close()


@contextmanager
def redis_server(tag: str, **client_options: Any) -> Iterator[RedisServer]:
    """The body of a module fixture: the server (or skip/fail), its keys deleted at the end."""
    require("redis")
    server = RedisServer(tag, **client_options)
    try:
        yield server
    finally:
        server.cleanup()
