"""Machinery shared by every PostgreSQL store (tokens, keys, users, rate limits).

Each store keeps its own tables and statements; what is common lives here
once: the schema-name check, the advisory lock that serializes schema
creation and migrations, the pool settings check, the driver errors to
translate into :class:`~jwtward.errors.StoreUnavailable`, and the machinery
every store repeats around them: owning (or borrowing) a pool, preparing the
schema once, running each call under a deadline and translating its failures
(:class:`PoolOwner`, :class:`AsyncPoolOwner`), and versioned migrations
(:func:`migrate`, :func:`async_migrate`, :func:`migration_plan`).

How connections are made and bounded (connection options, the pools, the
client-side deadline of every call) is :mod:`jwtward.postgres_connections`.

Requires ``psycopg`` 3 with ``psycopg_pool`` (the ``postgres`` extra).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Final, Generic, LiteralString, TypeVar

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from jwtward.errors import InvalidArgument, StoreUnavailable
from jwtward.postgres_connections import Deadline, async_deadline, new_async_pool, new_pool

__all__ = [
    "DRIVER_ERRORS",
    "AsyncPoolOwner",
    "PoolOwner",
    "async_ensure_schema",
    "async_migrate",
    "bind_steps",
    "check_pool_args",
    "check_schema_name",
    "ensure_schema",
    "migrate",
    "migrating_pool_owner",
    "migration_plan",
    "schema_lock_key",
]

DRIVER_ERRORS: Final[tuple[type[BaseException], ...]] = (psycopg.Error, OSError)
"""What a store turns into StoreUnavailable.

``psycopg.Error`` covers the pool's PoolTimeout, PoolClosed and
TooManyRequests; ``OSError`` covers socket errors that slip past the driver
and the ``TimeoutError`` of an expired
:func:`~jwtward.postgres_connections.async_deadline`.
"""

# A schema name goes into SQL text (quoted, but still): only plain lower-case
# identifiers within PostgreSQL's 63-byte limit, so nothing needs escaping.
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

_LOCK: LiteralString = "SELECT pg_advisory_xact_lock(%s)"
_SCHEMA_EXISTS: LiteralString = (
    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s)"
)
_CREATE_SCHEMA: LiteralString = "CREATE SCHEMA IF NOT EXISTS {schema}"


def check_schema_name(schema: object) -> str:
    """``schema`` if it is a plain lower-case identifier; InvalidArgument otherwise."""
    if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
        raise InvalidArgument("schema must be a lower-case identifier of at most 63 characters")
    return schema


def schema_lock_key(schema: str) -> int:
    """The advisory lock key (a signed 64-bit int) that serializes all DDL in ``schema``.

    Every store takes it before creating the schema or migrating its tables,
    so stores sharing a schema, and processes starting together, never race.
    The derivation is the one the token store has always used, so processes
    of an older release still take the same lock.
    """
    digest = hashlib.sha256(b"jwtward.tokens.postgres_store:" + schema.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def check_pool_args(min_size: int, max_size: int, timeout: float) -> None:
    """Refuse pool sizes the pool would reject later, and a timeout that is not positive."""
    if not 0 <= min_size <= max_size or max_size < 1:
        raise InvalidArgument("pool sizes must satisfy 0 <= min_size <= max_size, max_size >= 1")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise InvalidArgument("timeout must be a positive number of seconds")


# -- schema creation ---------------------------------------------------------------


def ensure_schema(conn: psycopg.Connection[Any], schema: str) -> None:
    """Take the schema's DDL lock (until the transaction ends) and create the schema if missing.

    The existence check comes first because ``CREATE SCHEMA IF NOT EXISTS``
    still needs the CREATE privilege on the database: a role that may only
    use an existing schema must not fail here.
    """
    conn.execute(_LOCK, (schema_lock_key(schema),))
    row = conn.execute(_SCHEMA_EXISTS, (schema,)).fetchone()
    if row is None or not row[0]:
        conn.execute(sql.SQL(_CREATE_SCHEMA).format(schema=sql.Identifier(schema)))


async def async_ensure_schema(conn: psycopg.AsyncConnection[Any], schema: str) -> None:
    """The asyncio twin of :func:`ensure_schema`."""
    await conn.execute(_LOCK, (schema_lock_key(schema),))
    row = await (await conn.execute(_SCHEMA_EXISTS, (schema,))).fetchone()
    if row is None or not row[0]:
        await conn.execute(sql.SQL(_CREATE_SCHEMA).format(schema=sql.Identifier(schema)))


# -- versioned migrations ----------------------------------------------------------
#
# Version N of a store's tables is steps[N - 1] applied on top of version N - 1.
# Steps are only ever appended, never edited, and only add, so an older
# jwtward keeps working on a newer schema (rolling deploys): a version beyond
# the known steps is accepted as it is. Each store records its versions in a
# table of its own, so stores sharing a schema keep separate counts.

Steps = Sequence[Sequence[sql.Composed]]

# Checked before creating: creating needs a privilege that a role which only
# uses an existing schema may lack, even with IF NOT EXISTS.
_TABLE_EXISTS: LiteralString = """SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables
    WHERE schemaname = %s AND tablename = %s)"""
_CREATE_VERSION_TABLE: LiteralString = """CREATE TABLE {table} (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""
_CURRENT_VERSION: LiteralString = "SELECT coalesce(max(version), 0) FROM {table}"
_RECORD_VERSION: LiteralString = "INSERT INTO {table} (version) VALUES (%s)"


def bind_steps(
    migrations: Sequence[Sequence[LiteralString]], **names: sql.Composable
) -> tuple[tuple[sql.Composed, ...], ...]:
    """Every step of ``migrations`` with its placeholders (``{schema}``, ...) filled in once."""
    return tuple(tuple(sql.SQL(step).format(**names) for step in steps) for steps in migrations)


def migration_plan(
    current: int,
    steps: Steps,
    record: sql.Composed,
    *,
    schema: str,
    what: str,
    log: logging.Logger,
) -> Iterator[tuple[sql.Composed, tuple[int] | None]]:
    """The statements (with their parameters) that take a store from ``current`` to the newest.

    Each version's steps, then ``record`` with the version number; written
    once for the sync and the asyncio migrations, which only execute it.
    """
    for version in range(current + 1, len(steps) + 1):
        for step in steps[version - 1]:
            yield step, None
        yield record, (version,)
        log.info("postgres %s: schema %s migrated to %d", what, schema, version)


def _version_statements(
    schema: str, version_table: str
) -> tuple[sql.Composed, sql.Composed, sql.Composed]:
    table = sql.Identifier(schema, version_table)
    return (
        sql.SQL(_CREATE_VERSION_TABLE).format(table=table),
        sql.SQL(_CURRENT_VERSION).format(table=table),
        sql.SQL(_RECORD_VERSION).format(table=table),
    )


def _version_from(row: Sequence[Any] | None) -> int:
    return 0 if row is None else int(row[0])


def migrate(
    conn: psycopg.Connection[Any],
    schema: str,
    version_table: str,
    steps: Steps,
    *,
    what: str,
    log: logging.Logger,
) -> None:
    """Create ``schema`` if missing and apply the steps it lacks, under the schema's lock.

    ``version_table`` (in ``schema``) records the versions applied; it is
    created on first use. Runs in the caller's transaction, which holds the
    DDL lock of :func:`ensure_schema` until it ends.
    """
    create, current, record = _version_statements(schema, version_table)
    ensure_schema(conn, schema)
    row = conn.execute(_TABLE_EXISTS, (schema, version_table)).fetchone()
    if row is None or not row[0]:
        conn.execute(create)
    found = _version_from(conn.execute(current).fetchone())
    for statement, params in migration_plan(
        found, steps, record, schema=schema, what=what, log=log
    ):
        conn.execute(statement, params)


async def async_migrate(
    conn: psycopg.AsyncConnection[Any],
    schema: str,
    version_table: str,
    steps: Steps,
    *,
    what: str,
    log: logging.Logger,
) -> None:
    """The asyncio twin of :func:`migrate`."""
    create, current, record = _version_statements(schema, version_table)
    await async_ensure_schema(conn, schema)
    row = await (await conn.execute(_TABLE_EXISTS, (schema, version_table))).fetchone()
    if row is None or not row[0]:
        await conn.execute(create)
    found = _version_from(await (await conn.execute(current)).fetchone())
    for statement, params in migration_plan(
        found, steps, record, schema=schema, what=what, log=log
    ):
        await conn.execute(statement, params)


# -- pool ownership and the shape of every store call ------------------------------

_Pool = TypeVar("_Pool", ConnectionPool[Any], AsyncConnectionPool[Any])
_Conn = TypeVar("_Conn", psycopg.Connection[Any], psycopg.AsyncConnection[Any])
_Done = TypeVar("_Done", None, Awaitable[None])


class _PoolOwnerBase(ABC, Generic[_Pool, _Conn, _Done]):
    """What the sync and asyncio owners share: the arguments, the pool and the errors.

    Give a ``dsn`` (the owner makes a pool named ``<name>-<schema>``, opens
    it on first use and closes it in ``close``) or an open ``pool`` of the
    caller's (left open). ``prepare`` (the store's migration) runs once, on
    the first call; every driver failure, and a call on a closed store,
    leaves as ``error`` naming ``what``, with the detail logged to ``log``.

    With ``fork_safe``, a process forked from the one that made the pool
    replaces an owned pool (the inherited connections are the parent's
    sessions) and never closes the inherited one.
    """

    def __init__(
        self,
        dsn: str | None,
        pool: _Pool | None,
        *,
        schema: str,
        min_size: int,
        max_size: int,
        timeout: float,
        name: str,
        what: str,
        log: logging.Logger,
        prepare: Callable[[_Conn], _Done],
        error: type[StoreUnavailable] = StoreUnavailable,
        fork_safe: bool = False,
    ) -> None:
        if pool is not None and dsn is not None:
            raise InvalidArgument("give exactly one of dsn and pool")
        check_pool_args(min_size, max_size, timeout)
        self.schema = check_schema_name(schema)
        self.timeout = float(timeout)
        self.owns_pool = pool is None
        self._what = what
        self._log = log
        self._error = error
        self._prepare_schema: Callable[[_Conn], _Done] = prepare
        self._fork_safe = fork_safe
        self._pid = os.getpid()
        self._ready = False
        self._closed = False
        # Serialize the one-time preparation: threads of a sync store, tasks
        # of an asyncio one (each owner uses the lock of its kind).
        self._lock = threading.Lock()
        self._async_lock = asyncio.Lock()
        self._options: dict[str, Any] = {
            "min_size": min_size,
            "max_size": max_size,
            "timeout": self.timeout,
            "name": f"{name}-{schema}",
        }
        if pool is None:
            if dsn is None:
                raise InvalidArgument("give exactly one of dsn and pool")
            pool = self._new_pool(dsn)
        self._dsn = dsn or ""
        self.pool: _Pool = pool

    @abstractmethod
    def _new_pool(self, dsn: str) -> _Pool:
        """A new, closed pool of the owner's kind for ``dsn``, with the options given."""

    def _check_open(self) -> None:
        if self._closed:
            raise self._error(f"the {self._what} is closed")

    def _forked(self) -> bool:
        return self._fork_safe and self.owns_pool and self._pid != os.getpid()

    def _replace_if_forked(self) -> None:
        """In a forked child, abandon the parent's pool (never closed here) for a new one."""
        if self._forked():
            self._pid = os.getpid()
            self.pool = self._new_pool(self._dsn)
            self._ready = False

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        """The one error callers see; the driver's detail goes to the log, not up the stack."""
        self._log.warning("postgres %s unavailable: %s: %s", self._what, type(exc).__name__, exc)
        return self._error(f"the {self._what} cannot answer right now")


class PoolOwner(_PoolOwnerBase[ConnectionPool[Any], psycopg.Connection[Any], None]):
    """A sync store's pool and the frame of each of its calls (see the arguments above).

    :meth:`connection` lends a connection in one transaction, under a
    :class:`Deadline`, once the schema is prepared.
    """

    def _new_pool(self, dsn: str) -> ConnectionPool[Any]:
        return new_pool(dsn, **self._options)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection in one transaction, committed when the block ends.

        Every driver failure, including one at commit, leaves as the store's
        error; so does a call that outlives its :class:`Deadline` (a stalled
        server), whose connection is broken and then discarded.
        """
        self._check_open()
        try:
            with Deadline(self.timeout) as deadline:
                self._prepare(deadline)
                with self.pool.connection(timeout=deadline.remaining()) as conn:
                    deadline.attach(conn)
                    yield conn
        except DRIVER_ERRORS as exc:
            raise self._unavailable(exc) from None

    def _prepare(self, deadline: Deadline) -> None:
        """Open the owned pool and bring the schema up to date, once per store (and process)."""
        if self._ready and not self._forked():
            return
        if not self._lock.acquire(timeout=deadline.remaining()):
            raise TimeoutError(f"{self._what} preparation did not finish in time")
        try:
            self._replace_if_forked()
            if self._ready:
                return
            if self.owns_pool:
                self.pool.open()
            with self.pool.connection(timeout=deadline.remaining()) as conn:
                deadline.attach(conn)
                self._prepare_schema(conn)
            self._ready = True
        finally:
            self._lock.release()

    def close(self) -> None:
        """Close the pool if the store made it (in this process); a given pool stays open."""
        self._closed = True
        if self.owns_pool and not self._forked():
            self.pool.close()


class AsyncPoolOwner(
    _PoolOwnerBase[AsyncConnectionPool[Any], psycopg.AsyncConnection[Any], Awaitable[None]]
):
    """The asyncio twin of :class:`PoolOwner`; an owned pool opens on first use (it needs
    the running event loop)."""

    def _new_pool(self, dsn: str) -> AsyncConnectionPool[Any]:
        return new_async_pool(dsn, **self._options)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection in one transaction, committed when the block ends.

        Bounded by :func:`async_deadline`: a stalled server costs the store's
        error after ``timeout`` and a short margin.
        """
        self._check_open()
        try:
            async with async_deadline(self.timeout) as deadline:
                await self._prepare(deadline)
                async with self.pool.connection(timeout=deadline.remaining()) as conn:
                    deadline.attach(conn)
                    yield conn
        except DRIVER_ERRORS as exc:
            raise self._unavailable(exc) from None

    async def _prepare(self, deadline: Deadline) -> None:
        if self._ready and not self._forked():
            return
        async with self._async_lock:
            self._replace_if_forked()
            if self._ready:
                return
            if self.owns_pool:
                await self.pool.open()
            async with self.pool.connection(timeout=deadline.remaining()) as conn:
                deadline.attach(conn)
                await self._prepare_schema(conn)
            self._ready = True

    async def close(self) -> None:
        """Close the pool if the store made it (in this process); a given pool stays open."""
        self._closed = True
        if self.owns_pool and not self._forked():
            await self.pool.close()


def migrating_pool_owner(
    dsn: str | None,
    pool: ConnectionPool[Any] | None,
    *,
    schema: str,
    min_size: int,
    max_size: int,
    timeout: float,
    name: str,
    what: str,
    log: logging.Logger,
    version_table: str,
    migrations: Sequence[Sequence[LiteralString]],
) -> PoolOwner:
    """A sync :class:`PoolOwner` whose only preparation is :func:`migrate` with ``migrations``.

    For the stores whose schema work is just their own versioned tables (the
    user store, the rate limiter): the steps get ``{schema}`` filled in once,
    and the arguments are checked by :class:`PoolOwner` before anything else,
    in its order.
    """
    steps: Steps = ()

    def prepare(conn: psycopg.Connection[Any]) -> None:
        migrate(conn, owner.schema, version_table, steps, what=what, log=log)

    owner = PoolOwner(
        dsn,
        pool,
        schema=schema,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        name=name,
        what=what,
        log=log,
        prepare=prepare,
    )
    steps = bind_steps(migrations, schema=sql.Identifier(owner.schema))
    return owner
