"""The persistent key stores: file and SQLite, with sealed private keys.

Both stores are run through the same behaviour: round trips of every record
field and key type, compare-and-swap, no plaintext private material at rest,
wrong secrets, corrupt and unwritable storage, and concurrent writers in
threads and processes that must never lose an update.
"""

from __future__ import annotations

import base64
import errno
import json
import logging
import multiprocessing
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from jwtward import Key
from jwtward.codecs import b64encode
from jwtward.errors import InvalidArgument
from jwtward.keys.file_store import FileKeyStore
from jwtward.keys.records import KeyRecord, KeyState, StoreConflict, StoreError, StoreSnapshot
from jwtward.keys.sealing import (
    MASTER_KEY_ENV,
    PlaintextKeyWarning,
    Protection,
    ScryptParams,
    UnsealError,
)
from jwtward.keys.sqlite_store import SQLiteKeyStore
from tests.key_records import (
    FAST_SCRYPT,
    MASTER_KEY,
    PRIVATE_MEMBERS,
    PROTECTIONS,
    assert_same_records,
    hs_record,
    records_of,
)

OTHER_MASTER_KEY = bytes(range(1, 33))

Store = FileKeyStore | SQLiteKeyStore
StoreFactory = Callable[..., Store]


# -- fixtures ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_master_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)


@pytest.fixture(params=["file", "sqlite"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_store(kind: str, tmp_path: Path) -> Iterator[StoreFactory]:
    """Open a store of ``kind`` at ``tmp_path/keys`` (or ``path=``) with any protection."""
    opened: list[Store] = []

    def make(path: Path | None = None, **protection: Any) -> Store:
        target = path if path is not None else tmp_path / "keys"
        store: Store = (
            FileKeyStore(target, **protection)
            if kind == "file"
            else SQLiteKeyStore(target, **protection)
        )
        opened.append(store)
        return store

    yield make
    for store in opened:
        if isinstance(store, SQLiteKeyStore):
            store.close()


def stored_bytes(path: Path) -> bytes:
    """Everything a store wrote next to ``path``: the file, its -wal and -shm."""
    return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))


KEY_SPECS: list[tuple[str, dict[str, Any]]] = [
    ("ES256", {}),
    ("ES384", {}),
    ("ES512", {}),
    ("ES256K", {}),
    ("EdDSA", {}),
    ("EdDSA", {"crv": "Ed448"}),
    ("RS256", {}),
    ("PS512", {}),
    ("RSA-OAEP-256", {}),
    ("ECDH-ES+A256KW", {}),
    ("ECDH-ES", {"crv": "X25519"}),
    ("HS256", {}),
    ("HS512", {}),
    ("A256KW", {}),
    ("dir", {}),
]


def _generate(alg: str, options: dict[str, Any]) -> Key | None:
    try:
        return Key.generate(alg, **options)
    except Exception:  # an algorithm this build does not offer is not part of the test
        return None


@pytest.fixture(scope="module")
def every_key() -> list[Key]:
    keys = [key for alg, options in KEY_SPECS if (key := _generate(alg, options)) is not None]
    assert {key.kty for key in keys} == {"EC", "OKP", "RSA", "oct"}
    return keys


# -- round trips ----------------------------------------------------------------


def test_a_new_store_is_empty_at_version_zero(make_store: StoreFactory) -> None:
    assert make_store(master_key=MASTER_KEY).load() == StoreSnapshot(version=0, records=())


@pytest.mark.parametrize("protection", sorted(PROTECTIONS))
def test_every_field_and_key_type_round_trips(
    make_store: StoreFactory, every_key: list[Key], protection: str
) -> None:
    records = records_of(every_key)
    store = make_store(**PROTECTIONS[protection])
    assert store.save(0, records) == 1
    assert_same_records(store.load(), records)
    # A second process (a fresh store object) reads the same.
    reopened = make_store(**PROTECTIONS[protection])
    snapshot = reopened.load()
    assert snapshot.version == 1
    assert_same_records(snapshot, records)
    for loaded in snapshot.records:
        assert loaded.key.is_private
        signature_or_none = loaded.key.sign(b"m") if loaded.key.use == "sig" else None
        if signature_or_none is not None:
            loaded.key.verify(b"m", signature_or_none)


def test_public_only_keys_round_trip(make_store: StoreFactory, every_key: list[Key]) -> None:
    public = [key.public_key() for key in every_key if key.kty != "oct"]
    records = records_of(public)
    store = make_store(master_key=MASTER_KEY)
    store.save(0, records)
    snapshot = store.load()
    assert_same_records(snapshot, records)
    assert not any(record.key.is_private for record in snapshot.records)


def test_an_empty_record_list_is_a_version(make_store: StoreFactory) -> None:
    store = make_store(master_key=MASTER_KEY)
    store.save(0, [hs_record("a")])
    assert store.save(1, []) == 2
    assert store.load() == StoreSnapshot(version=2, records=())


def test_key_ops_survive_the_round_trip(make_store: StoreFactory) -> None:
    jwk = Key.generate("ES256", kid="ops").to_jwk(private=True) | {"key_ops": ["sign"]}
    key = Key.from_jwk(jwk)
    store = make_store(master_key=MASTER_KEY)
    store.save(0, [KeyRecord(key, KeyState.ACTIVE, 1.0, 2.0)])
    assert store.load().records[0].key.key_ops == frozenset({"sign"})


# -- compare-and-swap -----------------------------------------------------------


def test_save_is_a_compare_and_swap(make_store: StoreFactory) -> None:
    store = make_store(master_key=MASTER_KEY)
    assert store.save(0, [hs_record("one")]) == 1
    assert store.save(1, [hs_record("one"), hs_record("two")]) == 2
    for stale in (0, 1, 3, 7):
        with pytest.raises(StoreConflict, match="version 2"):
            store.save(stale, [hs_record("lost")])
    snapshot = store.load()
    assert snapshot.version == 2
    assert [r.key.kid for r in snapshot.records] == ["one", "two"]


def test_a_conflict_is_a_store_error(make_store: StoreFactory) -> None:
    store = make_store(master_key=MASTER_KEY)
    store.save(0, [])
    with pytest.raises(StoreError):
        store.save(0, [])


@pytest.mark.parametrize(
    ("version", "records"),
    [
        (-1, []),
        (True, []),
        (1.0, []),
        (0, "records"),
        (0, [object()]),
        (0, [hs_record("same", 1), hs_record("same", 2)]),
    ],
)
def test_bad_save_arguments_are_refused(
    make_store: StoreFactory, version: Any, records: Any
) -> None:
    store = make_store(master_key=MASTER_KEY)
    with pytest.raises(InvalidArgument):
        store.save(version, records)
    assert store.load().version == 0


# -- private material at rest ---------------------------------------------------


def private_values(records: list[KeyRecord]) -> list[str]:
    values = []
    for record in records:
        jwk = record.key.to_jwk(private=True)
        values += [jwk[name] for name in PRIVATE_MEMBERS if name in jwk]
    return values


@pytest.mark.parametrize("protection", sorted(PROTECTIONS))
def test_private_material_never_reaches_the_disk_in_plaintext(
    make_store: StoreFactory, every_key: list[Key], tmp_path: Path, protection: str
) -> None:
    records = records_of(every_key)
    store = make_store(**PROTECTIONS[protection])
    store.save(0, records)
    store.save(1, records)
    store.load()
    on_disk = stored_bytes(tmp_path / "keys")
    secrets = private_values(records)
    assert len(secrets) > len(records)
    for value in secrets:
        assert value.encode() not in on_disk
        assert base64.b64decode(value + "==", altchars=b"-_") not in on_disk
    # The public halves are stored in the clear (they are published anyway).
    assert records[0].key.to_jwk()["x"].encode() in on_disk


def test_plaintext_needs_explicit_consent_and_warns(
    make_store: StoreFactory, every_key: list[Key], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(InvalidArgument, match="allow_plaintext"):
        make_store()
    with pytest.raises(InvalidArgument, match="allow_plaintext"):
        make_store(allow_plaintext="yes")
    with (
        caplog.at_level(logging.WARNING, logger="jwtward.keys"),
        pytest.warns(PlaintextKeyWarning, match="UNENCRYPTED") as warned,
    ):
        store = make_store(allow_plaintext=True)
    assert warned[0].filename == __file__  # points at the caller's line
    assert any("UNENCRYPTED" in message for message in caplog.messages)
    records = records_of(every_key)
    store.save(0, records)
    assert_same_records(store.load(), records)
    # Plaintext means plaintext: the same probe that passes for sealed stores finds it.
    on_disk = stored_bytes(tmp_path / "keys")
    assert all(value.encode() in on_disk for value in private_values(records))
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o600


def test_files_are_private_to_their_owner(make_store: StoreFactory, tmp_path: Path) -> None:
    old_umask = os.umask(0)
    try:
        store = make_store(master_key=MASTER_KEY)
        store.save(0, [hs_record("a")])
        store.save(1, [hs_record("b")])
        store.load()
        written = [p for p in tmp_path.iterdir() if p.name.startswith("keys")]
        assert written
        for path in written:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    finally:
        os.umask(old_umask)


# -- secrets: wrong, swapped, raised --------------------------------------------


@pytest.mark.parametrize(
    ("right", "wrong"),
    [
        (PROTECTIONS["passphrase"], {"passphrase": "Tr0ub4dor&3", "scrypt": FAST_SCRYPT}),
        ({"master_key": MASTER_KEY}, {"master_key": OTHER_MASTER_KEY}),
        (PROTECTIONS["passphrase"], {"master_key": MASTER_KEY}),
        ({"master_key": MASTER_KEY}, PROTECTIONS["passphrase"]),
    ],
)
def test_a_wrong_secret_is_a_clear_store_error(
    make_store: StoreFactory, right: dict[str, Any], wrong: dict[str, Any]
) -> None:
    records = [hs_record("a")]
    make_store(**right).save(0, records)
    intruder = make_store(**wrong)
    with pytest.raises(UnsealError) as caught:
        intruder.load()
    assert isinstance(caught.value, StoreError)
    with pytest.raises(UnsealError):
        intruder.save(1, [hs_record("b")])
    assert_same_records(make_store(**right).load(), records)


def test_a_wrong_secret_is_detected_without_any_private_key(make_store: StoreFactory) -> None:
    public = Key.generate("ES256").public_key()
    make_store(master_key=MASTER_KEY).save(0, [KeyRecord(public, KeyState.ACTIVE, 0.0, 0.0)])
    with pytest.raises(UnsealError, match="does not open"):
        make_store(master_key=OTHER_MASTER_KEY).load()


def test_plaintext_and_sealed_stores_do_not_mix(make_store: StoreFactory) -> None:
    with pytest.warns(PlaintextKeyWarning):
        make_store(allow_plaintext=True).save(0, [hs_record("a")])
    with pytest.raises(UnsealError, match="'none'"):
        make_store(master_key=MASTER_KEY).load()


def test_the_master_key_comes_from_the_environment(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MASTER_KEY_ENV, b64encode(MASTER_KEY))
    make_store().save(0, [hs_record("env")])
    monkeypatch.delenv(MASTER_KEY_ENV)
    assert make_store(master_key=MASTER_KEY).load().records[0].key.kid == "env"
    with pytest.raises(UnsealError):
        make_store(master_key=OTHER_MASTER_KEY).load()


@pytest.mark.parametrize("value", ["short", b64encode(bytes(31)), b64encode(bytes(33)), "a+b/"])
def test_a_malformed_environment_master_key_is_refused(
    make_store: StoreFactory, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(MASTER_KEY_ENV, value)
    with pytest.raises(InvalidArgument, match=MASTER_KEY_ENV):
        make_store()


@pytest.mark.parametrize(
    "arguments",
    [
        {"master_key": bytes(31)},
        {"master_key": "x" * 32},
        {"passphrase": ""},
        {"passphrase": 1234},
        {"passphrase": "p", "master_key": MASTER_KEY},
        {"master_key": MASTER_KEY, "scrypt": FAST_SCRYPT},
    ],
)
def test_bad_protection_arguments_are_refused(
    make_store: StoreFactory, arguments: dict[str, Any]
) -> None:
    with pytest.raises(InvalidArgument):
        make_store(**arguments)


@pytest.mark.parametrize(
    "params",
    [{"n": 1 << 13}, {"n": (1 << 14) + 1}, {"n": 1 << 14, "r": 0}, {"p": True}, {"n": 1 << 24}],
)
def test_weak_or_absurd_scrypt_parameters_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        ScryptParams(**params)


def stored_header(kind: str, path: Path) -> dict[str, Any]:
    """The sealing header as the store wrote it, read without jwtward."""
    if kind == "file":
        header = json.loads(path.read_bytes())["sealing"]
    else:
        db = sqlite3.connect(path)
        try:
            header = json.loads(db.execute("SELECT sealing FROM jwtward_key_store").fetchone()[0])
        finally:
            db.close()
    assert isinstance(header, dict)
    return header


def test_raised_scrypt_parameters_reseal_the_store_on_save(
    kind: str, make_store: StoreFactory, tmp_path: Path
) -> None:
    path = tmp_path / "keys"
    weak = {"passphrase": "pw", "scrypt": FAST_SCRYPT}
    strong = {"passphrase": "pw", "scrypt": ScryptParams(n=1 << 15)}
    make_store(**weak).save(0, [hs_record("a")])
    before = stored_header(kind, path)
    assert before["n"] == 1 << 14
    upgraded = make_store(**strong)
    assert upgraded.load().records[0].key.kid == "a"  # read with the stored parameters
    upgraded.save(1, [hs_record("a")])
    after = stored_header(kind, path)
    assert (after["n"], after["r"], after["p"]) == (1 << 15, 8, 1)
    assert after["salt"] != before["salt"]
    assert after["store"] == before["store"]
    # A process still configured with the old parameters reads the re-sealed store.
    assert make_store(**weak).load().records[0].key.kid == "a"
    # A weaker configuration never lowers the stored cost.
    make_store(**weak).save(2, [hs_record("a")])
    assert stored_header(kind, path)["n"] == 1 << 15
    assert make_store(**strong).load().version == 3


def test_sealed_keys_are_bound_to_their_kid() -> None:
    protection = Protection.master_key(MASTER_KEY)
    sealer = protection.new_sealer()
    first = sealer.seal_record(hs_record("first", 1))
    second = sealer.seal_record(hs_record("second", 2))
    first["sealed"], second["sealed"] = second["sealed"], first["sealed"]
    with pytest.raises(UnsealError, match="altered or moved"):
        sealer.open_record(first)


def test_sealed_keys_are_bound_to_their_store() -> None:
    protection = Protection.master_key(MASTER_KEY)
    stored = protection.new_sealer().seal_record(hs_record("k"))
    with pytest.raises(UnsealError, match="altered or moved"):
        protection.new_sealer().open_record(stored)


def test_altered_sealed_bytes_are_refused(make_store: StoreFactory, tmp_path: Path) -> None:
    protection = Protection.master_key(MASTER_KEY)
    sealer = protection.new_sealer()
    stored = sealer.seal_record(hs_record("k"))
    sealed = stored["sealed"]
    flipped = sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]
    with pytest.raises(UnsealError):
        sealer.open_record(stored | {"sealed": flipped})
    with pytest.raises(StoreError):
        sealer.open_record(stored | {"sealed": sealed[:10]})
    with pytest.raises(StoreError):
        sealer.open_record(stored | {"sealed": 12})


# -- corrupt storage ------------------------------------------------------------


def corrupt_documents(valid: bytes) -> list[bytes]:
    return [
        b"",
        b"\x00\xff garbage",
        valid[: len(valid) // 2],
        valid[:-1],
        b"[]",
        valid.replace(b'"format":"jwtward-key-store"', b'"format":"other"'),
        valid.replace(b'"schema":1', b'"schema":99'),
        valid.replace(b'"version":1', b'"version":"1"'),
        valid.replace(b'"state":"active"', b'"state":"dormant"'),
        valid.replace(b'"created_at":0.0', b'"created_at":true'),
        valid.replace(b'"method":"master-key"', b'"method":"rot13"'),
        valid.replace(b'"kid":"a"', b'"kid":"b"', 1),
    ]


def test_a_corrupt_file_is_a_store_error_and_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    FileKeyStore(path, master_key=MASTER_KEY).save(0, [hs_record("a")])
    valid = path.read_bytes()
    for number, damaged in enumerate(corrupt_documents(valid)):
        assert damaged != valid, number
        path.write_bytes(damaged)
        store = FileKeyStore(path, master_key=MASTER_KEY)
        with pytest.raises(StoreError):
            store.load()
        with pytest.raises(StoreError):
            store.save(1, [hs_record("new")])
        assert path.read_bytes() == damaged, number


def test_a_corrupt_sqlite_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    path.write_bytes(b"this is not a database, just bytes " * 200)
    store = SQLiteKeyStore(path, master_key=MASTER_KEY)
    with pytest.raises(StoreError):
        store.load()
    with pytest.raises(StoreError):
        store.save(0, [hs_record("a")])
    store.close()


def test_a_corrupt_sqlite_row_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    with SQLiteKeyStore(path, master_key=MASTER_KEY) as store:
        store.save(0, [hs_record("a")])
    with sqlite3.connect(path) as db:
        db.execute("UPDATE jwtward_key_records SET public_jwk = '{broken'")
        db.execute("UPDATE jwtward_key_records SET sealed = NULL")
    db.close()
    with SQLiteKeyStore(path, master_key=MASTER_KEY) as store, pytest.raises(StoreError):
        store.load()


def test_a_newer_sqlite_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    with SQLiteKeyStore(path, master_key=MASTER_KEY) as store:
        store.save(0, [hs_record("a")])
    with sqlite3.connect(path) as db:
        db.execute("UPDATE jwtward_key_store SET schema_version = 2")
    db.close()
    with SQLiteKeyStore(path, master_key=MASTER_KEY) as store, pytest.raises(StoreError, match="2"):
        store.load()


# -- unwritable storage ---------------------------------------------------------


def test_a_path_under_a_file_is_a_store_error(make_store: StoreFactory, tmp_path: Path) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_bytes(b"not a directory")
    store = make_store(path=blocker / "keys", master_key=MASTER_KEY)
    with pytest.raises(StoreError):
        store.save(0, [hs_record("a")])
    assert blocker.read_bytes() == b"not a directory"


def test_a_full_disk_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keys"
    store = FileKeyStore(path, master_key=MASTER_KEY)
    store.save(0, [hs_record("old")])
    before = path.read_bytes()

    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(StoreError, match="no space left"):
        store.save(1, [hs_record("new")])
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys", "keys.lock"]
    assert store.load().records[0].key.kid == "old"
    assert store.save(1, [hs_record("new")]) == 2


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keys"
    store = FileKeyStore(path, master_key=MASTER_KEY)
    store.save(0, [hs_record("old")])
    before = path.read_bytes()

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StoreError, match="cannot write"):
        store.save(1, [hs_record("new")])
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert store.load().version == 1


def test_a_full_sqlite_database_keeps_the_old_records(tmp_path: Path) -> None:
    store = SQLiteKeyStore(tmp_path / "keys.db", master_key=MASTER_KEY)
    store.save(0, [hs_record("old")])
    # The calling thread's connection: cap the file at its current size.
    db = store._db.connection()
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    big = [hs_record(f"k{i:04d}-" + "x" * 200, i) for i in range(300)]
    with pytest.raises(StoreError, match="full"):
        store.save(1, big)
    snapshot = store.load()
    assert snapshot.version == 1
    assert [r.key.kid for r in snapshot.records] == ["old"]
    store.close()


def test_a_file_store_refuses_a_document_over_its_bound(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    FileKeyStore(path, master_key=MASTER_KEY).save(0, [hs_record("a")])
    small = FileKeyStore(path, master_key=MASTER_KEY, max_size=64)
    with pytest.raises(StoreError, match="exceeds"):
        small.load()
    with pytest.raises(StoreError):
        small.save(1, [])
    with pytest.raises(InvalidArgument):
        FileKeyStore(path, master_key=MASTER_KEY, max_size=0)


# -- concurrency ----------------------------------------------------------------


def increment(store: Store, worker: int, count: int) -> list[int]:
    """Add ``count`` records, one per successful save; the versions this worker won."""
    won = []
    added = 0
    while added < count:
        snapshot = store.load()
        record = hs_record(f"w{worker}-{added}", worker * 1000 + added)
        try:
            store.save(snapshot.version, [*snapshot.records, record])
        except StoreConflict:
            continue
        won.append(snapshot.version)
        added += 1
    return won


def assert_no_update_lost(final: StoreSnapshot, won: list[list[int]], count: int) -> None:
    workers = len(won)
    total = workers * count
    every_win = sorted(version for wins in won for version in wins)
    assert every_win == list(range(total))  # exactly one winner per version
    assert final.version == total
    assert sorted(r.key.kid for r in final.records) == sorted(
        f"w{w}-{i}" for w in range(workers) for i in range(count)
    )
    for wins in won:
        assert wins == sorted(wins)


def test_threads_never_lose_an_update(make_store: StoreFactory) -> None:
    store = make_store(passphrase="pw", scrypt=FAST_SCRYPT)
    workers, count = 8, 12
    barrier = threading.Barrier(workers)

    def run(worker: int) -> list[int]:
        barrier.wait()
        return increment(store, worker, count)

    with ThreadPoolExecutor(workers) as pool:
        won = list(pool.map(run, range(workers)))
    assert_no_update_lost(store.load(), won, count)


def process_worker(kind: str, path: str, worker: int, count: int, start: Any) -> list[int]:
    store: Store = (
        FileKeyStore(path, master_key=MASTER_KEY)
        if kind == "file"
        else SQLiteKeyStore(path, master_key=MASTER_KEY)
    )
    start.wait()
    try:
        return increment(store, worker, count)
    finally:
        if isinstance(store, SQLiteKeyStore):
            store.close()


def test_processes_never_lose_an_update(
    kind: str, make_store: StoreFactory, tmp_path: Path
) -> None:
    path = tmp_path / "keys"
    workers, count = 4, 10
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Event()
        with context.Pool(workers) as pool:
            pending = [
                pool.apply_async(process_worker, (kind, str(path), w, count, start))
                for w in range(workers)
            ]
            start.set()
            won = [result.get(timeout=120) for result in pending]
    assert_no_update_lost(make_store(master_key=MASTER_KEY).load(), won, count)


def test_one_process_store_survives_a_fork(tmp_path: Path) -> None:
    """A connection opened before a fork is never used by the child."""
    path = tmp_path / "keys.db"
    store = SQLiteKeyStore(path, master_key=MASTER_KEY)
    store.save(0, [hs_record("parent")])
    context = multiprocessing.get_context("fork")
    child = context.Process(target=_save_in_child, args=(store,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    snapshot = store.load()
    assert snapshot.version == 2
    assert [r.key.kid for r in snapshot.records] == ["parent", "child"]
    store.close()


def _save_in_child(store: SQLiteKeyStore) -> None:
    snapshot = store.load()
    store.save(snapshot.version, [*snapshot.records, hs_record("child")])
