"""PostgreSQL token stores: :class:`PostgresTokenStore` (sync) and :class:`AsyncPostgresTokenStore`.

For services that run in several processes or on several machines and
already have PostgreSQL. Both stores keep the same tables, in a schema of
their own (``jwtward`` unless told otherwise), and run the same SQL: the SQL
text and the conversion between rows and records live once, at module level,
and the two classes differ only in ``await``.

Rotation is one conditional ``UPDATE`` (unused record, unrevoked family)
inside the transaction that also saves the successor. Under READ COMMITTED,
concurrent updates of one row queue behind its row lock and re-check the
condition against the committed row, so of many concurrent rotations exactly
one matches (invariant 9); no stronger isolation level is needed.

The schema is created and migrated on first use, under a transaction-scoped
advisory lock, so several processes starting at once neither race nor apply a
step twice. Every driver or pool failure becomes
:class:`~jwtward.errors.StoreUnavailable` (invariant 11); the pool checks a
connection before lending it, so a store whose server went away works again
as soon as the server is back.

Requires ``psycopg`` 3 with ``psycopg_pool`` (the ``postgres`` extra).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from jwtward.codecs import dumps, loads_object
from jwtward.errors import DecodeError, StoreUnavailable
from jwtward.postgres_db import (
    AsyncPoolOwner,
    PoolOwner,
    async_migrate,
    bind_steps,
    check_schema_name,
    migrate,
)
from jwtward.tokens.records import (
    AccessView,
    FamilyRecord,
    RefreshRecord,
    RefreshView,
    SubjectView,
)

__all__ = ["MIGRATIONS", "AsyncPostgresTokenStore", "PostgresTokenStore"]

logger = logging.getLogger("jwtward.tokens")

# The database only ever holds JSON this store wrote itself; the bound is
# there so that a corrupt row cannot make a read parse without end.
_MAX_STORED_JSON = 1 << 24

# -- schema ----------------------------------------------------------------------
#
# Version N of the schema is MIGRATIONS[N - 1] applied on top of version N - 1.
# Steps are only ever appended, never edited: a database records which versions
# it has, and a step that changed after being applied would never run there.
# Steps only add, so an older jwtward keeps working on a newer schema (rolling
# deploys).
#
# Times are POSIX seconds as double precision, as in the records. claims and
# metadata are the JSON text the strict encoder wrote (text, not jsonb: what is
# read back is exactly what was written, parsed by the same strict parser).
# There is no foreign key from refresh_tokens to families: the contract lets a
# family expire (and be purged) before its last refresh record.

MIGRATIONS: tuple[tuple[LiteralString, ...], ...] = (
    (
        """CREATE TABLE {schema}.families (
            family_id text PRIMARY KEY,
            subject text NOT NULL,
            created_at double precision NOT NULL,
            expires_at double precision NOT NULL,
            last_used_at double precision NOT NULL,
            revoked_at double precision,
            client_id text,
            scope text,
            claims text NOT NULL,
            metadata text NOT NULL
        )""",
        "CREATE INDEX families_subject_idx ON {schema}.families (subject, created_at DESC)",
        "CREATE INDEX families_expires_idx ON {schema}.families (expires_at)",
        """CREATE TABLE {schema}.refresh_tokens (
            token_hash text PRIMARY KEY,
            family_id text NOT NULL,
            issued_at double precision NOT NULL,
            expires_at double precision NOT NULL,
            used_at double precision,
            successor bytea
        )""",
        "CREATE INDEX refresh_tokens_expires_idx ON {schema}.refresh_tokens (expires_at)",
        """CREATE TABLE {schema}.revoked_access (
            jti text PRIMARY KEY,
            expires_at double precision NOT NULL
        )""",
        "CREATE INDEX revoked_access_expires_idx ON {schema}.revoked_access (expires_at)",
        """CREATE TABLE {schema}.subject_cutoffs (
            subject text PRIMARY KEY,
            cutoff double precision NOT NULL,
            keep_until double precision NOT NULL
        )""",
        "CREATE INDEX subject_cutoffs_keep_idx ON {schema}.subject_cutoffs (keep_until)",
    ),
)

# -- statements ------------------------------------------------------------------

# Selected wherever a family is read, in the order _family_from expects.
_FAMILY_COLUMNS: LiteralString = (
    "f.family_id, f.subject, f.created_at, f.expires_at, f.last_used_at, f.revoked_at,"
    " f.client_id, f.scope, f.claims, f.metadata"
)
_FAMILY_WIDTH = 10

_UPSERT_FAMILY: LiteralString = """INSERT INTO {schema}.families AS f
    (family_id, subject, created_at, expires_at, last_used_at, revoked_at,
     client_id, scope, claims, metadata)
VALUES (%(family_id)s, %(subject)s, %(created_at)s, %(expires_at)s, %(last_used_at)s,
        %(revoked_at)s, %(client_id)s, %(scope)s, %(claims)s, %(metadata)s)
ON CONFLICT (family_id) DO UPDATE SET
    subject = EXCLUDED.subject, created_at = EXCLUDED.created_at,
    expires_at = EXCLUDED.expires_at, last_used_at = EXCLUDED.last_used_at,
    revoked_at = EXCLUDED.revoked_at, client_id = EXCLUDED.client_id,
    scope = EXCLUDED.scope, claims = EXCLUDED.claims, metadata = EXCLUDED.metadata"""

_UPSERT_REFRESH: LiteralString = """INSERT INTO {schema}.refresh_tokens AS r
    (token_hash, family_id, issued_at, expires_at, used_at, successor)
VALUES (%(token_hash)s, %(family_id)s, %(issued_at)s, %(expires_at)s, %(used_at)s,
        %(successor)s)
ON CONFLICT (token_hash) DO UPDATE SET
    family_id = EXCLUDED.family_id, issued_at = EXCLUDED.issued_at,
    expires_at = EXCLUDED.expires_at, used_at = EXCLUDED.used_at,
    successor = EXCLUDED.successor"""

# One round trip: the record, its family (if still held) and the cutoff of the
# family's subject.
_LOAD_REFRESH: LiteralString = """SELECT
    r.token_hash, r.family_id, r.issued_at, r.expires_at, r.used_at, r.successor,
    {family_columns}, c.cutoff
FROM {schema}.refresh_tokens AS r
LEFT JOIN {schema}.families AS f ON f.family_id = r.family_id
LEFT JOIN {schema}.subject_cutoffs AS c ON c.subject = f.subject
WHERE r.token_hash = %(token_hash)s"""

# The compare-and-swap. A concurrent rotation of the same row waits for this
# one's row lock, then re-evaluates the WHERE clause against the committed row
# (used_at is set by then) and matches nothing.
_CLAIM_REFRESH: LiteralString = """UPDATE {schema}.refresh_tokens AS r
SET used_at = %(used_at)s, successor = %(sealed)s
WHERE r.token_hash = %(token_hash)s
  AND r.used_at IS NULL
  AND EXISTS (SELECT 1 FROM {schema}.families AS f
              WHERE f.family_id = r.family_id AND f.revoked_at IS NULL)
RETURNING r.family_id"""

_TOUCH_FAMILY: LiteralString = (
    "UPDATE {schema}.families SET last_used_at = %(used_at)s WHERE family_id = %(family_id)s"
)

_REVOKE_FAMILY: LiteralString = """UPDATE {schema}.families SET revoked_at = %(revoked_at)s
WHERE family_id = %(family_id)s AND revoked_at IS NULL"""

_REVOKE_ACCESS: LiteralString = """INSERT INTO {schema}.revoked_access AS a (jti, expires_at)
VALUES (%(jti)s, %(expires_at)s)
ON CONFLICT (jti) DO UPDATE SET expires_at = GREATEST(a.expires_at, EXCLUDED.expires_at)"""

_REVOKE_SUBJECT: LiteralString = """INSERT INTO {schema}.subject_cutoffs AS c
    (subject, cutoff, keep_until)
VALUES (%(subject)s, %(cutoff)s, %(keep_until)s)
ON CONFLICT (subject) DO UPDATE SET
    cutoff = GREATEST(c.cutoff, EXCLUDED.cutoff),
    keep_until = GREATEST(c.keep_until, EXCLUDED.keep_until)"""

# One round trip; the one-row driver keeps a row when the family is unknown.
_ACCESS_VIEW: LiteralString = """SELECT
    EXISTS (SELECT 1 FROM {schema}.revoked_access WHERE jti = %(jti)s),
    (SELECT cutoff FROM {schema}.subject_cutoffs WHERE subject = %(subject)s),
    {family_columns}
FROM (VALUES (1)) AS one (x)
LEFT JOIN {schema}.families AS f ON f.family_id = %(family_id)s"""

# One round trip: one row per family, or a single row of NULL family columns
# when the subject has none; family_id breaks ties of created_at so that the
# order is stable.
_SESSIONS: LiteralString = """SELECT
    (SELECT cutoff FROM {schema}.subject_cutoffs WHERE subject = %(subject)s),
    {family_columns}
FROM (VALUES (1)) AS one (x)
LEFT JOIN {schema}.families AS f ON f.subject = %(subject)s
ORDER BY f.created_at DESC, f.family_id"""

_PURGE: LiteralString = """WITH
    r AS (DELETE FROM {schema}.refresh_tokens WHERE expires_at <= %(now)s RETURNING 1),
    f AS (DELETE FROM {schema}.families WHERE expires_at <= %(now)s RETURNING 1),
    a AS (DELETE FROM {schema}.revoked_access WHERE expires_at <= %(now)s RETURNING 1),
    c AS (DELETE FROM {schema}.subject_cutoffs WHERE keep_until <= %(now)s RETURNING 1)
SELECT (SELECT count(*) FROM r) + (SELECT count(*) FROM f)
     + (SELECT count(*) FROM a) + (SELECT count(*) FROM c)"""

_PING: LiteralString = "SELECT 1"


@dataclass(frozen=True, slots=True)
class _Statements:
    """Every statement of a store, with its schema name filled in once."""

    schema: str
    migrations: tuple[tuple[sql.Composed, ...], ...]
    upsert_family: sql.Composed
    upsert_refresh: sql.Composed
    load_refresh: sql.Composed
    claim_refresh: sql.Composed
    touch_family: sql.Composed
    revoke_family: sql.Composed
    revoke_access: sql.Composed
    revoke_subject: sql.Composed
    access_view: sql.Composed
    sessions: sql.Composed
    purge: sql.Composed

    @classmethod
    def for_schema(cls, schema: str) -> _Statements:
        name = sql.Identifier(check_schema_name(schema))
        family_columns = sql.SQL(_FAMILY_COLUMNS)

        def bind(text: LiteralString) -> sql.Composed:
            return sql.SQL(text).format(schema=name, family_columns=family_columns)

        return cls(
            schema=schema,
            migrations=bind_steps(MIGRATIONS, schema=name),
            upsert_family=bind(_UPSERT_FAMILY),
            upsert_refresh=bind(_UPSERT_REFRESH),
            load_refresh=bind(_LOAD_REFRESH),
            claim_refresh=bind(_CLAIM_REFRESH),
            touch_family=bind(_TOUCH_FAMILY),
            revoke_family=bind(_REVOKE_FAMILY),
            revoke_access=bind(_REVOKE_ACCESS),
            revoke_subject=bind(_REVOKE_SUBJECT),
            access_view=bind(_ACCESS_VIEW),
            sessions=bind(_SESSIONS),
            purge=bind(_PURGE),
        )


# -- rows and records ------------------------------------------------------------


def _opt_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _family_params(family: FamilyRecord) -> dict[str, Any]:
    return {
        "family_id": family.family_id,
        "subject": family.subject,
        "created_at": float(family.created_at),
        "expires_at": float(family.expires_at),
        "last_used_at": float(family.last_used_at),
        "revoked_at": _opt_float(family.revoked_at),
        "client_id": family.client_id,
        "scope": family.scope,
        "claims": dumps(family.claims).decode("utf-8"),
        "metadata": dumps(family.metadata).decode("utf-8"),
    }


def _refresh_params(record: RefreshRecord) -> dict[str, Any]:
    return {
        "token_hash": record.token_hash,
        "family_id": record.family_id,
        "issued_at": float(record.issued_at),
        "expires_at": float(record.expires_at),
        "used_at": _opt_float(record.used_at),
        "successor": None if record.successor is None else bytes(record.successor),
    }


def _rotate_params(
    token_hash: str, used_at: float, sealed_successor: bytes | None
) -> dict[str, Any]:
    sealed = None if sealed_successor is None else bytes(sealed_successor)
    return {"token_hash": token_hash, "used_at": float(used_at), "sealed": sealed}


def _load_json(text: Any) -> dict[str, Any]:
    if not isinstance(text, str):
        raise DecodeError("stored JSON is not text")
    return loads_object(text, max_size=_MAX_STORED_JSON)


def _family_from(row: Sequence[Any], start: int) -> FamilyRecord | None:
    """The family in ``row[start:start + 10]``; None where the join found none."""
    (family_id, subject, created_at, expires_at, last_used_at, revoked_at,
     client_id, scope, claims, metadata) = row[start:start + _FAMILY_WIDTH]  # fmt: skip
    if family_id is None:
        return None
    try:
        metadata_map = _load_json(metadata)
        if not all(isinstance(v, str) for v in metadata_map.values()):
            raise DecodeError("stored metadata holds a value that is not a string")
        return FamilyRecord(
            family_id=family_id,
            subject=subject,
            created_at=created_at,
            expires_at=expires_at,
            last_used_at=last_used_at,
            revoked_at=revoked_at,
            client_id=client_id,
            scope=scope,
            claims=_load_json(claims),
            metadata=metadata_map,
        )
    except DecodeError as exc:
        logger.error("postgres token store: corrupt family %r: %s", family_id, exc)
        raise StoreUnavailable("the token store holds a corrupt entry") from None


def _refresh_view_from(row: Sequence[Any] | None) -> RefreshView | None:
    if row is None:
        return None
    token_hash, family_id, issued_at, expires_at, used_at, successor = row[:6]
    record = RefreshRecord(
        token_hash=token_hash,
        family_id=family_id,
        issued_at=issued_at,
        expires_at=expires_at,
        used_at=used_at,
        successor=None if successor is None else bytes(successor),
    )
    return RefreshView(record, _family_from(row, 6), row[6 + _FAMILY_WIDTH])


def _access_view_from(row: Sequence[Any] | None) -> AccessView:
    if row is None:  # pragma: no cover - the one-row driver always yields a row
        raise StoreUnavailable("the token store gave no answer")
    return AccessView(jti_revoked=bool(row[0]), family=_family_from(row, 2), subject_cutoff=row[1])


def _subject_view_from(rows: Sequence[Sequence[Any]]) -> SubjectView:
    cutoff = rows[0][0] if rows else None
    families = tuple(f for f in (_family_from(row, 1) for row in rows) if f is not None)
    return SubjectView(families, cutoff)


def _count_from(row: Sequence[Any] | None) -> int:
    return 0 if row is None else int(row[0])


# -- what both stores share -------------------------------------------------------


class _StoreBase:
    """What both stores share besides the module-level SQL: the schema and the repr."""

    _NAME = ""
    _sql: _Statements

    @property
    def schema(self) -> str:
        return self._sql.schema

    def __repr__(self) -> str:
        # Never the DSN: it may carry a password.
        return f"{self._NAME}(schema={self.schema!r})"


# Where the stores record the versions of their schema.
_VERSION_TABLE = "schema_version"
_WHAT = "token store"


def _owner_options(schema: str, min_size: int, max_size: int, timeout: float) -> dict[str, Any]:
    """The pool owner's arguments, the same for both stores (pool ``jwtward-<schema>``)."""
    return {
        "schema": schema,
        "min_size": min_size,
        "max_size": max_size,
        "timeout": timeout,
        "name": "jwtward",
        "what": _WHAT,
        "log": logger,
    }


# -- the sync store --------------------------------------------------------------


class PostgresTokenStore(_StoreBase):
    """A :class:`~jwtward.tokens.records.TokenStore` in PostgreSQL (psycopg 3, sync).

    Give either a ``dsn`` (the store makes, owns and closes its own pool of
    ``min_size`` to ``max_size`` connections) or an open ``pool`` of your own
    (left open by :meth:`close`). ``timeout`` bounds the wait for a
    connection, after which the call raises StoreUnavailable.
    """

    _NAME = "PostgresTokenStore"

    def __init__(
        self,
        dsn: str | None = None,
        *,
        pool: ConnectionPool[Any] | None = None,
        schema: str = "jwtward",
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 5.0,
    ) -> None:
        options = _owner_options(schema, min_size, max_size, timeout)
        self._db = PoolOwner(dsn, pool, prepare=self._migrate, **options)
        self._sql = _Statements.for_schema(schema)
        self._connection = self._db.connection

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        migrate(conn, self.schema, _VERSION_TABLE, self._sql.migrations, what=_WHAT, log=logger)

    def create_family(self, family: FamilyRecord, first: RefreshRecord) -> None:
        family_params, refresh_params = _family_params(family), _refresh_params(first)
        with self._connection() as conn:
            conn.execute(self._sql.upsert_family, family_params)
            conn.execute(self._sql.upsert_refresh, refresh_params)

    def load_refresh(self, token_hash: str) -> RefreshView | None:
        with self._connection() as conn:
            row = conn.execute(self._sql.load_refresh, {"token_hash": token_hash}).fetchone()
        return _refresh_view_from(row)

    def rotate(
        self,
        token_hash: str,
        used_at: float,
        successor: RefreshRecord,
        sealed_successor: bytes | None,
    ) -> bool:
        params = _rotate_params(token_hash, used_at, sealed_successor)
        successor_params = _refresh_params(successor)
        with self._connection() as conn:
            won = conn.execute(self._sql.claim_refresh, params).fetchone()
            if won is None:
                return False
            conn.execute(self._sql.upsert_refresh, successor_params)
            conn.execute(
                self._sql.touch_family, {"used_at": params["used_at"], "family_id": won[0]}
            )
        return True

    def revoke_family(self, family_id: str, revoked_at: float) -> None:
        with self._connection() as conn:
            conn.execute(
                self._sql.revoke_family, {"family_id": family_id, "revoked_at": float(revoked_at)}
            )

    def revoke_access(self, jti: str, expires_at: float) -> None:
        with self._connection() as conn:
            conn.execute(self._sql.revoke_access, {"jti": jti, "expires_at": float(expires_at)})

    def revoke_subject(self, subject: str, cutoff: float, keep_until: float) -> None:
        params = {"subject": subject, "cutoff": float(cutoff), "keep_until": float(keep_until)}
        with self._connection() as conn:
            conn.execute(self._sql.revoke_subject, params)

    def access_view(self, jti: str, family_id: str, subject: str) -> AccessView:
        params = {"jti": jti, "family_id": family_id, "subject": subject}
        with self._connection() as conn:
            row = conn.execute(self._sql.access_view, params).fetchone()
        return _access_view_from(row)

    def sessions(self, subject: str) -> SubjectView:
        with self._connection() as conn:
            rows = conn.execute(self._sql.sessions, {"subject": subject}).fetchall()
        return _subject_view_from(rows)

    def purge_expired(self, now: float) -> int:
        with self._connection() as conn:
            row = conn.execute(self._sql.purge, {"now": float(now)}).fetchone()
        return _count_from(row)

    def ping(self) -> None:
        """Raise StoreUnavailable unless the server answers and the schema is in place."""
        with self._connection() as conn:
            conn.execute(_PING)

    def close(self) -> None:
        """Close the pool if this store made it; a pool given to the store stays open."""
        self._db.close()


# -- the async store -------------------------------------------------------------


class AsyncPostgresTokenStore(_StoreBase):
    """An :class:`~jwtward.tokens.records.AsyncTokenStore` in PostgreSQL (psycopg 3, asyncio).

    The same tables, statements and arguments as :class:`PostgresTokenStore`,
    over an ``AsyncConnectionPool`` (opened on first use: it needs the
    running event loop).
    """

    _NAME = "AsyncPostgresTokenStore"

    def __init__(
        self,
        dsn: str | None = None,
        *,
        pool: AsyncConnectionPool[Any] | None = None,
        schema: str = "jwtward",
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 5.0,
    ) -> None:
        options = _owner_options(schema, min_size, max_size, timeout)
        self._db = AsyncPoolOwner(dsn, pool, prepare=self._migrate, **options)
        self._sql = _Statements.for_schema(schema)
        self._connection = self._db.connection

    async def _migrate(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await async_migrate(
            conn, self.schema, _VERSION_TABLE, self._sql.migrations, what=_WHAT, log=logger
        )

    async def create_family(self, family: FamilyRecord, first: RefreshRecord) -> None:
        family_params, refresh_params = _family_params(family), _refresh_params(first)
        async with self._connection() as conn:
            await conn.execute(self._sql.upsert_family, family_params)
            await conn.execute(self._sql.upsert_refresh, refresh_params)

    async def load_refresh(self, token_hash: str) -> RefreshView | None:
        async with self._connection() as conn:
            cur = await conn.execute(self._sql.load_refresh, {"token_hash": token_hash})
            row = await cur.fetchone()
        return _refresh_view_from(row)

    async def rotate(
        self,
        token_hash: str,
        used_at: float,
        successor: RefreshRecord,
        sealed_successor: bytes | None,
    ) -> bool:
        params = _rotate_params(token_hash, used_at, sealed_successor)
        successor_params = _refresh_params(successor)
        async with self._connection() as conn:
            won = await (await conn.execute(self._sql.claim_refresh, params)).fetchone()
            if won is None:
                return False
            await conn.execute(self._sql.upsert_refresh, successor_params)
            await conn.execute(
                self._sql.touch_family, {"used_at": params["used_at"], "family_id": won[0]}
            )
        return True

    async def revoke_family(self, family_id: str, revoked_at: float) -> None:
        async with self._connection() as conn:
            await conn.execute(
                self._sql.revoke_family, {"family_id": family_id, "revoked_at": float(revoked_at)}
            )

    async def revoke_access(self, jti: str, expires_at: float) -> None:
        async with self._connection() as conn:
            await conn.execute(
                self._sql.revoke_access, {"jti": jti, "expires_at": float(expires_at)}
            )

    async def revoke_subject(self, subject: str, cutoff: float, keep_until: float) -> None:
        params = {"subject": subject, "cutoff": float(cutoff), "keep_until": float(keep_until)}
        async with self._connection() as conn:
            await conn.execute(self._sql.revoke_subject, params)

    async def access_view(self, jti: str, family_id: str, subject: str) -> AccessView:
        params = {"jti": jti, "family_id": family_id, "subject": subject}
        async with self._connection() as conn:
            row = await (await conn.execute(self._sql.access_view, params)).fetchone()
        return _access_view_from(row)

    async def sessions(self, subject: str) -> SubjectView:
        async with self._connection() as conn:
            rows = await (await conn.execute(self._sql.sessions, {"subject": subject})).fetchall()
        return _subject_view_from(rows)

    async def purge_expired(self, now: float) -> int:
        async with self._connection() as conn:
            row = await (await conn.execute(self._sql.purge, {"now": float(now)})).fetchone()
        return _count_from(row)

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the server answers and the schema is in place."""
        async with self._connection() as conn:
            await conn.execute(_PING)

    async def close(self) -> None:
        """Close the pool if this store made it; a pool given to the store stays open."""
        await self._db.close()
