"""Token stores on Redis: :class:`RedisTokenStore` (sync) and :class:`AsyncRedisTokenStore`.

What the stores keep in Redis (the key layout, the record encoding, the Lua
scripts) is :mod:`jwtward.tokens.redis_layout`. Every key expires with what
it describes, so Redis itself drops what can no longer matter and
:meth:`~RedisTokenStore.purge_expired` only tidies the subject indexes.

Every write that reads first is one Lua script, so it is atomic against
every other client: above all the compare-and-swap of ``rotate``
(invariant 9). Scripts run by ``EVALSHA`` and are loaded again by the
client library when a restarted server has forgotten them. The store is for
a single Redis server or a Sentinel-managed one, not Redis Cluster (see the
layout module).

The two classes share everything but ``await``: each operation is written
once below as a generator that yields what it needs from Redis (a script
call or a pipeline of reads) and turns the replies into records; each class
only runs those generators against its client.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from jwtward.errors import StoreUnavailable
from jwtward.tokens.records import (
    AccessView,
    FamilyRecord,
    RefreshRecord,
    RefreshView,
    SubjectView,
)
from jwtward.tokens.redis_client import check_client, url_options
from jwtward.tokens.redis_layout import (
    SCRIPTS,
    Keys,
    corrupt,
    decode_cutoff,
    decode_family,
    decode_refresh,
    encode_family,
    encode_refresh,
    encode_time,
    expiry_ms,
    flat,
)

__all__ = ["DEFAULT_PREFIX", "AsyncRedisTokenStore", "RedisTokenStore"]

T = TypeVar("T")

DEFAULT_PREFIX = "jwtward:"


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

# -- the operations, once for both classes --------------------------------------------------


def _create_family(keys: Keys, family: FamilyRecord, first: RefreshRecord) -> _Op[None]:
    family_fields = flat(encode_family(family))
    record_fields = flat(encode_refresh(first))
    yield _Script(
        "create",
        (keys.family(family.family_id), keys.refresh(first.token_hash), keys.index(family.subject)),
        (
            family.family_id,
            encode_time(family.created_at),
            expiry_ms(family.expires_at),
            expiry_ms(first.expires_at),
            len(family_fields),
            len(record_fields),
            *family_fields,
            *record_fields,
        ),
    )


def _load_refresh(keys: Keys, token_hash: str) -> _Op[RefreshView | None]:
    reply = yield _Script(
        "load_refresh", (keys.refresh(token_hash),), (keys.family_prefix, keys.cutoff_prefix)
    )
    if not reply:
        return None
    if not isinstance(reply, list) or len(reply) != 3:
        raise corrupt()
    record = decode_refresh(token_hash, reply[0])
    if record is None:
        return None
    family = decode_family(reply[1])
    cutoff = None if family is None else decode_cutoff(reply[2])
    return RefreshView(record, family, cutoff)


def _rotate(
    keys: Keys,
    token_hash: str,
    used_at: float,
    successor: RefreshRecord,
    sealed_successor: bytes | None,
) -> _Op[bool]:
    fields = flat(encode_refresh(successor))
    reply = yield _Script(
        "rotate",
        (keys.refresh(token_hash), keys.refresh(successor.token_hash)),
        (
            encode_time(used_at),
            "0" if sealed_successor is None else "1",
            b"" if sealed_successor is None else bytes(sealed_successor),
            keys.family_prefix,
            expiry_ms(successor.expires_at),
            len(fields),
            *fields,
        ),
    )
    return bool(reply == 1)


def _revoke_family(keys: Keys, family_id: str, revoked_at: float) -> _Op[None]:
    yield _Script("revoke_family", (keys.family(family_id),), (encode_time(revoked_at),))


def _revoke_access(keys: Keys, jti: str, expires_at: float) -> _Op[None]:
    yield _Script(
        "revoke_access", (keys.jti(jti),), (encode_time(expires_at), expiry_ms(expires_at))
    )


def _revoke_subject(keys: Keys, subject: str, cutoff: float, keep_until: float) -> _Op[None]:
    yield _Script(
        "revoke_subject",
        (keys.cutoff(subject),),
        (encode_time(cutoff), encode_time(keep_until), expiry_ms(keep_until)),
    )


def _access_view(keys: Keys, jti: str, family_id: str, subject: str) -> _Op[AccessView]:
    revoked, family, cutoff = yield _Batch(
        (
            ("EXISTS", keys.jti(jti)),
            ("HGETALL", keys.family(family_id)),
            ("HGET", keys.cutoff(subject), "cutoff"),
        )
    )
    return AccessView(
        jti_revoked=bool(revoked),
        family=decode_family(family),
        subject_cutoff=decode_cutoff(cutoff),
    )


def _sessions(keys: Keys, subject: str) -> _Op[SubjectView]:
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
        families = [f for f in map(decode_family, replies) if f is not None]
    families.sort(key=lambda f: f.created_at, reverse=True)
    return SubjectView(tuple(families), decode_cutoff(cutoff))


def _purge_expired(keys: Keys) -> _Op[int]:
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
        self._keys = Keys(prefix)
        if isinstance(client, str):
            client = redis.Redis.from_url(client, **url_options({}, Retry(NoBackoff(), 0)))
            self._owns_client = True
        else:
            check_client(client)
            self._owns_client = False
        self._client = client
        self._scripts = {name: client.register_script(src) for name, src in SCRIPTS.items()}

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = DEFAULT_PREFIX, **options: Any
    ) -> RedisTokenStore:
        """A store with its own client; ``options`` go to ``redis.Redis.from_url``."""
        client = redis.Redis.from_url(url, **url_options(options, Retry(NoBackoff(), 0)))
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
        self._keys = Keys(prefix)
        if isinstance(client, str):
            client = redis.asyncio.Redis.from_url(
                client, **url_options({}, AsyncRetry(NoBackoff(), 0))
            )
            self._owns_client = True
        else:
            check_client(client)
            self._owns_client = False
        self._client: Any = client
        self._scripts = {name: client.register_script(src) for name, src in SCRIPTS.items()}

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = DEFAULT_PREFIX, **options: Any
    ) -> AsyncRedisTokenStore:
        """A store with its own client; ``options`` go to ``redis.asyncio.Redis.from_url``."""
        client = redis.asyncio.Redis.from_url(
            url, **url_options(options, AsyncRetry(NoBackoff(), 0))
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
