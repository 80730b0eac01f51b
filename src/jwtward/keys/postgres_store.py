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
from collections.abc import Sequence
from typing import Any, Final, LiteralString

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from jwtward.errors import InvalidArgument
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
from jwtward.postgres_db import (
    PoolOwner,
    bind_steps,
    check_pool_args,
    check_schema_name,
    ensure_schema,
    migration_plan,
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
        check_pool_args(0, 4, timeout)
        self._protection: Protection = resolve_protection(
            passphrase=passphrase,
            master_key=master_key,
            allow_plaintext=allow_plaintext,
            scrypt=scrypt,
            stacklevel=3,
        )
        self._schema = schema
        # Owned pools are small and replaced in a forked child, whose inherited
        # connections are the parent's sessions.
        self._db = PoolOwner(
            dsn,
            pool,
            schema=schema,
            min_size=0,
            max_size=4,
            timeout=timeout,
            name="jwtward-keys",
            what="key store",
            log=logger,
            prepare=self._migrate,
            error=StoreError,
            fork_safe=True,
        )
        self._connection = self._db.connection
        name = sql.Identifier(schema)
        columns = sql.SQL(_RECORD_COLUMNS)

        def bind(text: LiteralString) -> sql.Composed:
            return sql.SQL(text).format(schema=name, columns=columns)

        self._migrations = bind_steps(KEY_MIGRATIONS, schema=name)
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
        stored = [stored_record(row[2:]) for row in rows if row[2] is not None]
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
            stored = [stored_record(row) for row in conn.execute(self._select_records).fetchall()]
            existing = self._open(current, sealing, stored)
            check_version(current, expected_version)
            sealer = self._protection.next_sealer(existing, stored)
            new_version = current + 1
            conn.execute(self._delete_records)
            if records:
                with conn.cursor() as cur:
                    cur.executemany(self._insert_record, sealed_rows(sealer, records))
            conn.execute(self._update_meta, (new_version, header_text(sealer)))
        return new_version

    def close(self) -> None:
        """Close the pool if this store made it; a pool given to the store stays open."""
        self._db.close()

    def __enter__(self) -> PostgresKeyStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        # Never the DSN: it may carry a password.
        return f"PostgresKeyStore(schema={self._schema!r})"

    # -- internals --------------------------------------------------------------

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
        for statement, params in migration_plan(
            current,
            self._migrations,
            self._set_schema_version,
            schema=self._schema,
            what="key store",
            log=logger,
        ):
            conn.execute(statement, params)

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
        return self._protection.open(parse_json(sealing, "sealing header"))
