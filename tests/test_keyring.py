"""KeyRing, the rotation schedule and the in-memory key store.

The schedule is checked at its exact boundaries (one second before, at,
after) through the pure functions and through the ring with an injected
clock; hypothesis checks that ``plan`` is idempotent and always leaves one
active key per algorithm; threads sharing one store show that the
compare-and-swap protocol loses no change.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jwtward import Key, KeySet, jwt
from jwtward.errors import (
    ExpiredToken,
    InvalidArgument,
    InvalidKey,
    JWTWardError,
    KeyNotFound,
)
from jwtward.jose.keyset import KeySource
from jwtward.keys.memory_store import MemoryKeyStore
from jwtward.keys.records import (
    KeyRecord,
    KeyState,
    StoreConflict,
    StoreError,
    StoreSnapshot,
)
from jwtward.keys.ring import KeyRing
from jwtward.keys.rotation import (
    RotationPolicy,
    is_published,
    plan,
    revoke,
    rotate,
    signing_record,
)
from jwtward.policy import Policy

DAY = 86_400.0
T0 = 1_800_000_000.0
POLICY = RotationPolicy(
    rotate_every=timedelta(days=30),
    publish_ahead=timedelta(days=1),
    max_token_lifetime=timedelta(minutes=15),
)
ROTATION = T0 + 30 * DAY
PUBLISH = ROTATION - DAY
GRACE = 15 * 60.0


class Clock:
    """A settable clock: time passes only when a test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Factory:
    """Makes keys and counts them, so a test can see when the schedule made one."""

    def __init__(self) -> None:
        self.made: list[Key] = []

    def __call__(self, alg: str) -> Key:
        key = Key.generate(alg)
        self.made.append(key)
        return key


def states(records: Sequence[KeyRecord]) -> list[tuple[str, KeyState]]:
    return [(r.key.kid, r.state) for r in records]


def active(records: Sequence[KeyRecord], alg: str = "ES256") -> list[KeyRecord]:
    return [r for r in records if r.state is KeyState.ACTIVE and r.key.alg == alg]


def first_ring(clock: Clock | None = None, **kwargs: Any) -> KeyRing:
    return KeyRing.generate("ES256", policy=POLICY, clock=clock or Clock(), **kwargs)


def plan_at(
    records: Sequence[KeyRecord], now: float, factory: Factory | None = None
) -> tuple[KeyRecord, ...]:
    return plan(records, POLICY, now, algs="ES256", new_key_factory=factory or Factory())


# -- RotationPolicy -----------------------------------------------------------------


def test_policy_defaults_follow_the_issue() -> None:
    policy = RotationPolicy()
    assert policy.rotate_every == timedelta(days=90)
    assert policy.publish_ahead == timedelta(days=1)
    assert policy.grace_seconds == 15 * 60  # the default token lifetime
    longer = RotationPolicy(max_token_lifetime=timedelta(hours=2))
    assert longer.grace_seconds == 7200
    assert RotationPolicy(grace=timedelta(hours=3)).grace_seconds == 3 * 3600


@pytest.mark.parametrize(
    "kwargs",
    [
        {"grace": timedelta(minutes=14)},  # shorter than the token lifetime
        {"max_token_lifetime": timedelta(hours=1), "grace": timedelta(minutes=59)},
        {"rotate_every": timedelta(0)},
        {"rotate_every": timedelta(days=-1)},
        {"publish_ahead": timedelta(seconds=-1)},
        {"publish_ahead": timedelta(days=90)},  # not shorter than rotate_every
        {"rotate_every": 30},
        {"grace": 900},
        {"max_token_lifetime": timedelta(0)},
    ],
)
def test_policy_refuses_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        RotationPolicy(**kwargs)  # type: ignore[arg-type]


def test_grace_equal_to_the_token_lifetime_is_allowed() -> None:
    policy = RotationPolicy(max_token_lifetime=timedelta(hours=1), grace=timedelta(hours=1))
    assert policy.grace_seconds == 3600


# -- plan: the schedule at its boundaries ------------------------------------------


def test_empty_ring_gets_one_active_key_now() -> None:
    factory = Factory()
    records = plan_at((), T0, factory)
    assert len(records) == 1 and len(factory.made) == 1
    (record,) = records
    assert record.state is KeyState.ACTIVE
    assert record.activates_at == T0 and record.created_at == T0
    assert record.retires_at is None and record.expires_at is None


def test_successor_is_published_exactly_publish_ahead_before_rotation() -> None:
    start = plan_at((), T0)
    assert plan_at(start, PUBLISH - 1) == start  # one second early: nothing to do
    factory = Factory()
    published = plan_at(start, PUBLISH, factory)
    assert len(factory.made) == 1
    current, successor = published
    assert current.key is start[0].key and current.state is KeyState.ACTIVE
    assert current.retires_at == ROTATION and current.expires_at == ROTATION + GRACE
    assert successor.state is KeyState.PENDING and successor.key is factory.made[0]
    assert successor.activates_at == ROTATION and successor.created_at == PUBLISH


def test_successor_activates_exactly_at_its_time() -> None:
    published = plan_at(plan_at((), T0), PUBLISH)
    assert plan_at(published, ROTATION - 1) == published
    rotated = plan_at(published, ROTATION)
    old, new = rotated
    assert old.state is KeyState.RETIRED and old.key is published[0].key
    assert old.retires_at == ROTATION and old.expires_at == ROTATION + GRACE
    assert new.state is KeyState.ACTIVE and new.key is published[1].key
    assert new.retires_at is None


def test_retired_key_verifies_until_grace_ends_then_is_dropped() -> None:
    rotated = plan_at(plan_at(plan_at((), T0), PUBLISH), ROTATION)
    old = rotated[0]
    assert is_published(old, ROTATION + GRACE - 1)
    assert not is_published(old, ROTATION + GRACE)
    assert plan_at(rotated, ROTATION + GRACE - 1)[0].key is old.key
    after = plan_at(rotated, ROTATION + GRACE)
    assert old.key.kid not in {r.key.kid for r in after}
    assert states(after) == [(rotated[1].key.kid, KeyState.ACTIVE)]


def test_signing_record_switches_at_activation_without_a_new_plan() -> None:
    published = plan_at(plan_at((), T0), PUBLISH)
    before = signing_record(published, "ES256", ROTATION - 1)
    at = signing_record(published, "ES256", ROTATION)
    assert before is not None and before.key is published[0].key
    assert at is not None and at.key is published[1].key
    assert signing_record(published, "EdDSA", ROTATION) is None


def test_late_maintenance_still_publishes_a_full_publish_ahead() -> None:
    start = plan_at((), T0)
    late = ROTATION + 5 * DAY  # nobody ran the schedule for a while
    current, successor = plan_at(start, late)
    assert current.state is KeyState.ACTIVE and current.key is start[0].key
    assert successor.state is KeyState.PENDING
    assert successor.activates_at == late + DAY


def test_zero_publish_ahead_rotates_at_once_when_due() -> None:
    policy = RotationPolicy(rotate_every=timedelta(days=30), publish_ahead=timedelta(0))
    factory = Factory()
    start = plan((), policy, T0, algs="ES256", new_key_factory=factory)
    assert plan(start, policy, ROTATION - 1, algs="ES256", new_key_factory=factory) == start
    rotated = plan(start, policy, ROTATION, algs="ES256", new_key_factory=factory)
    assert [r.state for r in rotated] == [KeyState.RETIRED, KeyState.ACTIVE]
    assert rotated[1].activates_at == ROTATION
    assert plan(rotated, policy, ROTATION, algs="ES256", new_key_factory=factory) == rotated


def test_plan_does_not_depend_on_record_order() -> None:
    published = plan_at(plan_at((), T0), PUBLISH)
    retired_too = plan_at(published, ROTATION)
    assert plan_at(tuple(reversed(retired_too)), ROTATION + 60) == plan_at(
        retired_too, ROTATION + 60
    )


def test_one_active_key_per_algorithm() -> None:
    factory = Factory()
    records = plan((), POLICY, T0, algs=("ES256", "EdDSA"), new_key_factory=factory)
    assert sorted(r.key.alg for r in records if r.state is KeyState.ACTIVE) == ["ES256", "EdDSA"]
    published = plan(records, POLICY, PUBLISH, algs=("ES256", "EdDSA"), new_key_factory=factory)
    assert sorted(r.key.alg for r in published if r.state is KeyState.PENDING) == [
        "ES256",
        "EdDSA",
    ]
    # Dropping an algorithm: its active key retires now, its pending key goes.
    dropped = plan(published, POLICY, PUBLISH + 10, algs="ES256", new_key_factory=factory)
    eddsa = [r for r in dropped if r.key.alg == "EdDSA"]
    assert [(r.state, r.retires_at) for r in eddsa] == [(KeyState.RETIRED, PUBLISH + 10)]
    assert len(active(dropped)) == 1


def test_an_active_key_from_a_clock_ahead_stays_active() -> None:
    """Another process whose clock runs ahead already promoted the successor."""
    published = plan_at(plan_at((), T0), PUBLISH)
    ahead = plan_at(published, ROTATION)  # written by the process ahead
    behind = plan_at(ahead, ROTATION - 30)  # read by one 30 s behind
    assert behind == ahead


def test_revoked_keys_never_come_back_and_are_purged_after_grace() -> None:
    published = plan_at(plan_at((), T0), PUBLISH)
    pending_kid = published[1].key.kid
    factory = Factory()
    revoked = revoke(
        published, pending_kid, POLICY, PUBLISH + 1, algs="ES256", new_key_factory=factory
    )
    by_kid = {r.key.kid: r for r in revoked}
    assert by_kid[pending_kid].state is KeyState.REVOKED
    assert by_kid[pending_kid].revoked_at == PUBLISH + 1
    # The active key lost its successor, so a new one is published at once,
    # a whole publish_ahead before it signs.
    assert len(factory.made) == 1
    fresh = by_kid[factory.made[0].kid]
    assert fresh.state is KeyState.PENDING and fresh.activates_at == PUBLISH + 1 + DAY
    for moment in (PUBLISH + 2, PUBLISH + GRACE, ROTATION, ROTATION + DAY):
        later = plan_at(revoked, moment)
        kept = [r for r in later if r.key.kid == pending_kid]
        within_grace = moment < PUBLISH + 1 + GRACE
        assert [r.state for r in kept] == ([KeyState.REVOKED] if within_grace else [])
        assert not any(is_published(r, moment) for r in kept)
        assert len(active(later)) == 1
    gone = plan_at(revoked, PUBLISH + 1 + GRACE)
    assert pending_kid not in {r.key.kid for r in gone}


def test_revoking_the_active_key_promotes_the_published_successor() -> None:
    published = plan_at(plan_at((), T0), PUBLISH)
    factory = Factory()
    revoked = revoke(
        published, published[0].key.kid, POLICY, PUBLISH + 1, algs="ES256", new_key_factory=factory
    )
    assert factory.made == []
    current = active(revoked)
    assert [r.key for r in current] == [published[1].key]
    assert current[0].activates_at == PUBLISH + 1


def test_revoking_the_only_key_makes_a_new_one_at_once() -> None:
    start = plan_at((), T0)
    factory = Factory()
    revoked = revoke(start, start[0].key.kid, POLICY, T0 + 5, algs="ES256", new_key_factory=factory)
    assert [r.key for r in active(revoked)] == factory.made
    assert active(revoked)[0].activates_at == T0 + 5
    again = revoke(revoked, start[0].key.kid, POLICY, T0 + 6, algs="ES256", new_key_factory=factory)
    assert again == revoked and len(factory.made) == 1


def test_rotate_retires_the_active_key_now() -> None:
    start = plan_at((), T0)
    factory = Factory()
    rotated = rotate(start, POLICY, T0 + 100, alg="ES256", algs="ES256", new_key_factory=factory)
    old, new = rotated
    assert old.state is KeyState.RETIRED and old.retires_at == T0 + 100
    assert old.expires_at == T0 + 100 + GRACE
    assert new.key is factory.made[0] and new.state is KeyState.ACTIVE
    assert new.activates_at == T0 + 100
    # The next scheduled rotation counts from the new key's activation.
    assert plan_at(rotated, T0 + 100 + 29 * DAY - 1) == (new,)
    assert len(plan_at(rotated, T0 + 100 + 29 * DAY)) == 2


def test_refused_inputs_are_typed() -> None:
    start = plan_at((), T0)
    with pytest.raises(InvalidArgument):
        plan_at(start + start, T0)  # duplicate kid
    with pytest.raises(InvalidArgument):
        plan_at(("not a record",), T0)  # type: ignore[arg-type]
    for now in (float("nan"), float("inf"), True, "1800000000"):
        with pytest.raises(InvalidArgument):
            plan_at(start, now)  # type: ignore[arg-type]
    for algs in ((), ("ES256", "ES256"), "none", "RSA-OAEP", ("ES256", 7)):
        with pytest.raises(InvalidArgument):
            plan(start, POLICY, T0, algs=algs, new_key_factory=Factory())  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        plan(start, "policy", T0, algs="ES256", new_key_factory=Factory())  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        revoke(start, "no-such-kid", POLICY, T0, algs="ES256", new_key_factory=Factory())
    with pytest.raises(InvalidArgument):
        rotate(start, POLICY, T0, alg="EdDSA", algs="ES256", new_key_factory=Factory())


@pytest.mark.parametrize(
    "factory",
    [
        lambda alg: Key.generate("ES384"),  # wrong alg
        lambda alg: Key.generate(alg).public_key(),  # cannot sign
        lambda alg: "a key",  # not a Key
    ],
)
def test_a_bad_key_factory_is_refused(factory: object) -> None:
    with pytest.raises(InvalidKey):
        plan((), POLICY, T0, algs="ES256", new_key_factory=factory)  # type: ignore[arg-type]


def test_a_key_factory_repeating_a_kid_is_refused() -> None:
    start = plan_at((), T0)
    with pytest.raises(InvalidKey):
        plan(start, POLICY, PUBLISH, algs="ES256", new_key_factory=lambda alg: start[0].key)


# -- plan: properties over arbitrary records ----------------------------------------

KEY_POOL = {
    "ES256": [Key.generate("ES256") for _ in range(6)],
    "EdDSA": [Key.generate("EdDSA") for _ in range(4)],
}
POLICIES = [
    POLICY,
    RotationPolicy(rotate_every=timedelta(days=2), publish_ahead=timedelta(0)),
    RotationPolicy(
        rotate_every=timedelta(days=1),
        publish_ahead=timedelta(hours=12),
        max_token_lifetime=timedelta(days=3),
    ),
]
times = st.integers(min_value=0, max_value=40).map(lambda d: T0 + d * DAY / 4)
maybe_times = st.none() | times


@st.composite
def one_record(draw: st.DrawFn, key: Key) -> KeyRecord:
    return KeyRecord(
        key=key,
        state=draw(st.sampled_from(KeyState)),
        created_at=draw(times),
        activates_at=draw(times),
        retires_at=draw(maybe_times),
        expires_at=draw(maybe_times),
        revoked_at=draw(maybe_times),
    )


@st.composite
def rings(draw: st.DrawFn) -> tuple[KeyRecord, ...]:
    chosen = draw(
        st.lists(
            st.sampled_from([k for pool in KEY_POOL.values() for k in pool]),
            unique_by=lambda k: k.kid,
            max_size=7,
        )
    )
    return tuple(draw(one_record(key)) for key in chosen)


ALG_CHOICES = st.sampled_from([("ES256",), ("EdDSA",), ("ES256", "EdDSA")])
RANK = {KeyState.PENDING: 0, KeyState.ACTIVE: 1, KeyState.RETIRED: 2, KeyState.REVOKED: 3}


@settings(max_examples=300, deadline=None)
@given(records=rings(), now=times, algs=ALG_CHOICES, policy=st.sampled_from(POLICIES))
def test_plan_is_idempotent_and_keeps_one_active_key_per_alg(
    records: tuple[KeyRecord, ...], now: float, algs: tuple[str, ...], policy: RotationPolicy
) -> None:
    factory = Factory()
    once = plan(records, policy, now, algs=algs, new_key_factory=factory)
    made = len(factory.made)
    twice = plan(once, policy, now, algs=algs, new_key_factory=factory)
    assert twice == once
    assert len(factory.made) == made  # the second application made no key
    for alg in {r.key.alg for r in records} | set(algs):
        count = len([r for r in once if r.key.alg == alg and r.state is KeyState.ACTIVE])
        assert count == (1 if alg in algs else 0)
        if alg in algs:
            signer = signing_record(once, alg, now)
            assert signer is not None and signer.state is KeyState.ACTIVE
    before = {r.key.kid: r for r in records}
    new_kids = {k.kid for k in factory.made}
    for record in once:
        old = before.get(record.key.kid)
        if old is None:
            assert record.key.kid in new_kids
            continue
        assert RANK[record.state] >= RANK[old.state]  # states only move forward
        if old.state is KeyState.REVOKED:
            assert record.state is KeyState.REVOKED
    # The schedule stays sound as time moves on from the planned state.
    later = plan(once, policy, now + DAY, algs=algs, new_key_factory=factory)
    for alg in algs:
        assert len([r for r in later if r.key.alg == alg and r.state is KeyState.ACTIVE]) == 1


# -- MemoryKeyStore ----------------------------------------------------------------------


def test_memory_store_compare_and_swap() -> None:
    store = MemoryKeyStore()
    assert store.load() == StoreSnapshot(version=0, records=())
    records = plan_at((), T0)
    assert store.save(0, records) == 1
    assert store.load() == StoreSnapshot(version=1, records=records)
    with pytest.raises(StoreConflict):
        store.save(0, ())
    assert store.load().records == records  # the losing write changed nothing
    assert isinstance(StoreConflict("x"), StoreError)
    with pytest.raises(InvalidArgument):
        store.save(1, ["not a record"])  # type: ignore[list-item]
    with pytest.raises(InvalidArgument):
        store.save(True, records)
    assert store.load().version == 1
    assert MemoryKeyStore(records).load().records == records


# -- KeyRing -----------------------------------------------------------------------------


def test_generate_signs_and_verifies_with_jwt() -> None:
    clock = Clock()
    ring = first_ring(clock)
    assert isinstance(ring, KeySource)
    token = jwt.encode({"sub": "u1"}, ring.signing_key(), clock=clock)
    assert jwt.decode(token, ring, Policy(clock=clock))["sub"] == "u1"
    (record,) = ring.records()
    assert record.state is KeyState.ACTIVE and record.key is ring.signing_key()
    jwks = ring.jwks()
    assert [k["kid"] for k in jwks["keys"]] == [record.key.kid]
    assert "d" not in jwks["keys"][0]
    assert isinstance(ring.store, MemoryKeyStore)


def test_maintain_twice_is_maintain_once() -> None:
    clock = Clock(PUBLISH)
    ring = first_ring(Clock(T0))
    ring = KeyRing(ring.store, "ES256", policy=POLICY, clock=clock)
    assert ring.maintain() is True
    version, records = ring.store.load().version, ring.store.load().records
    assert ring.maintain() is False
    assert ring.store.load().version == version and ring.store.load().records == records
    assert ring.maintain(PUBLISH + 3600) is False  # nothing due an hour later either


def test_jwks_per_state() -> None:
    clock = Clock()
    ring = first_ring(clock)
    first = ring.signing_key()
    clock.now = PUBLISH
    ring.maintain()
    pending = next(r.key for r in ring.records() if r.state is KeyState.PENDING)
    published = {k["kid"] for k in ring.jwks()["keys"]}
    assert published == {first.kid, pending.kid}  # pending is published ahead
    assert ring.signing_key() is first  # but does not sign yet
    assert ring.select(pending.kid) is pending  # and already verifies
    clock.now = ROTATION
    assert ring.signing_key() is pending  # signs at its time, maintained or not
    ring.maintain()
    assert {k["kid"] for k in ring.jwks()["keys"]} == {first.kid, pending.kid}
    clock.now = ROTATION + GRACE - 1
    assert {k["kid"] for k in ring.jwks()["keys"]} == {first.kid, pending.kid}
    clock.now = ROTATION + GRACE  # the retired key expires without maintenance
    assert {k["kid"] for k in ring.jwks()["keys"]} == {pending.kid}
    with pytest.raises(KeyNotFound):
        ring.select(first.kid)
    assert list(ring.verification_keys()) == [pending]


def test_token_of_a_retired_key_verifies_until_its_exp() -> None:
    clock = Clock(ROTATION - 1)
    ring = first_ring(Clock(T0))
    ring = KeyRing(ring.store, "ES256", policy=POLICY, clock=clock)
    ring.maintain(PUBLISH)
    old = ring.signing_key()
    token = jwt.encode({"sub": "u"}, old, clock=clock, lifetime=timedelta(minutes=15))
    verifier = Policy(clock=clock, leeway=timedelta(0))
    clock.now = ROTATION
    ring.maintain()
    assert ring.signing_key() is not old
    clock.now = ROTATION - 1 + GRACE - 1  # one second before exp
    assert jwt.decode(token, ring, verifier)["sub"] == "u"
    clock.now = ROTATION - 1 + GRACE
    with pytest.raises(ExpiredToken):
        jwt.decode(token, ring, verifier)
    clock.now = ROTATION + GRACE
    with pytest.raises(KeyNotFound):
        jwt.decode(token, ring, verifier)


def test_grace_covers_a_token_signed_in_the_last_instant_before_rotation() -> None:
    iat = ROTATION - 0.5
    clock = Clock(iat)
    ring = KeyRing(MemoryKeyStore(plan_at((), T0)), "ES256", policy=POLICY, clock=clock)
    ring.maintain(PUBLISH)
    old = ring.signing_key()
    token = jwt.encode({"iat": iat, "exp": iat + GRACE}, old, clock=clock)
    clock.now = ROTATION
    ring.maintain()
    assert ring.signing_key() is not old
    verifier = Policy(clock=clock, leeway=timedelta(0))
    clock.now = iat + GRACE - 0.25
    assert jwt.decode(token, ring, verifier)["iat"] == iat
    clock.now = ROTATION + GRACE
    with pytest.raises(KeyNotFound):
        jwt.decode(token, ring, verifier)


def test_rotate_now() -> None:
    clock = Clock()
    ring = first_ring(clock)
    old = ring.signing_key()
    token = jwt.encode({"sub": "u"}, old, clock=clock)
    clock.now = T0 + 60
    new = ring.rotate()
    assert new is not old and ring.signing_key() is new
    assert jwt.decode(token, ring, Policy(clock=clock))["sub"] == "u"
    assert {k["kid"] for k in ring.jwks()["keys"]} == {old.kid, new.kid}
    by_kid = {r.key.kid: r for r in ring.records()}
    assert by_kid[old.kid].state is KeyState.RETIRED
    assert by_kid[old.kid].expires_at == T0 + 60 + GRACE


def test_rotate_promotes_the_published_successor() -> None:
    clock = Clock(PUBLISH)
    ring = KeyRing(MemoryKeyStore(plan_at((), T0)), "ES256", policy=POLICY, clock=clock)
    ring.maintain()
    pending = next(r.key for r in ring.records() if r.state is KeyState.PENDING)
    assert ring.rotate() is pending


def test_revoke_active_key() -> None:
    clock = Clock()
    ring = first_ring(clock)
    old = ring.signing_key()
    token = jwt.encode({"sub": "u"}, old, clock=clock)
    clock.now = T0 + 10
    ring.revoke(old.kid)
    with pytest.raises(KeyNotFound):
        jwt.decode(token, ring, Policy(clock=clock))
    new = ring.signing_key()
    assert new is not old
    assert [k["kid"] for k in ring.jwks()["keys"]] == [new.kid]
    assert len(active(ring.records())) == 1
    ring.revoke(old.kid)  # again: nothing changes
    assert ring.signing_key() is new
    for moment in (T0 + 20, PUBLISH, ROTATION, ROTATION + GRACE):
        clock.now = moment
        ring.maintain()
        with pytest.raises(KeyNotFound):
            ring.select(old.kid)
        assert old.kid not in {k["kid"] for k in ring.jwks()["keys"]}


def test_revoke_retired_key_stops_its_tokens_at_once() -> None:
    clock = Clock()
    ring = first_ring(clock)
    old = ring.signing_key()
    token = jwt.encode({"sub": "u"}, old, clock=clock)
    ring.rotate()
    assert jwt.decode(token, ring, Policy(clock=clock))["sub"] == "u"
    ring.revoke(old.kid)
    with pytest.raises(KeyNotFound):
        jwt.decode(token, ring, Policy(clock=clock))
    with pytest.raises(InvalidArgument):
        ring.revoke("no-such-kid")


def test_other_processes_see_changes() -> None:
    clock = Clock()
    issuer = first_ring(clock)
    other = KeyRing(issuer.store, "ES256", policy=POLICY, clock=clock)
    first = other.signing_key()
    clock.now = T0 + 1
    new = issuer.rotate()
    token = jwt.encode({"sub": "u"}, new, clock=clock)
    # An unknown kid makes the other process reload the store once.
    assert other.select(new.kid).kid == new.kid
    assert jwt.decode(token, other, Policy(clock=clock))["sub"] == "u"
    clock.now = T0 + 2
    issuer.revoke(new.kid)
    assert other.select(new.kid).kid == new.kid  # a stale snapshot, for now
    other.refresh()
    with pytest.raises(KeyNotFound):
        other.select(new.kid)
    assert other.signing_key() not in (first, new)


def test_stale_snapshot_is_reloaded_after_refresh_interval() -> None:
    clock = Clock()
    issuer = first_ring(clock)
    other = KeyRing(
        issuer.store, "ES256", policy=POLICY, clock=clock, refresh_interval=timedelta(seconds=60)
    )
    first = other.signing_key()
    issuer.revoke(first.kid)
    clock.now = T0 + 59
    assert other.signing_key() is first
    clock.now = T0 + 60
    assert other.signing_key() is issuer.signing_key()


def test_unknown_kid_reloads_at_most_once_per_cooldown() -> None:
    clock = Clock()
    loads = []
    store = MemoryKeyStore()

    class CountingStore:
        def load(self) -> StoreSnapshot:
            loads.append(clock.now)
            return store.load()

        def save(self, expected_version: int, records: Sequence[KeyRecord]) -> int:
            return store.save(expected_version, records)

    ring = first_ring(clock, store=CountingStore())
    loads.clear()
    for _ in range(5):
        with pytest.raises(KeyNotFound):
            ring.select("made-up-kid")
    assert len(loads) == 1
    clock.now = T0 + 5
    with pytest.raises(KeyNotFound):
        ring.select("made-up-kid")
    assert len(loads) == 2


def test_an_empty_store_gets_a_key_when_asked_to_sign() -> None:
    clock = Clock()
    ring = KeyRing(MemoryKeyStore(), "ES256", policy=POLICY, clock=clock)
    key = ring.signing_key()
    assert [r.key for r in active(ring.records())] == [key]


def test_several_algorithms() -> None:
    clock = Clock()
    ring = KeyRing.generate(("ES256", "EdDSA"), policy=POLICY, clock=clock)
    es, ed = ring.signing_key(), ring.signing_key("EdDSA")
    assert (es.alg, ed.alg) == ("ES256", "EdDSA")
    for key in (es, ed):
        token = jwt.encode({"sub": "u"}, key, clock=clock)
        assert jwt.decode(token, ring, Policy(clock=clock))["sub"] == "u"
    assert ring.rotate(alg="EdDSA") is not ed
    assert ring.signing_key() is es
    with pytest.raises(InvalidArgument):
        ring.signing_key("RS256")


def test_ring_errors_are_typed() -> None:
    with pytest.raises(InvalidArgument):
        KeyRing.generate("none")
    with pytest.raises(InvalidArgument):
        KeyRing.generate("ES256", policy="90 days")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        KeyRing.generate("ES256", store=object())  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        KeyRing.generate("ES256", max_attempts=0)
    with pytest.raises(InvalidArgument):
        KeyRing.generate("ES256", refresh_interval=-1)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        KeyRing.generate("ES256", clock=lambda: float("nan"))
    ring = first_ring()
    with pytest.raises(KeyNotFound):
        ring.select(None)
    with pytest.raises(InvalidArgument):
        ring.maintain(now=float("inf"))


def test_a_store_that_always_conflicts_gives_a_store_error() -> None:
    class Busy(MemoryKeyStore):
        def save(self, expected_version: int, records: Sequence[KeyRecord]) -> int:
            raise StoreConflict("someone else again")

    with pytest.raises(StoreError) as caught:
        KeyRing.generate("ES256", store=Busy(), max_attempts=3)
    assert not isinstance(caught.value, StoreConflict)
    assert isinstance(caught.value, JWTWardError) and caught.value.status_code == 503


def test_a_conflicting_write_is_retried_without_losing_either_change() -> None:
    """Between our load and our save another process rotates: both rotations survive."""
    clock = Clock()
    store = MemoryKeyStore()
    other = first_ring(clock, store=store)
    first = other.signing_key()
    interfered: list[Key] = []

    class Racing:
        def load(self) -> StoreSnapshot:
            return store.load()

        def save(self, expected_version: int, records: Sequence[KeyRecord]) -> int:
            if not interfered:
                interfered.append(other.rotate())
            return store.save(expected_version, records)

    ring = KeyRing(Racing(), "ES256", policy=POLICY, clock=clock)
    mine = ring.rotate()
    kids = {r.key.kid: r.state for r in store.load().records}
    assert kids == {
        first.kid: KeyState.RETIRED,
        interfered[0].kid: KeyState.RETIRED,
        mine.kid: KeyState.ACTIVE,
    }


@pytest.fixture
def busy_switching() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # make the threads interleave as often as possible
    yield
    sys.setswitchinterval(interval)


@pytest.mark.usefixtures("busy_switching")
def test_concurrent_rotate_and_maintain_lose_nothing() -> None:
    clock = Clock(T0)
    store = MemoryKeyStore()
    seed = first_ring(clock, store=store)
    threads_count, rotations_each = 6, 2
    rings = [
        KeyRing(store, "ES256", policy=POLICY, clock=clock, max_attempts=64)
        for _ in range(threads_count)
    ]
    barrier = threading.Barrier(threads_count)
    rotated: list[Key] = []
    errors: list[BaseException] = []

    def work(ring: KeyRing) -> None:
        try:
            barrier.wait()
            for _ in range(rotations_each):
                ring.maintain()
                rotated.append(ring.rotate())
                ring.maintain()
        except BaseException as exc:  # reported below, with the thread's failure
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(ring,)) for ring in rings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    records = store.load().records
    assert len(active(records)) == 1
    # Every rotation made its own key, and each is still in the store.
    assert len({k.kid for k in rotated}) == threads_count * rotations_each
    assert len(records) == 1 + threads_count * rotations_each
    assert seed.signing_key().kid in {r.key.kid for r in records}
    assert {r.key.kid for r in records} >= {k.kid for k in rotated}
    assert all(
        r.state is KeyState.RETIRED for r in records if r.key.kid != active(records)[0].key.kid
    )


@pytest.mark.usefixtures("busy_switching")
def test_concurrent_maintain_makes_one_successor() -> None:
    clock = Clock(T0)
    store = MemoryKeyStore()
    first_ring(clock, store=store)
    clock.now = PUBLISH
    factory = Factory()
    rings = [
        KeyRing(store, "ES256", policy=POLICY, clock=clock, key_factory=factory) for _ in range(8)
    ]
    barrier = threading.Barrier(len(rings))
    changed: list[bool] = []

    def work(ring: KeyRing) -> None:
        barrier.wait()
        changed.append(ring.maintain())

    threads = [threading.Thread(target=work, args=(ring,)) for ring in rings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert changed.count(True) == 1
    records = store.load().records
    assert [r.state for r in records] == [KeyState.ACTIVE, KeyState.PENDING]
    assert records[1].key in factory.made
    assert store.load().version == 2


def test_verification_keys_is_a_keyset() -> None:
    clock = Clock()
    ring = first_ring(clock)
    keys = ring.verification_keys()
    assert isinstance(keys, KeySet)
    token = jwt.encode({"sub": "u"}, ring.signing_key(), clock=clock)
    assert jwt.decode(token, keys, Policy(clock=clock))["sub"] == "u"
    published = KeySet.from_jwks(ring.jwks())
    assert jwt.decode(token, published, Policy(clock=clock))["sub"] == "u"


def test_generate_on_a_shared_store_joins_the_ring() -> None:
    clock = Clock()
    store = MemoryKeyStore()
    first = KeyRing.generate("ES256", policy=POLICY, store=store, clock=clock)
    second = KeyRing.generate("ES256", policy=POLICY, store=store, clock=clock)
    assert second.signing_key() is first.signing_key()
    assert len(store.load().records) == 1 and store.load().version == 1


def test_a_ring_of_secrets_publishes_nothing_and_still_verifies() -> None:
    clock = Clock()
    ring = KeyRing.generate("HS256", policy=POLICY, clock=clock)
    assert ring.jwks() == {"keys": []}
    token = jwt.encode({"sub": "u"}, ring.signing_key(), clock=clock)
    assert jwt.decode(token, ring, Policy(clock=clock))["sub"] == "u"
