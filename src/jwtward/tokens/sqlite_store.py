"""``SQLiteTokenStore``: the embedded default store of the token lifecycle.

One file, WAL mode, safe for many threads and several processes on one
machine (see :class:`~jwtward.sqlite_db.SQLiteDatabase`). The file may be
shared with the SQLite key store: every table is prefixed ``jwtward_``.

The schema is versioned in ``jwtward_token_schema`` and migrated forward
automatically, inside one write transaction, by the first connection of
each process; a database written by a newer jwtward is refused rather than
guessed at.

Rotation is a conditional ``UPDATE ... WHERE used_at IS NULL`` inside
``BEGIN IMMEDIATE``: SQLite's write lock admits one writer at a time, so of
many concurrent rotations of one token exactly one changes a row. Every
write commits with ``synchronous = FULL``: once a revocation returns, it
survives a crash.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from jwtward.codecs import dumps, loads_object
from jwtward.errors import DecodeError, StoreUnavailable
from jwtward.sqlite_db import SQLiteDatabase, migrate
from jwtward.tokens.records import (
    AccessView,
    FamilyRecord,
    RefreshRecord,
    RefreshView,
    SubjectView,
)

__all__ = ["SCHEMA_VERSION", "SQLiteTokenStore"]

# Each step moves the schema from its index to the next version.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE jwtward_families (
            family_id TEXT PRIMARY KEY,
            subject TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            last_used_at REAL NOT NULL,
            revoked_at REAL,
            client_id TEXT,
            scope TEXT,
            claims TEXT NOT NULL,
            metadata TEXT NOT NULL
        )""",
        "CREATE INDEX jwtward_families_subject ON jwtward_families (subject)",
        "CREATE INDEX jwtward_families_expiry ON jwtward_families (expires_at)",
        """CREATE TABLE jwtward_refresh_tokens (
            token_hash TEXT PRIMARY KEY,
            family_id TEXT NOT NULL,
            issued_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            used_at REAL,
            successor BLOB
        )""",
        "CREATE INDEX jwtward_refresh_expiry ON jwtward_refresh_tokens (expires_at)",
        """CREATE TABLE jwtward_revoked_access (
            jti TEXT PRIMARY KEY,
            expires_at REAL NOT NULL
        )""",
        """CREATE TABLE jwtward_subject_cutoffs (
            subject TEXT PRIMARY KEY,
            cutoff REAL NOT NULL,
            keep_until REAL NOT NULL
        )""",
    ),
)
SCHEMA_VERSION: Final = len(_MIGRATIONS)
_MAX_JSON: Final = 1 << 16

# Every family column, in the order of ``_family_values`` and ``_family_from``.
_LOAD_REFRESH: Final = """
SELECT r.token_hash, r.family_id, r.issued_at, r.expires_at, r.used_at, r.successor,
       f.family_id, f.subject, f.created_at, f.expires_at, f.last_used_at, f.revoked_at,
       f.client_id, f.scope, f.claims, f.metadata,
       (SELECT cutoff FROM jwtward_subject_cutoffs c WHERE c.subject = f.subject)
FROM jwtward_refresh_tokens r LEFT JOIN jwtward_families f ON f.family_id = r.family_id
WHERE r.token_hash = ?"""
_ACCESS_VIEW: Final = """
SELECT EXISTS (SELECT 1 FROM jwtward_revoked_access WHERE jti = :jti),
       (SELECT cutoff FROM jwtward_subject_cutoffs WHERE subject = :subject),
       f.family_id, f.subject, f.created_at, f.expires_at, f.last_used_at, f.revoked_at,
       f.client_id, f.scope, f.claims, f.metadata
FROM (SELECT 1) LEFT JOIN jwtward_families f ON f.family_id = :family_id"""
_INSERT_FAMILY: Final = (
    "INSERT INTO jwtward_families (family_id, subject, created_at, expires_at, last_used_at, "
    "revoked_at, client_id, scope, claims, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_SESSIONS: Final = (
    "SELECT family_id, subject, created_at, expires_at, last_used_at, revoked_at, client_id, "
    "scope, claims, metadata FROM jwtward_families WHERE subject = ? ORDER BY created_at DESC"
)


def _migrate(db: sqlite3.Connection) -> None:
    migrate(db, "jwtward_token_schema", _MIGRATIONS, "token store")


def _json_text(value: Any) -> str:
    return dumps(value).decode("utf-8")


def _json_value(text: object) -> dict[str, Any]:
    if not isinstance(text, str):
        raise StoreUnavailable("the token store holds a malformed session record")
    try:
        return loads_object(text, max_size=_MAX_JSON)
    except DecodeError:
        raise StoreUnavailable("the token store holds a malformed session record") from None


def _family_values(family: FamilyRecord) -> tuple[Any, ...]:
    return (
        family.family_id,
        family.subject,
        family.created_at,
        family.expires_at,
        family.last_used_at,
        family.revoked_at,
        family.client_id,
        family.scope,
        _json_text(dict(family.claims)),
        _json_text(dict(family.metadata)),
    )


def _family_from(row: Sequence[Any]) -> FamilyRecord | None:
    if row[0] is None:
        return None
    metadata = _json_value(row[9])
    return FamilyRecord(
        family_id=row[0],
        subject=row[1],
        created_at=row[2],
        expires_at=row[3],
        last_used_at=row[4],
        revoked_at=row[5],
        client_id=row[6],
        scope=row[7],
        claims=_json_value(row[8]),
        metadata={str(k): str(v) for k, v in metadata.items()},
    )


def _refresh_values(record: RefreshRecord) -> tuple[Any, ...]:
    return (
        record.token_hash,
        record.family_id,
        record.issued_at,
        record.expires_at,
        record.used_at,
        record.successor,
    )


class SQLiteTokenStore:
    """A :class:`~jwtward.tokens.records.TokenStore` in the SQLite file at ``path``.

    ``timeout`` bounds the wait for another writer's lock (seconds) before a
    :class:`~jwtward.errors.StoreUnavailable`. Use
    :class:`~jwtward.tokens.async_adapter.ThreadedStore` to use it from asyncio.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 10.0) -> None:
        self._db = SQLiteDatabase(
            path, timeout=timeout, label="token store", error=StoreUnavailable,
            create_schema=_migrate,
        )

    @property
    def path(self) -> os.PathLike[str]:
        return self._db.path

    def create_family(self, family: FamilyRecord, first: RefreshRecord) -> None:
        with self._db.transaction("BEGIN IMMEDIATE") as db:
            db.execute(_INSERT_FAMILY, _family_values(family))
            db.execute(
                "INSERT INTO jwtward_refresh_tokens VALUES (?, ?, ?, ?, ?, ?)",
                _refresh_values(first),
            )

    def load_refresh(self, token_hash: str) -> RefreshView | None:
        with self._db.transaction() as db:
            row = db.execute(_LOAD_REFRESH, (token_hash,)).fetchone()
        if row is None:
            return None
        record = RefreshRecord(
            token_hash=row[0],
            family_id=row[1],
            issued_at=row[2],
            expires_at=row[3],
            used_at=row[4],
            successor=None if row[5] is None else bytes(row[5]),
        )
        return RefreshView(record, _family_from(row[6:16]), row[16])

    def rotate(
        self,
        token_hash: str,
        used_at: float,
        successor: RefreshRecord,
        sealed_successor: bytes | None,
    ) -> bool:
        with self._db.transaction("BEGIN IMMEDIATE") as db:
            row = db.execute(
                "UPDATE jwtward_refresh_tokens SET used_at = ?, successor = ? "
                "WHERE token_hash = ? AND used_at IS NULL AND family_id IN "
                "(SELECT family_id FROM jwtward_families WHERE revoked_at IS NULL) "
                "RETURNING family_id",
                (used_at, sealed_successor, token_hash),
            ).fetchone()
            if row is None:
                return False
            db.execute(
                "INSERT INTO jwtward_refresh_tokens VALUES (?, ?, ?, ?, ?, ?)",
                _refresh_values(successor),
            )
            db.execute(
                "UPDATE jwtward_families SET last_used_at = ? WHERE family_id = ?",
                (used_at, row[0]),
            )
            return True

    def revoke_family(self, family_id: str, revoked_at: float) -> None:
        with self._db.transaction("BEGIN IMMEDIATE") as db:
            db.execute(
                "UPDATE jwtward_families SET revoked_at = ? "
                "WHERE family_id = ? AND revoked_at IS NULL",
                (revoked_at, family_id),
            )

    def revoke_access(self, jti: str, expires_at: float) -> None:
        with self._db.transaction("BEGIN IMMEDIATE") as db:
            db.execute(
                "INSERT INTO jwtward_revoked_access (jti, expires_at) VALUES (?, ?) "
                "ON CONFLICT (jti) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
                (jti, expires_at),
            )

    def revoke_subject(self, subject: str, cutoff: float, keep_until: float) -> None:
        with self._db.transaction("BEGIN IMMEDIATE") as db:
            db.execute(
                "INSERT INTO jwtward_subject_cutoffs (subject, cutoff, keep_until) "
                "VALUES (?, ?, ?) ON CONFLICT (subject) DO UPDATE SET "
                "cutoff = max(cutoff, excluded.cutoff), "
                "keep_until = max(keep_until, excluded.keep_until)",
                (subject, cutoff, keep_until),
            )

    def access_view(self, jti: str, family_id: str, subject: str) -> AccessView:
        with self._db.transaction() as db:
            row = db.execute(
                _ACCESS_VIEW, {"jti": jti, "subject": subject, "family_id": family_id}
            ).fetchone()
        return AccessView(
            jti_revoked=bool(row[0]), family=_family_from(row[2:12]), subject_cutoff=row[1]
        )

    def sessions(self, subject: str) -> SubjectView:
        with self._db.transaction() as db:
            rows = db.execute(_SELECT_SESSIONS, (subject,)).fetchall()
            cutoff = db.execute(
                "SELECT cutoff FROM jwtward_subject_cutoffs WHERE subject = ?", (subject,)
            ).fetchone()
        families = tuple(f for f in (_family_from(row) for row in rows) if f is not None)
        return SubjectView(families, None if cutoff is None else cutoff[0])

    def purge_expired(self, now: float) -> int:
        with self._db.transaction("BEGIN IMMEDIATE") as db:
            removed = 0
            for statement in (
                "DELETE FROM jwtward_refresh_tokens WHERE expires_at <= ?",
                "DELETE FROM jwtward_families WHERE expires_at <= ?",
                "DELETE FROM jwtward_revoked_access WHERE expires_at <= ?",
                "DELETE FROM jwtward_subject_cutoffs WHERE keep_until <= ?",
            ):
                removed += db.execute(statement, (now,)).rowcount
            return removed

    def ping(self) -> None:
        with self._db.transaction() as db:
            db.execute("SELECT version FROM jwtward_token_schema").fetchone()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SQLiteTokenStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteTokenStore({str(self._db.path)!r})"
