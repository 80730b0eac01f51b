"""A key store in PostgreSQL: compare-and-swap on a locked meta row.

For issuers that run in several processes or on several machines and keep
their state in PostgreSQL. The store keeps to two tables of its own in a
schema (``jwtward`` unless told otherwise, which it may share with the other
jwtward stores): ``key_store``, one row holding the schema number, the
version counter and the sealing header, and ``key_records``, the keys.

A save locks the meta row (``SELECT ... FOR UPDATE``), compares the version
and rewrites the records in one transaction: of several savers starting from
the same version, one commits and the others, once the lock is theirs, see
the new version and raise :class:`~jwtward.keys.records.StoreConflict`. A
load reads the meta row and the records in one statement, hence from one
snapshot, without taking any lock. Private keys are sealed exactly as in the
file and SQLite stores (:mod:`jwtward.keys.sealing`): the server, its backups
and its replicas only ever see sealed private keys, unless plaintext was
asked for explicitly.

The tables are created (and later migrated) on first use, under a
transaction-scoped advisory lock, so processes starting together neither race
nor apply a step twice. Every driver or pool failure raises
:class:`~jwtward.keys.records.StoreError` (503, retryable) and rolls the
transaction back, leaving the stored keys as they were; the pool checks a
connection before lending it, so the same store works again once the server
is back. Requires ``psycopg`` 3 with ``psycopg_pool`` (the ``postgres`` extra).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final, LiteralString

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from jwtward.codecs import dumps
from jwtward.errors import InvalidArgument
from jwtward.keys.records import KeyRecord, StoreConflict, StoreError, StoreSnapshot
from jwtward.keys.sealing import (
    Protection,
    ScryptParams,
    Sealer,
    check_save_arguments,
    resolve_protection,
)

# Shared rather than copied: the row <-> record conversion of the SQLite key
# store (JSON columns as text) holds here unchanged.
from jwtward.keys.sqlite_store import _json, _row_values, _stored_record
from jwtward.postgres_db import (
    DRIVER_ERRORS,
    Deadline,
    check_schema_name,
    ensure_schema,
    new_pool,
    schema_lock_key,
)

__all__ = ["KEY_MIGRATIONS", "PostgresKeyStore"]

logger = logging.getLogger("jwtward.keys")

SCHEMA: Final = 1

# -- schema ----------------------------------------------------------------------
#
# Version N of the tables is KEY_MIGRATIONS[N - 1] applied on top of version
# N - 1; the number lives in the meta row. Steps are only appended, never
# edited. The meta row exists from the first step on (version 0, no sealing
# header: an empty store). Times are POSIX seconds as double precision; the
# JWKs are the JSON text the strict encoder wrote (read back by the same
# strict parser) and ``sealed`` the sealer's base64url text.

KEY_MIGRATIONS: tuple[tuple[LiteralString, ...], ...] = (
    (
        """CREATE TABLE {schema}.key_store (
            id integer PRIMARY KEY CHECK (id = 1),
            schema_version integer NOT NULL,
            version bigint NOT NULL CHECK (version >= 0),
            sealing text
        )""",
        """CREATE TABLE {schema}.key_records (
            position integer PRIMARY KEY,
            kid text NOT NULL UNIQUE,
            state text NOT NULL,
            created_at double precision NOT NULL,
            activates_at double precision NOT NULL,
            retires_at double precision,
            expires_at double precision,
            revoked_at double precision,
            public_jwk text,
            sealed text,
            private_jwk text
        )""",
        """INSERT INTO {schema}.key_store (id, schema_version, version, sealing)
            VALUES (1, 0, 0, NULL)""",
    ),
)

_MIGRATION_LOCK: LiteralString = "SELECT pg_advisory_xact_lock(%s)"
_HAS_TABLES: LiteralString = """SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables
    WHERE schemaname = %s AND tablename = 'key_store')"""
_SCHEMA_VERSION: LiteralString = "SELECT schema_version FROM {schema}.key_store WHERE id = 1"
_SET_SCHEMA_VERSION: LiteralString = (
    "UPDATE {schema}.key_store SET schema_version = %s WHERE id = 1"
)

_RECORD_COLUMNS: LiteralString = (
    "r.kid, r.state, r.created_at, r.activates_at, r.retires_at, r.expires_at, r.revoked_at,"
    " r.public_jwk, r.sealed, r.private_jwk"
)
# One statement, hence one snapshot: the meta row with each record (or with a
# row of NULLs when there is none). No meta row, no result rows.
_LOAD: LiteralString = """SELECT m.version, m.sealing, {columns}
FROM {schema}.key_store AS m
LEFT JOIN {schema}.key_records AS r ON true
WHERE m.id = 1
ORDER BY r.position"""
_LOCK_META: LiteralString = (
    "SELECT version, sealing FROM {schema}.key_store WHERE id = 1 FOR UPDATE"
)
_RECREATE_META: LiteralString = """INSERT INTO {schema}.key_store
    (id, schema_version, version, sealing)
VALUES (1, %s, 0, NULL) ON CONFLICT (id) DO NOTHING"""
_SELECT_RECORDS: LiteralString = (
    "SELECT {columns} FROM {schema}.key_records AS r ORDER BY r.position"
)
_DELETE_RECORDS: LiteralString = "DELETE FROM {schema}.key_records"
_INSERT_RECORD: LiteralString = """INSERT INTO {schema}.key_records
    (position, kid, state, created_at, activates_at, retires_at, expires_at, revoked_at,
     public_jwk, sealed, private_jwk)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"""
_UPDATE_META: LiteralString = (
    "UPDATE {schema}.key_store SET version = %s, sealing = %s WHERE id = 1"
)


class PostgresKeyStore:
    """A :class:`~jwtward.keys.records.KeyStore` in PostgreSQL (psycopg 3).

    Give either a ``dsn`` (the store makes, owns and closes a small pool of
    its own) or an open ``pool`` (left open by :meth:`close`). Protection
    arguments as for :class:`~jwtward.keys.file_store.FileKeyStore`.
    ``timeout`` (seconds) bounds the wait for a connection and each statement,
    including the wait for another saver's lock, before a
    :class:`~jwtward.keys.records.StoreError`.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        pool: ConnectionPool[Any] | None = None,
        schema: str = "jwtward",
        passphrase: str | bytes | None = None,
        master_key: bytes | None = None,
        allow_plaintext: bool = False,
        scrypt: ScryptParams | None = None,
        timeout: float = 5.0,
    ) -> None:
        if (pool is None) == (dsn is None):
            raise InvalidArgument("give exactly one of dsn and pool")
        check_schema_name(schema)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise InvalidArgument("timeout must be a positive number of seconds")
        self._protection: Protection = resolve_protection(
            passphrase=passphrase,
            master_key=master_key,
            allow_plaintext=allow_plaintext,
            scrypt=scrypt,
            stacklevel=3,
        )
        self._schema = schema
        self._timeout = float(timeout)
        self._dsn = dsn or ""
        self._owns_pool = pool is None
        self._pool: ConnectionPool[Any] = self._new_pool() if pool is None else pool
        self._pid = os.getpid()
        self._ready = False
        self._closed = False
        self._lock = threading.Lock()
        name = sql.Identifier(schema)
        columns = sql.SQL(_RECORD_COLUMNS)

        def bind(text: LiteralString) -> sql.Composed:
            return sql.SQL(text).format(schema=name, columns=columns)

        self._migrations = tuple(tuple(bind(step) for step in steps) for steps in KEY_MIGRATIONS)
        self._schema_version = bind(_SCHEMA_VERSION)
        self._set_schema_version = bind(_SET_SCHEMA_VERSION)
        self._load_sql = bind(_LOAD)
        self._lock_meta = bind(_LOCK_META)
        self._recreate_meta = bind(_RECREATE_META)
        self._select_records = bind(_SELECT_RECORDS)
        self._delete_records = bind(_DELETE_RECORDS)
        self._insert_record = bind(_INSERT_RECORD)
        self._update_meta = bind(_UPDATE_META)
        # The lock every store takes for this schema: several kinds of store
        # may create the same schema, so their migrations must not run at once.
        self._lock_key = schema_lock_key(schema)

    @property
    def schema(self) -> str:
        return self._schema

    def load(self) -> StoreSnapshot:
        """The stored records and their version (version 0 and no records when new)."""
        with self._connection() as conn:
            rows = conn.execute(self._load_sql).fetchall()
        if not rows:
            return StoreSnapshot(version=0, records=())
        version, sealing = rows[0][0], rows[0][1]
        stored = [_stored_record(row[2:]) for row in rows if row[2] is not None]
        sealer = self._open(version, sealing, stored)
        if sealer is None:
            return StoreSnapshot(version=0, records=())
        records = tuple(sealer.open_record(record) for record in stored)
        return StoreSnapshot(version=version, records=records)

    def save(self, expected_version: int, records: Sequence[KeyRecord]) -> int:
        """Write ``records`` if the store is still at ``expected_version``; the new version."""
        check_save_arguments(expected_version, records)
        with self._connection() as conn:
            meta = conn.execute(self._lock_meta).fetchone()
            if meta is None:
                # The row went missing (deleted by hand): make it again, once.
                conn.execute(_MIGRATION_LOCK, (self._lock_key,))
                conn.execute(self._recreate_meta, (SCHEMA,))
                meta = conn.execute(self._lock_meta).fetchone()
                if meta is None:  # pragma: no cover - the insert above guarantees a row
                    raise StoreError("the key store has no meta row")
            current, sealing = meta
            if type(current) is not int:
                raise StoreError("the key store has no valid version")
            stored = [_stored_record(row) for row in conn.execute(self._select_records).fetchall()]
            existing = self._open(current, sealing, stored)
            if current != expected_version:
                raise StoreConflict(
                    f"key store is at version {current}, not {expected_version}: reload"
                )
            sealer = self._sealer_for(existing, stored)
            new_version = current + 1
            conn.execute(self._delete_records)
            if records:
                with conn.cursor() as cur:
                    cur.executemany(
                        self._insert_record,
                        [
                            (position, *_row_values(sealer.seal_record(record)))
                            for position, record in enumerate(records)
                        ],
                    )
            conn.execute(self._update_meta, (new_version, dumps(sealer.header).decode("utf-8")))
        return new_version

    def close(self) -> None:
        """Close the pool if this store made it; a pool given to the store stays open."""
        self._closed = True
        if self._owns_pool and self._pid == os.getpid():
            self._pool.close()

    def __enter__(self) -> PostgresKeyStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        # Never the DSN: it may carry a password.
        return f"PostgresKeyStore(schema={self._schema!r})"

    # -- internals --------------------------------------------------------------

    def _new_pool(self) -> ConnectionPool[Any]:
        return new_pool(
            self._dsn,
            min_size=0,
            max_size=4,
            timeout=self._timeout,
            name=f"jwtward-keys-{self._schema}",
        )

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection in one transaction, committed when the block ends.

        An exception in the block rolls the transaction back. Every driver
        failure, including one at commit, leaves as StoreError; so does a call
        that outlives its :class:`~jwtward.postgres_db.Deadline` (a stalled
        server), whose connection is broken and then discarded.
        """
        if self._closed:
            raise StoreError("the key store is closed")
        try:
            with Deadline(self._timeout) as deadline:
                pool = self._prepare(deadline)
                with pool.connection(timeout=deadline.remaining()) as conn:
                    deadline.attach(conn)
                    yield conn
        except DRIVER_ERRORS as exc:
            logger.warning("postgres key store unavailable: %s: %s", type(exc).__name__, exc)
            raise StoreError("the key store cannot answer right now") from None

    def _prepare(self, deadline: Deadline) -> ConnectionPool[Any]:
        """The pool of this process, open, with the tables up to date.

        After a fork, the child must not touch the connections it inherited
        (they are the parent's sessions): an owned pool is replaced, and the
        inherited one abandoned without being closed.
        """
        if not self._lock.acquire(timeout=deadline.remaining()):
            raise TimeoutError("key store preparation did not finish in time")
        try:
            if self._owns_pool and self._pid != os.getpid():
                self._pid = os.getpid()
                self._pool = self._new_pool()
                self._ready = False
            if not self._ready:
                if self._owns_pool:
                    self._pool.open()
                with self._pool.connection(timeout=deadline.remaining()) as conn:
                    deadline.attach(conn)
                    self._migrate(conn)
                self._ready = True
            return self._pool
        finally:
            self._lock.release()

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        ensure_schema(conn, self._schema)
        row = conn.execute(_HAS_TABLES, (self._schema,)).fetchone()
        has_tables = row is not None and bool(row[0])
        current = 0
        if has_tables:
            found = conn.execute(self._schema_version).fetchone()
            # A missing meta row is made again by the next save, at this schema.
            current = SCHEMA if found is None else found[0]
        if current > len(self._migrations):
            raise StoreError(f"key store schema {current}; this jwtward reads {SCHEMA}")
        for version in range(current + 1, len(self._migrations) + 1):
            for step in self._migrations[version - 1]:
                conn.execute(step)
            conn.execute(self._set_schema_version, (version,))
            logger.info("postgres key store: schema %s migrated to %d", self._schema, version)

    def _open(
        self, version: object, sealing: object, stored: list[dict[str, Any]]
    ) -> Sealer | None:
        """The sealer of the stored header; ``None`` for a store never saved."""
        if type(version) is not int or version < 0:
            raise StoreError("the key store has no valid version")
        if version == 0:
            if sealing is not None or stored:
                raise StoreError("the key store holds records at version 0")
            return None
        return self._protection.open(_json(sealing, "sealing header"))

    def _sealer_for(self, existing: Sealer | None, stored: list[dict[str, Any]]) -> Sealer:
        """The sealer for the next version: a fresh one for a new store; else the
        existing one, re-sealed under stronger parameters if configured.

        Every existing record must be intact and open under our secret first:
        a store that no one can load is left for its operator, never silently
        overwritten.
        """
        if existing is None:
            return self._protection.new_sealer()
        for record in stored:
            existing.check_record(record)
        header = existing.header
        if self._protection.wants_reseal(header):
            return self._protection.new_sealer(header["store"])
        return existing
