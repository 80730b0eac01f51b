"""Token stores on Redis: :class:`RedisTokenStore` (sync) and :class:`AsyncRedisTokenStore`.

Layout, under a configurable prefix (default ``jwtward:``)::

    <prefix>rt:<token hash>   hash   one refresh record
    <prefix>fam:<family id>   hash   one session
    <prefix>jti:<jti>         string a revoked access token (value: its exp)
    <prefix>cut:<subject>     hash   the subject cutoff (cutoff, keep_until)
    <prefix>sub:<subject>     zset   the subject's family ids, scored by created_at

Every key expires with what it describes (``PEXPIREAT`` at the POSIX time
the record names): a refresh record at its ``expires_at``, a session at its
``expires_at``, a revoked jti at the token's ``exp``, a cutoff at its
``keep_until``, a subject index when the last of its sessions ends. Redis
itself drops what can no longer matter, so :meth:`purge_expired` only tidies
the subject indexes (see there).

Every write that reads first is one Lua script, so it is atomic against
every other client: above all the compare-and-swap of ``rotate``
(invariant 9). Scripts run by ``EVALSHA`` and are loaded again by the
client library when a restarted server has forgotten them. Two scripts
(``rotate`` and ``load_refresh``) find the family key from the record they
read, so the store is for a single Redis server or a Sentinel-managed one,
not Redis Cluster.

The two classes share everything but ``await``: each operation is written
once below as a generator that yields what it needs from Redis (a script
call or a pipeline of reads) and turns the replies into records; each class
only runs those generators against its client.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from jwtward.codecs import dumps, loads_object
from jwtward.errors import DecodeError, InvalidArgument, StoreUnavailable
from jwtward.tokens.records import (
    AccessView,
    FamilyRecord,
    RefreshRecord,
    RefreshView,
    SubjectView,
)

__all__ = ["DEFAULT_PREFIX", "AsyncRedisTokenStore", "RedisTokenStore"]

T = TypeVar("T")

DEFAULT_PREFIX = "jwtward:"

# A store built from a URL gives up quickly: a dead server must turn into a
# 503 within a request's time, not hang it (invariant 11). No automatic
# retry either: a write whose reply was lost may have been applied, and
# running ``rotate`` twice would make the legitimate client look like a thief.
DEFAULT_TIMEOUT = 2.0

# Expiry times beyond this (about 285,000 years) are clamped: Redis refuses
# times that overflow its millisecond clock, and such an entry never expires anyway.
_MAX_EXPIRY_MS = 2**53

# Claims are bounded by the token size long before this; the bound only
# keeps a corrupt entry from costing more than a bad read.
_MAX_JSON = 1 << 20

# -- Lua scripts ----------------------------------------------------------------------------

# Replace a hash with the fields in ARGV[from .. from + count - 1] and expire it.
_LUA_WRITE_HASH = """
local function write_hash(key, from, count, expiry_ms)
  redis.call('DEL', key)
  redis.call('HSET', key, unpack(ARGV, from, from + count - 1))
  redis.call('PEXPIREAT', key, expiry_ms)
end
"""

# KEYS: family, first refresh record, subject index.
# ARGV: family id, created_at, family expiry ms, record expiry ms,
#       n family fields, m record fields, the n family fields, the m record fields.
# The index expires with the last of its sessions: its expiry only moves later.
# A session that has already ended is not indexed (its hash is deleted at once).
_LUA_CREATE = _LUA_WRITE_HASH + """
local family_ms = tonumber(ARGV[3])
local n, m = tonumber(ARGV[5]), tonumber(ARGV[6])
write_hash(KEYS[1], 7, n, ARGV[3])
write_hash(KEYS[2], 7 + n, m, ARGV[4])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if family_ms > now_ms then
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
  local ttl = redis.call('PTTL', KEYS[3])
  if ttl < 0 or now_ms + ttl < family_ms then
    redis.call('PEXPIREAT', KEYS[3], ARGV[3])
  end
end
return 1
"""

# KEYS: the record to use up, its successor.
# ARGV: used_at, has sealed successor ('1'/'0'), sealed successor, family key prefix,
#       successor expiry ms, m successor fields, the m successor fields.
# Returns 1 only when the record exists, is unused and its family exists unrevoked.
_LUA_ROTATE = _LUA_WRITE_HASH + """
local family_id = redis.call('HGET', KEYS[1], 'family_id')
if not family_id then return 0 end
if redis.call('HEXISTS', KEYS[1], 'used_at') == 1 then return 0 end
local family = ARGV[4] .. family_id
if redis.call('EXISTS', family) == 0 then return 0 end
if redis.call('HEXISTS', family, 'revoked_at') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'used_at', ARGV[1])
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'successor', ARGV[3])
else
  redis.call('HDEL', KEYS[1], 'successor')
end
write_hash(KEYS[2], 7, tonumber(ARGV[6]), ARGV[5])
redis.call('HSET', family, 'last_used_at', ARGV[1])
return 1
"""

# KEYS: the record. ARGV: family key prefix, cutoff key prefix.
# Returns {record fields, family fields, cutoff or nil}: one consistent read.
_LUA_LOAD_REFRESH = """
local record = redis.call('HGETALL', KEYS[1])
if #record == 0 then return {} end
local family_id = redis.call('HGET', KEYS[1], 'family_id')
local family = redis.call('HGETALL', ARGV[1] .. family_id)
local cutoff = false
if #family > 0 then
  local subject = redis.call('HGET', ARGV[1] .. family_id, 'subject')
  if subject then cutoff = redis.call('HGET', ARGV[2] .. subject, 'cutoff') end
end
return {record, family, cutoff}
"""

# KEYS: family. ARGV: revoked_at. The first revocation time is kept; an
# unknown (or expired) family is not created.
_LUA_REVOKE_FAMILY = """
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HEXISTS', KEYS[1], 'revoked_at') == 0 then
  redis.call('HSET', KEYS[1], 'revoked_at', ARGV[1])
end
return 0
"""

# KEYS: revoked jti. ARGV: exp, exp ms. The latest expiry is kept.
_LUA_REVOKE_ACCESS = """
local old = redis.call('GET', KEYS[1])
if old and tonumber(old) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
"""

# KEYS: cutoff hash. ARGV: cutoff, keep_until, keep_until ms. Each of the
# two times keeps its maximum; the expiry follows keep_until.
_LUA_REVOKE_SUBJECT = """
local old = redis.call('HMGET', KEYS[1], 'cutoff', 'keep_until')
local cutoff, keep, keep_ms = ARGV[1], ARGV[2], ARGV[3]
if old[1] and tonumber(old[1]) > tonumber(cutoff) then cutoff = old[1] end
local keep_old = old[2] and tonumber(old[2]) > tonumber(keep)
if keep_old then keep = old[2] end
redis.call('HSET', KEYS[1], 'cutoff', cutoff, 'keep_until', keep)
if not keep_old then redis.call('PEXPIREAT', KEYS[1], keep_ms) end
return 0
"""

_SCRIPTS: Mapping[str, str] = {
    "create": _LUA_CREATE,
    "rotate": _LUA_ROTATE,
    "load_refresh": _LUA_LOAD_REFRESH,
    "revoke_family": _LUA_REVOKE_FAMILY,
    "revoke_access": _LUA_REVOKE_ACCESS,
    "revoke_subject": _LUA_REVOKE_SUBJECT,
}

# -- what an operation asks of Redis --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Script:
    """Run the registered script ``name``; the answer is its reply."""

    name: str
    keys: tuple[str, ...]
    args: tuple[str | bytes | int, ...]


@dataclass(frozen=True, slots=True)
class _Batch:
    """Send these commands in one pipeline (no transaction); the answer is the reply list."""

    commands: tuple[tuple[str | bytes | int, ...], ...]


_Request = _Script | _Batch
_Op = Generator[_Request, Any, T]

# -- key layout and encoding ----------------------------------------------------------------


class _Keys:
    """The key names under one prefix."""

    __slots__ = ("cutoff_prefix", "family_prefix", "prefix")

    def __init__(self, prefix: str) -> None:
        if not isinstance(prefix, str):
            raise InvalidArgument("the key prefix must be a string")
        self.prefix = prefix
        self.family_prefix = prefix + "fam:"
        self.cutoff_prefix = prefix + "cut:"

    def refresh(self, token_hash: str) -> str:
        return f"{self.prefix}rt:{token_hash}"

    def family(self, family_id: str) -> str:
        return self.family_prefix + family_id

    def jti(self, jti: str) -> str:
        return f"{self.prefix}jti:{jti}"

    def cutoff(self, subject: str) -> str:
        return self.cutoff_prefix + subject

    def index(self, subject: str) -> str:
        return f"{self.prefix}sub:{subject}"

    def index_pattern(self) -> str:
        """A SCAN pattern for every subject index (the prefix taken literally)."""
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix)
        return escaped + "sub:*"


def _time(value: float) -> str:
    """A time as text that converts back to exactly the same float (in Python and in Lua)."""
    return repr(float(value))


def _expiry_ms(value: float) -> int:
    """The PEXPIREAT argument for a POSIX time: rounded up, clamped to what Redis accepts."""
    if math.isnan(value):
        raise InvalidArgument("an expiry time is not a number")
    if value * 1000 >= _MAX_EXPIRY_MS:
        return _MAX_EXPIRY_MS
    return max(1, math.ceil(value * 1000))


def _flat(fields: Mapping[str, str | bytes]) -> tuple[str | bytes, ...]:
    return tuple(item for pair in fields.items() for item in pair)


def _encode_family(family: FamilyRecord) -> dict[str, str | bytes]:
    fields: dict[str, str | bytes] = {
        "family_id": family.family_id,
        "subject": family.subject,
        "created_at": _time(family.created_at),
        "expires_at": _time(family.expires_at),
        "last_used_at": _time(family.last_used_at),
        "claims": dumps(family.claims),
        "metadata": dumps(family.metadata),
    }
    if family.revoked_at is not None:
        fields["revoked_at"] = _time(family.revoked_at)
    if family.client_id is not None:
        fields["client_id"] = family.client_id
    if family.scope is not None:
        fields["scope"] = family.scope
    return fields


def _encode_refresh(record: RefreshRecord) -> dict[str, str | bytes]:
    fields: dict[str, str | bytes] = {
        "family_id": record.family_id,
        "issued_at": _time(record.issued_at),
        "expires_at": _time(record.expires_at),
    }
    if record.used_at is not None:
        fields["used_at"] = _time(record.used_at)
    if record.successor is not None:
        fields["successor"] = bytes(record.successor)
    return fields


def _corrupt() -> StoreUnavailable:
    return StoreUnavailable("the token store holds an unreadable entry")


def _as_dict(reply: Any) -> dict[bytes, bytes]:
    """A hash reply (a dict from a pipeline, a flat list from a script) as a dict."""
    if isinstance(reply, dict):
        return reply
    if isinstance(reply, list) and len(reply) % 2 == 0:
        return dict(zip(reply[::2], reply[1::2], strict=True))
    raise _corrupt()


def _text(fields: Mapping[bytes, bytes], name: bytes) -> str:
    return fields[name].decode("utf-8")


def _opt_text(fields: Mapping[bytes, bytes], name: bytes) -> str | None:
    value = fields.get(name)
    return None if value is None else value.decode("utf-8")


def _opt_time(value: bytes | None) -> float | None:
    return None if value is None else _parse_time(value)


def _parse_time(value: bytes) -> float:
    number = float(value)
    if math.isnan(number):
        raise ValueError("not a time")
    return number


def _decode_family(reply: Any) -> FamilyRecord | None:
    """The session in a hash reply; None for an empty (missing or expired) hash."""
    fields = _as_dict(reply)
    if not fields:
        return None
    try:
        metadata = loads_object(fields[b"metadata"], max_size=_MAX_JSON)
        if not all(isinstance(v, str) for v in metadata.values()):
            raise ValueError("metadata values must be strings")
        return FamilyRecord(
            family_id=_text(fields, b"family_id"),
            subject=_text(fields, b"subject"),
            created_at=_parse_time(fields[b"created_at"]),
            expires_at=_parse_time(fields[b"expires_at"]),
            last_used_at=_parse_time(fields[b"last_used_at"]),
            revoked_at=_opt_time(fields.get(b"revoked_at")),
            client_id=_opt_text(fields, b"client_id"),
            scope=_opt_text(fields, b"scope"),
            claims=loads_object(fields[b"claims"], max_size=_MAX_JSON),
            metadata=metadata,
        )
    except (KeyError, ValueError, DecodeError):
        raise _corrupt() from None


def _decode_refresh(token_hash: str, reply: Any) -> RefreshRecord | None:
    """The refresh record in a hash reply; None for an empty (missing or expired) hash."""
    fields = _as_dict(reply)
    if not fields:
        return None
    try:
        return RefreshRecord(
            token_hash=token_hash,
            family_id=_text(fields, b"family_id"),
            issued_at=_parse_time(fields[b"issued_at"]),
            expires_at=_parse_time(fields[b"expires_at"]),
            used_at=_opt_time(fields.get(b"used_at")),
            successor=fields.get(b"successor"),
        )
    except (KeyError, ValueError):
        raise _corrupt() from None


def _decode_cutoff(reply: Any) -> float | None:
    if reply is None:
        return None
    try:
        return _parse_time(reply)
    except (TypeError, ValueError):
        raise _corrupt() from None


# -- the operations, once for both classes --------------------------------------------------


def _create_family(keys: _Keys, family: FamilyRecord, first: RefreshRecord) -> _Op[None]:
    family_fields = _flat(_encode_family(family))
    record_fields = _flat(_encode_refresh(first))
    yield _Script(
        "create",
        (keys.family(family.family_id), keys.refresh(first.token_hash), keys.index(family.subject)),
        (
            family.family_id,
            _time(family.created_at),
            _expiry_ms(family.expires_at),
            _expiry_ms(first.expires_at),
            len(family_fields),
            len(record_fields),
            *family_fields,
            *record_fields,
        ),
    )


def _load_refresh(keys: _Keys, token_hash: str) -> _Op[RefreshView | None]:
    reply = yield _Script(
        "load_refresh", (keys.refresh(token_hash),), (keys.family_prefix, keys.cutoff_prefix)
    )
    if not reply:
        return None
    if not isinstance(reply, list) or len(reply) != 3:
        raise _corrupt()
    record = _decode_refresh(token_hash, reply[0])
    if record is None:
        return None
    family = _decode_family(reply[1])
    cutoff = None if family is None else _decode_cutoff(reply[2])
    return RefreshView(record, family, cutoff)


def _rotate(
    keys: _Keys,
    token_hash: str,
    used_at: float,
    successor: RefreshRecord,
    sealed_successor: bytes | None,
) -> _Op[bool]:
    fields = _flat(_encode_refresh(successor))
    reply = yield _Script(
        "rotate",
        (keys.refresh(token_hash), keys.refresh(successor.token_hash)),
        (
            _time(used_at),
            "0" if sealed_successor is None else "1",
            b"" if sealed_successor is None else bytes(sealed_successor),
            keys.family_prefix,
            _expiry_ms(successor.expires_at),
            len(fields),
            *fields,
        ),
    )
    return bool(reply == 1)


def _revoke_family(keys: _Keys, family_id: str, revoked_at: float) -> _Op[None]:
    yield _Script("revoke_family", (keys.family(family_id),), (_time(revoked_at),))


def _revoke_access(keys: _Keys, jti: str, expires_at: float) -> _Op[None]:
    yield _Script(
        "revoke_access", (keys.jti(jti),), (_time(expires_at), _expiry_ms(expires_at))
    )


def _revoke_subject(keys: _Keys, subject: str, cutoff: float, keep_until: float) -> _Op[None]:
    yield _Script(
        "revoke_subject",
        (keys.cutoff(subject),),
        (_time(cutoff), _time(keep_until), _expiry_ms(keep_until)),
    )


def _access_view(keys: _Keys, jti: str, family_id: str, subject: str) -> _Op[AccessView]:
    revoked, family, cutoff = yield _Batch(
        (
            ("EXISTS", keys.jti(jti)),
            ("HGETALL", keys.family(family_id)),
            ("HGET", keys.cutoff(subject), "cutoff"),
        )
    )
    return AccessView(
        jti_revoked=bool(revoked),
        family=_decode_family(family),
        subject_cutoff=_decode_cutoff(cutoff),
    )


def _sessions(keys: _Keys, subject: str) -> _Op[SubjectView]:
    ids, cutoff = yield _Batch(
        (
            ("ZREVRANGE", keys.index(subject), 0, -1),
            ("HGET", keys.cutoff(subject), "cutoff"),
        )
    )
    families: list[FamilyRecord] = []
    if ids:
        family_prefix = keys.family_prefix.encode("utf-8")
        replies = yield _Batch(tuple(("HGETALL", family_prefix + i) for i in ids))
        families = [f for f in map(_decode_family, replies) if f is not None]
    families.sort(key=lambda f: f.created_at, reverse=True)
    return SubjectView(tuple(families), _decode_cutoff(cutoff))


def _purge_expired(keys: _Keys) -> _Op[int]:
    """Drop index members whose session has expired; always 0 (see the classes' docstring)."""
    pattern = keys.index_pattern()
    family_prefix = keys.family_prefix.encode("utf-8")
    cursor: int = 0
    while True:
        ((cursor, found),) = yield _Batch((("SCAN", cursor, "MATCH", pattern, "COUNT", 500),))
        if found:
            members: list[list[bytes]] = yield _Batch(
                tuple(("ZRANGE", key, 0, -1) for key in found)
            )
            pairs = [(key, m) for key, ms in zip(found, members, strict=True) for m in ms]
            if pairs:
                alive = yield _Batch(tuple(("EXISTS", family_prefix + m) for _, m in pairs))
                # A family id is never reused, so a member found stale stays stale.
                stale = [pair for pair, live in zip(pairs, alive, strict=True) if not live]
                if stale:
                    yield _Batch(tuple(("ZREM", key, m) for key, m in stale))
        if int(cursor) == 0:
            return 0


def _ping() -> _Op[None]:
    yield _Batch((("PING",),))


# -- the drivers ----------------------------------------------------------------------------


@contextmanager
def _translated() -> Iterator[None]:
    """Turn every failure to talk to Redis into StoreUnavailable (invariant 11)."""
    try:
        yield
    except (RedisError, OSError) as exc:
        # OSError covers socket errors the client does not wrap and asyncio timeouts.
        raise StoreUnavailable(
            f"the token store (Redis) cannot answer right now: {type(exc).__name__}"
        ) from None


def _url_options(options: dict[str, Any], retry: Any) -> dict[str, Any]:
    """The connection options for a store built from a URL: short timeouts unless overridden."""
    options.setdefault("socket_timeout", DEFAULT_TIMEOUT)
    options.setdefault("socket_connect_timeout", DEFAULT_TIMEOUT)
    options.setdefault("retry", retry)
    if options.get("decode_responses"):
        raise InvalidArgument("the Redis client must not decode responses")
    return options


def _check_client(client: Any) -> None:
    if client.get_connection_kwargs().get("decode_responses"):
        # Sealed successors are bytes: a decoding client would corrupt or refuse them.
        raise InvalidArgument("the Redis client must not decode responses (decode_responses=False)")


class RedisTokenStore:
    """A :class:`~jwtward.tokens.records.TokenStore` on Redis (redis-py, blocking).

    ``client`` is a ``redis.Redis`` made with default settings (in particular
    ``decode_responses=False``) or a ``redis://`` / ``rediss://`` / ``unix://``
    URL, for which the store makes its own client with 2-second timeouts and
    no automatic retry. The store closes only a client it made itself.
    ``prefix`` starts every key, so several services can share one database.

    :meth:`purge_expired` returns 0: Redis expires every entry itself. It
    only removes, from the per-subject session indexes, the ids of sessions
    that have expired (an index lives as long as its longest session).
    """

    def __init__(self, client: redis.Redis | str, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._keys = _Keys(prefix)
        if isinstance(client, str):
            client = redis.Redis.from_url(client, **_url_options({}, Retry(NoBackoff(), 0)))
            self._owns_client = True
        else:
            _check_client(client)
            self._owns_client = False
        self._client = client
        self._scripts = {name: client.register_script(src) for name, src in _SCRIPTS.items()}

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = DEFAULT_PREFIX, **options: Any
    ) -> RedisTokenStore:
        """A store with its own client; ``options`` go to ``redis.Redis.from_url``."""
        client = redis.Redis.from_url(url, **_url_options(options, Retry(NoBackoff(), 0)))
        store = cls(client, prefix=prefix)
        store._owns_client = True
        return store

    @property
    def client(self) -> redis.Redis:
        return self._client

    @property
    def prefix(self) -> str:
        return self._keys.prefix

    def _run(self, op: _Op[T]) -> T:
        answer: Any = None
        with _translated():
            try:
                while True:
                    request = op.send(answer)
                    if isinstance(request, _Script):
                        script = self._scripts[request.name]
                        answer = script(keys=request.keys, args=request.args)
                    else:
                        pipe: Any = self._client.pipeline(transaction=False)
                        for command in request.commands:
                            pipe.execute_command(*command)
                        answer = pipe.execute()
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            finally:
                op.close()

    def create_family(self, family: FamilyRecord, first: RefreshRecord) -> None:
        self._run(_create_family(self._keys, family, first))

    def load_refresh(self, token_hash: str) -> RefreshView | None:
        return self._run(_load_refresh(self._keys, token_hash))

    def rotate(
        self,
        token_hash: str,
        used_at: float,
        successor: RefreshRecord,
        sealed_successor: bytes | None,
    ) -> bool:
        return self._run(_rotate(self._keys, token_hash, used_at, successor, sealed_successor))

    def revoke_family(self, family_id: str, revoked_at: float) -> None:
        self._run(_revoke_family(self._keys, family_id, revoked_at))

    def revoke_access(self, jti: str, expires_at: float) -> None:
        self._run(_revoke_access(self._keys, jti, expires_at))

    def revoke_subject(self, subject: str, cutoff: float, keep_until: float) -> None:
        self._run(_revoke_subject(self._keys, subject, cutoff, keep_until))

    def access_view(self, jti: str, family_id: str, subject: str) -> AccessView:
        return self._run(_access_view(self._keys, jti, family_id, subject))

    def sessions(self, subject: str) -> SubjectView:
        return self._run(_sessions(self._keys, subject))

    def purge_expired(self, now: float) -> int:
        """Always 0 (Redis expires entries itself); tidies the subject indexes."""
        return self._run(_purge_expired(self._keys))

    def ping(self) -> None:
        self._run(_ping())

    def close(self) -> None:
        if self._owns_client:
            with _translated():
                self._client.close()

    def __repr__(self) -> str:
        return f"RedisTokenStore(prefix={self._keys.prefix!r})"


class AsyncRedisTokenStore:
    """An :class:`~jwtward.tokens.records.AsyncTokenStore` on Redis (``redis.asyncio``).

    The same keys, scripts and semantics as :class:`RedisTokenStore`, which
    documents the arguments; ``client`` is a ``redis.asyncio.Redis`` or a URL.
    """

    def __init__(
        self, client: redis.asyncio.Redis | str, *, prefix: str = DEFAULT_PREFIX
    ) -> None:
        self._keys = _Keys(prefix)
        if isinstance(client, str):
            client = redis.asyncio.Redis.from_url(
                client, **_url_options({}, AsyncRetry(NoBackoff(), 0))
            )
            self._owns_client = True
        else:
            _check_client(client)
            self._owns_client = False
        self._client: Any = client
        self._scripts = {name: client.register_script(src) for name, src in _SCRIPTS.items()}

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = DEFAULT_PREFIX, **options: Any
    ) -> AsyncRedisTokenStore:
        """A store with its own client; ``options`` go to ``redis.asyncio.Redis.from_url``."""
        client = redis.asyncio.Redis.from_url(
            url, **_url_options(options, AsyncRetry(NoBackoff(), 0))
        )
        store = cls(client, prefix=prefix)
        store._owns_client = True
        return store

    @property
    def client(self) -> redis.asyncio.Redis:
        return self._client  # type: ignore[no-any-return]

    @property
    def prefix(self) -> str:
        return self._keys.prefix

    async def _run(self, op: _Op[T]) -> T:
        answer: Any = None
        with _translated():
            try:
                while True:
                    request = op.send(answer)
                    if isinstance(request, _Script):
                        script = self._scripts[request.name]
                        answer = await script(keys=request.keys, args=request.args)
                    else:
                        pipe = self._client.pipeline(transaction=False)
                        for command in request.commands:
                            pipe.execute_command(*command)
                        answer = await pipe.execute()
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            finally:
                op.close()

    async def create_family(self, family: FamilyRecord, first: RefreshRecord) -> None:
        await self._run(_create_family(self._keys, family, first))

    async def load_refresh(self, token_hash: str) -> RefreshView | None:
        return await self._run(_load_refresh(self._keys, token_hash))

    async def rotate(
        self,
        token_hash: str,
        used_at: float,
        successor: RefreshRecord,
        sealed_successor: bytes | None,
    ) -> bool:
        return await self._run(
            _rotate(self._keys, token_hash, used_at, successor, sealed_successor)
        )

    async def revoke_family(self, family_id: str, revoked_at: float) -> None:
        await self._run(_revoke_family(self._keys, family_id, revoked_at))

    async def revoke_access(self, jti: str, expires_at: float) -> None:
        await self._run(_revoke_access(self._keys, jti, expires_at))

    async def revoke_subject(self, subject: str, cutoff: float, keep_until: float) -> None:
        await self._run(_revoke_subject(self._keys, subject, cutoff, keep_until))

    async def access_view(self, jti: str, family_id: str, subject: str) -> AccessView:
        return await self._run(_access_view(self._keys, jti, family_id, subject))

    async def sessions(self, subject: str) -> SubjectView:
        return await self._run(_sessions(self._keys, subject))

    async def purge_expired(self, now: float) -> int:
        """Always 0 (Redis expires entries itself); tidies the subject indexes."""
        return await self._run(_purge_expired(self._keys))

    async def ping(self) -> None:
        await self._run(_ping())

    async def close(self) -> None:
        if self._owns_client:
            with _translated():
                await self._client.aclose()

    def __repr__(self) -> str:
        return f"AsyncRedisTokenStore(prefix={self._keys.prefix!r})"
