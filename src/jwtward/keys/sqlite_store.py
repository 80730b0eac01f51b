"""A key store in SQLite: WAL mode, compare-and-swap in one ``BEGIN IMMEDIATE``.

The database may be shared with other jwtward stores, so this store keeps to
its own tables (``jwtward_key_store`` for the version counter, the schema
number and the sealing header; ``jwtward_key_records`` for the keys) and
records its schema number in its own row rather than in ``PRAGMA
user_version``. The tables are created on first use.

A save reads the version, compares it and rewrites the records inside one
``BEGIN IMMEDIATE`` transaction, which takes SQLite's write lock up front:
of several threads or processes saving from the same version, exactly one
commits and the others see the new version and raise
:class:`~jwtward.keys.records.StoreConflict`. Each thread (and each process,
after a fork) uses its own connection. Private keys are sealed exactly as in
the file store (:mod:`jwtward.keys.sealing`); the database file is created
with mode 0600 (SQLite gives its ``-wal`` and ``-shm`` files the same mode),
and ``secure_delete`` overwrites the pages of replaced records.

Every SQLite failure (locked beyond the timeout, full disk, unwritable path,
a file that is not a database) raises :class:`~jwtward.keys.records.StoreError`
and rolls the transaction back, leaving the stored keys as they were.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from jwtward.keys.record_rows import (
    check_version,
    header_text,
    parse_json,
    sealed_rows,
    stored_record,
)
from jwtward.keys.records import KeyRecord, StoreError, StoreSnapshot
from jwtward.keys.sealing import (
    Protection,
    ScryptParams,
    Sealer,
    check_save_arguments,
    resolve_protection,
)
from jwtward.sqlite_db import SQLiteDatabase

__all__ = ["SQLiteKeyStore"]

SCHEMA: Final = 1

_CREATE_STORE: Final = """
CREATE TABLE IF NOT EXISTS jwtward_key_store (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    schema_version INTEGER NOT NULL,
    version INTEGER NOT NULL,
    sealing TEXT NOT NULL
)"""
_CREATE_RECORDS: Final = """
CREATE TABLE IF NOT EXISTS jwtward_key_records (
    position INTEGER PRIMARY KEY,
    kid TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    activates_at REAL NOT NULL,
    retires_at REAL,
    expires_at REAL,
    revoked_at REAL,
    public_jwk TEXT,
    sealed TEXT,
    private_jwk TEXT
)"""
_SELECT_RECORDS: Final = (
    "SELECT kid, state, created_at, activates_at, retires_at, expires_at, revoked_at, "
    "public_jwk, sealed, private_jwk FROM jwtward_key_records ORDER BY position"
)
_INSERT_RECORD: Final = (
    "INSERT INTO jwtward_key_records (position, kid, state, created_at, activates_at, "
    "retires_at, expires_at, revoked_at, public_jwk, sealed, private_jwk) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class SQLiteKeyStore:
    """A :class:`~jwtward.keys.records.KeyStore` in the SQLite database at ``path``.

    Protection arguments as for :class:`~jwtward.keys.file_store.FileKeyStore`.
    ``timeout`` (seconds) bounds the wait for another writer's lock before a
    :class:`~jwtward.keys.records.StoreError`. Call :meth:`close` (or use the
    store as a context manager) to close every thread's connection.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        passphrase: str | bytes | None = None,
        master_key: bytes | None = None,
        allow_plaintext: bool = False,
        scrypt: ScryptParams | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._path = Path(path)
        self._protection: Protection = resolve_protection(
            passphrase=passphrase,
            master_key=master_key,
            allow_plaintext=allow_plaintext,
            scrypt=scrypt,
            stacklevel=3,
        )
        self._db = SQLiteDatabase(
            path, timeout=timeout, label="key store", error=StoreError, create_schema=_create_schema
        )

    @property
    def path(self) -> Path:
        return self._path

    def load(self) -> StoreSnapshot:
        """The stored records and their version (version 0 and no records when new)."""
        with self._db.transaction("BEGIN") as db:
            version, sealer, stored = self._read(db)
        if sealer is None:
            return StoreSnapshot(version=0, records=())
        records = tuple(sealer.open_record(record) for record in stored)
        return StoreSnapshot(version=version, records=records)

    def save(self, expected_version: int, records: Sequence[KeyRecord]) -> int:
        """Write ``records`` if the store is still at ``expected_version``; the new version."""
        check_save_arguments(expected_version, records)
        with self._db.transaction("BEGIN IMMEDIATE") as db:
            current, existing, stored = self._read(db)
            check_version(current, expected_version)
            sealer = self._protection.next_sealer(existing, stored)
            new_version = current + 1
            db.execute("DELETE FROM jwtward_key_records")
            db.executemany(_INSERT_RECORD, sealed_rows(sealer, records))
            db.execute(
                "INSERT INTO jwtward_key_store (id, schema_version, version, sealing) "
                "VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "version = excluded.version, sealing = excluded.sealing",
                (SCHEMA, new_version, header_text(sealer)),
            )
        return new_version

    def close(self) -> None:
        """Close the connections of every thread (the store reopens them on next use)."""
        self._db.close()

    def __enter__(self) -> SQLiteKeyStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------

    def _read(self, db: sqlite3.Connection) -> tuple[int, Sealer | None, list[dict[str, Any]]]:
        """Version, opened sealer (``None`` for a new store) and stored records,
        read inside the caller's transaction (one consistent snapshot)."""
        meta = db.execute("SELECT version, sealing FROM jwtward_key_store").fetchone()
        if meta is None:
            return 0, None, []
        version, sealing = meta
        if type(version) is not int or version < 1:
            raise StoreError(f"key store {self._path} has no valid version")
        sealer = self._protection.open(parse_json(sealing, "sealing header"))
        stored = [stored_record(row) for row in db.execute(_SELECT_RECORDS).fetchall()]
        return version, sealer, stored


def _create_schema(db: sqlite3.Connection) -> None:
    db.execute(_CREATE_STORE)
    db.execute(_CREATE_RECORDS)
    row = db.execute("SELECT schema_version FROM jwtward_key_store").fetchone()
    if row is not None and row[0] != SCHEMA:
        raise StoreError(f"key store schema {row[0]}; this jwtward reads {SCHEMA}")
