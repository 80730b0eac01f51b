"""The shared PostgreSQL connection rules (jwtward.postgres_db) and what they promise.

Every PostgreSQL store (tokens sync and async, keys, users, rate limits) is
driven through a local TCP relay that can be *paused* (it stops reading and
forwarding while every socket stays open: a stopped server process, or a
network path that keeps acknowledging packets) and *closed* (every
connection cut, new ones refused: a server that is down). A paused server
must cost each call StoreUnavailable within ``timeout + 1`` seconds, and the
same store objects must work again within about two seconds of the server
coming back, also after a long outage.

Needs the server at $JWTWARD_TEST_POSTGRES_DSN: skipped without it, failed
without it under CI=true.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jwtward import postgres_connections, postgres_db
from jwtward.errors import InvalidArgument, StoreUnavailable
from jwtward.keys.postgres_store import PostgresKeyStore
from jwtward.server.ratelimit import PostgresRateLimiter
from jwtward.server.users import PostgresUserStore
from jwtward.tokens.postgres_store import AsyncPostgresTokenStore, PostgresTokenStore
from tests.servers import PostgresServer, postgres_server

TIMEOUT = 1.0  # every store's timeout in these tests
RECOVERY = 2.0  # seconds within which a store must answer again once the server is back


# -- the server ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server("db") as server:
        yield server


# -- the relay -------------------------------------------------------------------


class Relay:
    """A TCP relay to the server that can be paused (sockets open, nothing moves) and closed."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._flowing = threading.Event()
        self._flowing.set()
        self._listening = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._acceptor: threading.Thread | None = None

    def open(self) -> None:
        """Accept connections again (on the same port)."""
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.05)
        self._listening.set()
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def close(self) -> None:
        """Refuse new connections and cut every open one: the server is down."""
        self._listening.clear()
        if self._acceptor is not None:
            self._acceptor.join()
            self._acceptor = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def pause(self) -> None:
        """Stop reading and forwarding; the kernel still accepts and acknowledges."""
        self._flowing.clear()
        time.sleep(0.1)  # let a pump that was mid-chunk finish it

    def resume(self) -> None:
        self._flowing.set()

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while self._listening.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                try:
                    server = socket.create_connection(self.upstream, timeout=5)
                except OSError:
                    client.close()
                    continue
                with self._lock:
                    self._sockets += [client, server]
                for src, dst in ((client, server), (server, client)):
                    threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                if not self._flowing.wait(0.05):
                    if src.fileno() < 0:
                        break
                    continue
                ready, _, _ = select.select([src], [], [], 0.05)
                if not ready or not self._flowing.is_set():
                    continue
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except (OSError, ValueError):
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def relay(pg: PostgresServer) -> Iterator[tuple[Relay, str]]:
    params = conninfo_to_dict(pg.dsn)
    relay = Relay((str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432)))
    relay.open()
    try:
        yield relay, make_conninfo(pg.dsn, host="127.0.0.1", port=str(relay.port))
    finally:
        relay.resume()
        relay.close()


# -- every store, behind one interface ------------------------------------------


class LoopThread:
    """An event loop in a thread of its own, so an async store outlives each call."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


Call = Callable[[], object]


@pytest.fixture
def stores(pg: PostgresServer, relay: tuple[Relay, str]) -> Iterator[dict[str, Call]]:
    """One call per PostgreSQL store, all through the relay, each store warmed up."""
    _, dsn = relay
    schema = pg.new_schema()
    loop = LoopThread()
    tokens = PostgresTokenStore(dsn, schema=schema, max_size=2, timeout=TIMEOUT)
    async_tokens = AsyncPostgresTokenStore(dsn, schema=schema, max_size=2, timeout=TIMEOUT)
    keys = PostgresKeyStore(dsn, schema=schema, master_key=os.urandom(32), timeout=TIMEOUT)
    users = PostgresUserStore(dsn, schema=schema, max_size=2, timeout=TIMEOUT)
    limiter = PostgresRateLimiter(dsn, schema=schema, max_size=2, timeout=TIMEOUT)
    calls: dict[str, Call] = {
        "tokens": lambda: tokens.access_view("jti", "family", "subject"),
        "async tokens": lambda: loop.run(async_tokens.access_view("jti", "family", "subject")),
        "keys": keys.load,
        "users": lambda: users.get("alice"),
        "rate limits": lambda: limiter.check("user:alice", limit=5, window=60, now=time.time()),
    }
    try:
        for call in calls.values():
            call()
        yield calls
    finally:
        tokens.close()
        loop.run(async_tokens.close())
        loop.stop()
        keys.close()
        users.close()
        limiter.close()


def timed(call: Call) -> tuple[float, BaseException | None]:
    """How long ``call`` took, and what it raised."""
    start = time.monotonic()
    try:
        call()
    except Exception as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


def in_parallel(calls: dict[str, Call], run: Callable[[Call], Any]) -> dict[str, Any]:
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = {name: pool.submit(run, call) for name, call in calls.items()}
        return {name: future.result() for name, future in futures.items()}


def recovery_time(call: Call, limit: float) -> float:
    """Seconds until ``call`` succeeds, retried every 0.1 s; fails after ``limit`` seconds."""
    start = time.monotonic()
    while True:
        _, error = timed(call)
        if error is None:
            return time.monotonic() - start
        assert isinstance(error, StoreUnavailable), repr(error)
        if time.monotonic() - start > limit:
            return time.monotonic() - start
        time.sleep(0.1)


# -- a stalled server --------------------------------------------------------------


def test_a_broken_socket_ends_a_query_on_a_stalled_server(relay: tuple[Relay, str]) -> None:
    """What the deadline relies on: shutting the socket down wakes a waiting query at once."""
    proxy, dsn = relay
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        conn.execute("SELECT 1")
        proxy.pause()
        timer = threading.Timer(0.5, postgres_connections.break_connection, (conn,))
        timer.start()
        start = time.monotonic()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
        elapsed = time.monotonic() - start
        timer.join()
        assert 0.4 < elapsed < 1.5
        assert conn.broken  # so a pool discards it instead of lending it again
        postgres_connections.break_connection(conn)  # harmless on a connection already broken


def test_every_store_gives_up_on_a_stalled_server_and_recovers(
    relay: tuple[Relay, str], stores: dict[str, Call]
) -> None:
    proxy, _ = relay
    proxy.pause()
    results = in_parallel(stores, timed)
    for name, (elapsed, error) in results.items():
        assert isinstance(error, StoreUnavailable), (name, error)
        assert elapsed < TIMEOUT + 1.0, (name, elapsed)
        assert "cannot answer" in str(error)
    # A second call while still stalled: no connection is stuck in the pool.
    results = in_parallel(stores, timed)
    for name, (elapsed, error) in results.items():
        assert isinstance(error, StoreUnavailable), (name, error)
        assert elapsed < TIMEOUT + 1.0, (name, elapsed)
    proxy.resume()
    recovered = in_parallel(stores, lambda call: recovery_time(call, 10.0))
    for name, seconds in recovered.items():
        assert seconds <= RECOVERY, (name, seconds)


def test_a_stall_inside_a_statement_is_bounded(
    pg: PostgresServer, relay: tuple[Relay, str]
) -> None:
    """The connection lent is itself watched, not only the pool's check of it.

    A pool of the caller's own without a check: the stall hits the store's
    statement, not the check before the loan.
    """
    from psycopg_pool import ConnectionPool

    proxy, dsn = relay
    pool: ConnectionPool[Any] = ConnectionPool(
        dsn,
        min_size=1,
        max_size=1,
        open=True,
        kwargs=postgres_connections.connection_options(TIMEOUT),
        reconnect_timeout=postgres_connections.RECONNECT_TIMEOUT,
    )
    store = PostgresTokenStore(pool=pool, schema=pg.new_schema(), timeout=TIMEOUT)
    try:
        store.revoke_access("jti-1", 9e9)
        proxy.pause()
        elapsed, error = timed(lambda: store.revoke_access("jti-2", 9e9))
        assert isinstance(error, StoreUnavailable), error
        assert elapsed < TIMEOUT + 1.0
        proxy.resume()
        assert recovery_time(lambda: store.access_view("jti-1", "", ""), 10.0) <= RECOVERY
        assert store.access_view("jti-1", "", "").jti_revoked
    finally:
        proxy.resume()
        store.close()
        pool.close()


def test_an_async_stall_breaks_the_connection_instead_of_waiting_for_a_cancel(
    pg: PostgresServer, relay: tuple[Relay, str]
) -> None:
    """A cancelled async query would wait seconds for a cancel request; a broken socket does not."""
    proxy, dsn = relay

    async def main() -> None:
        store = AsyncPostgresTokenStore(dsn, schema=pg.new_schema(), max_size=1, timeout=TIMEOUT)
        try:
            await store.revoke_access("jti-a", 9e9)
            proxy.pause()
            start = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.revoke_access("jti-b", 9e9)
            assert time.monotonic() - start < TIMEOUT + 1.0
            proxy.resume()
            deadline = time.monotonic() + RECOVERY
            while True:
                try:
                    view = await store.access_view("jti-a", "", "")
                    break
                except StoreUnavailable:
                    assert time.monotonic() < deadline, "the store did not recover"
                    await asyncio.sleep(0.1)
            assert view.jti_revoked
        finally:
            proxy.resume()
            await store.close()

    asyncio.run(main())


# -- a long outage -------------------------------------------------------------------


def test_every_store_recovers_quickly_after_a_long_outage(
    relay: tuple[Relay, str], stores: dict[str, Call]
) -> None:
    """The pool's reconnection backoff stays short however long the server was away."""
    proxy, _ = relay
    proxy.close()
    outage_ends = time.monotonic() + 10.0
    while time.monotonic() < outage_ends:  # clients keep knocking, as a server's would
        for name, (elapsed, error) in in_parallel(stores, timed).items():
            assert isinstance(error, StoreUnavailable), (name, error)
            assert elapsed < TIMEOUT + 1.0, (name, elapsed)
        time.sleep(0.5)
    proxy.open()
    recovered = in_parallel(stores, lambda call: recovery_time(call, 20.0))
    for name, seconds in recovered.items():
        assert seconds <= RECOVERY + 1.0, (name, seconds)


def test_owned_pools_retry_quickly() -> None:
    pool = postgres_connections.new_pool(
        "postgresql://u@127.0.0.1:1/db", min_size=0, max_size=1, timeout=1.0, name="t"
    )
    assert pool.reconnect_timeout == postgres_connections.RECONNECT_TIMEOUT <= 2.0
    assert pool.kwargs == postgres_connections.connection_options(1.0)
    async_pool = postgres_connections.new_async_pool(
        "postgresql://u@127.0.0.1:1/db", min_size=0, max_size=1, timeout=1.0, name="t"
    )
    assert async_pool.reconnect_timeout == postgres_connections.RECONNECT_TIMEOUT


# -- the schema and its lock ---------------------------------------------------------


def make_store(kind: str, dsn: str, schema: str) -> tuple[Call, Callable[[], None]]:
    """A fresh store of ``kind`` in ``schema``: one call, and its close."""
    if kind == "tokens":
        tokens = PostgresTokenStore(dsn, schema=schema, timeout=TIMEOUT)
        return tokens.ping, tokens.close
    if kind == "keys":
        keys = PostgresKeyStore(dsn, schema=schema, master_key=os.urandom(32), timeout=TIMEOUT)
        return keys.load, keys.close
    if kind == "users":
        users = PostgresUserStore(dsn, schema=schema, timeout=TIMEOUT)
        return users.ping, users.close
    limiter = PostgresRateLimiter(dsn, schema=schema, timeout=TIMEOUT)
    return limiter.ping, limiter.close


@pytest.mark.parametrize("kind", ["tokens", "keys", "users", "rate limits"])
def test_every_store_creates_its_schema_under_the_shared_lock(
    pg: PostgresServer, kind: str
) -> None:
    schema = pg.new_schema()
    call, close = make_store(kind, pg.dsn, schema)
    try:
        with psycopg.connect(pg.dsn, connect_timeout=3) as holder:
            holder.execute(
                "SELECT pg_advisory_xact_lock(%s)", (postgres_db.schema_lock_key(schema),)
            )
            elapsed, error = timed(call)
            # Blocked behind the lock until the statement timeout, creating nothing.
            assert isinstance(error, StoreUnavailable), error
            assert TIMEOUT - 0.1 < elapsed < TIMEOUT + 1.0
            assert not pg.schema_exists(schema)
        call()  # the lock is gone with the holder's transaction
        assert pg.schema_exists(schema)
    finally:
        close()


def test_async_token_store_creates_its_schema_under_the_shared_lock(pg: PostgresServer) -> None:
    schema = pg.new_schema()

    async def main() -> None:
        store = AsyncPostgresTokenStore(pg.dsn, schema=schema, timeout=TIMEOUT)
        try:
            with psycopg.connect(pg.dsn, connect_timeout=3) as holder:
                holder.execute(
                    "SELECT pg_advisory_xact_lock(%s)", (postgres_db.schema_lock_key(schema),)
                )
                with pytest.raises(StoreUnavailable):
                    await store.ping()
                assert not pg.schema_exists(schema)
            await store.ping()
            assert pg.schema_exists(schema)
        finally:
            await store.close()

    asyncio.run(main())


def test_stores_sharing_a_schema_start_together(pg: PostgresServer) -> None:
    """Every kind of store, started at once on one new schema: one creates it, none fails."""
    schema = pg.new_schema()
    made = [make_store(kind, pg.dsn, schema) for kind in ("tokens", "keys", "users", "rl")] * 2
    try:
        barrier = threading.Barrier(len(made))

        def start(call: Call) -> None:
            barrier.wait()
            call()

        with ThreadPoolExecutor(len(made)) as pool:
            for future in [pool.submit(start, call) for call, _ in made]:
                future.result()
        tables = {
            row[0]
            for row in pg.query("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))
        }
        assert {"families", "key_store", "users", "rate_limits"} <= tables
    finally:
        for _, close in made:
            close()


# -- the pure helpers ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["jwtward", "_x", "a" * 63, "tenant_42"])
def test_schema_names_accepted(name: str) -> None:
    assert postgres_db.check_schema_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "Jwtward", "a" * 64, "1abc", "a-b", 'a"b', "a b", "ä", "public;drop", None, 3]
)
def test_schema_names_refused(name: object) -> None:
    with pytest.raises(InvalidArgument):
        postgres_db.check_schema_name(name)


def test_schema_lock_key() -> None:
    key = postgres_db.schema_lock_key("jwtward")
    assert key == postgres_db.schema_lock_key("jwtward")
    assert key != postgres_db.schema_lock_key("jwtward2")
    assert -(2**63) <= key < 2**63
    # Fixed for good: processes of an older release take the same lock.
    assert key == int.from_bytes(
        hashlib.sha256(b"jwtward.tokens.postgres_store:jwtward").digest()[:8],
        "big",
        signed=True,
    )


@pytest.mark.parametrize(
    ("min_size", "max_size", "timeout"),
    [(-1, 1, 1.0), (2, 1, 1.0), (0, 0, 1.0), (0, 1, 0.0), (0, 1, -1.0), (0, 1, True),
     (0, 1, float("nan"))],
)  # fmt: skip
def test_pool_args_refused(min_size: int, max_size: int, timeout: float) -> None:
    with pytest.raises(InvalidArgument):
        postgres_db.check_pool_args(min_size, max_size, timeout)


def test_pool_args_accepted() -> None:
    postgres_db.check_pool_args(0, 1, 0.1)
    postgres_db.check_pool_args(3, 3, 5)


def test_connection_options() -> None:
    options = postgres_connections.connection_options(1.5)
    assert options["connect_timeout"] == 2  # libpq's floor
    assert options["options"] == "-c statement_timeout=1500"
    assert options["tcp_user_timeout"] == 1500
    assert options["keepalives"] == 1
    assert postgres_connections.connection_options(7.2)["connect_timeout"] == 8


def test_deadline_breaks_a_connection_attached_late(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the deadline, a connection handed over is broken at once (it would only stall)."""
    broken: list[object] = []
    monkeypatch.setattr(postgres_connections, "break_connection", broken.append)
    with postgres_connections.Deadline(0.0) as deadline:
        time.sleep(postgres_connections.DEADLINE_MARGIN + 0.2)
        assert deadline.expired
        assert deadline.remaining() == 0.0
        marker: Any = object()
        deadline.attach(marker)
        assert broken == [marker]
    other: Any = object()
    deadline.attach(other)  # after the call: nothing more is broken
    assert broken == [marker]
    with postgres_connections.Deadline(5.0) as fresh:
        fresh.attach(other)
        assert not fresh.expired
        assert 4.0 < fresh.remaining() <= 5.0 + postgres_connections.DEADLINE_MARGIN
    assert broken == [marker]
