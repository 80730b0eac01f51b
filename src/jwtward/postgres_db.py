"""Connection rules shared by every PostgreSQL store (tokens, keys, users, rate limits).

Each store keeps its own tables and statements; what is common lives here
once: the schema-name check, the advisory lock that serializes schema
creation and migrations, the connection options, the pool settings, the
driver errors to translate into :class:`~jwtward.errors.StoreUnavailable`,
the client-side deadline of every store call, and the machinery every store
repeats around them: owning (or borrowing) a pool, preparing the schema once,
running each call under a deadline and translating its failures
(:class:`PoolOwner`, :class:`AsyncPoolOwner`), and versioned migrations
(:func:`migrate`, :func:`async_migrate`, :func:`migration_plan`).

Why a client-side deadline: ``statement_timeout`` is enforced by the server
and TCP keepalives are answered by the peer's kernel, so a server process
that is stopped (or a network path that keeps acknowledging packets without
delivering them) leaves a query waiting for ever. A :class:`Deadline` (sync)
or :func:`async_deadline` (asyncio) bounds every store call: when it expires,
the socket under the connection in use is shut down, which wakes the driver
at once with an error; the connection is then broken, so the pool discards it
instead of lending it again. Asking the server to cancel the query does not
help here: a cancel request is a new connection to the same stalled server.

Requires ``psycopg`` 3 with ``psycopg_pool`` (the ``postgres`` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import heapq
import itertools
import logging
import math
import os
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Final, Generic, LiteralString, TypeVar

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from jwtward.errors import InvalidArgument, StoreUnavailable

__all__ = [
    "DEADLINE_MARGIN",
    "DRIVER_ERRORS",
    "RECONNECT_TIMEOUT",
    "AsyncPoolOwner",
    "Deadline",
    "PoolOwner",
    "async_check_connection",
    "async_deadline",
    "async_ensure_schema",
    "async_migrate",
    "bind_steps",
    "break_connection",
    "check_connection",
    "check_pool_args",
    "check_schema_name",
    "connection_options",
    "ensure_schema",
    "migrate",
    "migration_plan",
    "new_async_pool",
    "new_pool",
    "schema_lock_key",
]

DRIVER_ERRORS: Final[tuple[type[BaseException], ...]] = (psycopg.Error, OSError)
"""What a store turns into StoreUnavailable.

``psycopg.Error`` covers the pool's PoolTimeout, PoolClosed and
TooManyRequests; ``OSError`` covers socket errors that slip past the driver
and the ``TimeoutError`` of an expired :func:`async_deadline`.
"""

DEADLINE_MARGIN: Final = 0.5
"""Seconds a store call may run past its ``timeout`` before the client gives up.

The server's own ``statement_timeout`` equals the store's timeout: the margin
lets the server's answer arrive first whenever the server is alive.
"""

RECONNECT_TIMEOUT: Final = 2.0
"""How long one pool reconnection attempt keeps retrying before it gives up.

The pool retries a lost connection with an exponential backoff (1 s, 2 s,
4 s, ...) until this much time has passed. With the pool's default of five
minutes, a long outage leaves the next retry up to half the outage away after
the server is back. Two seconds keep every retry within about a second of the
previous one; once an attempt gives up, the next request that finds the pool
empty starts a fresh one at once.
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


def connection_options(timeout: float) -> dict[str, Any]:
    """Bound every wait the server or the network can end: connecting, each statement, a dead peer.

    ``statement_timeout`` ends a query the server does not finish; TCP
    keepalives and ``tcp_user_timeout`` notice a peer that vanished without
    closing the connection. A peer that is alive at the TCP level but never
    answers is left to the client-side :class:`Deadline`.
    """
    millis = max(1, int(timeout * 1000))
    return {
        # libpq takes whole seconds and treats anything under 2 as 2.
        "connect_timeout": max(2, math.ceil(timeout)),
        "options": f"-c statement_timeout={millis}",
        "keepalives": 1,
        "keepalives_idle": max(1, int(timeout)),
        "keepalives_interval": 1,
        "keepalives_count": 3,
        "tcp_user_timeout": millis,
    }


def new_pool(
    dsn: str, *, min_size: int, max_size: int, timeout: float, name: str
) -> ConnectionPool[Any]:
    """A closed sync pool with the shared rules: bounded connects, checks, quick reconnects."""
    return ConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        open=False,
        check=check_connection,
        kwargs=connection_options(timeout),
        reconnect_timeout=RECONNECT_TIMEOUT,
        name=name,
    )


def new_async_pool(
    dsn: str, *, min_size: int, max_size: int, timeout: float, name: str
) -> AsyncConnectionPool[Any]:
    """The asyncio twin of :func:`new_pool` (opened on first use: it needs the running loop)."""
    return AsyncConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        open=False,
        check=async_check_connection,
        kwargs=connection_options(timeout),
        reconnect_timeout=RECONNECT_TIMEOUT,
        name=name,
    )


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


# -- the client-side deadline ------------------------------------------------------


def break_connection(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    """Shut down the socket under ``conn``, from any thread.

    A query waiting on that socket wakes at once and fails with an
    OperationalError; the connection is broken for good, so the pool discards
    it when it comes back. Closing the file descriptor instead would not wake
    a thread already waiting on it, and could hand the number to another file.
    """
    try:
        fd = conn.pgconn.socket
    except psycopg.Error:
        return  # already closed
    with contextlib.suppress(OSError):
        duplicate = socket.socket(fileno=os.dup(fd))
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
        finally:
            duplicate.close()


class Deadline:
    """The client-side time limit of one store call.

    A sync store enters one per call, hands the connection it uses to
    :meth:`attach`, and asks :meth:`remaining` for every wait it controls
    (locks, the pool). When the time is up, a timer thread breaks the
    attached connection (see :func:`break_connection`), and any connection
    attached later is broken at once, so a stalled server costs at most
    ``timeout + DEADLINE_MARGIN`` seconds.
    """

    def __init__(self, timeout: float) -> None:
        self._limit = float(timeout) + DEADLINE_MARGIN
        self._expires_at = time.monotonic() + self._limit
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any] | None = None
        self._expired = False
        self._done = False
        self._token: contextvars.Token[Deadline | None] | None = None

    @property
    def expired(self) -> bool:
        """Whether the deadline passed before the call ended."""
        return self._expired

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self._expires_at - time.monotonic())

    def attach(self, conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
        """Make ``conn`` the connection broken if the deadline passes."""
        with self._lock:
            if self._done:
                return
            self._conn = conn
            expired = self._expired
        if expired:
            break_connection(conn)

    def expire(self) -> None:
        """End the call now: break the attached connection (the timer calls this)."""
        with self._lock:
            if self._done:
                return
            self._expired = True
            conn = self._conn
        if conn is not None:
            break_connection(conn)

    def finish(self) -> None:
        """The call is over: nothing will be broken any more."""
        with self._lock:
            self._done = True
            self._conn = None

    def __enter__(self) -> Deadline:
        self._token = _current.set(self)
        _WATCHDOG.watch(self._expires_at, self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.finish()
        if self._token is not None:
            _current.reset(self._token)

    @property
    def done(self) -> bool:
        return self._done


class _Watchdog:
    """One daemon thread that expires every sync deadline when its time comes.

    A thread per call (``threading.Timer``) would cost a thread start on
    every store call; here a call costs a heap push. Finished deadlines are
    dropped when they reach the top of the heap.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._sequence = itertools.count()

    def watch(self, expires_at: float, deadline: Deadline) -> None:
        with self._wake:
            if self._thread is None or self._pid != os.getpid():
                # First use, or a forked child (threads do not survive a fork).
                self._heap = []
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="jwtward-postgres-deadlines", daemon=True
                )
                self._thread.start()
            heapq.heappush(self._heap, (expires_at, next(self._sequence), deadline))
            if self._heap[0][2] is deadline:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            due: list[Deadline] = []
            with self._wake:
                now = time.monotonic()
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
                    _expires, _seq, deadline = heapq.heappop(self._heap)
                    if not deadline.done:
                        due.append(deadline)
                if not due:
                    timeout = self._heap[0][0] - now if self._heap else None
                    self._wake.wait(timeout)
                    continue
            for deadline in due:
                deadline.expire()


_WATCHDOG = _Watchdog()


# A store call's deadline, found by the pool's check callback, which runs in
# the calling thread (or task) before the pool lends a connection.
_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "jwtward_postgres_deadline", default=None
)

# How long after the deadline an async call is cancelled if breaking the
# connection did not end it (it was waiting for something else).
_ASYNC_BACKSTOP: Final = 0.25


@asynccontextmanager
async def async_deadline(timeout: float) -> AsyncIterator[Deadline]:
    """The asyncio form of :class:`Deadline`, for one store call.

    When the time is up, the attached connection is broken, so the driver's
    wait ends with an error at once. Cancelling the task is only the
    backstop, a little later: a cancelled query makes the driver send a
    cancel request and wait for the server (seconds, against a stalled one),
    whereas a broken socket ends everything at once. The backstop's
    ``TimeoutError`` is an OSError, hence one of :data:`DRIVER_ERRORS`.
    """
    deadline = Deadline(timeout)
    loop = asyncio.get_running_loop()
    handle = loop.call_later(deadline.remaining(), deadline.expire)
    token = _current.set(deadline)
    try:
        async with asyncio.timeout(deadline.remaining() + _ASYNC_BACKSTOP):
            yield deadline
    finally:
        deadline.finish()
        handle.cancel()
        _current.reset(token)


def check_connection(conn: psycopg.Connection[Any]) -> None:
    """The pool's check before lending ``conn``, bounded by the current call's deadline."""
    deadline = _current.get()
    if deadline is not None:
        deadline.attach(conn)
    ConnectionPool.check_connection(conn)


async def async_check_connection(conn: psycopg.AsyncConnection[Any]) -> None:
    """The asyncio twin of :func:`check_connection`."""
    deadline = _current.get()
    if deadline is not None:
        deadline.attach(conn)
    await AsyncConnectionPool.check_connection(conn)


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


class _PoolOwnerBase(Generic[_Pool, _Conn, _Done]):
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

    def _new_pool(self, dsn: str) -> _Pool:
        raise NotImplementedError

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
