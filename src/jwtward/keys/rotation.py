"""The rotation schedule of a key ring: pure functions of records and time.

Nothing here reads a clock or touches a store. Each function takes the
records of a ring and ``now`` (POSIX seconds) and returns the records as
they must be, so every process that shares a store takes the same decision
from the same snapshot, and a compare-and-swap write settles who wins.

The schedule, per algorithm of the ring:

- exactly one key is ``active`` (it signs);
- ``publish_ahead`` before the active key is due for rotation, a ``pending``
  successor is made and published, so caches of the JWK Set learn it before
  it signs; at its ``activates_at`` it becomes active and its predecessor
  ``retired``;
- a retired key still verifies (and stays published) until
  ``retires_at + grace``, then it is dropped, private material and all;
- states only move forward (pending, active, retired); a ``revoked`` key
  never verifies, never signs and never comes back.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

from jwtward.errors import InvalidArgument, InvalidKey
from jwtward.jose.algorithms import ALGORITHMS
from jwtward.jose.keys import Key
from jwtward.jwt import DEFAULT_LIFETIME
from jwtward.keys.records import KeyRecord, KeyState

__all__ = [
    "KeyFactory",
    "RotationPolicy",
    "check_algs",
    "is_published",
    "plan",
    "revoke",
    "rotate",
    "signing_record",
]

KeyFactory = Callable[[str], Key]
"""Makes a fresh private signing key for the algorithm it is given."""

_FINAL_STATES = (KeyState.RETIRED, KeyState.REVOKED)


def _positive(value: object, name: str, *, allow_zero: bool = False) -> float:
    if not isinstance(value, timedelta):
        raise InvalidArgument(f"{name} must be a timedelta")
    seconds = value.total_seconds()
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise InvalidArgument(f"{name} must be {'zero or ' if allow_zero else ''}positive")
    return seconds


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    """When keys rotate, how early successors are published, how long old keys verify.

    ``grace`` is how long a retired key keeps verifying: it defaults to
    ``max_token_lifetime`` (the longest lifetime of the tokens the issuer
    signs) and is refused when shorter, since a token signed just before its
    key retired must verify until its ``exp``. Verifiers that allow clock
    skew (``Policy.leeway``) accept a token a little past its ``exp``; add
    that leeway to ``grace`` to keep such tokens verifying too.
    ``publish_ahead`` must be shorter than ``rotate_every``, so that at most
    one successor waits at a time.
    """

    rotate_every: timedelta = timedelta(days=90)
    publish_ahead: timedelta = timedelta(days=1)
    grace: timedelta | None = None
    max_token_lifetime: timedelta = DEFAULT_LIFETIME
    # Derived once, in __post_init__: the schedule works in POSIX seconds.
    rotate_seconds: float = field(init=False, repr=False, compare=False)
    publish_ahead_seconds: float = field(init=False, repr=False, compare=False)
    grace_seconds: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rotate = _positive(self.rotate_every, "rotate_every")
        ahead = _positive(self.publish_ahead, "publish_ahead", allow_zero=True)
        lifetime = _positive(self.max_token_lifetime, "max_token_lifetime")
        grace = lifetime if self.grace is None else _positive(self.grace, "grace")
        if ahead >= rotate:
            raise InvalidArgument("publish_ahead must be shorter than rotate_every")
        if grace < lifetime:
            raise InvalidArgument(
                "grace must be at least max_token_lifetime, or tokens signed just "
                "before a rotation would stop verifying before they expire"
            )
        setter = object.__setattr__
        setter(self, "rotate_seconds", rotate)
        setter(self, "publish_ahead_seconds", ahead)
        setter(self, "grace_seconds", grace)


# -- reading a ring at one moment (no decision, no new keys) ------------------------


def is_published(record: KeyRecord, now: float) -> bool:
    """Whether the key verifies tokens and belongs in the JWK Set at ``now``.

    Pending, active and retired keys do, until their ``expires_at``; a
    revoked key never does. This is decided from the record's times, so a
    key leaves at its expiry even if no one has run the schedule since.
    """
    if record.state is KeyState.REVOKED:
        return False
    return record.expires_at is None or now < record.expires_at


def _is_due(record: KeyRecord, now: float) -> bool:
    """A live (pending or active) key that signs at ``now`` unless a later one does."""
    return record.state is KeyState.ACTIVE or (
        record.state is KeyState.PENDING and record.activates_at <= now
    )


def _chain_order(record: KeyRecord) -> tuple[float, float, str]:
    return (record.activates_at, record.created_at, record.key.kid)


def signing_record(records: Iterable[KeyRecord], alg: str, now: float) -> KeyRecord | None:
    """The record whose key signs for ``alg`` at ``now``, as :func:`plan` would choose it.

    Read from the records and the time alone, so a successor starts signing
    at its ``activates_at`` even in a process that has not written the
    transition. ``None`` when the ring has no live key for ``alg``.
    """
    due = [r for r in records if r.key.alg == alg and _is_due(r, now)]
    return max(due, key=_chain_order) if due else None


# -- deciding ------------------------------------------------------------------------


def check_algs(algs: str | Sequence[str]) -> tuple[str, ...]:
    """The ring's signing algorithms, checked: known, for signatures, no repeats."""
    names = (algs,) if isinstance(algs, str) else tuple(algs)
    if not names:
        raise InvalidArgument("a key ring needs at least one algorithm")
    for name in names:
        if not isinstance(name, str):
            raise InvalidArgument("algorithms are given by name")
        spec = ALGORITHMS.get(name)
        if spec is None or spec.use != "sig":
            raise InvalidArgument(f"{name!r:.40} is not a signature algorithm jwtward offers")
    if len(set(names)) != len(names):
        raise InvalidArgument("an algorithm is listed twice")
    return names


def _check_now(now: object) -> float:
    if type(now) not in (int, float) or not math.isfinite(now):  # type: ignore[arg-type]
        raise InvalidArgument("now must be finite POSIX seconds (int or float)")
    return float(now)  # type: ignore[arg-type]


def _check_records(records: Iterable[KeyRecord]) -> tuple[KeyRecord, ...]:
    checked = tuple(records)
    kids: set[str] = set()
    for record in checked:
        if not isinstance(record, KeyRecord):
            raise InvalidArgument(f"expected KeyRecord, got {type(record).__name__}")
        if record.key.kid in kids:
            raise InvalidArgument(f"two records of the ring share the kid {record.key.kid!r:.80}")
        kids.add(record.key.kid)
    return checked


class _Planner:
    """One application of the schedule: the inputs every step needs, held once."""

    def __init__(
        self,
        records: tuple[KeyRecord, ...],
        policy: RotationPolicy,
        now: float,
        factory: KeyFactory,
    ) -> None:
        if not isinstance(policy, RotationPolicy):
            raise InvalidArgument(f"policy must be a RotationPolicy, got {type(policy).__name__}")
        if not callable(factory):
            raise InvalidArgument("new_key_factory must be callable")
        self.records = records
        self.policy = policy
        self.now = now
        self.factory = factory
        self.kids = {record.key.kid for record in records}

    def new_record(self, alg: str, activates_at: float) -> KeyRecord:
        key = self.factory(alg)
        if not isinstance(key, Key) or key.alg != alg or key.use != "sig" or not key.is_private:
            raise InvalidKey(f"the key factory must return a private {alg} signing key")
        if key.kid in self.kids:
            raise InvalidKey("the key factory returned a key whose kid the ring already has")
        self.kids.add(key.kid)
        state = KeyState.ACTIVE if activates_at <= self.now else KeyState.PENDING
        return KeyRecord(key=key, state=state, created_at=self.now, activates_at=activates_at)

    def retired(self, record: KeyRecord, at: float) -> KeyRecord:
        return replace(
            record,
            state=KeyState.RETIRED,
            retires_at=at,
            expires_at=at + self.policy.grace_seconds,
        )

    def settled(self, record: KeyRecord) -> KeyRecord | None:
        """A retired or revoked record with its times filled in; ``None`` once it is done."""
        now, grace = self.now, self.policy.grace_seconds
        if record.state is KeyState.REVOKED:
            revoked_at = now if record.revoked_at is None else record.revoked_at
            # Every token the key signed has expired by then: the record has
            # nothing left to refuse, and its private material goes.
            if now >= revoked_at + grace:
                return None
            return record if record.revoked_at is not None else replace(record, revoked_at=now)
        retires_at = now if record.retires_at is None else record.retires_at
        expires_at = retires_at + grace if record.expires_at is None else record.expires_at
        if now >= expires_at:
            return None
        return replace(record, retires_at=retires_at, expires_at=expires_at)

    def wind_down(self, records: list[KeyRecord]) -> list[KeyRecord]:
        """An algorithm the ring no longer uses: nothing new signs with it."""
        out: list[KeyRecord] = []
        for record in records:
            if record.state is KeyState.PENDING:
                continue  # published, never signed: nothing to keep verifying
            ending = self.retired(record, self.now) if record.state is KeyState.ACTIVE else record
            kept = self.settled(ending)
            if kept is not None:
                out.append(kept)
        return out

    def schedule(self, alg: str, records: list[KeyRecord]) -> list[KeyRecord]:
        """The records of one algorithm the ring signs with, with the schedule applied."""
        now, policy = self.now, self.policy
        out = [kept for r in records if r.state in _FINAL_STATES if (kept := self.settled(r))]
        live = sorted((r for r in records if r.state not in _FINAL_STATES), key=_chain_order)
        due = [r for r in live if _is_due(r, now)]
        upcoming = [r for r in live if not _is_due(r, now)]
        if not due:
            # No key signs: the next published key takes over at once (caches
            # already know it); a fresh one only when none waits.
            if upcoming:
                due = [replace(upcoming.pop(0), activates_at=now)]
            else:
                due = [self.new_record(alg, now)]
        if not upcoming:
            rotation_at = due[-1].activates_at + policy.rotate_seconds
            if now >= rotation_at - policy.publish_ahead_seconds:
                successor = self.new_record(
                    alg, max(rotation_at, now + policy.publish_ahead_seconds)
                )
                (due if successor.activates_at <= now else upcoming).append(successor)
        for record, successor in itertools.pairwise(due):
            kept = self.settled(self.retired(record, successor.activates_at))
            if kept is not None:
                out.append(kept)
        chain = [due[-1], *upcoming]
        for index, record in enumerate(chain):
            following = chain[index + 1] if index + 1 < len(chain) else None
            retires_at = None if following is None else following.activates_at
            out.append(
                replace(
                    record,
                    state=KeyState.ACTIVE if index == 0 else KeyState.PENDING,
                    retires_at=retires_at,
                    expires_at=None if retires_at is None else retires_at + policy.grace_seconds,
                    revoked_at=None,
                )
            )
        return out


def _canonical(record: KeyRecord) -> tuple[str, float, float, str]:
    return (record.key.alg, record.activates_at, record.created_at, record.key.kid)


def plan(
    records: Iterable[KeyRecord],
    policy: RotationPolicy,
    now: float,
    *,
    algs: str | Sequence[str],
    new_key_factory: KeyFactory,
) -> tuple[KeyRecord, ...]:
    """The ring's records with the schedule applied at ``now``.

    Idempotent (``plan(plan(r, ...), ...) == plan(r, ...)`` at the same
    ``now``) and deterministic up to the keys ``new_key_factory`` makes. The
    result holds exactly one active key for each of ``algs``; keys of an
    algorithm no longer in ``algs`` are retired (pending ones dropped).
    Records come back in a canonical order (algorithm, activation, kid).
    """
    moment = _check_now(now)
    wanted = check_algs(algs)
    checked = _check_records(records)
    planner = _Planner(checked, policy, moment, new_key_factory)
    out: list[KeyRecord] = []
    for alg in sorted({r.key.alg for r in checked} | set(wanted)):
        mine = [r for r in checked if r.key.alg == alg]
        out += planner.schedule(alg, mine) if alg in wanted else planner.wind_down(mine)
    return tuple(sorted(out, key=_canonical))


def rotate(
    records: Iterable[KeyRecord],
    policy: RotationPolicy,
    now: float,
    *,
    alg: str,
    algs: str | Sequence[str],
    new_key_factory: KeyFactory,
) -> tuple[KeyRecord, ...]:
    """Rotate ``alg`` now: its active key retires at ``now`` and another signs at once.

    The successor is the pending key when one is published (caches already
    know it), otherwise a fresh key. The schedule is then applied as by
    :func:`plan`, so the next rotation counts from ``now``.
    """
    wanted = check_algs(algs)
    if alg not in wanted:
        raise InvalidArgument(f"{alg!r:.40} is not one of the ring's algorithms")
    current = plan(records, policy, now, algs=wanted, new_key_factory=new_key_factory)
    moment = _check_now(now)
    retired = tuple(
        replace(r, state=KeyState.RETIRED, retires_at=moment, expires_at=None)
        if r.key.alg == alg and r.state is KeyState.ACTIVE
        else r
        for r in current
    )
    return plan(retired, policy, moment, algs=wanted, new_key_factory=new_key_factory)


def revoke(
    records: Iterable[KeyRecord],
    kid: str,
    policy: RotationPolicy,
    now: float,
    *,
    algs: str | Sequence[str],
    new_key_factory: KeyFactory,
) -> tuple[KeyRecord, ...]:
    """Revoke the key ``kid`` at ``now``: it verifies nothing and leaves the JWK Set.

    If it was the active key, another signs at once (as for :func:`rotate`).
    Revoking a revoked key changes nothing; an unknown ``kid`` is refused.
    """
    moment = _check_now(now)
    checked = _check_records(records)
    if not isinstance(kid, str) or kid not in {r.key.kid for r in checked}:
        raise InvalidArgument("no key of the ring has this kid")
    marked = tuple(
        replace(r, state=KeyState.REVOKED, revoked_at=moment)
        if r.key.kid == kid and r.state is not KeyState.REVOKED
        else r
        for r in checked
    )
    return plan(marked, policy, moment, algs=algs, new_key_factory=new_key_factory)
