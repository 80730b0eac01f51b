"""The PostgreSQL token stores against a real server.

The server is ``$JWTWARD_TEST_POSTGRES_DSN`` (default: the local ``test``
database). Without it the tests skip, except under ``CI=true`` where they
fail. Every schema a run creates is named ``jwtward_test_tokens_<random>...`` and
dropped at the end of the module.

The semantic tests run one scenario against the memory store (the reference)
and against both PostgreSQL stores, asserting exact expected values: so the
expectations are the memory store's behaviour, and each PostgreSQL store is
held to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from jwtward.errors import InvalidArgument, RefreshTokenReuse, RevokedToken, StoreUnavailable
from jwtward.keys import KeyRing
from jwtward.tokens import AsyncTokenService, MemoryTokenStore, TokenService
from jwtward.tokens.postgres_store import (
    MIGRATIONS,
    AsyncPostgresTokenStore,
    PostgresTokenStore,
)
from jwtward.tokens.records import AsyncTokenStore, FamilyRecord, RefreshRecord, TokenStore
from tests.servers import PostgresServer, postgres_dsn, postgres_server

TABLES = {"families", "refresh_tokens", "revoked_access", "subject_cutoffs", "schema_version"}


# -- the server and the schemas of this run -----------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server("tokens") as server:
        yield server


# -- records ------------------------------------------------------------------------


def family(
    family_id: str,
    subject: str = "alice",
    *,
    created_at: float = 1000.0,
    expires_at: float = 10_000.0,
    **more: Any,
) -> FamilyRecord:
    return FamilyRecord(
        family_id=family_id,
        subject=subject,
        created_at=created_at,
        expires_at=expires_at,
        last_used_at=created_at,
        **more,
    )


def refresh(
    token_hash: str, family_id: str, *, issued_at: float = 1000.0, expires_at: float = 5000.0
) -> RefreshRecord:
    return RefreshRecord(token_hash, family_id, issued_at, expires_at)


# -- one scenario, three stores -----------------------------------------------------


class Direct:
    """A sync store behind the async protocol, called directly (no thread), for scenarios."""

    def __init__(self, store: TokenStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self._store, name)

        async def call(*args: Any) -> Any:
            return method(*args)

        return call


Scenario = Callable[[AsyncTokenStore], Awaitable[None]]


@pytest.fixture(params=["memory", "postgres", "async-postgres"])
def run(request: pytest.FixtureRequest) -> Callable[[Scenario], None]:
    """Run a scenario against a fresh store of one kind (a fresh schema for PostgreSQL)."""
    kind = request.param
    server: PostgresServer | None = None if kind == "memory" else request.getfixturevalue("pg")

    def runner(scenario: Scenario) -> None:
        async def main() -> None:
            store: Any
            if kind == "memory":
                store = Direct(MemoryTokenStore())
            elif kind == "postgres":
                assert server is not None
                store = Direct(PostgresTokenStore(server.dsn, schema=server.new_schema()))
            else:
                assert server is not None
                store = AsyncPostgresTokenStore(server.dsn, schema=server.new_schema())
            try:
                await scenario(store)
            finally:
                await store.close()

        asyncio.run(main())

    return runner


def test_create_and_load_round_trip(run: Callable[[Scenario], None]) -> None:
    fam = family(
        "fam-1",
        "alice",
        created_at=1_700_000_000.123456,
        expires_at=1_700_086_400.654321,
        client_id="web",
        scope="read write",
        claims={"email": "a@example.com", "roles": ["admin", "ops"], "n": {"x": 1.5, "ü": None}},
        metadata={"user_agent": "curl/8 ☃", "ip": "203.0.113.7"},
    )
    first = refresh("hash-1", "fam-1", issued_at=1_700_000_000.123456, expires_at=1_700_050_000.5)

    async def scenario(store: AsyncTokenStore) -> None:
        assert await store.load_refresh("hash-1") is None
        await store.create_family(fam, first)
        view = await store.load_refresh("hash-1")
        assert view is not None
        assert view.record == first
        assert view.family == fam  # every field, floats exactly, JSON structures equal
        assert view.subject_cutoff is None
        assert await store.load_refresh("hash-unknown") is None
        # The cutoff of the family's subject comes with the record.
        await store.revoke_subject("alice", 1_700_000_100.0, 1_700_100_000.0)
        view = await store.load_refresh("hash-1")
        assert view is not None
        assert view.subject_cutoff == 1_700_000_100.0
        # Saving a family again replaces it, as the reference store does.
        await store.create_family(
            family("fam-1", "alice", scope="read"), refresh("hash-1", "fam-1", expires_at=42.0)
        )
        view = await store.load_refresh("hash-1")
        assert view is not None
        assert view.family == family("fam-1", "alice", scope="read")
        assert view.record.expires_at == 42.0

    run(scenario)


def test_refresh_record_outliving_its_family(run: Callable[[Scenario], None]) -> None:
    async def scenario(store: AsyncTokenStore) -> None:
        await store.create_family(
            family("fam-short", "bob", expires_at=100.0),
            refresh("hash-long", "fam-short", expires_at=500.0),
        )
        await store.revoke_subject("bob", 50.0, 1000.0)
        assert await store.purge_expired(100.0) == 1  # the family only
        view = await store.load_refresh("hash-long")
        assert view is not None
        assert view.family is None
        assert view.subject_cutoff is None  # no family, so no subject to look up
        # Its family is gone: it cannot be rotated.
        assert not await store.rotate("hash-long", 150.0, refresh("hash-next", "fam-short"), None)
        assert await store.load_refresh("hash-next") is None

    run(scenario)


def test_rotate_is_a_compare_and_swap(run: Callable[[Scenario], None]) -> None:
    async def scenario(store: AsyncTokenStore) -> None:
        await store.create_family(family("fam-r"), refresh("h0", "fam-r"))
        nxt = refresh("h1", "fam-r", issued_at=1100.0, expires_at=6000.0)
        assert await store.rotate("h0", 1100.0, nxt, b"\x00sealed\xff")
        view = await store.load_refresh("h0")
        assert view is not None
        assert view.record.used_at == 1100.0
        assert view.record.successor == b"\x00sealed\xff"
        assert view.family is not None
        assert view.family.last_used_at == 1100.0
        new = await store.load_refresh("h1")
        assert new is not None
        assert new.record == nxt
        # Used already: refused, and nothing changes.
        assert not await store.rotate("h0", 1200.0, refresh("h-other", "fam-r"), b"x")
        assert await store.load_refresh("h-other") is None
        view = await store.load_refresh("h0")
        assert view is not None
        assert (view.record.used_at, view.record.successor) == (1100.0, b"\x00sealed\xff")
        # Unknown record: refused.
        assert not await store.rotate("h-missing", 1200.0, refresh("h-orphan", "fam-r"), None)
        assert await store.load_refresh("h-orphan") is None
        # The successor rotates in turn; without a sealed pair nothing is kept.
        assert await store.rotate("h1", 1300.0, refresh("h2", "fam-r"), None)
        view = await store.load_refresh("h1")
        assert view is not None
        assert (view.record.used_at, view.record.successor) == (1300.0, None)
        assert view.family is not None
        assert view.family.last_used_at == 1300.0
        # A revoked family's records cannot rotate.
        await store.revoke_family("fam-r", 1400.0)
        assert not await store.rotate("h2", 1500.0, refresh("h3", "fam-r"), None)
        view = await store.load_refresh("h2")
        assert view is not None
        assert view.record.used_at is None
        assert view.family is not None
        assert view.family.last_used_at == 1300.0
        assert await store.load_refresh("h3") is None

    run(scenario)


def test_revocations_keep_the_strongest(run: Callable[[Scenario], None]) -> None:
    async def scenario(store: AsyncTokenStore) -> None:
        await store.create_family(
            family("fam-v", "carol", expires_at=1e9), refresh("hv", "fam-v", expires_at=1e9)
        )
        # The first revocation time stays.
        await store.revoke_family("fam-v", 2000.0)
        await store.revoke_family("fam-v", 1500.0)
        await store.revoke_family("fam-v", 2500.0)
        view = await store.access_view("j", "fam-v", "carol")
        assert view.family is not None
        assert view.family.revoked_at == 2000.0
        # Revoking an unknown family creates nothing.
        await store.revoke_family("fam-ghost", 2000.0)
        assert (await store.access_view("j", "fam-ghost", "carol")).family is None
        # A revoked jti keeps its latest expiry: still held after the earlier one passes.
        await store.revoke_access("jti-1", 3000.0)
        await store.revoke_access("jti-1", 2500.0)
        assert (await store.access_view("jti-1", "x", "y")).jti_revoked
        assert await store.purge_expired(2999.0) == 0
        assert (await store.access_view("jti-1", "x", "y")).jti_revoked
        assert await store.purge_expired(3000.0) == 1
        assert not (await store.access_view("jti-1", "x", "y")).jti_revoked
        # A subject keeps the latest cutoff and the latest keep_until, each on its own.
        await store.revoke_subject("carol", 4000.0, 5000.0)
        await store.revoke_subject("carol", 3500.0, 7000.0)
        assert (await store.access_view("j", "f", "carol")).subject_cutoff == 4000.0
        assert await store.purge_expired(6999.0) == 0
        assert (await store.access_view("j", "f", "carol")).subject_cutoff == 4000.0
        await store.revoke_subject("carol", 4500.0, 100.0)
        assert (await store.access_view("j", "f", "carol")).subject_cutoff == 4500.0
        assert await store.purge_expired(7000.0) == 1
        assert (await store.access_view("j", "f", "carol")).subject_cutoff is None

    run(scenario)


def test_access_view(run: Callable[[Scenario], None]) -> None:
    async def scenario(store: AsyncTokenStore) -> None:
        view = await store.access_view("jti-a", "fam-a", "dave")
        assert (view.jti_revoked, view.family, view.subject_cutoff) == (False, None, None)
        fam = family("fam-a", "dave", claims={"k": "v"})
        await store.create_family(fam, refresh("ha", "fam-a"))
        await store.revoke_access("jti-a", 9000.0)
        await store.revoke_subject("dave", 1500.0, 9000.0)
        await store.revoke_subject("erin", 1600.0, 9000.0)
        view = await store.access_view("jti-a", "fam-a", "dave")
        assert (view.jti_revoked, view.family, view.subject_cutoff) == (True, fam, 1500.0)
        # Each part is looked up by its own key, not through the others.
        view = await store.access_view("jti-b", "fam-a", "erin")
        assert (view.jti_revoked, view.family, view.subject_cutoff) == (False, fam, 1600.0)
        view = await store.access_view("jti-a", "fam-none", "nobody")
        assert (view.jti_revoked, view.family, view.subject_cutoff) == (True, None, None)

    run(scenario)


def test_sessions(run: Callable[[Scenario], None]) -> None:
    async def scenario(store: AsyncTokenStore) -> None:
        view = await store.sessions("frank")
        assert (tuple(view.families), view.subject_cutoff) == ((), None)
        older = family("fam-old", "frank", created_at=1000.0)
        newer = family("fam-new", "frank", created_at=3000.0, metadata={"ua": "phone"})
        middle = family("fam-mid", "frank", created_at=2000.0)
        other = family("fam-other", "grace", created_at=2500.0)
        for i, fam in enumerate((older, newer, middle, other)):
            await store.create_family(fam, refresh(f"hs{i}", fam.family_id))
        await store.revoke_family("fam-mid", 2100.0)
        view = await store.sessions("frank")
        # Newest first, revoked ones included (the service filters), other subjects not.
        assert [f.family_id for f in view.families] == ["fam-new", "fam-mid", "fam-old"]
        assert view.families[0] == newer
        assert view.families[1].revoked_at == 2100.0
        assert view.subject_cutoff is None
        await store.revoke_subject("frank", 1500.0, 8000.0)
        view = await store.sessions("frank")
        assert view.subject_cutoff == 1500.0
        assert len(view.families) == 3
        # A cutoff alone, no sessions.
        await store.revoke_subject("heidi", 10.0, 8000.0)
        view = await store.sessions("heidi")
        assert (tuple(view.families), view.subject_cutoff) == ((), 10.0)

    run(scenario)


def test_purge_expired(run: Callable[[Scenario], None]) -> None:
    async def scenario(store: AsyncTokenStore) -> None:
        assert await store.purge_expired(1e12) == 0
        await store.create_family(
            family("fam-p1", "ivan", expires_at=100.0), refresh("hp1", "fam-p1", expires_at=50.0)
        )
        await store.create_family(
            family("fam-p2", "ivan", expires_at=200.0), refresh("hp2", "fam-p2", expires_at=200.0)
        )
        await store.revoke_access("jp1", 100.0)
        await store.revoke_access("jp2", 300.0)
        await store.revoke_subject("ivan", 10.0, 100.0)
        await store.revoke_subject("judy", 10.0, 400.0)
        assert await store.purge_expired(49.9) == 0
        # Expiry <= now is gone: hp1 (50), fam-p1 (100), jp1 (100), ivan's cutoff (100).
        assert await store.purge_expired(100.0) == 4
        assert await store.load_refresh("hp1") is None
        view = await store.load_refresh("hp2")
        assert view is not None
        assert view.family is not None
        assert view.subject_cutoff is None
        assert [f.family_id for f in (await store.sessions("ivan")).families] == ["fam-p2"]
        assert not (await store.access_view("jp1", "", "")).jti_revoked
        assert (await store.access_view("jp2", "", "")).jti_revoked
        assert await store.purge_expired(100.0) == 0
        assert await store.purge_expired(1000.0) == 4  # hp2, fam-p2, jp2, judy
        assert await store.purge_expired(1000.0) == 0

    run(scenario)


# -- construction and migrations ----------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    ["", "Jwtward", "jwt-ward", "1jwt", "a" * 64, 'x"; DROP TABLE t; --', "jwt ward", "é", None],
)
def test_schema_name_is_validated(schema: Any) -> None:
    with pytest.raises(InvalidArgument):
        PostgresTokenStore(postgres_dsn(), schema=schema)
    with pytest.raises(InvalidArgument):
        AsyncPostgresTokenStore(postgres_dsn(), schema=schema)


def test_constructor_arguments() -> None:
    # Valid names and sizes construct without connecting (the pool opens on first use).
    assert PostgresTokenStore(postgres_dsn(), schema="_" + "a" * 62).schema == "_" + "a" * 62
    assert "postgres@" not in repr(PostgresTokenStore("postgresql://u:secret@h/db"))
    with pytest.raises(InvalidArgument):
        PostgresTokenStore()
    with pytest.raises(InvalidArgument):
        PostgresTokenStore(postgres_dsn(), max_size=0)
    with pytest.raises(InvalidArgument):
        PostgresTokenStore(postgres_dsn(), min_size=5, max_size=2)
    with pytest.raises(InvalidArgument):
        AsyncPostgresTokenStore(postgres_dsn(), timeout=0)
    with pytest.raises(InvalidArgument):
        AsyncPostgresTokenStore()


def test_repr_hides_the_dsn() -> None:
    store = PostgresTokenStore("postgresql://u:hunter2@127.0.0.1/db", schema="s")
    assert "hunter2" not in repr(store)
    assert repr(store) == "PostgresTokenStore(schema='s')"


def schema_objects(pg: PostgresServer, schema: str) -> tuple[set[str], set[str], list[int]]:
    tables = {r[0] for r in pg.query("SELECT tablename FROM pg_tables WHERE schemaname = %s",
                                     (schema,))}
    indexes = {r[0] for r in pg.query("SELECT indexdef FROM pg_indexes WHERE schemaname = %s",
                                      (schema,))}
    versions: list[int] = []
    if "schema_version" in tables:
        versions = [r[0] for r in pg.query(
            psycopg.sql.SQL("SELECT version FROM {}.schema_version ORDER BY version").format(
                psycopg.sql.Identifier(schema)))]
    return tables, indexes, versions


def test_fresh_schema_is_created_and_versioned(pg: PostgresServer) -> None:
    schema = pg.new_schema()
    store = PostgresTokenStore(pg.dsn, schema=schema)
    try:
        assert schema_objects(pg, schema) == (set(), set(), [])  # nothing before first use
        store.ping()
        tables, indexes, versions = schema_objects(pg, schema)
        assert tables == TABLES
        assert versions == list(range(1, len(MIGRATIONS) + 1))
        # Purge walks expiry indexes; sessions() the subject index.
        joined = "\n".join(indexes)
        for table, column in [("families", "expires_at"), ("refresh_tokens", "expires_at"),
                              ("revoked_access", "expires_at"),
                              ("subject_cutoffs", "keep_until"), ("families", "subject")]:
            assert f"ON {schema}.{table} USING btree ({column}" in joined, (table, column)
    finally:
        store.close()


def test_reopening_is_a_no_op(pg: PostgresServer) -> None:
    schema = pg.new_schema()
    first = PostgresTokenStore(pg.dsn, schema=schema)
    first.create_family(family("fam-keep"), refresh("h-keep", "fam-keep"))
    first.close()
    version_sql = psycopg.sql.SQL("SELECT version, applied_at FROM {}.schema_version").format(
        psycopg.sql.Identifier(schema)
    )
    before = pg.query(version_sql)
    again = PostgresTokenStore(pg.dsn, schema=schema)
    try:
        view = again.load_refresh("h-keep")
        assert view is not None
        assert view.family == family("fam-keep")
        assert pg.query(version_sql) == before
    finally:
        again.close()


def test_newer_schema_is_accepted(pg: PostgresServer) -> None:
    """Migrations only add, so a store keeps working on a schema a newer release migrated."""
    schema = pg.new_schema()
    PostgresTokenStore(pg.dsn, schema=schema).ping()
    pg.query(psycopg.sql.SQL("INSERT INTO {}.schema_version (version) VALUES (99)").format(
        psycopg.sql.Identifier(schema)))
    store = PostgresTokenStore(pg.dsn, schema=schema)
    try:
        store.revoke_access("j-new", 10.0)
        assert store.access_view("j-new", "", "").jti_revoked
        assert schema_objects(pg, schema)[2] == [*range(1, len(MIGRATIONS) + 1), 99]
    finally:
        store.close()


def test_concurrent_migrations_from_threads(pg: PostgresServer) -> None:
    schema = pg.new_schema()
    stores = [PostgresTokenStore(pg.dsn, schema=schema, timeout=10.0) for _ in range(8)]
    barrier = threading.Barrier(len(stores))

    def first_use(store: PostgresTokenStore) -> None:
        barrier.wait()
        store.revoke_access(f"j-{id(store)}", 99.0)

    try:
        with ThreadPoolExecutor(len(stores)) as pool:
            list(pool.map(first_use, stores))  # re-raises any failure
        tables, _, versions = schema_objects(pg, schema)
        assert tables == TABLES
        assert versions == list(range(1, len(MIGRATIONS) + 1))  # each step applied once
        assert stores[0].purge_expired(100.0) == len(stores)
    finally:
        for store in stores:
            store.close()


def test_concurrent_migrations_from_tasks(pg: PostgresServer) -> None:
    schema = pg.new_schema()

    async def main() -> None:
        stores = [AsyncPostgresTokenStore(pg.dsn, schema=schema, timeout=10.0) for _ in range(4)]
        try:
            await asyncio.gather(*(s.revoke_access(f"j{i}", 1.0) for i, s in enumerate(stores)))
            # Two first uses of one store at once migrate once too.
            await asyncio.gather(stores[0].ping(), stores[0].ping())
            assert await stores[1].purge_expired(1.0) == 4
        finally:
            for store in stores:
                await store.close()

    asyncio.run(main())
    assert schema_objects(pg, schema)[2] == list(range(1, len(MIGRATIONS) + 1))


def test_given_pool_is_used_and_left_open(pg: PostgresServer) -> None:
    from psycopg_pool import AsyncConnectionPool, ConnectionPool

    with ConnectionPool(pg.dsn, min_size=1, max_size=2, open=True) as pool:
        store = PostgresTokenStore(pool=pool, schema=pg.schema)
        store.revoke_access("j-pool", 10.0)
        store.close()
        assert not pool.closed
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        with pytest.raises(StoreUnavailable):
            store.ping()  # a closed store stays closed

    async def main() -> None:
        async with AsyncConnectionPool(pg.dsn, min_size=1, max_size=2, open=False) as apool:
            astore = AsyncPostgresTokenStore(pool=apool, schema=pg.schema)
            assert (await astore.access_view("j-pool", "", "")).jti_revoked
            await astore.close()
            assert not apool.closed

    asyncio.run(main())


# -- rotation races -----------------------------------------------------------------

RACERS = 100
ROUNDS = 20


def refresh_hashes(pg: PostgresServer, family_id: str) -> set[str]:
    rows = pg.query(
        psycopg.sql.SQL("SELECT token_hash FROM {}.refresh_tokens WHERE family_id = %s").format(
            psycopg.sql.Identifier(pg.schema)
        ),
        (family_id,),
    )
    return {r[0] for r in rows}


def check_one_winner(pg: PostgresServer, results: list[bool], family_id: str, view: Any) -> None:
    assert results.count(True) == 1, results.count(True)
    winner = results.index(True)
    assert view.record.used_at == 2000.0 + winner
    assert view.record.successor == b"sealed-%d" % winner
    assert view.family.last_used_at == 2000.0 + winner
    # Exactly the winner's successor was saved.
    assert refresh_hashes(pg, family_id) == {f"{family_id}-0", f"{family_id}-next-{winner}"}


def test_rotation_race_threads(pg: PostgresServer) -> None:
    store = PostgresTokenStore(pg.dsn, schema=pg.schema, max_size=20, timeout=30.0)
    try:
        with ThreadPoolExecutor(RACERS) as pool:
            for _ in range(ROUNDS):
                fid = f"race-t-{secrets.token_hex(6)}"
                store.create_family(family(fid), refresh(f"{fid}-0", fid))
                barrier = threading.Barrier(RACERS)

                def attempt(i: int, fid: str = fid, barrier: threading.Barrier = barrier) -> bool:
                    barrier.wait()
                    return store.rotate(
                        f"{fid}-0", 2000.0 + i, refresh(f"{fid}-next-{i}", fid), b"sealed-%d" % i
                    )

                results = list(pool.map(attempt, range(RACERS)))
                check_one_winner(pg, results, fid, store.load_refresh(f"{fid}-0"))
    finally:
        store.close()


def test_rotation_race_tasks(pg: PostgresServer) -> None:
    async def main() -> None:
        store = AsyncPostgresTokenStore(pg.dsn, schema=pg.schema, max_size=20, timeout=30.0)
        try:
            await store.ping()
            for _ in range(ROUNDS):
                fid = f"race-a-{secrets.token_hex(6)}"
                await store.create_family(family(fid), refresh(f"{fid}-0", fid))
                results = await asyncio.gather(
                    *(
                        store.rotate(
                            f"{fid}-0", 2000.0 + i, refresh(f"{fid}-next-{i}", fid),
                            b"sealed-%d" % i,
                        )
                        for i in range(RACERS)
                    )
                )
                check_one_winner(pg, list(results), fid, await store.load_refresh(f"{fid}-0"))
        finally:
            await store.close()

    asyncio.run(main())


# -- durability ---------------------------------------------------------------------

REVOKER = """
import sys, time
from jwtward.tokens.postgres_store import PostgresTokenStore

store = PostgresTokenStore(sys.argv[1], schema=sys.argv[2])
store.revoke_family("fam-durable", 1500.0)
store.revoke_access("jti-durable", 9_000_000_000.0)
store.revoke_subject("subject-durable", 1600.0, 9_000_000_000.0)
print("done", flush=True)
time.sleep(600)
"""


def test_revocations_survive_a_killed_process(pg: PostgresServer) -> None:
    store = PostgresTokenStore(pg.dsn, schema=pg.schema)
    store.create_family(family("fam-durable", "subject-durable"), refresh("h-dur", "fam-durable"))
    store.close()
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", REVOKER, pg.dsn, pg.schema],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            assert sel.select(timeout=30), "the revoking process did not report"
        line = proc.stdout.readline()
        assert line == b"done\n", (line, proc.stderr.read() if proc.poll() is not None else b"")
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    fresh = PostgresTokenStore(pg.dsn, schema=pg.schema)
    try:
        view = fresh.access_view("jti-durable", "fam-durable", "subject-durable")
        assert view.jti_revoked
        assert view.family is not None
        assert view.family.revoked_at == 1500.0
        assert view.subject_cutoff == 1600.0
    finally:
        fresh.close()


# -- faults -------------------------------------------------------------------------

FAULT_TIMEOUT = 0.1
FAULT_DEADLINE = FAULT_TIMEOUT + 2.5  # the pool's wait plus slack for a loaded machine

PROTOCOL_CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("ping", ()),
    ("create_family", (family("f"), refresh("h", "f"))),
    ("load_refresh", ("h",)),
    ("rotate", ("h", 1.0, refresh("h2", "f"), None)),
    ("revoke_family", ("f", 1.0)),
    ("revoke_access", ("j", 1.0)),
    ("revoke_subject", ("s", 1.0, 2.0)),
    ("access_view", ("j", "f", "s")),
    ("sessions", ("s",)),
    ("purge_expired", (1.0,)),
]


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_unavailable(exc: StoreUnavailable, port: int, elapsed: float) -> None:
    assert elapsed < FAULT_DEADLINE, elapsed
    assert exc.status_code == 503
    assert exc.__cause__ is None
    assert exc.__suppress_context__
    assert str(port) not in str(exc)  # says what, not how


def test_unreachable_server_sync() -> None:
    port = unused_port()
    store = PostgresTokenStore(
        f"postgresql://postgres@127.0.0.1:{port}/test", min_size=0, timeout=FAULT_TIMEOUT
    )
    try:
        for method, args in PROTOCOL_CALLS:
            start = time.monotonic()
            with pytest.raises(StoreUnavailable) as info:
                getattr(store, method)(*args)
            check_unavailable(info.value, port, time.monotonic() - start)
    finally:
        store.close()


def test_unreachable_server_async() -> None:
    port = unused_port()

    async def main() -> None:
        store = AsyncPostgresTokenStore(
            f"postgresql://postgres@127.0.0.1:{port}/test", timeout=FAULT_TIMEOUT
        )
        try:
            for method, args in PROTOCOL_CALLS:
                start = time.monotonic()
                with pytest.raises(StoreUnavailable) as info:
                    await getattr(store, method)(*args)
                check_unavailable(info.value, port, time.monotonic() - start)
        finally:
            await store.close()

    asyncio.run(main())


class Proxy:
    """A TCP relay to the server that can be cut and restored: a server that goes away."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = unused_port()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.05)
        self._stop.clear()
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while not self._stop.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                client.settimeout(None)
                try:
                    server = socket.create_connection(self.upstream, timeout=5)
                except OSError:
                    client.close()
                    continue
                server.settimeout(None)
                with self._lock:
                    self._sockets += [client, server]
                for src, dst in ((client, server), (server, client)):
                    threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """Refuse new connections and cut every open one."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def through_proxy(pg: PostgresServer) -> tuple[Proxy, str]:
    params = conninfo_to_dict(pg.dsn)
    host = str(params.get("host") or "127.0.0.1")
    proxy = Proxy((host, int(params.get("port") or 5432)))
    proxy.start()
    return proxy, make_conninfo(pg.dsn, host="127.0.0.1", port=str(proxy.port))


RECOVERY_DEADLINE = 20.0


def test_store_recovers_when_the_server_returns_sync(pg: PostgresServer) -> None:
    proxy, dsn = through_proxy(pg)
    store = PostgresTokenStore(dsn, schema=pg.schema, max_size=2, timeout=1.0)
    try:
        store.revoke_access("jti-proxy-s", 9e9)
        assert store.access_view("jti-proxy-s", "", "").jti_revoked
        proxy.stop()
        with pytest.raises(StoreUnavailable):
            store.access_view("jti-proxy-s", "", "")
        with pytest.raises(StoreUnavailable):
            store.revoke_access("jti-proxy-s2", 9e9)
        proxy.start()
        deadline = time.monotonic() + RECOVERY_DEADLINE
        while True:  # the same store object, no restart
            try:
                view = store.access_view("jti-proxy-s", "", "")
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the store did not recover"
                time.sleep(0.2)
        assert view.jti_revoked
        store.revoke_access("jti-proxy-s2", 9e9)
        assert store.access_view("jti-proxy-s2", "", "").jti_revoked
    finally:
        store.close()
        proxy.stop()


def test_store_recovers_when_the_server_returns_async(pg: PostgresServer) -> None:
    proxy, dsn = through_proxy(pg)

    async def main() -> None:
        store = AsyncPostgresTokenStore(dsn, schema=pg.schema, max_size=2, timeout=1.0)
        try:
            await store.revoke_access("jti-proxy-a", 9e9)
            proxy.stop()
            with pytest.raises(StoreUnavailable):
                await store.access_view("jti-proxy-a", "", "")
            proxy.start()
            deadline = time.monotonic() + RECOVERY_DEADLINE
            while True:
                try:
                    view = await store.access_view("jti-proxy-a", "", "")
                    break
                except StoreUnavailable:
                    assert time.monotonic() < deadline, "the store did not recover"
                    await asyncio.sleep(0.2)
            assert view.jti_revoked
        finally:
            await store.close()

    try:
        asyncio.run(main())
    finally:
        proxy.stop()


def test_killed_connections_are_replaced(pg: PostgresServer) -> None:
    """A backend that dies between calls (server restart, idle kill) costs no failed call.

    The pool finds the dead connection when it checks it before lending it,
    and waits about a second (its retry backoff) for the replacement: one
    connection keeps that wait to one round.
    """
    app = f"{pg.prefix}_kill"
    store = PostgresTokenStore(
        make_conninfo(pg.dsn, application_name=app),
        schema=pg.schema,
        min_size=1,
        max_size=1,
        timeout=5.0,
    )
    try:
        store.revoke_access("jti-kill", 9e9)
        killed = pg.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (app,),
        )
        assert killed
        assert all(row[0] for row in killed)
        assert store.access_view("jti-kill", "", "").jti_revoked
    finally:
        store.close()


# -- the service end to end ---------------------------------------------------------


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    return KeyRing.generate("ES256")


def test_token_service_over_postgres(pg: PostgresServer, ring: KeyRing) -> None:
    store = PostgresTokenStore(pg.dsn, schema=pg.schema)
    with TokenService(ring, issuer="https://issuer.test", audience="api", store=store) as auth:
        pair = auth.issue("user-1", claims={"role": "admin"}, metadata={"ua": "test"})
        claims = auth.verify(pair.access_token)
        assert (claims["sub"], claims["role"]) == ("user-1", "admin")
        second = auth.refresh(pair.refresh_token)
        assert second.session_id == pair.session_id
        assert auth.verify(second.access_token)["sub"] == "user-1"
        assert [s.family_id for s in auth.sessions("user-1")] == [pair.session_id]
        # Presenting the used token again is a reuse: the whole session is revoked.
        with pytest.raises(RefreshTokenReuse):
            auth.refresh(pair.refresh_token)
        with pytest.raises(RevokedToken):
            auth.verify(second.access_token)
        with pytest.raises(RevokedToken):
            auth.refresh(second.refresh_token)
        assert auth.sessions("user-1") == []
        view = store.access_view("", pair.session_id, "user-1")
        assert view.family is not None
        assert view.family.revoked_at is not None


def test_async_token_service_over_postgres(pg: PostgresServer, ring: KeyRing) -> None:
    async def main() -> None:
        store = AsyncPostgresTokenStore(pg.dsn, schema=pg.schema)
        async with AsyncTokenService(
            ring, issuer="https://issuer.test", audience="api", store=store
        ) as auth:
            pair = await auth.issue("user-2")
            assert (await auth.verify(pair.access_token))["sub"] == "user-2"
            second = await auth.refresh(pair.refresh_token)
            with pytest.raises(RefreshTokenReuse):
                await auth.refresh(pair.refresh_token)
            with pytest.raises(RevokedToken):
                await auth.verify(second.access_token)

    asyncio.run(main())
