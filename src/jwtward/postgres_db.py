"""Connection rules shared by every PostgreSQL store (tokens, keys, users, rate limits).

Each store keeps its own tables and statements; what is common lives here
once: the schema-name check, the advisory lock that serializes schema
creation and migrations, the connection options, the pool settings, the
driver errors to translate into :class:`~jwtward.errors.StoreUnavailable`,
and the client-side deadline of every store call.

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
import math
import os
import re
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final, LiteralString

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from jwtward.errors import InvalidArgument

__all__ = [
    "DEADLINE_MARGIN",
    "DRIVER_ERRORS",
    "RECONNECT_TIMEOUT",
    "Deadline",
    "async_check_connection",
    "async_deadline",
    "async_ensure_schema",
    "break_connection",
    "check_connection",
    "check_pool_args",
    "check_schema_name",
    "connection_options",
    "ensure_schema",
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
        self._timer: threading.Timer | None = None
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
        self._timer = threading.Timer(self._limit, self.expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.finish()
        if self._timer is not None:
            self._timer.cancel()
        if self._token is not None:
            _current.reset(self._token)


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
