"""The token server's user accounts and where they are kept.

A user is a normalized username, an argon2id password hash (see
:mod:`jwtward.server.passwords`; this module never sees a password), a
disabled flag, extra claims copied into the user's tokens (roles, email)
and an optional default scope.

Usernames are compared in one normalized form (:func:`normalize_username`:
NFKC, trimmed, case-folded), so ``Alice``, ``alice`` and the same
name in full-width letters are one account: two accounts that look alike on screen cannot
both exist. Every store normalizes every username it is given.

Two stores, both synchronous (the server calls them through
``asyncio.to_thread``):

* :class:`SQLiteUserStore`: a table ``jwtward_users`` in a SQLite file,
  which may be shared with the other jwtward SQLite stores;
* :class:`PostgresUserStore`: a table ``users`` in a PostgreSQL schema
  (``jwtward`` unless told otherwise), shared by every server process.

Every store failure is raised as :class:`~jwtward.errors.StoreUnavailable`
(503, retryable), and the store works again once its database is back.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, LiteralString, Protocol

from jwtward.codecs import dumps, loads_object
from jwtward.errors import DecodeError, InvalidArgument, JWTWardError, StoreUnavailable
from jwtward.sqlite_db import SQLiteDatabase, migrate

if TYPE_CHECKING:
    from psycopg import sql
    from psycopg_pool import ConnectionPool


__all__ = [
    "MAX_USERNAME_LENGTH",
    "PostgresUserStore",
    "SQLiteUserStore",
    "User",
    "UserExists",
    "UserStore",
    "normalize_username",
]

logger = logging.getLogger("jwtward.server")

MAX_USERNAME_LENGTH: Final = 64
"""The longest username, in characters of its normalized form."""

# Normalization can change the length (NFKC expands some ligatures, composes
# others); input far beyond the final bound is refused before any work.
_MAX_RAW_USERNAME: Final = 4 * MAX_USERNAME_LENGTH
# Encoded argon2 hashes are about 100 characters; the bound only stops garbage.
_MAX_PASSWORD_HASH: Final = 512
_MAX_SCOPE: Final = 4096
_MAX_CLAIMS_JSON: Final = 1 << 16
# Control, format (invisible: zero-width joiners, bidi overrides), surrogate,
# private-use and unassigned characters, and line/paragraph separators.
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


class UserExists(JWTWardError):
    """A user with this (normalized) username already exists."""

    error = "user_exists"
    status_code = 409


def normalize_username(name: str) -> str:
    """The one form a username is stored and compared in.

    NFKC (compatibility forms fold: full-width letters, ligatures), trimmed,
    case-folded, and NFKC again (case folding can leave a string that is not
    in NFKC). Raises InvalidArgument unless the result is 1 to
    :data:`MAX_USERNAME_LENGTH` characters with no control, invisible or
    unassigned character and no colon (which HTTP Basic authentication
    cannot carry in a username).
    """
    if not isinstance(name, str):
        raise InvalidArgument("a username must be a str")
    if len(name) > _MAX_RAW_USERNAME:
        raise InvalidArgument(f"a username must be at most {MAX_USERNAME_LENGTH} characters")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument("a username must be valid text") from None
    folded = unicodedata.normalize("NFKC", name).strip().casefold()
    folded = unicodedata.normalize("NFKC", folded).strip()
    if not 1 <= len(folded) <= MAX_USERNAME_LENGTH:
        raise InvalidArgument(f"a username must be 1 to {MAX_USERNAME_LENGTH} characters")
    if ":" in folded or any(unicodedata.category(c) in _REFUSED_CATEGORIES for c in folded):
        raise InvalidArgument("a username must not hold control or invisible characters or ':'")
    return folded


def _lookup_name(name: str) -> str | None:
    """The normalized form of a username to look up, or None if none can be stored under it.

    Lookups come from clients (a login form): a name that could never have
    been added is simply an unknown user, not an error.
    """
    try:
        return normalize_username(name)
    except InvalidArgument:
        if not isinstance(name, str):
            raise
        return None


@dataclass(frozen=True, slots=True, repr=False)
class User:
    """One account; the repr never shows the password hash.

    ``claims`` is the user's own copy (a plain dict, so it serializes as JSON
    as is); changing it changes nothing in the store.
    """

    username: str
    password_hash: str
    disabled: bool
    created_at: float
    updated_at: float
    claims: Mapping[str, Any] = field(default_factory=dict)
    scope: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "claims", dict(self.claims))

    def __repr__(self) -> str:
        # Claim names only: their values may be personal data (an email).
        return (
            f"User(username={self.username!r}, disabled={self.disabled}, "
            f"created_at={self.created_at!r}, updated_at={self.updated_at!r}, "
            f"claims={sorted(self.claims)!r}, scope={self.scope!r})"
        )


class UserStore(Protocol):
    """Where the server keeps its users (sync; called through ``asyncio.to_thread``).

    Every method normalizes the username it is given
    (:func:`normalize_username`). Lookups and updates of a username that
    could not be stored find nothing (``None``/``False``); :meth:`add`
    raises InvalidArgument for it. Every failure of the store itself is
    StoreUnavailable. ``now`` is POSIX seconds.
    """

    def add(
        self,
        username: str,
        password_hash: str,
        *,
        claims: Mapping[str, Any] | None = None,
        scope: str | None = None,
        now: float,
    ) -> User:
        """Create a user; UserExists if the normalized username is taken."""
        ...

    def get(self, username: str) -> User | None:
        """The user, or None if there is none."""
        ...

    def list_users(self) -> list[User]:
        """Every user, sorted by username."""
        ...

    def set_disabled(self, username: str, disabled: bool, now: float) -> bool:
        """Disable or enable a user; False if there is no such user."""
        ...

    def set_password_hash(self, username: str, password_hash: str, now: float) -> bool:
        """Replace a user's password hash; False if there is no such user."""
        ...

    def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""
        ...

    def close(self) -> None:
        """Release connections (a store may reopen them on next use)."""
        ...


# -- argument checks and row conversion, shared by the stores ------------------------


def _check_hash(password_hash: object) -> str:
    if (
        not isinstance(password_hash, str)
        or not 1 <= len(password_hash) <= _MAX_PASSWORD_HASH
        or not password_hash.isascii()
        or not password_hash.isprintable()
    ):
        raise InvalidArgument("a password hash must be printable ASCII of at most 512 characters")
    return password_hash


def _check_now(now: object) -> float:
    if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
        raise InvalidArgument("now must be a finite number of seconds")
    return float(now)


def _check_scope(scope: object) -> str | None:
    if scope is None:
        return None
    if (
        not isinstance(scope, str)
        or len(scope) > _MAX_SCOPE
        or not scope.isascii()
        or not scope.isprintable()
    ):
        raise InvalidArgument("a scope must be printable ASCII (RFC 6749 §3.3) or None")
    return scope


def _claims_text(claims: Mapping[str, Any] | None) -> str:
    if claims is None:
        return "{}"
    if not isinstance(claims, Mapping):
        raise InvalidArgument("claims must be a mapping")
    try:
        text = dumps(dict(claims)).decode("utf-8")
    except DecodeError as exc:
        raise InvalidArgument(f"claims must be JSON: {exc}") from None
    if len(text) > _MAX_CLAIMS_JSON:
        raise InvalidArgument("claims are too large")
    return text


def _user_from(row: Sequence[Any]) -> User:
    """A user from a row of the columns in their table order (username ... scope)."""
    username, password_hash, disabled, created_at, updated_at, claims, scope = row
    if not isinstance(claims, str):
        raise StoreUnavailable("the user store holds a malformed user record")
    try:
        claims_value = loads_object(claims, max_size=_MAX_CLAIMS_JSON)
    except DecodeError:
        raise StoreUnavailable("the user store holds a malformed user record") from None
    if (
        not isinstance(username, str)
        or not isinstance(password_hash, str)
        or disabled not in (0, 1)  # SQLite integers and PostgreSQL booleans alike
        or not isinstance(created_at, int | float)
        or not isinstance(updated_at, int | float)
        or not (scope is None or isinstance(scope, str))
    ):
        raise StoreUnavailable("the user store holds a malformed user record")
    return User(
        username=username,
        password_hash=password_hash,
        disabled=bool(disabled),
        created_at=float(created_at),
        updated_at=float(updated_at),
        claims=claims_value,
        scope=scope,
    )


# -- SQLite --------------------------------------------------------------------------

# Each step moves the schema from its index to the next version; steps are
# only ever appended.
_SQLITE_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE jwtward_users (
            username TEXT PRIMARY KEY,
            password_hash TEXT NOT NULL,
            disabled INTEGER NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            claims TEXT NOT NULL,
            scope TEXT
        )""",
    ),
)
SQLITE_SCHEMA_VERSION: Final = len(_SQLITE_MIGRATIONS)
_SQLITE_INSERT: Final = """
INSERT INTO jwtward_users
    (username, password_hash, disabled, created_at, updated_at, claims, scope)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (username) DO NOTHING"""
_SQLITE_GET: Final = """
SELECT username, password_hash, disabled, created_at, updated_at, claims, scope
FROM jwtward_users WHERE username = ?"""
_SQLITE_LIST: Final = """
SELECT username, password_hash, disabled, created_at, updated_at, claims, scope
FROM jwtward_users ORDER BY username"""
_SQLITE_SET_DISABLED: Final = (
    "UPDATE jwtward_users SET disabled = ?, updated_at = ? WHERE username = ?"
)
_SQLITE_SET_HASH: Final = (
    "UPDATE jwtward_users SET password_hash = ?, updated_at = ? WHERE username = ?"
)


def _sqlite_migrate(db: sqlite3.Connection) -> None:
    migrate(db, "jwtward_user_schema", _SQLITE_MIGRATIONS, "user store")


class SQLiteUserStore:
    """A :class:`UserStore` in the SQLite file at ``path`` (created 0600, WAL mode).

    ``timeout`` bounds the wait for another writer's lock (seconds) before a
    StoreUnavailable.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 10.0) -> None:
        self._db = SQLiteDatabase(
            path,
            timeout=timeout,
            label="user store",
            error=StoreUnavailable,
            create_schema=_sqlite_migrate,
        )

    @property
    def path(self) -> os.PathLike[str]:
        return self._db.path

    def add(
        self,
        username: str,
        password_hash: str,
        *,
        claims: Mapping[str, Any] | None = None,
        scope: str | None = None,
        now: float,
    ) -> User:
        row = (
            normalize_username(username),
            _check_hash(password_hash),
            0,
            _check_now(now),
            _check_now(now),
            _claims_text(claims),
            _check_scope(scope),
        )
        with self._db.transaction("BEGIN IMMEDIATE") as db:
            added = db.execute(_SQLITE_INSERT, row).rowcount
        if added != 1:
            raise UserExists(f"a user named {row[0]!r} already exists")
        return _user_from(row)

    def get(self, username: str) -> User | None:
        name = _lookup_name(username)
        if name is None:
            return None
        with self._db.transaction() as db:
            row = db.execute(_SQLITE_GET, (name,)).fetchone()
        return None if row is None else _user_from(row)

    def list_users(self) -> list[User]:
        with self._db.transaction() as db:
            rows = db.execute(_SQLITE_LIST).fetchall()
        return [_user_from(row) for row in rows]

    def set_disabled(self, username: str, disabled: bool, now: float) -> bool:
        if not isinstance(disabled, bool):
            raise InvalidArgument("disabled must be a bool")
        return self._update(_SQLITE_SET_DISABLED, int(disabled), username, now)

    def set_password_hash(self, username: str, password_hash: str, now: float) -> bool:
        return self._update(_SQLITE_SET_HASH, _check_hash(password_hash), username, now)

    def _update(self, statement: str, value: object, username: str, now: float) -> bool:
        when = _check_now(now)
        name = _lookup_name(username)
        if name is None:
            return False
        with self._db.transaction("BEGIN IMMEDIATE") as db:
            changed = db.execute(statement, (value, when, name)).rowcount
        return changed == 1

    def ping(self) -> None:
        with self._db.transaction() as db:
            db.execute("SELECT count(*) FROM jwtward_users WHERE 0").fetchone()

    def close(self) -> None:
        self._db.close()

    def __repr__(self) -> str:
        return f"SQLiteUserStore({str(self.path)!r})"


# -- PostgreSQL ----------------------------------------------------------------------
#
# Version N of the schema is _PG_MIGRATIONS[N - 1]; steps are only ever
# appended, and only add, so an older jwtward keeps working on a newer schema.
# The versions live in a table of their own: the schema is shared with the
# token store, whose ``schema_version`` counts its own steps.

_PG_MIGRATIONS: Final[tuple[tuple[LiteralString, ...], ...]] = (
    (
        """CREATE TABLE {schema}.users (
            username text PRIMARY KEY,
            password_hash text NOT NULL,
            disabled boolean NOT NULL,
            created_at double precision NOT NULL,
            updated_at double precision NOT NULL,
            claims text NOT NULL,
            scope text
        )""",
    ),
)
_PG_INSERT: Final[LiteralString] = """
INSERT INTO {schema}.users
    (username, password_hash, disabled, created_at, updated_at, claims, scope)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (username) DO NOTHING
RETURNING username, password_hash, disabled, created_at, updated_at, claims, scope"""
_PG_GET: Final[LiteralString] = """
SELECT username, password_hash, disabled, created_at, updated_at, claims, scope
FROM {schema}.users WHERE username = %s"""
# Code point order, as Python sorts str and as the SQLite store lists.
_PG_LIST: Final[LiteralString] = """
SELECT username, password_hash, disabled, created_at, updated_at, claims, scope
FROM {schema}.users ORDER BY username COLLATE "C"
"""
_PG_SET_DISABLED: Final[LiteralString] = (
    "UPDATE {schema}.users SET disabled = %s, updated_at = %s WHERE username = %s"
)
_PG_SET_HASH: Final[LiteralString] = (
    "UPDATE {schema}.users SET password_hash = %s, updated_at = %s WHERE username = %s"
)
_PG_PING: Final[LiteralString] = "SELECT 1 FROM {schema}.users LIMIT 0"


@dataclass(frozen=True, slots=True)
class _PgStatements:
    """The store's statements with its schema name filled in once."""

    insert: sql.Composed
    get: sql.Composed
    list_all: sql.Composed
    set_disabled: sql.Composed
    set_hash: sql.Composed
    ping: sql.Composed


def _pg_statements(schema: str) -> _PgStatements:
    from psycopg import sql  # noqa: PLC0415 - the driver is an optional dependency

    name = sql.Identifier(schema)

    def bind(text: LiteralString) -> sql.Composed:
        return sql.SQL(text).format(schema=name)

    return _PgStatements(
        insert=bind(_PG_INSERT),
        get=bind(_PG_GET),
        list_all=bind(_PG_LIST),
        set_disabled=bind(_PG_SET_DISABLED),
        set_hash=bind(_PG_SET_HASH),
        ping=bind(_PG_PING),
    )


class PostgresUserStore:
    """A :class:`UserStore` in PostgreSQL: table ``users`` in ``schema`` (psycopg 3).

    Give either a ``dsn`` (the store makes, owns and closes its own pool of
    ``min_size`` to ``max_size`` connections) or an open ``pool`` of your own
    (left open by :meth:`close`). ``timeout`` bounds the wait for a
    connection and each statement. The schema is created and migrated on
    first use under the same advisory lock as the token store's, so stores
    sharing a schema and several processes starting at once never race.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        pool: ConnectionPool[Any] | None = None,
        schema: str = "jwtward",
        timeout: float = 5.0,
        min_size: int = 1,
        max_size: int = 4,
    ) -> None:
        # Imported here: psycopg is an optional dependency, and the SQLite
        # store above must work without it.
        from jwtward.postgres_db import migrating_pool_owner  # noqa: PLC0415

        self._db = migrating_pool_owner(
            dsn,
            pool,
            schema=schema,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            name="jwtward-users",
            what="user store",
            log=logger,
            version_table="user_schema_version",
            migrations=_PG_MIGRATIONS,
        )
        self._sql = _pg_statements(schema)
        self._connection = self._db.connection

    @property
    def schema(self) -> str:
        return self._db.schema

    def add(
        self,
        username: str,
        password_hash: str,
        *,
        claims: Mapping[str, Any] | None = None,
        scope: str | None = None,
        now: float,
    ) -> User:
        name = normalize_username(username)
        values = (
            name,
            _check_hash(password_hash),
            False,
            _check_now(now),
            _check_now(now),
            _claims_text(claims),
            _check_scope(scope),
        )
        with self._connection() as conn:
            row = conn.execute(self._sql.insert, values).fetchone()
        if row is None:
            raise UserExists(f"a user named {name!r} already exists")
        return _user_from(row)

    def get(self, username: str) -> User | None:
        name = _lookup_name(username)
        if name is None:
            return None
        with self._connection() as conn:
            row = conn.execute(self._sql.get, (name,)).fetchone()
        return None if row is None else _user_from(row)

    def list_users(self) -> list[User]:
        with self._connection() as conn:
            rows = conn.execute(self._sql.list_all).fetchall()
        return [_user_from(row) for row in rows]

    def set_disabled(self, username: str, disabled: bool, now: float) -> bool:
        if not isinstance(disabled, bool):
            raise InvalidArgument("disabled must be a bool")
        return self._update(self._sql.set_disabled, disabled, username, now)

    def set_password_hash(self, username: str, password_hash: str, now: float) -> bool:
        return self._update(self._sql.set_hash, _check_hash(password_hash), username, now)

    def _update(self, statement: sql.Composed, value: object, username: str, now: float) -> bool:
        when = _check_now(now)
        name = _lookup_name(username)
        if name is None:
            return False
        with self._connection() as conn:
            changed = conn.execute(statement, (value, when, name)).rowcount
        return changed == 1

    def ping(self) -> None:
        """Raise StoreUnavailable unless the server answers and the table is in place."""
        with self._connection() as conn:
            conn.execute(self._sql.ping)

    def close(self) -> None:
        """Close the pool if this store made it; a pool given to the store stays open."""
        self._db.close()

    def __repr__(self) -> str:
        # Never the DSN: it may carry a password.
        return f"PostgresUserStore(schema={self.schema!r})"
