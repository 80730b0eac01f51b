"""The token server's password hashing and user stores (SQLite and PostgreSQL).

Every store test runs against a fresh SQLite file and a fresh PostgreSQL
schema. The server is ``$JWTWARD_TEST_POSTGRES_DSN`` (default: the local
``test`` database); without it the PostgreSQL cases skip, except under
``CI=true`` where they fail. Every schema a run creates is named
``jwtward_test_users_<random>...`` and dropped at the end of the module.

Argon2 runs with small parameters here (1 pass, 8 MiB) to keep the run fast;
the behaviour does not depend on the cost.
"""

from __future__ import annotations

import sqlite3
import threading
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import argon2
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from jwtward.errors import InvalidArgument, JWTWardError, StoreUnavailable
from jwtward.server.passwords import MAX_PASSWORD_LENGTH, PasswordHasher, Verification
from jwtward.server.users import (
    MAX_USERNAME_LENGTH,
    PostgresUserStore,
    SQLiteUserStore,
    User,
    UserExists,
    UserStore,
    normalize_username,
)
from jwtward.tokens import SQLiteTokenStore
from jwtward.tokens.postgres_store import PostgresTokenStore
from tests.servers import PostgresServer, postgres_server

FAST = {"time_cost": 1, "memory_cost": 8192, "parallelism": 1}
T0 = 1_700_000_000.25


# -- fixtures -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server("users") as server:
        yield server


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(**FAST)


@pytest.fixture(scope="module")
def alice_hash(hasher: PasswordHasher) -> str:
    return hasher.hash("correct horse battery staple")


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UserStore]:
    """A fresh, empty store of each kind."""
    made: UserStore
    if request.param == "sqlite":
        made = SQLiteUserStore(tmp_path / "users.db")
    else:
        server: PostgresServer = request.getfixturevalue("pg")
        made = PostgresUserStore(server.dsn, schema=server.new_schema())
    try:
        yield made
    finally:
        made.close()


def assert_unavailable(call: Callable[[], object]) -> None:
    with pytest.raises(StoreUnavailable) as info:
        call()
    assert info.value.status_code == 503
    assert info.value.__cause__ is None


# -- passwords ----------------------------------------------------------------------


def test_hashes_verify_and_wrong_passwords_fail(hasher: PasswordHasher) -> None:
    stored = hasher.hash("s3cret pässword")
    assert stored.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert hasher.verify(stored, "s3cret pässword") == Verification(ok=True, needs_rehash=False)
    for wrong in ["s3cret password", "S3cret pässword", "s3cret pässword ", "", "x" * 2000]:
        assert hasher.verify(stored, wrong) == Verification(ok=False, needs_rehash=False)
    # A fresh salt every time: equal passwords never give equal hashes.
    again = hasher.hash("s3cret pässword")
    assert again != stored
    assert hasher.verify(again, "s3cret pässword").ok


def test_passwords_are_compared_in_nfc(hasher: PasswordHasher) -> None:
    composed = "caf\u00e9"
    decomposed = "cafe\u0301"
    assert unicodedata.normalize("NFC", decomposed) == composed
    assert hasher.verify(hasher.hash(composed), decomposed).ok
    assert hasher.verify(hasher.hash(decomposed), composed).ok
    # NFC only, not NFKC: a full-width letter is another password.
    assert not hasher.verify(hasher.hash("abc"), "\uff41bc").ok


def test_password_length_bounds(hasher: PasswordHasher) -> None:
    longest = "p" * MAX_PASSWORD_LENGTH
    assert hasher.verify(hasher.hash(longest), longest).ok
    assert hasher.verify(hasher.hash("p"), "p").ok
    for bad in ["", "p" * (MAX_PASSWORD_LENGTH + 1), "bad\ud800surrogate"]:
        with pytest.raises(InvalidArgument):
            hasher.hash(bad)
        assert hasher.verify(hasher.hash(longest), bad) == Verification(ok=False)
        assert hasher.verify(None, bad) == Verification(ok=False)
    for not_text in [b"bytes", None, 42]:
        with pytest.raises(InvalidArgument):
            hasher.hash(not_text)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            hasher.verify(None, not_text)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        hasher.verify(b"$argon2id$", "password")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "params",
    [
        {"time_cost": 0},
        {"time_cost": True},
        {"memory_cost": 7, "parallelism": 1},
        {"memory_cost": 63, "parallelism": 8},
        {"memory_cost": 1 << 23},
        {"parallelism": 0},
        {"parallelism": 1.5},
    ],
)
def test_parameters_out_of_range_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        PasswordHasher(**params)


def test_defaults_are_the_rfc_9106_low_memory_profile() -> None:
    profile = argon2.profiles.RFC_9106_LOW_MEMORY
    default = PasswordHasher()
    assert (default.time_cost, default.memory_cost, default.parallelism) == (
        profile.time_cost,
        profile.memory_cost,
        profile.parallelism,
    )
    assert repr(default) == "PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4)"


def test_needs_rehash_when_the_parameters_change(hasher: PasswordHasher) -> None:
    stored = hasher.hash("password one")
    for changed in [
        PasswordHasher(time_cost=2, memory_cost=8192, parallelism=1),
        PasswordHasher(time_cost=1, memory_cost=16384, parallelism=1),
        PasswordHasher(time_cost=1, memory_cost=8192, parallelism=2),
    ]:
        assert changed.verify(stored, "password one") == Verification(ok=True, needs_rehash=True)
        # A wrong password says nothing about the hash's parameters.
        assert changed.verify(stored, "password two") == Verification(ok=False)
        # Rehashing with the new parameters settles it.
        rehashed = changed.hash("password one")
        assert changed.verify(rehashed, "password one") == Verification(ok=True)
        assert hasher.verify(rehashed, "password one") == Verification(ok=True, needs_rehash=True)
    # Another argon2 variant also verifies, and is upgraded to argon2id.
    argon2i = argon2.PasswordHasher(
        time_cost=1, memory_cost=8192, parallelism=1, type=argon2.Type.I
    ).hash("password one")
    assert argon2i.startswith("$argon2i$")
    assert hasher.verify(argon2i, "password one") == Verification(ok=True, needs_rehash=True)


class VerifySpy:
    """Records every argon2 verification (the hash it ran against) and every hashing."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.verified: list[str] = []
        self.hashed = 0
        real_verify = argon2.PasswordHasher.verify
        real_hash = argon2.PasswordHasher.hash

        def verify(inner: argon2.PasswordHasher, stored: str | bytes, password: Any) -> bool:
            self.verified.append(stored if isinstance(stored, str) else stored.decode())
            return real_verify(inner, stored, password)

        def hash_(inner: argon2.PasswordHasher, password: Any, **kwargs: Any) -> str:
            self.hashed += 1
            return real_hash(inner, password, **kwargs)

        monkeypatch.setattr(argon2.PasswordHasher, "verify", verify)
        monkeypatch.setattr(argon2.PasswordHasher, "hash", hash_)


def test_unknown_users_cost_one_verification_like_known_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fresh = PasswordHasher(**FAST)
    known = fresh.hash("known password")
    spy = VerifySpy(monkeypatch)

    assert fresh.verify(known, "wrong password") == Verification(ok=False)
    assert spy.verified == [known]

    # Unknown user: one argon2 verification against a dummy hash with the
    # same parameters, made once (the first time) and reused.
    assert fresh.verify(None, "any password") == Verification(ok=False)
    assert spy.hashed == 1
    assert len(spy.verified) == 2
    dummy = spy.verified[1]
    assert dummy != known
    assert argon2.extract_parameters(dummy) == argon2.extract_parameters(known)
    assert fresh.verify(None, "another") == Verification(ok=False)
    assert spy.verified[2:] == [dummy]
    assert spy.hashed == 1

    # A stored hash that cannot be used (corrupt, or absurd parameters that
    # would allocate 8 GiB) costs the same one verification, on the dummy.
    huge = "$argon2id$v=19$m=8388608,t=1,p=1$" + known.rsplit("$", 2)[1] + "$" + "A" * 43
    for unusable in ["", "garbage", known.replace("argon2id", "argon3"), huge, known + "$x"]:
        before = len(spy.verified)
        assert fresh.verify(unusable, "known password") == Verification(ok=False)
        assert spy.verified[before:] == [dummy]
    # A truncated digest still parses (as a shorter hash): verified as it is,
    # one verification again, and it does not match.
    before = len(spy.verified)
    assert fresh.verify(known[:-5], "known password") == Verification(ok=False)
    assert spy.verified[before:] == [known[:-5]]
    assert spy.hashed == 1


def test_the_dummy_hash_never_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = PasswordHasher(**FAST)
    spy = VerifySpy(monkeypatch)
    fresh.verify(None, "x")
    (dummy,) = spy.verified
    # Even a password that matched the dummy would not log an unknown user in;
    # nobody can know it, but the answer must not depend on that.
    assert fresh.verify(None, "x") == Verification(ok=False)
    assert dummy.startswith("$argon2id$v=19$m=8192,t=1,p=1$")


# -- usernames ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("alice", "alice"),
        ("Alice", "alice"),
        ("  ALICE\u3000", "alice"),  # trailing ideographic space folds to a space
        ("\uff21\uff4c\uff49\uff43\uff45", "alice"),  # full-width
        ("Stra\u00dfe", "strasse"),
        ("\ufb00", "ff"),  # a ligature
        ("cafe\u0301", "caf\u00e9"),  # composed
        ("\u212b", "\u00e5"),  # the angstrom sign is a letter a with ring
        ("jane doe", "jane doe"),
        ("user@example.com", "user@example.com"),
        ("x" * MAX_USERNAME_LENGTH, "x" * MAX_USERNAME_LENGTH),
    ],
)
def test_normalize_username(raw: str, normalized: str) -> None:
    assert normalize_username(raw) == normalized
    assert normalize_username(normalized) == normalized  # idempotent


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "\u3000",
        "x" * (MAX_USERNAME_LENGTH + 1),
        "x" * 100_000,
        "a\x00b",
        "a\tb",
        "a\nb",
        "a\x7fb",
        "a\u200bb",  # zero-width space
        "a\u202eb",  # right-to-left override
        "a\u2028b",  # line separator
        "a\ue000b",  # private use
        "a\ud800b",  # lone surrogate
        "a:b",
        "\ufe55",  # a small colon, a colon after NFKC
    ],
)
def test_normalize_username_refuses(raw: str) -> None:
    with pytest.raises(InvalidArgument):
        normalize_username(raw)


@pytest.mark.parametrize("raw", [None, b"alice", 7])
def test_normalize_username_refuses_non_text(raw: Any) -> None:
    with pytest.raises(InvalidArgument):
        normalize_username(raw)


# -- the user record ----------------------------------------------------------------


def test_repr_never_shows_the_hash(alice_hash: str) -> None:
    user = User(
        username="alice",
        password_hash=alice_hash,
        disabled=False,
        created_at=T0,
        updated_at=T0,
        claims={"email": "alice@example.com", "roles": ["admin"]},
        scope="read",
    )
    salt_and_digest = alice_hash.rsplit("$", 2)[1:]
    for text in [repr(user), str(user), f"{user}", f"{user!r}", repr([user]), repr({"u": user})]:
        assert alice_hash not in text
        assert "argon2" not in text
        for part in salt_and_digest:
            assert part not in text
        assert "alice@example.com" not in text  # claim values are personal data
        assert "'alice'" in text
        assert "['email', 'roles']" in text


def test_store_reprs_never_show_the_dsn() -> None:
    store = PostgresUserStore("postgresql://admin:hunter2secret@127.0.0.1:1/db", schema="s")
    assert "hunter2secret" not in repr(store)
    assert repr(store) == "PostgresUserStore(schema='s')"
    store.close()


# -- both stores --------------------------------------------------------------------


def test_add_get_list(store: UserStore, alice_hash: str, hasher: PasswordHasher) -> None:
    assert store.get("alice") is None
    assert store.list_users() == []
    alice = store.add(
        "Alice",
        alice_hash,
        claims={"roles": ["admin", "ops"], "email": "a@example.com", "n": {"x": 1.5}},
        scope="read write",
        now=T0,
    )
    expected = User(
        username="alice",
        password_hash=alice_hash,
        disabled=False,
        created_at=T0,
        updated_at=T0,
        claims={"roles": ["admin", "ops"], "email": "a@example.com", "n": {"x": 1.5}},
        scope="read write",
    )
    assert alice == expected
    assert store.get("alice") == expected
    assert store.get(" ALICE ") == expected
    assert store.get("\uff41lice") == expected
    bob = store.add("bob", "$argon2id$placeholder", now=T0 + 1)
    assert bob.claims == {}
    assert bob.scope is None
    zoe = store.add("Zoe", "$argon2id$placeholder", now=T0 + 2)
    eve = store.add("\u00e9ve", "$argon2id$placeholder", now=T0 + 3)
    # Sorted by (normalized) username, in code point order.
    assert store.list_users() == [alice, bob, zoe, eve]
    assert [u.username for u in store.list_users()] == ["alice", "bob", "zoe", "\u00e9ve"]
    stored = store.get("alice")
    assert stored is not None
    assert hasher.verify(stored.password_hash, "correct horse battery staple").ok
    assert not hasher.verify(stored.password_hash, "Correct horse battery staple").ok
    # The caller's copy of the claims is its own.
    stored.claims["roles"].append("root")
    again = store.get("alice")
    assert again is not None
    assert again.claims["roles"] == ["admin", "ops"]


def test_disable_and_enable(store: UserStore, alice_hash: str) -> None:
    store.add("alice", alice_hash, now=T0)
    assert store.set_disabled("ALICE", True, T0 + 10) is True
    user = store.get("alice")
    assert user is not None
    assert (user.disabled, user.created_at, user.updated_at) == (True, T0, T0 + 10)
    assert store.list_users()[0].disabled is True
    assert store.set_disabled("alice", False, T0 + 20) is True
    user = store.get("alice")
    assert user is not None
    assert (user.disabled, user.created_at, user.updated_at) == (False, T0, T0 + 20)
    assert store.set_disabled("nobody", True, T0) is False
    assert store.get("nobody") is None
    with pytest.raises(InvalidArgument):
        store.set_disabled("alice", 1, T0)  # type: ignore[arg-type]


def test_set_password_hash(store: UserStore, alice_hash: str, hasher: PasswordHasher) -> None:
    store.add("alice", alice_hash, claims={"roles": ["a"]}, scope="read", now=T0)
    new_hash = hasher.hash("a new password")
    assert store.set_password_hash("Alice", new_hash, T0 + 5) is True
    user = store.get("alice")
    assert user is not None
    assert user.password_hash == new_hash
    assert (user.created_at, user.updated_at) == (T0, T0 + 5)
    assert (dict(user.claims), user.scope, user.disabled) == ({"roles": ["a"]}, "read", False)
    assert hasher.verify(user.password_hash, "a new password").ok
    assert not hasher.verify(user.password_hash, "correct horse battery staple").ok
    assert store.set_password_hash("nobody", new_hash, T0) is False
    assert store.get("nobody") is None


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("alice", "alice"),
        ("alice", "Alice"),
        ("alice", "  ALICE  "),
        ("alice", "\uff41\uff4c\uff49\uff43\uff45"),
        ("Stra\u00dfe", "STRASSE"),
        ("ff", "\ufb00"),
        ("caf\u00e9", "CAFE\u0301"),
    ],
)
def test_duplicate_usernames_are_refused(
    store: UserStore, alice_hash: str, first: str, second: str
) -> None:
    original = store.add(first, alice_hash, claims={"v": 1}, now=T0)
    with pytest.raises(UserExists) as info:
        store.add(second, "$argon2id$other", claims={"v": 2}, now=T0 + 1)
    assert info.value.status_code == 409
    assert isinstance(info.value, JWTWardError)
    assert "$argon2id$other" not in str(info.value)
    assert store.get(second) == original
    assert store.list_users() == [original]


def test_concurrent_adds_of_one_name_have_one_winner(store: UserStore) -> None:
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def add(i: int) -> None:
        barrier.wait()
        try:
            store.add(["bob", "BOB", " Bob"][i % 3], f"$argon2id${i}", now=T0 + i)
            result = f"won {i}"
        except UserExists:
            result = "exists"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o.startswith("won")]
    assert len(winners) == 1
    assert outcomes.count("exists") == 7
    winner = int(winners[0].split()[1])
    assert [(u.username, u.password_hash) for u in store.list_users()] == [
        ("bob", f"$argon2id${winner}")
    ]


def test_invalid_usernames(store: UserStore, alice_hash: str) -> None:
    for bad in ["", "a\x00b", "a:b", "x" * 65, "a\u200bb"]:
        with pytest.raises(InvalidArgument):
            store.add(bad, alice_hash, now=T0)
        # A name that can never be stored is an unknown user when looked up.
        assert store.get(bad) is None
        assert store.set_disabled(bad, True, T0) is False
        assert store.set_password_hash(bad, alice_hash, T0) is False
    for not_text in [None, b"alice", 3]:
        with pytest.raises(InvalidArgument):
            store.get(not_text)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            store.add(not_text, alice_hash, now=T0)  # type: ignore[arg-type]
    assert store.list_users() == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"password_hash": ""},
        {"password_hash": None},
        {"password_hash": "h\u00e4sh"},
        {"password_hash": "hash\nwith newline"},
        {"password_hash": "h" * 513},
        {"claims": {"bad": float("nan")}},
        {"claims": {"bad": {1, 2}}},
        {"claims": {1: "not a str name"}},
        {"claims": ["not", "a", "mapping"]},
        {"scope": 5},
        {"scope": "read\nwrite"},
        {"now": float("inf")},
        {"now": True},
        {"now": "1700000000"},
    ],
)
def test_add_refuses_bad_arguments(store: UserStore, kwargs: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {"password_hash": "$argon2id$ok", "now": T0, **kwargs}
    password_hash = arguments.pop("password_hash")
    with pytest.raises(InvalidArgument):
        store.add("alice", password_hash, **arguments)
    assert store.get("alice") is None


def test_updates_refuse_bad_arguments(store: UserStore) -> None:
    store.add("alice", "$argon2id$ok", now=T0)
    with pytest.raises(InvalidArgument):
        store.set_password_hash("alice", "", T0)
    with pytest.raises(InvalidArgument):
        store.set_disabled("alice", True, float("nan"))
    user = store.get("alice")
    assert user is not None
    assert (user.password_hash, user.disabled, user.updated_at) == ("$argon2id$ok", False, T0)


def test_ping(store: UserStore) -> None:
    store.ping()
    store.add("alice", "$argon2id$ok", now=T0)
    store.ping()


# -- SQLite specifics -----------------------------------------------------------------


def test_sqlite_file_is_private_and_versioned(tmp_path: Path) -> None:
    path = tmp_path / "users.db"
    store = SQLiteUserStore(path)
    store.add("alice", "$argon2id$ok", now=T0)
    store.close()
    assert path.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM jwtward_user_schema").fetchall() == [(1,)]
    # Reopening migrates nothing and keeps the data.
    reopened = SQLiteUserStore(path)
    assert [u.username for u in reopened.list_users()] == ["alice"]
    reopened.close()


def test_sqlite_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "users.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE jwtward_user_schema (id INTEGER PRIMARY KEY, version INTEGER)")
        db.execute("INSERT INTO jwtward_user_schema VALUES (1, 99)")
    store = SQLiteUserStore(path)
    assert_unavailable(store.ping)
    assert_unavailable(lambda: store.get("alice"))
    store.close()


def test_sqlite_shares_one_file_with_the_token_store(tmp_path: Path) -> None:
    path = tmp_path / "jwtward.db"
    tokens = SQLiteTokenStore(path)
    tokens.revoke_access("jti-1", T0 + 60)
    users = SQLiteUserStore(path)
    users.add("alice", "$argon2id$ok", now=T0)
    assert tokens.access_view("jti-1", "", "").jti_revoked
    assert [u.username for u in users.list_users()] == ["alice"]
    tokens.close()
    users.close()


def test_sqlite_down_then_back(tmp_path: Path) -> None:
    directory = tmp_path / "missing"
    store = SQLiteUserStore(directory / "users.db")
    assert_unavailable(store.ping)
    assert_unavailable(lambda: store.get("alice"))
    assert_unavailable(lambda: store.add("alice", "$argon2id$ok", now=T0))
    assert_unavailable(store.list_users)
    assert_unavailable(lambda: store.set_disabled("alice", True, T0))
    directory.mkdir()
    store.add("alice", "$argon2id$ok", now=T0)
    assert store.get("alice") is not None
    store.close()


def test_sqlite_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "users.db"
    garbage = b"not a database\x00" + bytes(range(256)) * 8
    path.write_bytes(garbage)
    store = SQLiteUserStore(path)
    assert_unavailable(store.ping)
    assert_unavailable(lambda: store.add("alice", "$argon2id$ok", now=T0))
    store.close()
    assert path.read_bytes() == garbage


def test_sqlite_corrupt_row_is_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "users.db"
    store = SQLiteUserStore(path)
    store.add("alice", "$argon2id$ok", now=T0)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE jwtward_users SET claims = '[not json'")
    assert_unavailable(lambda: store.get("alice"))
    assert_unavailable(store.list_users)
    store.close()


# -- PostgreSQL specifics -------------------------------------------------------------


def test_postgres_down_is_store_unavailable() -> None:
    # Nothing listens on port 1; the connection is refused at once.
    store = PostgresUserStore("postgresql://postgres@127.0.0.1:1/test", schema="s", timeout=0.5)
    assert_unavailable(store.ping)
    assert_unavailable(lambda: store.get("alice"))
    assert_unavailable(lambda: store.add("alice", "$argon2id$ok", now=T0))
    assert_unavailable(store.list_users)
    assert_unavailable(lambda: store.set_password_hash("alice", "$argon2id$ok", T0))
    store.close()


def test_postgres_closed_store_is_store_unavailable(pg: PostgresServer) -> None:
    store = PostgresUserStore(pg.dsn, schema=pg.new_schema())
    store.add("alice", "$argon2id$ok", now=T0)
    store.close()
    assert_unavailable(lambda: store.get("alice"))


def test_postgres_killed_connections_are_replaced(pg: PostgresServer) -> None:
    app = f"{pg.prefix}_kill"
    store = PostgresUserStore(
        make_conninfo(pg.dsn, application_name=app),
        schema=pg.new_schema(),
        min_size=1,
        max_size=1,
    )
    try:
        store.add("alice", "$argon2id$ok", now=T0)
        killed = pg.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (app,),
        )
        assert killed
        assert all(row[0] for row in killed)
        user = store.get("alice")
        assert user is not None
        assert user.password_hash == "$argon2id$ok"
    finally:
        store.close()


def test_postgres_schema_tables_and_versions(pg: PostgresServer) -> None:
    schema = pg.new_schema()
    store = PostgresUserStore(pg.dsn, schema=schema)
    store.ping()
    tables = pg.query("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))
    assert {row[0] for row in tables} == {"users", "user_schema_version"}
    count_versions = psycopg.sql.SQL("SELECT version FROM {}.user_schema_version").format(
        psycopg.sql.Identifier(schema)
    )
    assert pg.query(count_versions) == [(1,)]
    store.close()
    # A second store on the same schema migrates nothing again.
    again = PostgresUserStore(pg.dsn, schema=schema)
    again.ping()
    again.close()
    assert pg.query(count_versions) == [(1,)]


@pytest.mark.parametrize("users_first", [True, False])
def test_postgres_shares_a_schema_with_the_token_store(
    pg: PostgresServer, users_first: bool
) -> None:
    schema = pg.new_schema()
    users = PostgresUserStore(pg.dsn, schema=schema)
    tokens = PostgresTokenStore(pg.dsn, schema=schema)
    try:
        if users_first:
            users.add("alice", "$argon2id$ok", now=T0)
            tokens.revoke_access("jti-1", T0 + 60)
        else:
            tokens.revoke_access("jti-1", T0 + 60)
            users.add("alice", "$argon2id$ok", now=T0)
        assert tokens.access_view("jti-1", "", "").jti_revoked
        assert [u.username for u in users.list_users()] == ["alice"]
    finally:
        users.close()
        tokens.close()


def test_postgres_constructor_refusals() -> None:
    with pytest.raises(InvalidArgument):
        PostgresUserStore()
    with pytest.raises(InvalidArgument):
        PostgresUserStore("postgresql://x@127.0.0.1:1/db", schema="Bad-Name")
    with pytest.raises(InvalidArgument):
        PostgresUserStore("postgresql://x@127.0.0.1:1/db", schema='x"; DROP TABLE users; --')
    with pytest.raises(InvalidArgument):
        PostgresUserStore("postgresql://x@127.0.0.1:1/db", timeout=0)
