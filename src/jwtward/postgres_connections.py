"""How every PostgreSQL store's connections are made, lent and bounded.

The connection options (connect, statement and keepalive timeouts), the
pools built with them (:func:`new_pool`, :func:`new_async_pool`), the check
the pool runs before lending a connection, and the client-side deadline of
every store call (:class:`Deadline`, :func:`async_deadline`). The stores'
shared machinery around them (schemas, migrations, pool ownership) lives in
:mod:`jwtward.postgres_db`.

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
import heapq
import itertools
import math
import os
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool

__all__ = [
    "DEADLINE_MARGIN",
    "RECONNECT_TIMEOUT",
    "Deadline",
    "async_check_connection",
    "async_deadline",
    "break_connection",
    "check_connection",
    "connection_options",
    "new_async_pool",
    "new_pool",
]

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


# -- connections and pools --------------------------------------------------------


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
    ``TimeoutError`` is an OSError, hence one of
    :data:`~jwtward.postgres_db.DRIVER_ERRORS`.
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
