"""The PostgreSQL key store against a real server.

The server is ``$JWTWARD_TEST_POSTGRES_DSN`` (default: the local ``test``
database). Without it the tests skip, except under ``CI=true`` where they
fail. Every schema a run creates is named ``jwtward_test_keys_<random>_<n>``
and dropped at the end of the module.

What several issuer processes rely on: a key ring kept in the store, a
compare-and-swap that exactly one of several concurrent savers wins (threads
and processes), private keys sealed at rest as read straight from the tables,
a wrong secret that never overwrites the keys, and a server outage that is a
retryable :class:`StoreError`, after which the same store works again.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from jwtward import Key, Policy, jwt
from jwtward.errors import InvalidArgument, KeyNotFound
from jwtward.keys import KeyRing
from jwtward.keys.postgres_store import KEY_MIGRATIONS, PostgresKeyStore
from jwtward.keys.records import KeyRecord, KeyState, StoreConflict, StoreError, StoreSnapshot
from jwtward.keys.sealing import MASTER_KEY_ENV, PlaintextKeyWarning, ScryptParams, UnsealError
from jwtward.tokens.postgres_store import PostgresTokenStore
from tests.key_records import (
    FAST_SCRYPT,
    MASTER_KEY,
    PASSPHRASE,
    PRIVATE_MEMBERS,
    PROTECTIONS,
    as_comparable,
    assert_same_records,
    hs_record,
    records_of,
)
from tests.servers import PostgresServer, postgres_server

T0 = 1_800_000_000.0


# -- the server and the schemas of this run -----------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server("keys") as server:
        yield server


@pytest.fixture(autouse=True)
def _no_master_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)


StoreFactory = Callable[..., PostgresKeyStore]


@pytest.fixture
def schema(pg: PostgresServer) -> str:
    """A fresh schema for one test."""
    return pg.new_schema()


@pytest.fixture
def make_store(pg: PostgresServer, schema: str) -> Iterator[StoreFactory]:
    """Open a store on the test's schema (or ``schema=``); default protection: master key."""
    opened: list[PostgresKeyStore] = []

    def make(**options: Any) -> PostgresKeyStore:
        if not {"passphrase", "master_key", "allow_plaintext"} & options.keys():
            options["master_key"] = MASTER_KEY
        options.setdefault("schema", schema)
        store = PostgresKeyStore(pg.dsn, **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


# -- records ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys() -> list[Key]:
    """One key of each family the store must carry (RSA once: it is slow to make)."""
    return [
        Key.generate("ES256"),
        Key.generate("EdDSA"),
        Key.generate("RS256"),
        Key.generate("HS256"),
        Key.generate("ECDH-ES+A256KW"),
        Key.generate("ES384").public_key(),
    ]


def private_values(records: list[KeyRecord]) -> list[str]:
    jwks = [r.key.to_jwk(private=True) for r in records if r.key.is_private]
    return [jwk[m] for jwk in jwks for m in PRIVATE_MEMBERS if m in jwk]


def stored_text(pg: PostgresServer, schema: str) -> str:
    """Every value of the store's two tables, as text."""
    rows = pg.table(schema, "key_records") + pg.table(schema, "key_store")
    return "\n".join(str(value) for row in rows for value in row)


def stored_header(pg: PostgresServer, schema: str) -> dict[str, Any]:
    (sealing,) = pg.table(schema, "key_store", "sealing")[0]
    header = json.loads(sealing)
    assert isinstance(header, dict)
    return header


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- round trips ----------------------------------------------------------------------


def test_a_new_store_is_empty_at_version_zero(make_store: StoreFactory) -> None:
    assert make_store().load() == StoreSnapshot(version=0, records=())


@pytest.mark.parametrize("protection", sorted(PROTECTIONS))
def test_every_field_and_key_type_round_trips(
    make_store: StoreFactory, keys: list[Key], protection: str
) -> None:
    records = records_of(keys)
    store = make_store(**PROTECTIONS[protection])
    assert store.save(0, records) == 1
    assert_same_records(store.load(), records)
    again = make_store(**PROTECTIONS[protection])  # another process, as far as the server knows
    loaded = again.load()
    assert loaded.version == 1
    assert_same_records(loaded, records)
    assert again.save(1, []) == 2
    assert again.load() == StoreSnapshot(version=2, records=())
    assert store.load() == StoreSnapshot(version=2, records=())


def test_bad_save_arguments_are_refused_before_any_write(make_store: StoreFactory) -> None:
    store = make_store()
    with pytest.raises(InvalidArgument):
        store.save(-1, [hs_record("a")])
    with pytest.raises(InvalidArgument, match="share the kid"):
        store.save(0, [hs_record("a"), hs_record("a", 1)])
    with pytest.raises(InvalidArgument):
        store.save(0, "records")  # type: ignore[arg-type]
    assert store.load() == StoreSnapshot(version=0, records=())


# -- a key ring in PostgreSQL ---------------------------------------------------------


def test_a_key_ring_generates_rotates_revokes_and_reloads(make_store: StoreFactory) -> None:
    clock = Clock(T0)
    ring = KeyRing.generate("ES256", store=make_store(), clock=clock)
    first = ring.signing_key()
    token = jwt.encode({"sub": "alice"}, first, clock=clock)

    clock.now += 60
    second = ring.rotate()
    assert second.kid != first.kid
    assert ring.signing_key().kid == second.kid

    # A second store object (another process, in effect) sees the same ring.
    other = KeyRing(make_store(), "ES256", clock=clock)
    assert other.signing_key().kid == second.kid
    assert [as_comparable(r) for r in other.records()] == [as_comparable(r) for r in ring.records()]
    states = {r.key.kid: r.state for r in other.records()}
    assert states == {first.kid: KeyState.RETIRED, second.kid: KeyState.ACTIVE}
    policy = Policy(clock=clock)
    assert jwt.decode(token, other, policy)["sub"] == "alice"  # retired keys still verify

    ring.revoke(first.kid)
    reopened = KeyRing(make_store(), "ES256", clock=clock)
    assert {r.key.kid: r.state for r in reopened.records()}[first.kid] is KeyState.REVOKED
    assert first.kid not in {jwk["kid"] for jwk in reopened.jwks()["keys"]}
    with pytest.raises(KeyNotFound):
        jwt.decode(token, reopened, policy)
    other.refresh()
    with pytest.raises(KeyNotFound):
        jwt.decode(token, other, policy)
    assert reopened.signing_key().kid == second.kid
    assert make_store().load().version == 3  # generate, rotate, revoke


# -- compare-and-swap ---------------------------------------------------------------


def test_save_is_a_compare_and_swap(make_store: StoreFactory) -> None:
    store = make_store()
    assert store.save(0, [hs_record("a")]) == 1
    with pytest.raises(StoreConflict, match="version 1, not 0"):
        store.save(0, [hs_record("b")])
    with pytest.raises(StoreConflict):
        make_store().save(2, [hs_record("b")])
    assert store.save(1, [hs_record("b")]) == 2
    loaded = store.load()
    assert (loaded.version, [r.key.kid for r in loaded.records]) == (2, ["b"])


def test_of_two_concurrent_savers_exactly_one_wins(make_store: StoreFactory) -> None:
    stores = [make_store(), make_store()]  # two pools: two sessions on the server
    stores[0].save(0, [hs_record("start")])
    for repeat in range(20):
        version = stores[0].load().version
        barrier = threading.Barrier(2)

        def attempt(
            i: int,
            version: int = version,
            barrier: threading.Barrier = barrier,
            repeat: int = repeat,
        ) -> Any:
            barrier.wait()
            try:
                return stores[i].save(version, [hs_record(f"r{repeat}-{i}", i)])
            except StoreConflict as exc:
                return exc

        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(attempt, range(2)))
        winners = [i for i, result in enumerate(results) if result == version + 1]
        losers = [i for i, result in enumerate(results) if isinstance(result, StoreConflict)]
        assert len(winners) == 1 and len(losers) == 1, results
        loaded = stores[1 - winners[0]].load()
        assert loaded.version == version + 1
        assert [r.key.kid for r in loaded.records] == [f"r{repeat}-{winners[0]}"]


RING_PROCESS = textwrap.dedent(
    """
    import sys
    from jwtward.keys import KeyRing
    from jwtward.keys.postgres_store import PostgresKeyStore

    dsn, schema, now, rotations = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    store = PostgresKeyStore(dsn, schema=schema, passphrase=sys.argv[5])
    ring = KeyRing(store, "ES256", clock=lambda: now)
    sys.stdin.readline()  # start together
    ring.maintain()
    for _ in range(rotations):
        ring.rotate()
        ring.maintain()
    print(ring.signing_key().kid, flush=True)
    store.close()
    """
)


def test_rings_in_separate_processes_end_with_one_active_key(
    pg: PostgresServer, schema: str
) -> None:
    """Two processes maintain and rotate one empty ring at once: no update is lost."""
    rotations = 3
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop(MASTER_KEY_ENV, None)
    args = [pg.dsn, schema, str(T0), str(rotations), PASSPHRASE]
    processes = [
        subprocess.Popen(  # noqa: S603 - our own interpreter running our own script
            [sys.executable, "-c", RING_PROCESS, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    time.sleep(1.0)  # let both import and connect before the start signal
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    outputs = [process.communicate(timeout=120) for process in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    with PostgresKeyStore(pg.dsn, schema=schema, passphrase=PASSPHRASE) as store:
        records = store.load().records
    actives = [r.key.kid for r in records if r.state is KeyState.ACTIVE]
    assert len(actives) == 1
    # One first key, then every rotation of both processes retired one key.
    assert len(records) == 1 + 2 * rotations
    assert len({r.key.kid for r in records}) == len(records)
    assert sum(r.state is KeyState.RETIRED for r in records) == 2 * rotations
    # The last process to rotate signs with the key that stayed active.
    assert actives[0] in {out.strip() for out, _ in outputs}


# -- private keys at rest -----------------------------------------------------------


@pytest.mark.parametrize("protection", sorted(PROTECTIONS))
def test_private_keys_are_sealed_at_rest(
    pg: PostgresServer, schema: str, make_store: StoreFactory, keys: list[Key], protection: str
) -> None:
    records = records_of(keys)
    store = make_store(**PROTECTIONS[protection])
    store.save(0, records)
    store.save(1, records)
    rows = pg.table(schema, "key_records", "kid, public_jwk, sealed, private_jwk")
    assert len(rows) == len(records)
    for kid, public_jwk, sealed, private_jwk in rows:
        key = next(r.key for r in records if r.key.kid == kid)
        assert private_jwk is None
        assert (sealed is not None) == key.is_private
        if public_jwk is not None:
            assert not set(PRIVATE_MEMBERS) & json.loads(public_jwk).keys()
    text = stored_text(pg, schema)
    values = private_values(records)
    assert len(values) > len(records)
    for value in values:
        assert value not in text
        assert base64.urlsafe_b64decode(value + "==").hex() not in text
    assert '"d"' not in text
    # The public halves are stored in the clear (they are published anyway).
    assert records[0].key.to_jwk()["x"] in text


def test_plaintext_needs_consent_and_warns(
    pg: PostgresServer, schema: str, make_store: StoreFactory, keys: list[Key]
) -> None:
    with pytest.raises(InvalidArgument, match="allow_plaintext"):
        PostgresKeyStore(pg.dsn, schema=schema)
    with pytest.warns(PlaintextKeyWarning, match="UNENCRYPTED") as warned:
        store = make_store(allow_plaintext=True)
    assert warned[0].filename == __file__  # the caller's code, not the store's
    records = records_of(keys)
    store.save(0, records)
    assert_same_records(store.load(), records)
    # Plaintext means plaintext: the probe that passes for sealed stores finds it here.
    text = stored_text(pg, schema)
    assert all(value in text for value in private_values(records))
    assert all(row[0] is None for row in pg.table(schema, "key_records", "sealed"))


def test_the_warning_points_at_the_constructor_call(pg: PostgresServer, schema: str) -> None:
    with pytest.warns(PlaintextKeyWarning) as warned:
        store = PostgresKeyStore(pg.dsn, schema=schema, allow_plaintext=True)
    store.close()
    assert (warned[0].filename, warned[0].lineno) == (
        __file__,
        test_the_warning_points_at_the_constructor_call.__code__.co_firstlineno + 2,
    )


@pytest.mark.parametrize(
    ("right", "wrong"),
    [
        (PROTECTIONS["passphrase"], {"passphrase": "Tr0ub4dor&3", "scrypt": FAST_SCRYPT}),
        (PROTECTIONS["master-key"], {"master_key": bytes(range(1, 33))}),
        (PROTECTIONS["passphrase"], PROTECTIONS["master-key"]),
    ],
)
def test_a_wrong_secret_is_a_clear_error_and_overwrites_nothing(
    pg: PostgresServer,
    schema: str,
    make_store: StoreFactory,
    right: dict[str, Any],
    wrong: dict[str, Any],
) -> None:
    records = [hs_record("a")]
    make_store(**right).save(0, records)
    before = pg.table(schema, "key_records") + pg.table(schema, "key_store")
    intruder = make_store(**wrong)
    with pytest.raises(UnsealError, match=r"does not open|protected with") as caught:
        intruder.load()
    assert isinstance(caught.value, StoreError)
    with pytest.raises(UnsealError):
        intruder.save(1, [hs_record("b")])
    with pytest.raises(UnsealError):
        KeyRing(intruder, "HS256").maintain()
    assert pg.table(schema, "key_records") + pg.table(schema, "key_store") == before
    loaded = make_store(**right).load()
    assert loaded.version == 1
    assert_same_records(loaded, records)


def test_a_record_that_does_not_open_is_never_overwritten(
    pg: PostgresServer, schema: str, make_store: StoreFactory
) -> None:
    store = make_store()
    store.save(0, [hs_record("a"), hs_record("b", 1)])
    # Move b's sealed key onto a: it no longer authenticates under a's kid.
    pg.query(
        sql.SQL(
            "UPDATE {s}.key_records SET sealed = (SELECT sealed FROM {s}.key_records"
            " WHERE kid = 'b') WHERE kid = 'a'"
        ).format(s=sql.Identifier(schema))
    )
    before = pg.table(schema, "key_records")
    with pytest.raises(UnsealError, match="'a'"):
        store.load()
    with pytest.raises(UnsealError, match="'a'"):
        store.save(1, [hs_record("c")])
    assert pg.table(schema, "key_records") == before


def test_raised_scrypt_parameters_reseal_on_save(
    pg: PostgresServer, schema: str, make_store: StoreFactory
) -> None:
    weak = {"passphrase": "pw", "scrypt": FAST_SCRYPT}
    strong = {"passphrase": "pw", "scrypt": ScryptParams(n=1 << 15)}
    make_store(**weak).save(0, [hs_record("a")])
    before = stored_header(pg, schema)
    assert before["n"] == 1 << 14
    upgraded = make_store(**strong)
    assert upgraded.load().records[0].key.kid == "a"  # read with the stored parameters
    upgraded.save(1, [hs_record("a")])
    after = stored_header(pg, schema)
    assert (after["n"], after["salt"] != before["salt"], after["store"]) == (
        1 << 15,
        True,
        before["store"],
    )
    assert make_store(**weak).load().records[0].key.kid == "a"
    make_store(**weak).save(2, [hs_record("a")])  # a weaker configuration never lowers it
    assert stored_header(pg, schema)["n"] == 1 << 15


# -- schema ------------------------------------------------------------------------


def test_the_schema_is_created_and_versioned(
    pg: PostgresServer, schema: str, make_store: StoreFactory
) -> None:
    make_store().load()
    tables = {
        r[0] for r in pg.query("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))
    }
    assert tables == {"key_store", "key_records"}
    assert pg.table(schema, "key_store") == [(1, len(KEY_MIGRATIONS), 0, None)]
    make_store().save(0, [hs_record("a")])
    assert pg.table(schema, "key_store", "schema_version, version") == [(1, 1)]


def test_a_newer_schema_is_refused(
    pg: PostgresServer, schema: str, make_store: StoreFactory
) -> None:
    make_store().save(0, [hs_record("a")])
    pg.query(sql.SQL("UPDATE {}.key_store SET schema_version = 99").format(sql.Identifier(schema)))
    with pytest.raises(StoreError, match="schema 99"):
        make_store().load()


def test_first_use_from_many_threads_at_once(pg: PostgresServer, schema: str) -> None:
    stores = [PostgresKeyStore(pg.dsn, schema=schema, master_key=MASTER_KEY) for _ in range(6)]
    barrier = threading.Barrier(len(stores))

    def first_use(store: PostgresKeyStore) -> int:
        barrier.wait()
        return store.load().version

    try:
        with ThreadPoolExecutor(len(stores)) as pool:
            assert list(pool.map(first_use, stores)) == [0] * len(stores)
    finally:
        for store in stores:
            store.close()
    assert pg.table(schema, "key_store", "schema_version, version") == [(1, 0)]


def test_the_schema_is_shared_with_the_token_store(pg: PostgresServer, schema: str) -> None:
    tokens = PostgresTokenStore(pg.dsn, schema=schema, min_size=0)
    try:
        tokens.ping()
        with PostgresKeyStore(pg.dsn, schema=schema, master_key=MASTER_KEY) as store:
            store.save(0, [hs_record("a")])
        tokens.ping()
    finally:
        tokens.close()
    tables = {
        r[0] for r in pg.query("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))
    }
    assert {"key_store", "key_records", "families", "schema_version"} <= tables


def test_a_deleted_meta_row_never_lets_records_be_overwritten(
    pg: PostgresServer, schema: str, make_store: StoreFactory
) -> None:
    store = make_store()
    store.save(0, [hs_record("a")])
    pg.query(sql.SQL("DELETE FROM {}.key_store").format(sql.Identifier(schema)))
    with pytest.raises(StoreError, match="records at version 0"):
        store.save(0, [hs_record("b")])
    assert pg.table(schema, "key_records", "kid") == [("a",)]
    pg.query(sql.SQL("DELETE FROM {}.key_records").format(sql.Identifier(schema)))
    assert store.save(0, [hs_record("b")]) == 1  # emptied by its operator: usable again


@pytest.mark.parametrize("name", ["", "Jwtward", "a-b", "x" * 64, "1abc", 'a"b'])
def test_schema_names_are_validated(pg: PostgresServer, name: str) -> None:
    with pytest.raises(InvalidArgument, match="schema"):
        PostgresKeyStore(pg.dsn, schema=name, master_key=MASTER_KEY)


def test_constructor_arguments(pg: PostgresServer) -> None:
    with pytest.raises(InvalidArgument, match="dsn and pool"):
        PostgresKeyStore(master_key=MASTER_KEY)
    pool: ConnectionPool[Any] = ConnectionPool(pg.dsn, min_size=0, max_size=1, open=False)
    with pytest.raises(InvalidArgument, match="dsn and pool"):
        PostgresKeyStore(pg.dsn, pool=pool, master_key=MASTER_KEY)
    for timeout in (0, -1.0, True):
        with pytest.raises(InvalidArgument, match="timeout"):
            PostgresKeyStore(pg.dsn, master_key=MASTER_KEY, timeout=timeout)
    dsn = "postgresql://user:s3cret-password@127.0.0.1:1/db"
    store = PostgresKeyStore(dsn, master_key=MASTER_KEY)
    assert "s3cret" not in repr(store)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.load()


def test_a_given_pool_is_used_and_left_open(pg: PostgresServer, schema: str) -> None:
    with ConnectionPool(pg.dsn, min_size=1, max_size=2) as pool:
        store = PostgresKeyStore(pool=pool, schema=schema, master_key=MASTER_KEY)
        store.save(0, [hs_record("a")])
        store.close()
        assert not pool.closed
        with pool.connection() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert [r.key.kid for r in PostgresKeyStore(pg.dsn, schema=schema, master_key=MASTER_KEY)
            .load().records] == ["a"]  # fmt: skip


# -- failures -----------------------------------------------------------------------


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_server_is_a_store_error() -> None:
    port = unused_port()
    store = PostgresKeyStore(
        f"postgresql://postgres@127.0.0.1:{port}/test", master_key=MASTER_KEY, timeout=1.0
    )
    try:
        for call in (store.load, lambda: store.save(0, [hs_record("a")])):
            start = time.monotonic()
            with pytest.raises(StoreError) as caught:
                call()
            assert time.monotonic() - start < 10
            assert caught.value.status_code == 503
            assert caught.value.__cause__ is None and caught.value.__suppress_context__
            assert str(port) not in str(caught.value)
        with pytest.raises(StoreError):
            KeyRing.generate("ES256", store=store)
    finally:
        store.close()


def test_killed_connections_are_replaced(pg: PostgresServer, schema: str) -> None:
    """The server dropping every session of the store (a restart, as clients see it)."""
    application = "jwtward_key_test_" + secrets.token_hex(4)
    dsn = make_conninfo(pg.dsn, application_name=application)
    with PostgresKeyStore(dsn, schema=schema, master_key=MASTER_KEY) as store:
        store.save(0, [hs_record("a")])
        killed = pg.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application,),
        )
        assert killed and all(row == (True,) for row in killed)
        # The pool checks a connection before lending it: no error reaches the caller.
        assert [r.key.kid for r in store.load().records] == ["a"]
        assert store.save(1, [hs_record("b")]) == 2


def test_a_saver_held_beyond_the_timeout_is_a_store_error(
    pg: PostgresServer, schema: str, make_store: StoreFactory
) -> None:
    store = make_store(timeout=1.0)
    store.save(0, [hs_record("a")])
    with psycopg.connect(pg.dsn) as blocker:
        blocker.execute(
            sql.SQL("SELECT 1 FROM {}.key_store FOR UPDATE").format(sql.Identifier(schema))
        )
        start = time.monotonic()
        with pytest.raises(StoreError, match="cannot answer"):
            store.save(1, [hs_record("b")])
        assert time.monotonic() - start < 5
        assert store.load().version == 1  # readers take no lock: never blocked
    assert store.save(1, [hs_record("b")]) == 2  # and the store is usable again


def test_a_forked_child_uses_connections_of_its_own(make_store: StoreFactory) -> None:
    store = make_store()
    store.save(0, [hs_record("a")])
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            code = 0 if store.save(1, [hs_record("child")]) == 2 else 2
        finally:
            os.write(write, bytes([code]))
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 1) == b"\x00"
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's sessions were not touched by the child.
    loaded = store.load()
    assert (loaded.version, [r.key.kid for r in loaded.records]) == (2, ["child"])
    assert store.save(2, [hs_record("parent")]) == 3
