"""The Redis token stores on a real server: the store contract, expiry, atomic rotation, faults.

The shared server comes from ``JWTWARD_TEST_REDIS_URL`` (default
redis://127.0.0.1:6379/0); every key of this run starts with one random
prefix (:mod:`tests.servers`), deleted at the end. Without a server the
tests skip, except under CI=true where they fail. The fault tests start their own ``redis-server``
so they can kill it.

Each contract test runs against the sync store and the async store (driven
through one event loop by :class:`_Blocking`), and the contract itself is
cross-checked against :class:`MemoryTokenStore`, the reference semantics.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from jwtward.errors import (
    InvalidArgument,
    RefreshTokenReuse,
    RevokedToken,
    StoreUnavailable,
)
from jwtward.keys import KeyRing
from jwtward.tokens.async_service import AsyncTokenService
from jwtward.tokens.memory_store import MemoryTokenStore
from jwtward.tokens.records import AccessView, FamilyRecord, RefreshRecord, SubjectView
from jwtward.tokens.redis_store import AsyncRedisTokenStore, RedisTokenStore
from jwtward.tokens.service import TokenService
from tests.servers import RedisServer, redis_server, redis_url, unusable

REDIS_URL = redis_url()
NOW = time.time()
HOUR = 3600.0


@pytest.fixture(scope="module")
def shared() -> Iterator[RedisServer]:
    """The shared server; every key of this run is deleted afterwards."""
    with redis_server(
        "tokens", socket_timeout=2, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0)
    ) as running:
        yield running


@pytest.fixture(scope="module")
def server(shared: RedisServer) -> redis.Redis:
    """A client on the shared server that does not retry."""
    return shared.client


@pytest.fixture
def prefix(shared: RedisServer) -> str:
    """A prefix of its own for each test, under the run's prefix."""
    return shared.new_prefix()


class _Blocking:
    """The async store called like the sync one, every call on the same event loop."""

    def __init__(self, store: AsyncRedisTokenStore, runner: asyncio.Runner) -> None:
        self.inner = store
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not asyncio.iscoroutinefunction(attribute):
            return attribute
        return lambda *args: self._runner.run(attribute(*args))


@pytest.fixture(params=["sync", "async"])
def store(request: pytest.FixtureRequest, prefix: str) -> Iterator[Any]:
    if request.param == "sync":
        sync_store = RedisTokenStore.from_url(REDIS_URL, prefix=prefix)
        yield sync_store
        sync_store.close()
    else:
        with asyncio.Runner() as runner:
            blocking = _Blocking(AsyncRedisTokenStore(REDIS_URL, prefix=prefix), runner)
            yield blocking
            blocking.close()


def family(
    family_id: str = "fam-1",
    subject: str = "alice",
    *,
    created: float = NOW,
    expires: float = NOW + HOUR,
    **extra: Any,
) -> FamilyRecord:
    return FamilyRecord(family_id, subject, created, expires, created, **extra)


def record(
    token_hash: str, family_id: str = "fam-1", *, expires: float = NOW + HOUR / 2
) -> RefreshRecord:
    return RefreshRecord(token_hash, family_id, NOW, expires)


def pttl_seconds(client: redis.Redis, key: str) -> float:
    return int(client.pttl(key)) / 1000


def expires_at(client: redis.Redis, key: str) -> float:
    """The key's absolute expiry in seconds (PEXPIRETIME): independent of when the test runs."""
    return int(client.execute_command("PEXPIRETIME", key)) / 1000


# -- the contract -------------------------------------------------------------------------


def test_create_and_load_round_trip_every_field(store: Any) -> None:
    fam = family(
        subject="ålice:1",
        client_id="",
        scope="read write",
        claims={"roles": ["admin"], "n": 1.5, "nested": {"ok": True, "none": None}},
        metadata={"ua": "Mozilla/5.0 ✓", "ip": "::1"},
        created=NOW + 0.123456789,
    )
    first = record("h-1")
    store.create_family(fam, first)
    view = store.load_refresh("h-1")
    assert view is not None
    assert view.record == first
    assert view.family == fam
    assert view.family.client_id == ""  # empty is kept apart from absent
    assert view.subject_cutoff is None
    assert store.load_refresh("h-unknown") is None


def test_load_refresh_reports_the_subject_cutoff(store: Any) -> None:
    store.create_family(family(), record("h-1"))
    store.revoke_subject("alice", NOW + 5, NOW + HOUR)
    store.revoke_subject("bob", NOW + 99, NOW + HOUR)
    view = store.load_refresh("h-1")
    assert view is not None and view.subject_cutoff == NOW + 5


def test_load_refresh_without_family_has_no_cutoff(store: Any, server: redis.Redis) -> None:
    store.create_family(family(), record("h-1"))
    store.revoke_subject("alice", NOW, NOW + HOUR)
    server.delete(store.prefix + "fam:fam-1")  # the session expired before its token
    view = store.load_refresh("h-1")
    assert view is not None
    assert view.family is None and view.subject_cutoff is None


def test_rotate_marks_used_writes_successor_and_touches_family(store: Any) -> None:
    store.create_family(family(), record("h-1"))
    successor = RefreshRecord("h-2", "fam-1", NOW + 10, NOW + HOUR)
    assert store.rotate("h-1", NOW + 10, successor, b"\x00sealed\xff") is True
    used = store.load_refresh("h-1")
    assert used is not None
    assert used.record.used_at == NOW + 10
    assert used.record.successor == b"\x00sealed\xff"
    assert used.family is not None and used.family.last_used_at == NOW + 10
    fresh = store.load_refresh("h-2")
    assert fresh is not None and fresh.record == successor
    # A used record never rotates again, whatever the successor.
    assert store.rotate("h-1", NOW + 11, record("h-3"), None) is False
    assert store.load_refresh("h-3") is None
    again = store.load_refresh("h-1")
    assert again is not None and again.record == used.record


def test_rotate_without_sealed_successor_keeps_none(store: Any) -> None:
    store.create_family(family(), record("h-1"))
    assert store.rotate("h-1", NOW + 1, record("h-2"), None) is True
    view = store.load_refresh("h-1")
    assert view is not None and view.record.successor is None and view.record.used_at == NOW + 1


def test_rotate_refuses_unknown_record_and_revoked_or_missing_family(
    store: Any, server: redis.Redis
) -> None:
    assert store.rotate("h-none", NOW, record("h-x"), None) is False
    assert store.load_refresh("h-x") is None

    store.create_family(family("fam-r"), record("h-r", "fam-r"))
    store.revoke_family("fam-r", NOW + 1)
    assert store.rotate("h-r", NOW + 2, record("h-r2", "fam-r"), None) is False
    view = store.load_refresh("h-r")
    assert view is not None and view.record.used_at is None
    assert view.family is not None and view.family.last_used_at == NOW

    store.create_family(family("fam-m"), record("h-m", "fam-m"))
    server.delete(store.prefix + "fam:fam-m")
    assert store.rotate("h-m", NOW + 2, record("h-m2", "fam-m"), None) is False
    assert store.load_refresh("h-m2") is None
    assert not server.exists(store.prefix + "fam:fam-m")  # not re-created by the touch


def test_revoke_family_keeps_the_first_time_and_ignores_unknown(store: Any) -> None:
    store.create_family(family(), record("h-1"))
    store.revoke_family("fam-1", NOW + 5)
    store.revoke_family("fam-1", NOW + 9)
    store.revoke_family("fam-1", NOW + 1)
    view = store.access_view("j", "fam-1", "alice")
    assert view.family is not None and view.family.revoked_at == NOW + 5
    store.revoke_family("fam-unknown", NOW)
    assert store.access_view("j", "fam-unknown", "alice").family is None


def test_revoke_access_flags_one_jti_and_keeps_the_longest_expiry(
    store: Any, server: redis.Redis
) -> None:
    # Hours ahead: NOW is taken at import, and Redis expires by the real clock.
    store.create_family(family(), record("h-1"))
    store.revoke_access("jti-1", NOW + 2 * HOUR)
    store.revoke_access("jti-1", NOW + HOUR)
    assert store.access_view("jti-1", "fam-1", "alice").jti_revoked is True
    assert store.access_view("jti-2", "fam-1", "alice").jti_revoked is False
    key = store.prefix + "jti:jti-1"
    assert float(server.get(key)) == NOW + 2 * HOUR
    assert abs(expires_at(server, key) - (NOW + 2 * HOUR)) < 0.01
    store.revoke_access("jti-1", NOW + 3 * HOUR)
    assert float(server.get(key)) == NOW + 3 * HOUR
    assert abs(expires_at(server, key) - (NOW + 3 * HOUR)) < 0.01


def test_revoke_subject_keeps_each_maximum(store: Any, server: redis.Redis) -> None:
    store.revoke_subject("alice", NOW + 50, NOW + HOUR)
    store.revoke_subject("alice", NOW + 10, NOW + 5 * HOUR)  # older cutoff, longer keep
    assert store.sessions("alice").subject_cutoff == NOW + 50
    key = store.prefix + "cut:alice"
    assert float(server.hget(key, "keep_until")) == NOW + 5 * HOUR
    assert abs(expires_at(server, key) - (NOW + 5 * HOUR)) < 0.01
    store.revoke_subject("alice", NOW + 70, NOW + 2 * HOUR)  # newer cutoff, shorter keep
    assert store.sessions("alice").subject_cutoff == NOW + 70
    assert float(server.hget(key, "keep_until")) == NOW + 5 * HOUR
    assert abs(expires_at(server, key) - (NOW + 5 * HOUR)) < 0.01
    assert store.sessions("bob").subject_cutoff is None


def test_access_view_reads_all_three(store: Any) -> None:
    fam = family(scope="a", claims={"x": 1})
    store.create_family(fam, record("h-1"))
    assert store.access_view("j", "fam-1", "alice") == AccessView(False, fam, None)
    # Hours ahead: NOW is taken at import, and Redis expires by the real clock.
    store.revoke_access("j", NOW + HOUR)
    store.revoke_subject("alice", NOW + 1, NOW + HOUR)
    assert store.access_view("j", "fam-1", "alice") == AccessView(True, fam, NOW + 1)
    assert store.access_view("k", "fam-2", "bob") == AccessView(False, None, None)


def test_sessions_newest_first_including_revoked(store: Any) -> None:
    old = family("fam-old", created=NOW - 100)
    new = family("fam-new", created=NOW)
    mid = family("fam-mid", created=NOW - 50, metadata={"ua": "m"})
    other = family("fam-bob", "bob")
    for i, fam in enumerate((old, new, mid, other)):
        store.create_family(fam, record(f"h-{i}", fam.family_id))
    store.revoke_family("fam-mid", NOW)
    found = store.sessions("alice")
    assert [f.family_id for f in found.families] == ["fam-new", "fam-mid", "fam-old"]
    assert found.families[1].revoked_at == NOW
    assert found.subject_cutoff is None
    assert store.sessions("bob").families == (other,)
    assert store.sessions("carol") == SubjectView((), None)


def test_expired_family_is_neither_written_nor_listed(store: Any, server: redis.Redis) -> None:
    gone = family("fam-gone", created=NOW - 200, expires=time.time() - 1)
    store.create_family(gone, record("h-1", "fam-gone"))
    assert not server.exists(store.prefix + "fam:fam-gone")
    assert store.sessions("alice").families == ()
    view = store.load_refresh("h-1")
    assert view is not None and view.family is None
    # A refresh record whose time has passed is not kept either.
    store.create_family(family(), record("h-old", expires=time.time() - 1))
    assert store.load_refresh("h-old") is None


def test_purge_returns_zero_and_drops_stale_index_members(
    store: Any, server: redis.Redis
) -> None:
    store.create_family(family("fam-a"), record("h-a", "fam-a"))
    store.create_family(family("fam-b", created=NOW + 1), record("h-b", "fam-b"))
    store.create_family(family("fam-c", "bob"), record("h-c", "fam-c"))
    server.delete(store.prefix + "fam:fam-a", store.prefix + "fam:fam-c")  # as if expired
    index = store.prefix + "sub:alice"
    assert set(server.zrange(index, 0, -1)) == {b"fam-a", b"fam-b"}
    assert store.purge_expired(time.time()) == 0
    assert server.zrange(index, 0, -1) == [b"fam-b"]
    assert not server.exists(store.prefix + "sub:bob")  # emptied, hence gone
    assert [f.family_id for f in store.sessions("alice").families] == ["fam-b"]


def test_every_entry_expires_with_what_it_describes(store: Any, server: redis.Redis) -> None:
    p = store.prefix
    store.create_family(family("fam-1", expires=NOW + 3000), record("h-1", expires=NOW + 1000))
    assert store.rotate("h-1", NOW, record("h-2", expires=NOW + 2000), b"s")
    store.revoke_family("fam-1", NOW)  # a write must not drop the expiry
    store.revoke_access("j", NOW + 700)
    store.revoke_subject("alice", NOW, NOW + 800)
    elapsed = time.time() - NOW
    expected = {
        f"{p}fam:fam-1": 3000,
        f"{p}rt:h-1": 1000,
        f"{p}rt:h-2": 2000,
        f"{p}jti:j": 700,
        f"{p}cut:alice": 800,
        f"{p}sub:alice": 3000,
    }
    for key, seconds in expected.items():
        left = pttl_seconds(server, key)
        assert seconds - elapsed - 5 < left <= seconds + 0.01, key
    # The subject index lives as long as its longest session, never shorter.
    store.create_family(family("fam-2", expires=NOW + 9000), record("h-3", "fam-2"))
    assert 8990 - elapsed < pttl_seconds(server, f"{p}sub:alice") <= 9000.01
    store.create_family(family("fam-3", expires=NOW + 100), record("h-4", "fam-3"))
    assert 8990 - elapsed < pttl_seconds(server, f"{p}sub:alice") <= 9000.01
    assert all(server.pttl(key) > 0 for key in server.scan_iter(match=p + "*"))


def test_entries_really_expire(store: Any, server: redis.Redis) -> None:
    soon = time.time() + 0.3
    store.create_family(family(expires=soon), record("h-1", expires=soon))
    store.revoke_access("j", soon)
    store.revoke_subject("alice", NOW, soon)
    assert store.load_refresh("h-1") is not None
    time.sleep(0.45)
    assert store.load_refresh("h-1") is None
    assert store.access_view("j", "fam-1", "alice") == AccessView(False, None, None)
    assert store.sessions("alice") == SubjectView((), None)
    assert list(server.scan_iter(match=store.prefix + "*")) == []


def test_corrupt_entry_is_store_unavailable(store: Any, server: redis.Redis) -> None:
    store.create_family(family(), record("h-1"))
    server.hset(store.prefix + "fam:fam-1", "created_at", "not a time")
    with pytest.raises(StoreUnavailable):
        store.load_refresh("h-1")
    server.hset(store.prefix + "fam:fam-1", mapping={"created_at": str(NOW), "claims": "[1]"})
    with pytest.raises(StoreUnavailable):
        store.access_view("j", "fam-1", "alice")


def test_ping(store: Any) -> None:
    assert store.ping() is None


def test_store_matches_the_memory_store_on_random_operations(store: Any) -> None:
    """The reference semantics, compared call by call on a random workload."""
    rng = random.Random(20240601)  # noqa: S311 - a reproducible workload, not a secret
    reference = MemoryTokenStore()
    subjects = ["alice", "bob", "carol"]
    hashes: list[str] = []
    families: list[str] = []
    for step in range(300):
        kind = rng.choice(
            ["create", "rotate", "rotate", "load", "revoke_family", "revoke_access",
             "revoke_subject", "access", "sessions"]
        )
        t = NOW + step + rng.random()
        if kind == "create" or not families:
            fid = f"fam-{step}"
            fam = family(fid, rng.choice(subjects), created=t, scope=rng.choice([None, "s"]))
            first = record(f"h-{step}", fid)
            families.append(fid)
            hashes.append(first.token_hash)
            calls: list[tuple[str, tuple[Any, ...]]] = [("create_family", (fam, first))]
        elif kind == "rotate":
            old = rng.choice(hashes)
            new = RefreshRecord(f"h-{step}", rng.choice(families), t, t + HOUR)
            hashes.append(new.token_hash)
            sealed = rng.choice([None, rng.randbytes(8)])
            calls = [("rotate", (old, t, new, sealed))]
        elif kind == "load":
            calls = [("load_refresh", (rng.choice([*hashes, "h-missing"]),))]
        elif kind == "revoke_family":
            calls = [("revoke_family", (rng.choice([*families, "fam-missing"]), t))]
        elif kind == "revoke_access":
            calls = [("revoke_access", (f"j-{rng.randrange(5)}", t + rng.random() * HOUR))]
        elif kind == "revoke_subject":
            calls = [("revoke_subject", (rng.choice(subjects), t, t + rng.random() * HOUR))]
        elif kind == "access":
            args = (f"j-{rng.randrange(5)}", rng.choice(families), rng.choice(subjects))
            calls = [("access_view", args)]
        else:
            calls = [("sessions", (rng.choice(subjects),))]
        for method, call_args in calls:
            expected = getattr(reference, method)(*call_args)
            assert getattr(store, method)(*call_args) == expected, (step, method, call_args)
    for fid in families:
        assert store.access_view("j-0", fid, "alice") == reference.access_view("j-0", fid, "alice")


# -- construction and ownership -----------------------------------------------------------


def test_a_decoding_client_is_refused(server: redis.Redis) -> None:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    with pytest.raises(InvalidArgument):
        RedisTokenStore(client)
    with pytest.raises(InvalidArgument):
        RedisTokenStore.from_url(REDIS_URL, decode_responses=True)
    client.close()
    with pytest.raises(InvalidArgument):
        AsyncRedisTokenStore(redis.asyncio.Redis.from_url(REDIS_URL, decode_responses=True))


def test_a_client_given_is_not_closed_an_own_one_is(
    server: redis.Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    given = RedisTokenStore(client, prefix=prefix)
    assert given.prefix == prefix and given.client is client
    closed: list[object] = []
    monkeypatch.setattr(client, "close", lambda: closed.append(client))
    given.ping()
    given.close()
    assert closed == []

    own = RedisTokenStore.from_url(REDIS_URL, prefix=prefix)
    monkeypatch.setattr(own.client, "close", lambda: closed.append(own.client))
    own.close()
    assert closed == [own.client]
    kwargs = own.client.get_connection_kwargs()
    assert kwargs["socket_timeout"] == 2.0 and kwargs["socket_connect_timeout"] == 2.0
    assert RedisTokenStore(REDIS_URL).prefix == "jwtward:"


@pytest.mark.asyncio
async def test_async_store_ownership(
    server: redis.Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[object] = []

    async def record_close(client: object) -> None:
        closed.append(client)

    client = redis.asyncio.Redis.from_url(REDIS_URL)
    given = AsyncRedisTokenStore(client, prefix=prefix)
    monkeypatch.setattr(client, "aclose", lambda: record_close(client))
    await given.ping()
    await given.close()
    assert closed == []
    own = AsyncRedisTokenStore.from_url(REDIS_URL, prefix=prefix)
    await own.ping()
    own_client = own.client
    monkeypatch.setattr(own_client, "aclose", lambda: record_close(own_client))
    await own.close()
    assert closed == [own_client]
    assert own_client.get_connection_kwargs()["socket_timeout"] == 2.0
    monkeypatch.undo()
    await own_client.aclose()
    await client.aclose()


def test_prefixes_isolate_stores(server: redis.Redis, prefix: str) -> None:
    one = RedisTokenStore.from_url(REDIS_URL, prefix=prefix + "one:")
    two = RedisTokenStore.from_url(REDIS_URL, prefix=prefix + "two:")
    one.create_family(family(), record("h-1"))
    assert two.load_refresh("h-1") is None
    assert two.sessions("alice") == SubjectView((), None)
    assert one.load_refresh("h-1") is not None
    # A prefix with glob characters is taken literally by purge's scan.
    star = RedisTokenStore.from_url(REDIS_URL, prefix=prefix + "*:")
    star.create_family(family("fam-s"), record("h-s", "fam-s"))
    server.delete(prefix + "*:fam:fam-s")
    assert star.purge_expired(time.time()) == 0
    assert server.zrange(prefix + "*:sub:alice", 0, -1) == []
    assert server.zrange(prefix + "one:sub:alice", 0, -1) == [b"fam-1"]
    for s in (one, two, star):
        s.close()


# -- rotation races -----------------------------------------------------------------------

RACERS = 100
ROUNDS = 20


def test_rotation_race_threads(server: redis.Redis, prefix: str) -> None:
    store = RedisTokenStore.from_url(REDIS_URL, prefix=prefix)
    barrier = threading.Barrier(RACERS)

    def racer(token_hash: str, i: int) -> bool:
        successor = RefreshRecord(f"{token_hash}-next-{i}", "fam", NOW, NOW + HOUR)
        barrier.wait()
        return store.rotate(token_hash, NOW + i, successor, f"sealed-{i}".encode())

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        for round_no in range(ROUNDS):
            token_hash = f"h-{round_no}"
            store.create_family(family("fam"), record(token_hash, "fam"))
            results = list(pool.map(racer, [token_hash] * RACERS, range(RACERS)))
            assert results.count(True) == 1, round_no
            _check_single_winner(store, token_hash, results.index(True))
    store.close()


def _check_single_winner(store: RedisTokenStore | _Blocking, token_hash: str, winner: int) -> None:
    view = store.load_refresh(token_hash)
    assert view is not None
    assert view.record.used_at == NOW + winner
    assert view.record.successor == f"sealed-{winner}".encode()
    for i in range(RACERS):
        exists = store.load_refresh(f"{token_hash}-next-{i}") is not None
        assert exists is (i == winner)


@pytest.mark.asyncio
async def test_rotation_race_tasks(server: redis.Redis, prefix: str) -> None:
    store = AsyncRedisTokenStore.from_url(REDIS_URL, prefix=prefix)
    for round_no in range(ROUNDS):
        token_hash = f"h-{round_no}"
        await store.create_family(family("fam"), record(token_hash, "fam"))
        results = await asyncio.gather(
            *(
                store.rotate(
                    token_hash,
                    NOW + i,
                    RefreshRecord(f"{token_hash}-next-{i}", "fam", NOW, NOW + HOUR),
                    f"sealed-{i}".encode(),
                )
                for i in range(RACERS)
            )
        )
        assert results.count(True) == 1, round_no
        winner = results.index(True)
        view = await store.load_refresh(token_hash)
        assert view is not None and view.record.successor == f"sealed-{winner}".encode()
        found = await asyncio.gather(
            *(store.load_refresh(f"{token_hash}-next-{i}") for i in range(RACERS))
        )
        assert [v is not None for v in found] == [i == winner for i in range(RACERS)]
    await store.close()


# -- a server that dies and comes back ----------------------------------------------------

FAULT_DEADLINE = 3.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _OwnServer:
    """A throwaway redis-server on a fixed port, without persistence."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unusable("redis-server is not on PATH")
        self.binary = str(binary)
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - a fixed local binary
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        probe.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def own_server() -> Iterator[_OwnServer]:
    srv = _OwnServer()
    srv.start()
    yield srv
    if srv.process is not None:
        srv.kill()


def _every_call(tag: str) -> list[tuple[str, tuple[Any, ...]]]:
    fam = family(f"fam-{tag}")
    return [
        ("create_family", (fam, record(f"h-{tag}", fam.family_id))),
        ("load_refresh", ("h-1",)),
        ("rotate", ("h-1", NOW, record("h-2"), b"s")),
        ("revoke_family", ("fam-1", NOW)),
        ("revoke_access", ("j", NOW + 60)),
        ("revoke_subject", ("alice", NOW, NOW + 60)),
        ("access_view", ("j", "fam-1", "alice")),
        ("sessions", ("alice",)),
        ("purge_expired", (NOW,)),
        ("ping", ()),
    ]


def _exercise(store: Any) -> None:
    store.create_family(family(), record("h-1"))
    assert store.rotate("h-1", NOW, record("h-2"), b"s") is True
    assert [f.family_id for f in store.sessions("alice").families] == ["fam-1"]


def test_sync_store_fails_fast_while_down_and_recovers(own_server: _OwnServer) -> None:
    store = RedisTokenStore.from_url(own_server.url)
    _exercise(store)
    own_server.kill()
    for method, args in _every_call("down"):
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            getattr(store, method)(*args)
        assert time.monotonic() - started < FAULT_DEADLINE, method
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    own_server.start()
    store.ping()
    _exercise(store)  # an empty server again: it kept nothing
    store.close()


def test_async_store_fails_fast_while_down_and_recovers(own_server: _OwnServer) -> None:
    async def scenario() -> None:
        store = AsyncRedisTokenStore.from_url(own_server.url)
        await store.create_family(family(), record("h-1"))
        assert await store.rotate("h-1", NOW, record("h-2"), b"s") is True
        own_server.kill()
        for method, args in _every_call("down"):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await getattr(store, method)(*args)
            assert time.monotonic() - started < FAULT_DEADLINE, method
        own_server.start()
        await store.ping()
        await store.create_family(family(), record("h-1"))
        assert await store.rotate("h-1", NOW, record("h-2"), b"s") is True
        assert (await store.load_refresh("h-1")) is not None
        await store.close()

    asyncio.run(scenario())


def test_a_server_that_never_answers_fails_within_the_timeout() -> None:
    """A listening socket that accepts and never replies: the socket timeout bounds the wait."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        store = RedisTokenStore.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=0.3)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.ping()
        assert time.monotonic() - started < FAULT_DEADLINE
        store.close()


# -- the service over Redis ---------------------------------------------------------------


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    return KeyRing.generate("ES256")


def test_token_service_end_to_end(server: redis.Redis, prefix: str, ring: KeyRing) -> None:
    store = RedisTokenStore.from_url(REDIS_URL, prefix=prefix)
    service = TokenService(ring, issuer="https://issuer.test", audience="api", store=store)
    pair = service.issue("alice", claims={"role": "admin"}, metadata={"ua": "test"})
    claims = service.verify(pair.access_token)
    assert claims["sub"] == "alice" and claims["role"] == "admin"
    assert [f.family_id for f in service.sessions("alice")] == [pair.session_id]

    second = service.refresh(pair.refresh_token)
    assert second.session_id == pair.session_id
    assert service.verify(second.access_token)["sub"] == "alice"

    with pytest.raises(RefreshTokenReuse):
        service.refresh(pair.refresh_token)
    # The reuse revoked the whole session: every token of it is now refused.
    with pytest.raises(RevokedToken):
        service.verify(second.access_token)
    with pytest.raises(RevokedToken):
        service.refresh(second.refresh_token)
    view = store.access_view("x", pair.session_id, "alice")
    assert view.family is not None and view.family.revoked_at is not None

    third = service.issue("alice")
    service.revoke(third.access_token)
    with pytest.raises(RevokedToken):
        service.verify(third.access_token)
    service.close()


@pytest.mark.asyncio
async def test_async_token_service_end_to_end(
    server: redis.Redis, prefix: str, ring: KeyRing
) -> None:
    store = AsyncRedisTokenStore.from_url(REDIS_URL, prefix=prefix)
    service = AsyncTokenService(
        ring,
        issuer="https://issuer.test",
        audience="api",
        store=store,
        reuse_grace=timedelta(seconds=30),
    )
    pair = await service.issue("bob")
    second = await service.refresh(pair.refresh_token)
    # Within the grace the same successor pair is handed out again, from the sealed blob.
    replay = await service.refresh(pair.refresh_token)
    assert replay.refresh_token == second.refresh_token
    assert (await service.verify(second.access_token))["sub"] == "bob"
    await service.revoke_subject("bob")
    with pytest.raises(RevokedToken):
        await service.verify(second.access_token)
    await store.close()
