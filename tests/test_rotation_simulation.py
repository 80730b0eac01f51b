"""A simulated year of a key ring: hourly tokens, hourly maintenance, a few revocations.

Time is an injected clock; events run in time order from a queue. Every
hour the ring is maintained and its invariants are checked: exactly one
active key, the published JWK Set holds the key of every live token, and a
JWK Set cached an hour earlier already holds the key that signs now (that is
what ``publish_ahead`` is for) unless a revocation forced a fresh key since.
Tokens are issued at the start and in the last second of every hour (the
last second before a scheduled rotation is where a key retires under a live
token); each is checked right after issue and one second before its ``exp``
(it must verify, unless its key was revoked), the last-second ones also at
their ``exp`` (refused, as their key may be just past its grace by then).
A few keys are revoked at random moments; from then on, every token they
signed is refused.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from jwtward import KeySet, jwt
from jwtward.errors import InvalidToken, KeyNotFound
from jwtward.keys.records import KeyState
from jwtward.keys.ring import KeyRing
from jwtward.keys.rotation import RotationPolicy
from jwtward.policy import Policy

HOUR = 3600
DAY = 24 * HOUR
DAYS = 365
LIFETIME = 15 * 60
START = 1_800_000_000 - 1_800_000_000 % HOUR
REVOCATIONS = 6


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(order=True)
class Event:
    at: float
    order: int
    action: Callable[[], None] = field(compare=False)


@dataclass
class Issued:
    token: str
    kid: str
    iat: int
    exp: int


class Year:
    """The state of the simulation and the checks made at each event."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 (a reproducible schedule, no secret)
        self.clock = Clock(START)
        self.policy = RotationPolicy(
            rotate_every=timedelta(days=30),
            publish_ahead=timedelta(days=1),
            max_token_lifetime=timedelta(seconds=LIFETIME),
        )
        self.ring = KeyRing.generate("ES256", policy=self.policy, clock=self.clock)
        # No leeway: "verifies until its exp" is then checked to the second.
        self.verifier = Policy(clock=self.clock, leeway=timedelta(0))
        self.queue: list[Event] = []
        self.sequence = 0
        self.live: list[Issued] = []
        self.revoked_at: dict[str, float] = {}
        self.cached_jwks: KeySet | None = None
        self.cached_at = float(START)
        self.last_revocation = -1.0
        self.signing_kids: list[str] = []
        self.active_since: float | None = None
        self.schedule_reset = -1.0
        self.counts: Counter[str] = Counter()

    def at(self, moment: float, action: Callable[[], None]) -> None:
        self.sequence += 1
        heapq.heappush(self.queue, Event(moment, self.sequence, action))

    def run(self) -> None:
        for hour in range(DAYS * 24):
            start = START + hour * HOUR
            self.at(start, self.hourly)
            self.at(start, lambda: self.issue(check_exp=False))
            self.at(start + HOUR - 1, lambda: self.issue(check_exp=True))
        # Revocations fall a few minutes after the top of an hour, while the
        # token issued then is live.
        for hour in self.rng.sample(range(24, DAYS * 24), REVOCATIONS):
            self.at(START + hour * HOUR + self.rng.randrange(1, LIFETIME), self.revoke)
        while self.queue:
            event = heapq.heappop(self.queue)
            assert event.at >= self.clock.now  # time only moves forward
            self.clock.now = event.at
            event.action()

    # -- the invariants -------------------------------------------------------------

    def check_one_active(self) -> None:
        records = self.ring.records()
        assert [r.state for r in records].count(KeyState.ACTIVE) == 1
        active = next(r for r in records if r.state is KeyState.ACTIVE)
        assert self.ring.signing_key() is active.key

    def check_published(self) -> None:
        now = self.clock.now
        published = {jwk["kid"] for jwk in self.ring.jwks()["keys"]}
        needed = {t.kid for t in self.live if t.exp > now and t.kid not in self.revoked_at}
        assert needed <= published
        assert published.isdisjoint(self.revoked_at)

    def check_schedule(self) -> None:
        """A scheduled switch comes rotate_every after the last, published a day ahead."""
        active = next(r for r in self.ring.records() if r.state is KeyState.ACTIVE)
        previous = self.active_since
        self.active_since = active.activates_at
        if previous is None or active.activates_at == previous:
            return
        if self.schedule_reset > previous:
            return  # a revocation replaced a key: the schedule restarts from it
        gap = active.activates_at - previous
        # The successor is published at the first hourly maintenance a day
        # before the rotation is due, so it signs at most an hour late.
        assert 30 * DAY <= gap < 30 * DAY + HOUR
        assert active.activates_at - active.created_at >= DAY
        self.counts["scheduled rotations"] += 1

    def hourly(self) -> None:
        now = self.clock.now
        self.live = [t for t in self.live if t.exp > now]
        self.ring.maintain()
        assert self.ring.maintain() is False  # maintain twice = maintain once
        self.check_one_active()
        self.check_published()
        self.check_schedule()
        # A verifier's cache, refreshed hourly, knows the key that signs now.
        signer = self.ring.signing_key()
        if self.cached_jwks is not None and self.last_revocation < self.cached_at:
            assert signer.kid in self.cached_jwks
            self.counts["checked with an hour-old cache"] += 1
        self.cached_jwks = KeySet.from_jwks(self.ring.jwks())
        self.cached_at = now

    # -- tokens ------------------------------------------------------------------------

    def issue(self, *, check_exp: bool) -> None:
        now = int(self.clock.now)
        key = self.ring.signing_key()
        if not self.signing_kids or self.signing_kids[-1] != key.kid:
            self.signing_kids.append(key.kid)
        token = jwt.encode(
            {"sub": f"user-{now}"}, key, clock=self.clock, lifetime=timedelta(seconds=LIFETIME)
        )
        issued = Issued(token, key.kid, now, now + LIFETIME)
        self.live.append(issued)
        self.check_one_active()
        self.check_published()
        self.expect_valid(issued)
        self.at(issued.exp - 1, lambda: self.expect_valid(issued))
        if check_exp:  # the tokens whose key may retire under them
            self.at(issued.exp, lambda: self.expect_refused(issued))

    def expect_valid(self, issued: Issued) -> None:
        if issued.kid in self.revoked_at:
            self.expect_refused(issued)
            return
        assert jwt.decode(issued.token, self.ring, self.verifier)["iat"] == issued.iat
        self.counts["verified"] += 1

    def expect_refused(self, issued: Issued) -> None:
        with pytest.raises(InvalidToken):
            jwt.decode(issued.token, self.ring, self.verifier)
        self.counts["refused"] += 1

    # -- emergencies ---------------------------------------------------------------------

    def revoke(self) -> None:
        now = self.clock.now
        published = [r.key.kid for r in self.ring.records() if r.state is not KeyState.REVOKED]
        # Mostly the signing key (the compromise that matters), sometimes another.
        signing = self.rng.random() < 0.6
        kid = self.ring.signing_key().kid if signing else self.rng.choice(published)
        state = next(r.state for r in self.ring.records() if r.key.kid == kid)
        if state in (KeyState.ACTIVE, KeyState.PENDING):
            self.schedule_reset = now  # a replaced key restarts the schedule
            self.counts["schedule resets"] += 1
        self.ring.revoke(kid)
        self.revoked_at[kid] = now
        self.last_revocation = now
        self.counts["revocations"] += 1
        self.check_one_active()
        self.check_published()
        assert self.ring.signing_key().kid != kid
        for issued in self.live:
            if issued.kid == kid and issued.exp > now:
                with pytest.raises(KeyNotFound):
                    jwt.decode(issued.token, self.ring, self.verifier)
                self.counts["refused after revocation"] += 1


@pytest.mark.parametrize("seed", [20261128])
def test_a_year_of_rotation(seed: int) -> None:
    year = Year(seed)
    year.run()
    hours = DAYS * 24
    assert year.counts["revocations"] == REVOCATIONS
    # Two tokens an hour, each checked on issue and one second before exp,
    # the second one also at exp: every check ran.
    assert year.counts["verified"] + year.counts["refused"] == 5 * hours
    assert year.counts["refused"] >= hours
    assert year.counts["refused after revocation"] >= 1
    # Every 30 days, except where a revocation restarted the schedule.
    assert year.counts["scheduled rotations"] >= 12 - year.counts["schedule resets"]
    assert year.counts["checked with an hour-old cache"] >= hours - REVOCATIONS * 2 - 1
    # About twelve scheduled rotations and up to one new key per revocation.
    assert 13 <= len(year.signing_kids) <= 13 + REVOCATIONS
    assert len(set(year.signing_kids)) == len(year.signing_kids)  # no key signs again
