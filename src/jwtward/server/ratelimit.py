"""Rate limits on failed logins, per username and per client address.

Each limiter counts failures per key in a *fixed window* whose start is
stored with the count: the first failure of a key opens a window of
``window`` seconds; every further failure inside it adds one; the first
failure at or after the window's end opens a new window with a count of one.
Exactly ``limit`` failures fit in a window; :meth:`RateLimiter.hit` refuses
the ``limit + 1``-th and every one after it until the window ends. A fixed
window lets a client place up to ``2 * limit`` failures around a window
boundary; that is accepted in exchange for one row per key and one atomic
statement per failure, the same in every backend.

The login flow is::

    if not limiter.check(key, ...).allowed: answer 429 (no password hashing at all)
    verify the password
    on failure: limiter.hit(key, ...)        (429 if not allowed, 401 otherwise)
    on success: limiter.reset(username key)

:meth:`~RateLimiter.check` says whether *one more* attempt may be made, so it
blocks as soon as ``limit`` failures are recorded: a client gets exactly
``limit`` password guesses per window, never ``limit + 1``.

Keys are stored only as SHA-256 digests (with a jwtward-specific prefix), so
the backend holds no username or client address in clear. The digest is not
keyed: whoever reads the backend can still test a guessed username or
address against it; the hashing keeps the data out of dumps and logs, it is
not a secret.

State lives where the server keeps its tokens: in memory (one process), in
the SQLite file, in Redis or in PostgreSQL (shared by every server process).
Every backend failure is raised as :class:`~jwtward.errors.StoreUnavailable`.
The Redis and PostgreSQL drivers are imported only when such a limiter is
made, so this module loads without them.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, LiteralString, Protocol, runtime_checkable

from jwtward.errors import InvalidArgument, StoreUnavailable
from jwtward.sqlite_db import SQLiteDatabase, migrate

if TYPE_CHECKING:
    import redis
    from psycopg import sql
    from psycopg_pool import ConnectionPool


__all__ = [
    "MemoryRateLimiter",
    "PostgresRateLimiter",
    "RateDecision",
    "RateLimiter",
    "RateLimits",
    "RedisRateLimiter",
    "SQLiteRateLimiter",
    "address_key",
    "hash_key",
    "username_key",
]

logger = logging.getLogger("jwtward.server")

_KEY_DOMAIN: Final = b"jwtward.ratelimit:"


# -- the decision, the protocol and the defaults -----------------------------------------


@dataclass(frozen=True, slots=True)
class RateDecision:
    """What a limiter answers.

    ``allowed``: for :meth:`RateLimiter.hit`, whether the failure just
    recorded was within the limit; for :meth:`RateLimiter.check`, whether
    one more attempt may be made now. ``count``: the failures recorded in
    the current window (0 when none is open). ``retry_after``: whole seconds
    until the window ends (rounded up, at least 1) when not allowed, else 0:
    what an HTTP ``Retry-After`` header carries.
    """

    allowed: bool
    count: int
    retry_after: int


@runtime_checkable
class RateLimiter(Protocol):
    """A failure counter per key, in fixed windows (see the module docstring).

    ``now`` is POSIX seconds, given by the caller so that every backend
    decides by the same clock (and tests can move it).
    """

    def hit(self, key: str, *, limit: int, window: float, now: float) -> RateDecision:
        """Record one failure for ``key``; allowed while the window holds at most ``limit``."""
        ...

    def check(self, key: str, *, limit: int, window: float, now: float) -> RateDecision:
        """Read only: may ``key`` make another attempt (fewer than ``limit`` failures)?"""
        ...

    def reset(self, key: str) -> None:
        """Forget ``key``'s failures (after a successful login)."""
        ...

    def purge_expired(self, now: float) -> int:
        """Drop the windows that ended at or before ``now``; return how many."""
        ...

    def ping(self) -> None:
        """Raise StoreUnavailable unless the backend answers."""
        ...

    def close(self) -> None:
        """Release the backend's connections."""
        ...


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The server's login limits: failures allowed per window, per username and per address.

    Per username the limit is tight (it protects one account against
    guessing); per address it is looser, because many users may share one
    address (a NAT, a proxy) while one address trying many usernames must
    still be slowed down.
    """

    username_limit: int = 5
    username_window: float = 300.0
    address_limit: int = 20
    address_window: float = 300.0

    def __post_init__(self) -> None:
        _check_limit(self.username_limit, self.username_window)
        _check_limit(self.address_limit, self.address_window)


def username_key(username: str) -> str:
    """The limiter key of a username (its own namespace: no clash with an address)."""
    return "user:" + username


def address_key(address: str) -> str:
    """The limiter key of a client address."""
    return "addr:" + address


def hash_key(key: str) -> bytes:
    """The 32-byte digest under which ``key`` is stored (never the key itself)."""
    if not isinstance(key, str):
        raise InvalidArgument("a rate limit key must be a string")
    return hashlib.sha256(_KEY_DOMAIN + key.encode("utf-8", "surrogatepass")).digest()


def _check_limit(limit: int, window: float) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgument("a rate limit must be a positive integer")
    if (
        isinstance(window, bool)
        or not isinstance(window, int | float)
        or not math.isfinite(window)
        or window <= 0
    ):
        raise InvalidArgument("a rate limit window must be a positive number of seconds")


def _check_now(now: float) -> float:
    if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
        raise InvalidArgument("now must be a finite POSIX time")
    return float(now)


def _retry_after(expires_at: float, now: float) -> int:
    return max(1, math.ceil(expires_at - now))


def _after_hit(count: int, expires_at: float, limit: int, now: float) -> RateDecision:
    if count <= limit:
        return RateDecision(True, count, 0)
    return RateDecision(False, count, _retry_after(expires_at, now))


def _after_check(count: int, expires_at: float, limit: int, now: float) -> RateDecision:
    """The decision for a stored window; an ended window counts as none."""
    if expires_at <= now:
        return RateDecision(True, 0, 0)
    if count < limit:
        return RateDecision(True, count, 0)
    return RateDecision(False, count, _retry_after(expires_at, now))


# -- memory ------------------------------------------------------------------------------


class MemoryRateLimiter:
    """A :class:`RateLimiter` in this process's memory (thread-safe; lost on restart)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # digest -> (count, window start, window end)
        self._windows: dict[bytes, tuple[int, float, float]] = {}

    def hit(self, key: str, *, limit: int, window: float, now: float) -> RateDecision:
        _check_limit(limit, window)
        now = _check_now(now)
        digest = hash_key(key)
        with self._lock:
            held = self._windows.get(digest)
            if held is None or held[2] <= now:
                held = (1, now, now + window)
            else:
                held = (held[0] + 1, held[1], held[2])
            self._windows[digest] = held
        return _after_hit(held[0], held[2], limit, now)

    def check(self, key: str, *, limit: int, window: float, now: float) -> RateDecision:
        _check_limit(limit, window)
        now = _check_now(now)
        digest = hash_key(key)
        with self._lock:
            held = self._windows.get(digest)
        if held is None:
            return RateDecision(True, 0, 0)
        return _after_check(held[0], held[2], limit, now)

    def reset(self, key: str) -> None:
        digest = hash_key(key)
        with self._lock:
            self._windows.pop(digest, None)

    def purge_expired(self, now: float) -> int:
        now = _check_now(now)
        with self._lock:
            ended = [digest for digest, held in self._windows.items() if held[2] <= now]
            for digest in ended:
                del self._windows[digest]
        return len(ended)

    def ping(self) -> None:
        """Always answers."""

    def close(self) -> None:
        """Nothing to release."""

    def stored_digests(self) -> frozenset[bytes]:
        """The digests held (for inspection: the keys themselves are never kept)."""
        with self._lock:
            return frozenset(self._windows)

    def __repr__(self) -> str:
        return "MemoryRateLimiter()"


# -- SQLite ------------------------------------------------------------------------------

_SQLITE_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE jwtward_rate_limits (
            key_hash BLOB PRIMARY KEY,
            count INTEGER NOT NULL,
            window_start REAL NOT NULL,
            expires_at REAL NOT NULL
        )""",
        "CREATE INDEX jwtward_rate_limits_expiry ON jwtward_rate_limits (expires_at)",
    ),
)

# A window that has ended is replaced by a new one; SET expressions all read
# the old row, so the three CASEs agree.
_SQLITE_HIT: Final = """INSERT INTO jwtward_rate_limits (key_hash, count, window_start, expires_at)
VALUES (:key, 1, :now, :expires)
ON CONFLICT (key_hash) DO UPDATE SET
    count = CASE WHEN expires_at <= excluded.window_start THEN 1 ELSE count + 1 END,
    window_start = CASE WHEN expires_at <= excluded.window_start
                        THEN excluded.window_start ELSE window_start END,
    expires_at = CASE WHEN expires_at <= excluded.window_start
                      THEN excluded.expires_at ELSE expires_at END
RETURNING count, expires_at"""


def _sqlite_migrate(db: sqlite3.Connection) -> None:
    migrate(db, "jwtward_rate_limit_schema", _SQLITE_MIGRATIONS, "rate limiter")


class SQLiteRateLimiter:
    """A :class:`RateLimiter` in an SQLite file (table ``jwtward_rate_limits``).

    The file may be the one of the SQLite token and key stores. Each hit is
    one upsert inside ``BEGIN IMMEDIATE``: writers queue on SQLite's write
    lock, so concurrent failures from any thread or process all count.
    ``timeout`` bounds the wait for that lock.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 10.0) -> None:
        self._db = SQLiteDatabase(
            path,
            timeout=timeout,
            label="rate limiter",
            error=StoreUnavailable,
            create_schema=_sqlite_migrate,
        )

    @property
    def path(self) -> os.PathLike[str]:
        return self._db.path

    def hit(self, key: str, *, limit: int, window: float, now: float) -> RateDecision:
        _check_limit(limit, window)
        now = _check_now(now)
        params = {"key": hash_key(key), "now": now, "expires": now + window}
        with self._db.transaction("BEGIN IMMEDIATE") as db:
            count, expires_at = db.execute(_SQLITE_HIT, params).fetchone()
        return _after_hit(count, expires_at, limit, now)

    def check(self, key: str, *, limit: int, window: float, now: float) -> RateDecision:
        _check_limit(limit, window)
        now = _check_now(now)
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT count, expires_at FROM jwtward_rate_limits WHERE key_hash = ?",
                (hash_key(key),),
            ).fetchone()
        if row is None:
            return RateDecision(True, 0, 0)
        return _after_check(row[0], row[1], limit, now)

    def reset(self, key: str) -> None:
        with self._db.transaction("BEGIN IMMEDIATE") as db:
            db.execute("DELETE FROM jwtward_rate_limits WHERE key_hash = ?", (hash_key(key),))

    def purge_expired(self, now: float) -> int:
        now = _check_now(now)
        with self._db.transaction("BEGIN IMMEDIATE") as db:
            return db.execute(
                "DELETE FROM jwtward_rate_limits WHERE expires_at <= ?", (now,)
            ).rowcount

    def ping(self) -> None:
        with self._db.transaction() as db:
            db.execute("SELECT version FROM jwtward_rate_limit_schema").fetchone()

    def close(self) -> None:
        self._db.close()

    def __repr__(self) -> str:
        return f"SQLiteRateLimiter({str(self._db.path)!r})"


# -- Redis -------------------------------------------------------------------------------

# KEYS: the window hash. ARGV: now ms, window ms.
# The hash holds n (the count), s (window start ms) and e (window end ms) and
# expires at e, so Redis drops a window by itself once it has ended. The
# rollover test uses the caller's clock (ARGV), the expiry Redis's own.
_LUA_HIT: Final = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local held = redis.call('HMGET', KEYS[1], 'n', 'e')
local n, e = tonumber(held[1]), tonumber(held[2])
if n == nil or e == nil or e <= now then
  e = now + window
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'n', 1, 's', ARGV[1], 'e', e)
  redis.call('PEXPIREAT', KEYS[1], e)
  return {1, e}
end
return {redis.call('HINCRBY', KEYS[1], 'n', 1), e}
"""


def _ms(seconds: float) -> int:
    return math.floor(seconds * 1000)


@contextmanager
def _redis_errors() -> Iterator[None]:
    """Every failure to talk to Redis, as StoreUnavailable."""
    from redis.exceptions import RedisError  # noqa: PLC0415 - optional driver

    try:
        yield
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(
            f"the rate limiter (Redis) cannot answer right now: {type(exc).__name__}"
        ) from None


def _redis_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StoreUnavailable("the rate limiter holds a corrupt entry") from None


class RedisRateLimiter:
    """A :class:`RateLimiter` on Redis: one hash per key, ``<prefix>rl:<sha256 hex>``.

    ``client_or_url`` is a ``redis.Redis`` (not decoding responses) or a URL,
    for which the limiter makes its own client with the token store's short
    timeouts and no automatic retry (a lost reply to a retried hit would
    count a failure twice); it closes only a client it made. Each hit is one
    Lua script, atomic against every other client. Entries expire with their
    window (``PEXPIREAT`` at its end), so :meth:`purge_expired` returns 0.
    The window end is computed from the caller's ``now`` but enforced by the
    server's clock: the two should agree to within a second or so.
    """

    def __init__(self, client_or_url: redis.Redis | str, *, prefix: str = "jwtward:") -> None:
        import redis as redis_module  # noqa: PLC0415 - optional driver
        from redis.backoff import NoBackoff  # noqa: PLC0415
        from redis.retry import Retry  # noqa: PLC0415

        from jwtward.tokens.redis_client import check_client, url_options  # noqa: PLC0415

        if not isinstance(prefix, str):
            raise InvalidArgument("the key prefix must be a string")
        self._prefix = prefix + "rl:"
        if isinstance(client_or_url, str):
            options = url_options({}, Retry(NoBackoff(), 0))
            client_or_url = redis_module.Redis.from_url(client_or_url, **options)
            self._owns_client = True
        else:
            check_client(client_or_url)
            self._owns_client = False
        self._client: redis.Redis = client_or_url
        self._hit = self._client.register_script(_LUA_HIT)

    @property
    def client(self) -> redis.Redis:
        return self._client

    def redis_key(self, key: str) -> str:
        """The Redis key holding ``key``'s window."""
        return self._prefix + hash_key(key).hex()

    def hit(self, key: str, *, limit: int, window: float, now: float) -> RateDecision:
        _check_limit(limit, window)
        now = _check_now(now)
        now_ms = _ms(now)
        window_ms = max(1, math.ceil(window * 1000))
        with _redis_errors():
            reply: Any = self._hit(keys=(self.redis_key(key),), args=(now_ms, window_ms))
        if not isinstance(reply, list) or len(reply) != 2:
            raise StoreUnavailable("the rate limiter (Redis) gave an unexpected answer")
        count, end_ms = _redis_int(reply[0]), _redis_int(reply[1])
        return _after_hit(count, end_ms / 1000, limit, now_ms / 1000)

    def check(self, key: str, *, limit: int, window: float, now: float) -> RateDecision:
        _check_limit(limit, window)
        now = _check_now(now)
        with _redis_errors():
            held: Any = self._client.hmget(self.redis_key(key), ["n", "e"])
        if held[0] is None or held[1] is None:
            return RateDecision(True, 0, 0)
        count, end_ms = _redis_int(held[0]), _redis_int(held[1])
        return _after_check(count, end_ms / 1000, limit, _ms(now) / 1000)

    def reset(self, key: str) -> None:
        with _redis_errors():
            self._client.delete(self.redis_key(key))

    def purge_expired(self, now: float) -> int:
        """Always 0: Redis removes each window when it ends."""
        _check_now(now)
        return 0

    def ping(self) -> None:
        with _redis_errors():
            self._client.ping()

    def close(self) -> None:
        if self._owns_client:
            with _redis_errors():
                self._client.close()

    def __repr__(self) -> str:
        return f"RedisRateLimiter(prefix={self._prefix[:-3]!r})"


# -- PostgreSQL --------------------------------------------------------------------------

# Version N is step N - 1 applied to version N - 1; steps are only appended.
# The versions are recorded in a table of their own, apart from the token
# store's, so that either may create the shared schema first.
PG_MIGRATIONS: Final[tuple[tuple[LiteralString, ...], ...]] = (
    (
        """CREATE TABLE {schema}.rate_limits (
            key_hash bytea PRIMARY KEY,
            count integer NOT NULL,
            window_start double precision NOT NULL,
            expires_at double precision NOT NULL
        )""",
        "CREATE INDEX rate_limits_expires_idx ON {schema}.rate_limits (expires_at)",
    ),
)
# The window rolls over inside the statement: concurrent hits of one key
# queue on its row lock and each sees the count the previous one committed.
_PG_HIT: Final[LiteralString] = """INSERT INTO {schema}.rate_limits AS r
    (key_hash, count, window_start, expires_at)
VALUES (%(key)s, 1, %(now)s, %(expires)s)
ON CONFLICT (key_hash) DO UPDATE SET
    count = CASE WHEN r.expires_at <= EXCLUDED.window_start THEN 1 ELSE r.count + 1 END,
    window_start = CASE WHEN r.expires_at <= EXCLUDED.window_start
                        THEN EXCLUDED.window_start ELSE r.window_start END,
    expires_at = CASE WHEN r.expires_at <= EXCLUDED.window_start
                      THEN EXCLUDED.expires_at ELSE r.expires_at END
RETURNING count, expires_at"""
_PG_CHECK: Final[LiteralString] = (
    "SELECT count, expires_at FROM {schema}.rate_limits WHERE key_hash = %(key)s"
)
_PG_RESET: Final[LiteralString] = "DELETE FROM {schema}.rate_limits WHERE key_hash = %(key)s"
_PG_PURGE: Final[LiteralString] = "DELETE FROM {schema}.rate_limits WHERE expires_at <= %(now)s"


class PostgresRateLimiter:
    """A :class:`RateLimiter` in PostgreSQL (table ``<schema>.rate_limits``, psycopg 3).

    Give a ``dsn`` (the limiter makes, owns and closes a pool of
    ``min_size`` to ``max_size`` connections) or an open ``pool`` of your
    own (left open by :meth:`close`). The schema (``jwtward`` by default,
    shared with the PostgreSQL token store) is created and migrated on first
    use under the token store's advisory lock for that schema, so the two
    never race to create it. ``timeout`` bounds the wait for a connection and
    every statement.
    """

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
        from psycopg import sql  # noqa: PLC0415 - optional driver

        from jwtward.postgres_db import migrating_pool_owner  # noqa: PLC0415

        self._db = migrating_pool_owner(
            dsn,
            pool,
            schema=schema,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            name="jwtward-ratelimit",
            what="rate limiter",
            log=logger,
            version_table="rate_limit_schema_version",
            migrations=PG_MIGRATIONS,
        )
        self._connection = self._db.connection
        name = sql.Identifier(schema)

        def bind(text: LiteralString) -> sql.Composed:
            return sql.SQL(text).format(schema=name)

        self._hit = bind(_PG_HIT)
        self._check = bind(_PG_CHECK)
        self._reset = bind(_PG_RESET)
        self._purge = bind(_PG_PURGE)

    @property
    def schema(self) -> str:
        return self._db.schema

    def hit(self, key: str, *, limit: int, window: float, now: float) -> RateDecision:
        _check_limit(limit, window)
        now = _check_now(now)
        params = {"key": hash_key(key), "now": now, "expires": now + float(window)}
        with self._connection() as conn:
            row = conn.execute(self._hit, params).fetchone()
        if row is None:  # pragma: no cover - an upsert with RETURNING always yields a row
            raise StoreUnavailable("the rate limiter gave no answer")
        return _after_hit(int(row[0]), float(row[1]), limit, now)

    def check(self, key: str, *, limit: int, window: float, now: float) -> RateDecision:
        _check_limit(limit, window)
        now = _check_now(now)
        with self._connection() as conn:
            row = conn.execute(self._check, {"key": hash_key(key)}).fetchone()
        if row is None:
            return RateDecision(True, 0, 0)
        return _after_check(int(row[0]), float(row[1]), limit, now)

    def reset(self, key: str) -> None:
        with self._connection() as conn:
            conn.execute(self._reset, {"key": hash_key(key)})

    def purge_expired(self, now: float) -> int:
        now = _check_now(now)
        with self._connection() as conn:
            return conn.execute(self._purge, {"now": now}).rowcount

    def ping(self) -> None:
        """Raise StoreUnavailable unless the server answers and the table is in place."""
        with self._connection() as conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        """Close the pool if this limiter made it; a pool given to it stays open."""
        self._db.close()

    def __repr__(self) -> str:
        # Never the DSN: it may carry a password.
        return f"PostgresRateLimiter(schema={self.schema!r})"
