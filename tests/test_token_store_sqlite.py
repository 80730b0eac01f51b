"""SQLiteTokenStore: the embedded default store of the token lifecycle.

The memory store is the reference of the store contract, so every protocol
method is checked by running one scenario against both stores and comparing
what they answered (the SQLite store both kept open and reopened before every
call, so nothing may live only in the object). The rest is what only a file
brings: WAL mode, a 0600 file, a versioned schema that refuses a newer one, a
file shared with the SQLite key store, one winner among concurrent rotations
(threads and processes), revocations that survive SIGKILL, failures raised as
StoreUnavailable that lose nothing, and a service that survives a restart.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import pytest

import jwtward
from jwtward.errors import RefreshTokenReuse, RevokedToken, StoreUnavailable
from jwtward.keys import KeyRing, SQLiteKeyStore
from jwtward.tokens import (
    AccessView,
    FamilyRecord,
    MemoryTokenStore,
    RefreshRecord,
    SubjectView,
    TokenService,
    TokenStore,
)
from jwtward.tokens.sqlite_store import SCHEMA_VERSION, SQLiteTokenStore

T0 = 1_700_000_000.0
HOUR = 3600.0
DAY = 86400.0
# The directory holding the jwtward package under test, for child interpreters.
PACKAGE_ROOT = str(Path(jwtward.__file__).resolve().parent.parent)
MASTER_KEY = bytes(range(32))


def family(
    family_id: str,
    subject: str = "alice",
    created_at: float = T0,
    *,
    expires_at: float = T0 + DAY,
    **extra: Any,
) -> FamilyRecord:
    return FamilyRecord(
        family_id=family_id,
        subject=subject,
        created_at=created_at,
        expires_at=expires_at,
        last_used_at=created_at,
        **extra,
    )


def refresh(
    token_hash: str, family_id: str, issued_at: float = T0, expires_at: float = T0 + HOUR
) -> RefreshRecord:
    return RefreshRecord(
        token_hash=token_hash, family_id=family_id, issued_at=issued_at, expires_at=expires_at
    )


class Reopening:
    """A store that opens the file afresh for every call and closes it after.

    Running a scenario through it proves that every answer comes from the
    file, not from state cached in a store object.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            with SQLiteTokenStore(self.path) as store:
                return getattr(store, name)(*args)

        return call


Scenario = Callable[[Any], list[Any]]


@pytest.fixture(params=["one-object", "reopened-per-call"])
def compare(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[Scenario], list[Any]]:
    """Run a scenario on the memory store and on SQLite; they must answer alike."""

    def run(scenario: Scenario) -> list[Any]:
        expected = scenario(MemoryTokenStore())
        path = tmp_path / f"tokens-{random.getrandbits(32)}.db"
        if request.param == "one-object":
            with SQLiteTokenStore(path) as store:
                actual = scenario(store)
        else:
            actual = scenario(Reopening(path))
        assert actual == expected
        return actual

    return run


def sqlite_rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    """Rows read through a connection of our own, outside the store."""
    db = sqlite3.connect(path)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def dump(path: Path) -> list[str]:
    """The whole database as SQL text: equal dumps mean nothing was modified."""
    db = sqlite3.connect(path)
    try:
        return list(db.iterdump())
    finally:
        db.close()


# -- every protocol method, against the memory store --------------------------


def test_create_family_and_load_refresh(compare: Callable[[Scenario], list[Any]]) -> None:
    full = family(
        "fam-1",
        client_id="client-7",
        scope="read write",
        claims={"roles": ["admin", "ünïcode"], "n": 1, "nested": {"a": [1, 2.5, None, True]}},
        metadata={"user_agent": "Browser/1.0", "address": "203.0.113.9"},
    )
    bare = family("fam-2", "bob", T0 + 1.25)

    def scenario(store: TokenStore) -> list[Any]:
        store.create_family(full, refresh("hash-1", "fam-1"))
        store.create_family(bare, refresh("hash-2", "fam-2", T0 + 1.25, T0 + 2 * HOUR))
        return [
            store.load_refresh("hash-1"),
            store.load_refresh("hash-2"),
            store.load_refresh("unknown"),
        ]

    first, second, unknown = compare(scenario)
    assert first is not None
    assert first.record == refresh("hash-1", "fam-1")
    assert first.family == full
    assert first.family.claims["nested"] == {"a": [1, 2.5, None, True]}
    assert first.subject_cutoff is None
    assert second is not None
    assert second.family == bare
    assert second.record.expires_at == T0 + 2 * HOUR
    assert unknown is None


def test_load_refresh_carries_the_subject_cutoff(
    compare: Callable[[Scenario], list[Any]],
) -> None:
    def scenario(store: TokenStore) -> list[Any]:
        store.create_family(family("fa"), refresh("ha", "fa"))
        store.create_family(family("fb", "bob"), refresh("hb", "fb"))
        store.revoke_subject("alice", T0 + 5.5, T0 + DAY)
        return [store.load_refresh("ha"), store.load_refresh("hb")]

    alice, bob = compare(scenario)
    assert alice is not None
    assert alice.subject_cutoff == T0 + 5.5
    assert bob is not None
    assert bob.subject_cutoff is None


def test_rotate_is_a_compare_and_swap(compare: Callable[[Scenario], list[Any]]) -> None:
    def scenario(store: TokenStore) -> list[Any]:
        store.create_family(family("f1"), refresh("h1", "f1"))
        out: list[Any] = [
            store.rotate("h1", T0 + 10, refresh("h2", "f1", T0 + 10), b"sealed\x00\xff"),
            store.load_refresh("h1"),
            store.load_refresh("h2"),
            # Used already, unknown: refused, and the successor is not saved.
            store.rotate("h1", T0 + 11, refresh("h3", "f1", T0 + 11), None),
            store.load_refresh("h3"),
            store.rotate("unknown", T0 + 11, refresh("h3", "f1", T0 + 11), None),
            store.load_refresh("h3"),
            # Without a sealed successor the column is empty.
            store.rotate("h2", T0 + 20, refresh("h4", "f1", T0 + 20), None),
            store.load_refresh("h2"),
        ]
        # A revoked family rotates no more.
        store.revoke_family("f1", T0 + 30)
        out += [
            store.rotate("h4", T0 + 31, refresh("h5", "f1", T0 + 31), None),
            store.load_refresh("h4"),
            store.load_refresh("h5"),
        ]
        # A family purged before its refresh token: the token is orphaned.
        store.create_family(
            family("f2", "carol", T0 + 40, expires_at=T0 + 100),
            refresh("h6", "f2", T0 + 40, T0 + 1000),
        )
        store.revoke_subject("carol", T0 + 1, T0 + 1000)
        out += [
            store.purge_expired(T0 + 100),
            store.rotate("h6", T0 + 101, refresh("h7", "f2", T0 + 101), None),
            store.load_refresh("h6"),
            store.load_refresh("h7"),
        ]
        return out

    (
        ok, used, successor, again, h3, unknown, h3_still, ok2, used2,
        revoked, h4, h5, purged, orphan, h6, h7,
    ) = compare(scenario)  # fmt: skip
    assert ok is True
    assert used is not None
    assert used.record.used_at == T0 + 10
    assert used.record.successor == b"sealed\x00\xff"
    assert successor is not None
    assert successor.record == refresh("h2", "f1", T0 + 10)
    assert successor.family is not None
    assert successor.family.last_used_at == T0 + 10
    assert (again, h3, unknown, h3_still) == (False, None, False, None)
    assert ok2 is True
    assert used2 is not None
    assert used2.record.used_at == T0 + 20
    assert used2.record.successor is None
    assert used2.family is not None
    assert used2.family.last_used_at == T0 + 20
    assert revoked is False
    assert h4 is not None
    assert h4.record.used_at is None
    assert h5 is None
    assert purged == 1  # the family f2 only: every refresh token lives an hour
    assert orphan is False
    assert h6 is not None
    assert (h6.family, h6.subject_cutoff, h6.record.used_at) == (None, None, None)
    assert h7 is None


def test_revoke_family_keeps_the_first_time(compare: Callable[[Scenario], list[Any]]) -> None:
    def scenario(store: TokenStore) -> list[Any]:
        store.create_family(family("f1"), refresh("h1", "f1"))
        store.revoke_family("f1", T0 + 5)
        store.revoke_family("f1", T0 + 3)
        store.revoke_family("f1", T0 + 9)
        store.revoke_family("unknown", T0 + 1)
        return [
            store.access_view("j", "f1", "alice"),
            store.access_view("j", "unknown", "alice"),
            store.sessions("alice"),
        ]

    view, unknown, sessions = compare(scenario)
    assert view.family is not None
    assert view.family.revoked_at == T0 + 5
    assert unknown == AccessView(jti_revoked=False, family=None, subject_cutoff=None)
    assert [f.family_id for f in sessions.families] == ["f1"]


def test_revoke_access_keeps_the_latest_expiry(
    compare: Callable[[Scenario], list[Any]],
) -> None:
    def scenario(store: TokenStore) -> list[Any]:
        store.revoke_access("j1", T0 + 200)
        store.revoke_access("j1", T0 + 100)  # an earlier expiry does not shorten the denial
        store.revoke_access("j2", T0 + 100)
        store.revoke_access("j2", T0 + 300)  # a later one extends it

        def views() -> list[bool]:
            return [store.access_view(j, "f", "alice").jti_revoked for j in ("j1", "j2", "j3")]

        return [
            views(),
            store.purge_expired(T0 + 199),
            views(),
            store.purge_expired(T0 + 200),
            views(),
            store.purge_expired(T0 + 300),
            views(),
        ]

    assert compare(scenario) == [
        [True, True, False], 0, [True, True, False], 1, [False, True, False], 1,
        [False, False, False],
    ]  # fmt: skip


def test_revoke_subject_keeps_the_max_cutoff_and_keep_until(
    compare: Callable[[Scenario], list[Any]],
) -> None:
    def scenario(store: TokenStore) -> list[Any]:
        def cutoff() -> float | None:
            return store.access_view("j", "f", "alice").subject_cutoff

        store.revoke_subject("alice", T0 + 50, T0 + 500)
        out: list[Any] = [cutoff()]
        store.revoke_subject("alice", T0 + 40, T0 + 600)  # cutoff kept, keep_until extended
        out += [cutoff(), store.purge_expired(T0 + 550), cutoff()]
        store.revoke_subject("alice", T0 + 70, T0 + 560)  # cutoff raised, keep_until kept
        out += [cutoff(), store.purge_expired(T0 + 599), cutoff()]
        out += [store.purge_expired(T0 + 600), cutoff(), store.sessions("alice").subject_cutoff]
        return out

    assert compare(scenario) == [
        T0 + 50, T0 + 50, 0, T0 + 50, T0 + 70, 0, T0 + 70, 1, None, None,
    ]  # fmt: skip


def test_access_view_reads_jti_family_and_cutoff(
    compare: Callable[[Scenario], list[Any]],
) -> None:
    f1 = family("f1", claims={"k": "v"})

    def scenario(store: TokenStore) -> list[Any]:
        store.create_family(f1, refresh("h1", "f1"))
        store.revoke_access("j1", T0 + 100)
        store.revoke_subject("alice", T0 + 7, T0 + 100)
        return [
            store.access_view("j1", "f1", "alice"),
            store.access_view("j2", "f1", "bob"),
            store.access_view("j1", "nope", "alice"),
        ]

    assert compare(scenario) == [
        AccessView(jti_revoked=True, family=f1, subject_cutoff=T0 + 7),
        AccessView(jti_revoked=False, family=f1, subject_cutoff=None),
        AccessView(jti_revoked=True, family=None, subject_cutoff=T0 + 7),
    ]


def test_sessions_are_newest_first_revoked_included(
    compare: Callable[[Scenario], list[Any]],
) -> None:
    def scenario(store: TokenStore) -> list[Any]:
        # Inserted out of order: the answer must be sorted, not insertion order.
        store.create_family(family("old", created_at=T0 + 1), refresh("h1", "old"))
        store.create_family(family("new", created_at=T0 + 3), refresh("h2", "new"))
        store.create_family(family("mid", created_at=T0 + 2), refresh("h3", "mid"))
        store.create_family(family("bobs", "bob", T0 + 9), refresh("h4", "bobs"))
        store.revoke_family("mid", T0 + 4)
        store.rotate("h1", T0 + 5, refresh("h5", "old", T0 + 5), None)
        before = store.sessions("alice")
        store.revoke_subject("alice", T0 + 6, T0 + DAY)
        return [before, store.sessions("alice"), store.sessions("bob"), store.sessions("nobody")]

    before, after, bob, nobody = compare(scenario)
    assert [f.family_id for f in before.families] == ["new", "mid", "old"]
    assert before.subject_cutoff is None
    assert [f.revoked_at for f in before.families] == [None, T0 + 4, None]
    assert before.families[2].last_used_at == T0 + 5
    assert after.families == before.families
    assert after.subject_cutoff == T0 + 6
    assert [f.family_id for f in bob.families] == ["bobs"]
    assert nobody == SubjectView((), None)


def test_purge_expired_counts_what_it_removes(
    compare: Callable[[Scenario], list[Any]],
) -> None:
    def scenario(store: TokenStore) -> list[Any]:
        store.create_family(family("fa", expires_at=T0 + 100), refresh("ha", "fa", T0, T0 + 50))
        store.rotate("ha", T0 + 1, refresh("hb", "fa", T0 + 1, T0 + 150), None)
        store.create_family(
            family("fb", "bob", expires_at=T0 + 300), refresh("hc", "fb", T0, T0 + 300)
        )
        store.revoke_access("j1", T0 + 100)
        store.revoke_access("j2", T0 + 200)
        store.revoke_subject("alice", T0, T0 + 100)
        store.revoke_subject("bob", T0, T0 + 400)
        counts = [store.purge_expired(now) for now in (T0, T0 + 50, T0 + 100, T0 + 100, T0 + 150)]
        remaining = [store.load_refresh("hc"), store.sessions("bob")]
        return [*counts, *remaining, store.purge_expired(T0 + 1000), store.load_refresh("hc")]

    result = compare(scenario)
    # ha at +50; fa, j1 and alice's cutoff at +100 (expiry equal to now counts); hb at +150.
    assert result[:5] == [0, 1, 3, 0, 1]
    assert result[5] is not None
    assert [f.family_id for f in result[6].families] == ["fb"]
    assert result[6].subject_cutoff == T0
    # Then fb, hc, j2 and bob's cutoff.
    assert result[7:] == [4, None]


@pytest.mark.parametrize("seed", range(3))
def test_random_operations_match_the_memory_store(
    compare: Callable[[Scenario], list[Any]], seed: int
) -> None:
    """Random interleavings of every method give the same answers as the reference."""

    def scenario(store: TokenStore) -> list[Any]:
        rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
        subjects = ["alice", "bob", "carol"]
        families: list[str] = []
        hashes: list[str] = []
        jtis = [f"j{i}" for i in range(5)]
        out: list[Any] = []
        for step in range(120):
            now = T0 + step + rng.random()  # unique creation times: no ties in sessions
            op = rng.randrange(9)
            if op == 0 or not families:
                fid, first = f"f{step}", f"h{step}"
                store.create_family(
                    family(fid, rng.choice(subjects), now,
                           expires_at=now + rng.uniform(1, 80), claims={"s": step}),
                    refresh(first, fid, now, now + rng.uniform(1, 60)),
                )  # fmt: skip
                families.append(fid)
                hashes.append(first)
            elif op == 1:
                old = rng.choice([*hashes, "missing"])
                new = f"r{step}"
                fid = rng.choice(families)
                sealed = rng.choice([None, rng.randbytes(8)])
                record = refresh(new, fid, now, now + rng.uniform(1, 60))
                won = store.rotate(old, now, record, sealed)
                if won:
                    hashes.append(new)
                out.append(won)
            elif op == 2:
                store.revoke_family(rng.choice([*families, "missing"]), now)
            elif op == 3:
                store.revoke_access(rng.choice(jtis), now + rng.uniform(-5, 40))
            elif op == 4:
                store.revoke_subject(rng.choice(subjects), now - rng.uniform(0, 5),
                                     now + rng.uniform(-5, 40))  # fmt: skip
            elif op == 5:
                out.append(store.load_refresh(rng.choice([*hashes, "missing"])))
            elif op == 6:
                out.append(store.access_view(rng.choice(jtis), rng.choice(families),
                                             rng.choice(subjects)))  # fmt: skip
            elif op == 7:
                out.append(store.sessions(rng.choice(subjects)))
            else:
                out.append(store.purge_expired(now - rng.uniform(0, 30)))
        return out

    result = compare(scenario)
    # The scenario exercised both outcomes of rotate and purges that removed something.
    assert True in result
    assert False in result
    assert any(type(r) is int and r > 0 for r in result)


# -- the file and its schema --------------------------------------------------


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def test_wal_mode_and_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.db"
    with umask(0), SQLiteTokenStore(path) as store:  # a lax umask must not widen the file
        store.create_family(family("f1"), refresh("h1", "f1"))
        assert store._db.connection().execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
        assert sqlite_rows(path, "PRAGMA journal_mode") == [("wal",)]
        for name in ("tokens.db", "tokens.db-wal", "tokens.db-shm"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name


def test_schema_version_is_recorded_and_reopening_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "tokens.db"
    with SQLiteTokenStore(path) as store:
        store.create_family(family("f1", claims={"a": 1}), refresh("h1", "f1"))
        store.revoke_access("j1", T0 + 10)
    assert sqlite_rows(path, "SELECT id, version FROM jwtward_token_schema") == [
        (1, SCHEMA_VERSION)
    ]
    tables = {row[0] for row in sqlite_rows(path, "SELECT name FROM sqlite_master")}
    assert {
        "jwtward_families", "jwtward_refresh_tokens", "jwtward_revoked_access",
        "jwtward_subject_cutoffs",
    } <= tables  # fmt: skip
    before = dump(path)
    for _ in range(2):
        with SQLiteTokenStore(path) as again:
            again.ping()
            view = again.load_refresh("h1")
            assert view is not None
            assert view.family == family("f1", claims={"a": 1})
    assert dump(path) == before


@pytest.mark.parametrize("existing_tables", [True, False])
def test_a_newer_schema_is_refused_untouched(tmp_path: Path, existing_tables: bool) -> None:
    path = tmp_path / "tokens.db"
    if existing_tables:
        with SQLiteTokenStore(path) as store:
            store.create_family(family("f1"), refresh("h1", "f1"))
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE IF NOT EXISTS jwtward_token_schema "
        "(id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)"
    )
    db.execute("INSERT OR REPLACE INTO jwtward_token_schema VALUES (1, ?)", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    before = dump(path)
    store = SQLiteTokenStore(path)
    calls: list[Callable[[], object]] = [
        store.ping,
        lambda: store.load_refresh("h1"),
        lambda: store.create_family(family("f2"), refresh("h2", "f2")),
        lambda: store.revoke_access("j", T0),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailable, match=f"schema {SCHEMA_VERSION + 1}"):
            call()
    store.close()
    assert dump(path) == before


def test_an_unreadable_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE jwtward_token_schema (id INTEGER PRIMARY KEY, version)")
    db.execute("INSERT INTO jwtward_token_schema VALUES (1, 'two')")
    db.commit()
    db.close()
    before = dump(path)
    with SQLiteTokenStore(path) as store, pytest.raises(StoreUnavailable, match="unreadable"):
        store.ping()
    assert dump(path) == before


def key_summary(keys: SQLiteKeyStore) -> tuple[int, list[tuple[Any, ...]]]:
    """The version and every record, private key included, in comparable form."""
    snapshot = keys.load()
    return snapshot.version, [
        (r.key.to_jwk(private=True), r.state, r.created_at, r.activates_at, r.revoked_at)
        for r in snapshot.records
    ]


def test_shares_one_file_with_the_sqlite_key_store(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with SQLiteTokenStore(path) as tokens:
        tokens.create_family(family("f1"), refresh("h1", "f1"))
        with SQLiteKeyStore(path, master_key=MASTER_KEY) as keys:
            KeyRing.generate("ES256", store=keys)
            summary = key_summary(keys)
        tokens.revoke_family("f1", T0 + 1)
    assert summary[0] == 1
    assert len(summary[1]) == 1
    with SQLiteKeyStore(path, master_key=MASTER_KEY) as keys, SQLiteTokenStore(path) as tokens:
        assert key_summary(keys) == summary
        view = tokens.load_refresh("h1")
        assert view is not None
        assert view.family is not None
        assert view.family.revoked_at == T0 + 1
    # And the other way round: keys first, tokens joining the file afterwards.
    other = tmp_path / "keys-first.db"
    with SQLiteKeyStore(other, master_key=MASTER_KEY) as keys:
        KeyRing.generate("ES256", store=keys)
        summary = key_summary(keys)
    with SQLiteTokenStore(other) as tokens:
        tokens.create_family(family("f1"), refresh("h1", "f1"))
    with SQLiteKeyStore(other, master_key=MASTER_KEY) as keys, SQLiteTokenStore(other) as tokens:
        assert key_summary(keys) == summary
        assert tokens.load_refresh("h1") is not None


# -- one winner among concurrent rotations ------------------------------------


def test_concurrent_rotations_in_threads_have_one_winner(tmp_path: Path) -> None:
    workers = 100
    with (
        SQLiteTokenStore(tmp_path / "tokens.db", timeout=30) as store,
        ThreadPoolExecutor(workers) as pool,
    ):
        for round_ in range(20):
            fid, token = f"f{round_}", f"h{round_}"
            store.create_family(family(fid), refresh(token, fid))
            barrier = threading.Barrier(workers)

            def contend(i: int, fid: str = fid, token: str = token,
                        barrier: threading.Barrier = barrier) -> bool:  # fmt: skip
                barrier.wait()
                return store.rotate(token, T0 + i, refresh(f"{token}-{i}", fid), None)

            results = list(pool.map(contend, range(workers)))
            assert results.count(True) == 1, round_
            winner = results.index(True)
            view = store.load_refresh(token)
            assert view is not None
            assert view.record.used_at == T0 + winner
            saved = [store.load_refresh(f"{token}-{i}") is not None for i in range(workers)]
            assert saved == results


WORKER = textwrap.dedent(
    """
    import sys
    from jwtward.tokens.records import RefreshRecord
    from jwtward.tokens.sqlite_store import SQLiteTokenStore

    store = SQLiteTokenStore(sys.argv[1], timeout=30)
    store.ping()
    name = sys.argv[2]
    print("ready", flush=True)
    for line in sys.stdin:
        token, family_id = line.split()
        print("armed", flush=True)
        sys.stdin.readline()  # go
        successor = RefreshRecord(f"{token}-{name}", family_id, 1.0, 2e9)
        won = store.rotate(token, float(name), successor, None)
        print("won" if won else "lost", flush=True)
    """
)


def child_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": PACKAGE_ROOT + (os.pathsep + path if path else "")}


def read_line(stream: IO[str] | None) -> str:
    assert stream is not None
    return stream.readline().strip()


def send(process: subprocess.Popen[str], line: str) -> None:
    assert process.stdin is not None
    process.stdin.write(line + "\n")
    process.stdin.flush()


def test_concurrent_rotations_in_processes_have_one_winner(tmp_path: Path) -> None:
    path = tmp_path / "tokens.db"
    store = SQLiteTokenStore(path)
    store.ping()  # the schema exists before the workers open the file
    workers = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", WORKER, str(path), str(i)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        for i in range(8)
    ]
    try:
        assert [read_line(w.stdout) for w in workers] == ["ready"] * 8
        for round_ in range(20):
            fid, token = f"f{round_}", f"h{round_}"
            store.create_family(family(fid), refresh(token, fid))
            for worker in workers:
                send(worker, f"{token} {fid}")
            assert [read_line(w.stdout) for w in workers] == ["armed"] * 8
            for worker in workers:
                send(worker, "go")
            results = [read_line(w.stdout) for w in workers]
            assert sorted(results) == ["lost"] * 7 + ["won"], round_
            winner = results.index("won")
            view = store.load_refresh(token)
            assert view is not None
            assert view.record.used_at == winner
            saved = [store.load_refresh(f"{token}-{i}") is not None for i in range(8)]
            assert saved == [r == "won" for r in results]
    finally:
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.close()
        for worker in workers:
            worker.wait(timeout=10)
        store.close()
    assert [w.returncode for w in workers] == [0] * 8


# -- durability ----------------------------------------------------------------


KILLED = textwrap.dedent(
    """
    import sys, time
    from jwtward.tokens.records import FamilyRecord, RefreshRecord
    from jwtward.tokens.sqlite_store import SQLiteTokenStore

    store = SQLiteTokenStore(sys.argv[1])
    store.create_family(
        FamilyRecord("f1", "alice", 1.0, 2e9, 1.0), RefreshRecord("h1", "f1", 1.0, 2e9)
    )
    store.revoke_family("f1", 42.0)
    store.revoke_access("jti-1", 2e9)
    store.revoke_subject("bob", 43.0, 2e9)
    print("done", flush=True)
    time.sleep(60)
    """
)


def test_revocations_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "tokens.db"
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", KILLED, str(path)],
        stdout=subprocess.PIPE, text=True, env=child_env(),
    )  # fmt: skip
    try:
        assert read_line(child.stdout) == "done"
        child.send_signal(signal.SIGKILL)  # no close, no checkpoint: only what was committed
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    with SQLiteTokenStore(path) as store:
        view = store.access_view("jti-1", "f1", "bob")
        assert view.jti_revoked is True
        assert view.subject_cutoff == 43.0
        assert view.family is not None
        assert view.family.revoked_at == 42.0
        assert store.rotate("h1", 50.0, RefreshRecord("h2", "f1", 50.0, 2e9), None) is False


# -- failures: StoreUnavailable, nothing lost, and recovery -------------------


def assert_unavailable(call: Callable[[], object]) -> StoreUnavailable:
    """The call fails with StoreUnavailable, never the driver's own exception."""
    with pytest.raises(StoreUnavailable) as info:
        call()
    error = info.value
    assert type(error) is StoreUnavailable
    assert error.__cause__ is None
    assert error.__suppress_context__
    assert str(error)
    return error


def exercise(store: SQLiteTokenStore, tag: str) -> None:
    """Write and read back one of everything: the store works."""
    store.create_family(family(f"f-{tag}"), refresh(f"h-{tag}", f"f-{tag}"))
    assert store.rotate(f"h-{tag}", T0 + 1, refresh(f"h2-{tag}", f"f-{tag}"), None) is True
    store.revoke_access(f"j-{tag}", T0 + HOUR)
    assert store.access_view(f"j-{tag}", f"f-{tag}", "alice").jti_revoked is True


def test_a_missing_directory_fails_then_works_once_created(tmp_path: Path) -> None:
    directory = tmp_path / "missing"
    store = SQLiteTokenStore(directory / "tokens.db")
    assert_unavailable(store.ping)
    assert_unavailable(lambda: store.create_family(family("f"), refresh("h", "f")))
    assert not directory.exists()
    directory.mkdir()
    exercise(store, "after")
    store.close()


def test_a_path_that_is_a_directory_fails(tmp_path: Path) -> None:
    path = tmp_path / "tokens.db"
    path.mkdir()
    (path / "inside").write_bytes(b"kept")
    store = SQLiteTokenStore(path)
    assert_unavailable(store.ping)
    assert_unavailable(lambda: store.revoke_subject("alice", T0, T0 + 1))
    assert (path / "inside").read_bytes() == b"kept"
    (path / "inside").unlink()
    path.rmdir()
    exercise(store, "after")
    store.close()


def test_a_file_that_is_not_a_database_fails_untouched(tmp_path: Path) -> None:
    path = tmp_path / "tokens.db"
    garbage = b"definitely not SQLite\x00" + bytes(range(256)) * 16
    path.write_bytes(garbage)
    store = SQLiteTokenStore(path)
    assert_unavailable(store.ping)
    assert_unavailable(lambda: store.load_refresh("h"))
    assert_unavailable(lambda: store.create_family(family("f"), refresh("h", "f")))
    store.close()
    assert path.read_bytes() == garbage


def test_a_lock_held_beyond_the_timeout_fails_then_works(tmp_path: Path) -> None:
    path = tmp_path / "tokens.db"
    store = SQLiteTokenStore(path, timeout=0.2)
    store.create_family(family("f1"), refresh("h1", "f1"))
    store.revoke_access("j1", T0 + HOUR)
    before = dump(path)
    locker = sqlite3.connect(path, isolation_level=None, timeout=0)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        writes: list[Callable[[], object]] = [
            lambda: store.rotate("h1", T0 + 1, refresh("h2", "f1"), None),
            lambda: store.create_family(family("f2"), refresh("h3", "f2")),
            lambda: store.revoke_family("f1", T0 + 2),
            lambda: store.revoke_access("j2", T0 + HOUR),
            lambda: store.revoke_subject("alice", T0, T0 + HOUR),
            lambda: store.purge_expired(T0 + 10 * DAY),
        ]
        for write in writes:
            started = time.monotonic()
            assert "locked" in str(assert_unavailable(write))
            assert 0.15 <= time.monotonic() - started < 5
        # A fresh store object, whose schema check needs the write lock, fails as well.
        fresh = SQLiteTokenStore(path, timeout=0.2)
        assert_unavailable(fresh.ping)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert dump(path) == before  # nothing half-written
    view = store.load_refresh("h1")
    assert view is not None
    assert view.record.used_at is None
    assert store.rotate("h1", T0 + 1, refresh("h2", "f1"), None) is True
    assert store.access_view("j1", "f1", "alice").jti_revoked is True
    exercise(store, "after")
    fresh.ping()
    fresh.close()
    store.close()


def test_a_full_database_fails_then_works_once_the_limit_is_lifted(tmp_path: Path) -> None:
    path = tmp_path / "tokens.db"
    store = SQLiteTokenStore(path)
    store.create_family(family("f1", claims={"k": "v"}), refresh("h1", "f1"))
    connection = store._db.connection()
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.execute(f"PRAGMA max_page_count = {pages}")
    big = family("f2", claims={"blob": "x" * 40_000})
    error = assert_unavailable(lambda: store.create_family(big, refresh("h2", "f2")))
    assert "full" in str(error)
    connection.execute("PRAGMA max_page_count = 1073741823")
    assert store.load_refresh("h2") is None  # the failed write was rolled back whole
    view = store.load_refresh("h1")
    assert view is not None
    assert view.family == family("f1", claims={"k": "v"})
    store.create_family(big, refresh("h2", "f2"))
    second = store.load_refresh("h2")
    assert second is not None
    assert second.family == big
    exercise(store, "after")
    store.close()


# -- a service restarted on the same file -------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_token_service_keeps_sessions_and_revocations_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "service.db"
    clock = Clock()

    def start() -> TokenService:
        ring = KeyRing.generate(
            "ES256", store=SQLiteKeyStore(path, master_key=MASTER_KEY), clock=clock
        )
        return TokenService(
            ring,
            issuer="https://issuer.example",
            audience="api",
            store=SQLiteTokenStore(path),
            refresh_lifetime=timedelta(days=1),
            clock=clock,
        )

    with start() as service:
        a1 = service.issue("alice", metadata={"user_agent": "phone"}, scope="read")
        clock.now += 1
        b1 = service.issue("alice", metadata={"user_agent": "laptop"})
        c1 = service.issue("bob")
        clock.now += 1
        a2 = service.refresh(a1.refresh_token)
        service.revoke(b1.refresh_token)  # ends the laptop session
        service.revoke(a2.access_token)  # denies one access token
        assert [s.family_id for s in service.sessions("alice")] == [a1.session_id]

    clock.now += 1
    with start() as service:
        sessions = service.sessions("alice")
        assert [s.family_id for s in sessions] == [a1.session_id]
        assert dict(sessions[0].metadata) == {"user_agent": "phone"}
        assert sessions[0].scope == "read"
        with pytest.raises(RevokedToken):
            service.verify(a2.access_token)
        with pytest.raises(RevokedToken):
            service.verify(b1.access_token)
        with pytest.raises(RevokedToken):
            service.refresh(b1.refresh_token)
        assert service.verify(c1.access_token).subject == "bob"
        # The rotation survived: the old token is a reuse, which ends the session.
        with pytest.raises(RefreshTokenReuse):
            service.refresh(a1.refresh_token)
        service.revoke_subject("bob")

    clock.now += 1
    with start() as service:
        assert service.sessions("alice") == []
        with pytest.raises(RevokedToken):
            service.refresh(a2.refresh_token)
        with pytest.raises(RevokedToken):
            service.verify(c1.access_token)
        assert service.sessions("bob") == []
        d1 = service.issue("bob")  # a session after the cutoff is fine
        assert service.verify(d1.access_token).subject == "bob"


def test_records_round_trip_exact_floats(tmp_path: Path) -> None:
    """Times come back bit-for-bit: REAL keeps every double."""
    odd = family("f1", created_at=T0 + 0.1 + 1e-7, expires_at=T0 + 2 / 3 * DAY)
    first = refresh("h1", "f1", T0 + 1 / 3, T0 + 1e-6 + HOUR)
    with SQLiteTokenStore(tmp_path / "tokens.db") as store:
        store.create_family(odd, first)
        view = store.load_refresh("h1")
    assert view is not None
    assert view.record == first
    assert view.family == odd
