"""``KeyRing``: the signing keys an issuer owns, rotated on a schedule, shared via a store.

The ring decides nothing on its own: every change loads the store, applies
a pure decision of :mod:`jwtward.keys.rotation` and saves with
compare-and-swap, retrying on conflict. So processes and threads sharing one
store agree on which key signs, and a change made by one of them is never
lost to another.

Reads (signing, verifying, the JWK Set) work from a snapshot of the store,
reloaded when it is older than ``refresh_interval`` and when a token names a
kid the snapshot lacks (at most once per ``kid_refresh_cooldown``, so tokens
with made-up kids cannot hammer the store). Scheduled transitions need no
reload: the successor of a key is in the snapshot a whole ``publish_ahead``
before it signs, and the time decides which key signs. A ``rotate`` or
``revoke`` made by another process is seen within ``refresh_interval``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from jwtward.errors import InvalidArgument, KeyNotFound
from jwtward.jose.keys import Key
from jwtward.jose.keyset import KeySet
from jwtward.keys import rotation
from jwtward.keys.memory_store import MemoryKeyStore
from jwtward.keys.records import KeyRecord, KeyStore, StoreConflict, StoreError, StoreSnapshot
from jwtward.keys.rotation import KeyFactory, RotationPolicy

__all__ = ["KeyRing"]

_DEFAULT_POLICY = RotationPolicy()


def _generate(alg: str) -> Key:
    return Key.generate(alg)


def _seconds(value: object, name: str) -> float:
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise InvalidArgument(f"{name} must be a timedelta of zero or more")
    return value.total_seconds()


class _View:
    """One snapshot of the store, indexed for the hot paths."""

    __slots__ = ("by_kid", "loaded_at", "snapshot")

    def __init__(self, snapshot: StoreSnapshot, loaded_at: float) -> None:
        self.snapshot = snapshot
        self.loaded_at = loaded_at
        self.by_kid = {record.key.kid: record for record in snapshot.records}


class KeyRing:
    """The keys an issuer signs with, each ``pending``, ``active``, ``retired`` or ``revoked``.

    ``KeyRing.generate("ES256")`` makes a ring in memory; pass ``store=`` to
    share it between processes. A ring is a key source:
    ``jwt.encode(claims, ring.signing_key())`` signs with the active key and
    ``jwt.decode(token, ring, policy)`` verifies with any key that may
    verify now (pending, active, retired within its grace). Call
    :meth:`maintain` regularly (hourly is plenty) to publish successors and
    drop expired keys.

    With several ``algs`` the ring keeps one active key per algorithm;
    :meth:`signing_key` signs with the first unless told otherwise. All
    processes sharing a store must configure the same algorithms.
    """

    def __init__(
        self,
        store: KeyStore,
        algs: str | Sequence[str],
        *,
        policy: RotationPolicy = _DEFAULT_POLICY,
        clock: Callable[[], float] = time.time,
        key_factory: KeyFactory = _generate,
        refresh_interval: timedelta = timedelta(seconds=60),
        kid_refresh_cooldown: timedelta = timedelta(seconds=5),
        max_attempts: int = 16,
    ) -> None:
        """Open the ring kept in ``store`` (nothing is written until a change is asked for)."""
        if not isinstance(policy, RotationPolicy):
            raise InvalidArgument(f"policy must be a RotationPolicy, got {type(policy).__name__}")
        if not callable(clock) or not callable(key_factory):
            raise InvalidArgument("clock and key_factory must be callable")
        if not callable(getattr(store, "load", None)) or not callable(getattr(store, "save", None)):
            raise InvalidArgument("store must be a KeyStore (load and save)")
        if type(max_attempts) is not int or max_attempts < 1:
            raise InvalidArgument("max_attempts must be a positive int")
        self._algs = rotation.check_algs(algs)
        self._store = store
        self._policy = policy
        self._clock = clock
        self._factory = key_factory
        self._refresh_seconds = _seconds(refresh_interval, "refresh_interval")
        self._kid_cooldown_seconds = _seconds(kid_refresh_cooldown, "kid_refresh_cooldown")
        self._max_attempts = max_attempts
        self._view: _View | None = None
        self._last_kid_refresh = -math.inf

    @classmethod
    def generate(
        cls,
        alg: str | Sequence[str],
        *,
        policy: RotationPolicy = _DEFAULT_POLICY,
        store: KeyStore | None = None,
        clock: Callable[[], float] = time.time,
        key_factory: KeyFactory = _generate,
        refresh_interval: timedelta = timedelta(seconds=60),
        kid_refresh_cooldown: timedelta = timedelta(seconds=5),
        max_attempts: int = 16,
    ) -> KeyRing:
        """A ring ready to sign: its first key made now, or the keys already in ``store``.

        ``store`` defaults to a fresh :class:`MemoryKeyStore`. Opening a store
        that already holds a ring joins it (the schedule is applied, no
        second active key is made).
        """
        ring = cls(
            MemoryKeyStore() if store is None else store,
            alg,
            policy=policy,
            clock=clock,
            key_factory=key_factory,
            refresh_interval=refresh_interval,
            kid_refresh_cooldown=kid_refresh_cooldown,
            max_attempts=max_attempts,
        )
        ring.maintain()
        return ring

    # -- configuration ---------------------------------------------------------

    @property
    def algs(self) -> tuple[str, ...]:
        return self._algs

    @property
    def policy(self) -> RotationPolicy:
        return self._policy

    @property
    def store(self) -> KeyStore:
        return self._store

    # -- time and snapshots --------------------------------------------------------

    def _now(self, now: float | None = None) -> float:
        value = self._clock() if now is None else now
        if type(value) not in (int, float) or not math.isfinite(value):
            raise InvalidArgument("the ring's clock (or now=) must give finite POSIX seconds")
        return float(value)

    def _load(self, now: float) -> _View:
        view = _View(self._store.load(), now)
        self._view = view
        return view

    def _current(self, now: float) -> _View:
        view = self._view
        if view is None or not 0 <= now - view.loaded_at < self._refresh_seconds:
            view = self._load(now)
        return view

    def refresh(self) -> None:
        """Reload the store now (after a change made elsewhere that must be seen at once)."""
        self._load(self._now())

    def records(self) -> tuple[KeyRecord, ...]:
        """Every record of the ring as last loaded (reloaded when stale)."""
        return self._current(self._now()).snapshot.records

    # -- signing and verifying -----------------------------------------------------

    def signing_key(self, alg: str | None = None) -> Key:
        """The key that signs now (for ``alg``, default the ring's first algorithm)."""
        if alg is None:
            alg = self._algs[0]
        elif alg not in self._algs:
            raise InvalidArgument(f"{alg!r:.40} is not one of the ring's algorithms")
        now = self._now()
        record = rotation.signing_record(self._current(now).snapshot.records, alg, now)
        if record is None:
            # The store holds no live key for alg (emptied or edited outside
            # the ring): the schedule makes one.
            self.maintain(now)
            record = rotation.signing_record(self._current(now).snapshot.records, alg, now)
            if record is None:
                raise StoreError("the key store holds no key that may sign")
        return record.key

    def select(self, kid: str | None) -> Key:
        """The key that verifies a token naming ``kid`` (the :class:`KeySource` protocol).

        Only pending, active and retired keys within their grace verify; a
        revoked or expired key is :class:`~jwtward.errors.KeyNotFound`, as is
        a token without ``kid`` (a ring holds several keys over time).
        """
        if not isinstance(kid, str):
            raise KeyNotFound("the token has no kid; a key ring selects keys by kid")
        now = self._now()
        view = self._current(now)
        record = view.by_kid.get(kid)
        if record is None and now - self._last_kid_refresh >= self._kid_cooldown_seconds:
            # Another process may have made this key since the last load.
            self._last_kid_refresh = now
            view = self._load(now)
            record = view.by_kid.get(kid)
        if record is None or not rotation.is_published(record, now):
            raise KeyNotFound("no key of the ring verifies tokens with this kid")
        return record.key

    def verification_keys(self) -> KeySet:
        """The keys that verify now: pending, active and retired within grace."""
        now = self._now()
        records = self._current(now).snapshot.records
        return KeySet(r.key for r in records if rotation.is_published(r, now))

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public JWK Set to publish: pending, active and retired keys, never private parts.

        Symmetric (HS*) keys are never published; a ring of them verifies
        only in the processes that share its store.
        """
        return self.verification_keys().to_jwks()

    # -- changes: load, decide, compare-and-swap -------------------------------------------

    def _change(
        self, decide: Callable[[tuple[KeyRecord, ...], float], tuple[KeyRecord, ...]], now: float
    ) -> tuple[bool, tuple[KeyRecord, ...]]:
        for _ in range(self._max_attempts):
            snapshot = self._store.load()
            decided = decide(snapshot.records, now)
            if decided == snapshot.records:
                self._view = _View(snapshot, self._now())
                return False, decided
            try:
                version = self._store.save(snapshot.version, decided)
            except StoreConflict:
                continue
            self._view = _View(StoreSnapshot(version, decided), self._now())
            return True, decided
        raise StoreError(
            f"the key store changed under every one of {self._max_attempts} attempts; try again"
        )

    def maintain(self, now: float | None = None) -> bool:
        """Apply the rotation schedule at ``now`` (default: the clock); whether anything changed.

        Idempotent: a second call at the same moment changes nothing, and
        processes calling it together make one change, not several.
        """
        policy, algs, factory = self._policy, self._algs, self._factory

        def decide(records: tuple[KeyRecord, ...], at: float) -> tuple[KeyRecord, ...]:
            return rotation.plan(records, policy, at, algs=algs, new_key_factory=factory)

        return self._change(decide, self._now(now))[0]

    def rotate(self, now: float | None = None, *, alg: str | None = None) -> Key:
        """Rotate now: another key signs at once, the active one retires; the new signing key.

        The successor is the published pending key if there is one, else a
        fresh key. Tokens signed by the old key verify until they expire.
        """
        alg = self._algs[0] if alg is None else alg
        policy, algs, factory = self._policy, self._algs, self._factory

        def decide(records: tuple[KeyRecord, ...], at: float) -> tuple[KeyRecord, ...]:
            return rotation.rotate(records, policy, at, alg=alg, algs=algs, new_key_factory=factory)

        moment = self._now(now)
        records = self._change(decide, moment)[1]
        record = rotation.signing_record(records, alg, moment)
        if record is None:  # rotate always leaves an active key for alg
            raise StoreError("the rotation left no key that may sign")
        return record.key

    def revoke(self, kid: str, now: float | None = None) -> None:
        """Emergency: the key ``kid`` verifies nothing more and leaves the JWK Set at once.

        If it was signing, another key signs at once. In other processes
        sharing the store, the revocation takes effect at their next reload
        (within ``refresh_interval``; call :meth:`refresh` to force it).
        """
        policy, algs, factory = self._policy, self._algs, self._factory

        def decide(records: tuple[KeyRecord, ...], at: float) -> tuple[KeyRecord, ...]:
            return rotation.revoke(records, kid, policy, at, algs=algs, new_key_factory=factory)

        self._change(decide, self._now(now))

    def __repr__(self) -> str:
        view = self._view
        count = "?" if view is None else str(len(view.snapshot.records))
        return f"KeyRing(algs={list(self._algs)!r}, keys={count}, store={self._store!r})"
