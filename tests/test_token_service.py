"""The token lifecycle's rules, written once and run on every store and both services.

Each test runs for the memory, SQLite, Redis and PostgreSQL stores, with the
sync ``TokenService`` and with the ``AsyncTokenService`` (native async stores
for Redis and PostgreSQL, ``ThreadedStore`` for the others): a rule that
holds on one store but not on another is a bug in that store, and this is
where it shows. The clock is a fake that moves only when a test moves it,
so each time rule is checked at its exact boundary, without sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from jwtward import jwt
from jwtward.errors import (
    ExpiredToken,
    InvalidArgument,
    InvalidClaim,
    InvalidSignature,
    InvalidType,
    KeyNotFound,
    RefreshTokenReuse,
    RevokedToken,
    StoreUnavailable,
    SubjectDisabled,
)
from jwtward.jose.keys import Key
from jwtward.keys import KeyRing
from jwtward.tokens import (
    ACCESS_TYP,
    REFRESH_TYP,
    AccessClaims,
    AsyncTokenService,
    FamilyRecord,
    MemoryTokenStore,
    TokenPair,
    TokenService,
)
from tests.token_stores import (
    STORE_KINDS,
    make_async_store,
    make_sync_store,
    redis_key_expiries,
)

ISSUER = "https://auth.example"
AUDIENCE = "https://api.example"
DAY = 86_400
ACCESS = 15 * 60  # the service's defaults, restated so a changed default shows here
REFRESH = 14 * DAY
SESSION = 30 * DAY
LEEWAY = 30
# revoke_subject keeps its cutoff one hour beyond the longest session it can refuse.
CUTOFF_MARGIN = 3600
RACERS = 100
RACE_ROUNDS = 20
DRIVER_MESSAGE = "connection refused by 10.0.0.7:6543 (driver detail)"


class FakeClock:
    """POSIX seconds that move only when the test says so.

    It starts at the real time (whole seconds), not at a fixed date: the
    Redis store sets each key's expiry at the absolute time its record names,
    and a date in the past would make Redis drop a session as it is written.
    """

    def __init__(self) -> None:
        self.start = float(int(time.time()))
        self.now = self.start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def set(self, offset: float) -> None:
        """Put the clock ``offset`` seconds after its start."""
        self.now = self.start + offset


class Service:
    """One awaitable call shape over TokenService and AsyncTokenService.

    Each rule is then written once. For the sync flavour the call runs in
    place (the test's event loop simply waits for it), so it is the real
    blocking code path that is tested.
    """

    def __init__(self, impl: TokenService | AsyncTokenService, store: Any) -> None:
        self.impl = impl
        self.store = store

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.impl, name)(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def issue(self, subject: str, **kwargs: Any) -> TokenPair:
        pair = await self._call("issue", subject, **kwargs)
        assert isinstance(pair, TokenPair)
        return pair

    async def verify(self, token: str) -> AccessClaims:
        claims = await self._call("verify", token)
        assert isinstance(claims, AccessClaims)
        return claims

    async def refresh(self, token: str) -> TokenPair:
        pair = await self._call("refresh", token)
        assert isinstance(pair, TokenPair)
        return pair

    async def revoke(self, token: str) -> None:
        assert await self._call("revoke", token) is None

    async def revoke_subject(self, subject: str) -> None:
        assert await self._call("revoke_subject", subject) is None

    async def sessions(self, subject: str) -> list[FamilyRecord]:
        found = await self._call("sessions", subject)
        assert isinstance(found, list)
        return found

    async def revoke_session(self, subject: str, session_id: str) -> bool:
        done = await self._call("revoke_session", subject, session_id)
        assert isinstance(done, bool)
        return done

    async def introspect(self, token: str) -> dict[str, Any]:
        body = await self._call("introspect", token)
        assert isinstance(body, dict)
        return body

    async def purge_expired(self) -> int:
        count = await self._call("purge_expired")
        assert isinstance(count, int)
        return count


@dataclass
class Env:
    """One store kind and one service flavour, with a fake clock and a key ring on it."""

    kind: str
    flavour: str
    tmp_path: Path
    clock: FakeClock
    ring: KeyRing

    @asynccontextmanager
    async def service(
        self, *, wrap: Callable[[Any], Any] | None = None, **options: Any
    ) -> AsyncIterator[Service]:
        """A service of this flavour on a fresh store of this kind (``wrap`` may wrap it)."""
        settings: dict[str, Any] = {
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "clock": self.clock,
            **options,
        }
        if self.flavour == "sync":
            with make_sync_store(self.kind, self.tmp_path) as store:
                used = store if wrap is None else wrap(store)
                yield Service(TokenService(self.ring, store=used, **settings), used)
        else:
            async with make_async_store(self.kind, self.tmp_path) as astore:
                used = astore if wrap is None else wrap(astore)
                yield Service(AsyncTokenService(self.ring, store=used, **settings), used)


@pytest.fixture(params=STORE_KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=("sync", "async"))
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def env(kind: str, flavour: str, tmp_path: Path) -> Env:
    clock = FakeClock()
    return Env(kind, flavour, tmp_path, clock, KeyRing.generate("ES256", clock=clock))


def _b64_json(segment: str) -> dict[str, Any]:
    value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    assert isinstance(value, dict)
    return value


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a compact JWS, read directly (no library check in between)."""
    header, payload, _signature = token.split(".")
    return _b64_json(header), _b64_json(payload)


def forged(env: Env, claims: Mapping[str, Any], typ: str) -> str:
    """A token with the ring's own kid, signed by a key the ring does not hold."""
    kid = env.ring.signing_key().kid
    return jwt.encode(claims, Key.generate("ES256", kid=kid), typ=typ, clock=env.clock)


class FlakyStore:
    """A store whose calls fail like a dropped connection while ``down`` is set.

    ``only`` limits the failure to some methods (a connection lost in the
    middle of a flow). The exception is a plain ``ConnectionError`` with a
    driver-like message: the service must turn it into StoreUnavailable and
    must not pass the message on.
    """

    def __init__(self, inner: Any, *, awaitable: bool) -> None:
        self.inner = inner
        self.awaitable = awaitable
        self.down = False
        self.only: frozenset[str] | None = None
        # Methods that answer, but with a value of the wrong type (a broken store).
        self.garbled: frozenset[str] = frozenset()

    def _fails(self, name: str) -> bool:
        return self.down and (self.only is None or name in self.only)

    def _answer(self, name: str, answer: Any) -> Any:
        return {"not": "an answer"} if name in self.garbled else answer

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)
        if self.awaitable:

            async def acall(*args: Any) -> Any:
                if self._fails(name):
                    raise ConnectionError(DRIVER_MESSAGE)
                return self._answer(name, await method(*args))

            return acall

        def call(*args: Any) -> Any:
            if self._fails(name):
                raise ConnectionError(DRIVER_MESSAGE)
            return self._answer(name, method(*args))

        return call


@asynccontextmanager
async def flaky_service(env: Env) -> AsyncIterator[tuple[Service, FlakyStore]]:
    """A service of ``env`` whose store sits behind a :class:`FlakyStore`."""
    flaky: list[FlakyStore] = []

    def wrap(store: Any) -> FlakyStore:
        flaky.append(FlakyStore(store, awaitable=env.flavour == "async"))
        return flaky[0]

    async with env.service(wrap=wrap) as svc:
        yield svc, flaky[0]


# -- issue ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_issue_writes_rfc9068_claims_and_typed_headers(env: Env) -> None:
    t0 = env.clock.start
    async with env.service() as svc:
        pair = await svc.issue(
            "alice", scope=["read", "write", "read"], client_id="app-1",
            claims={"roles": ["admin"]},
        )
        header, claims = parts(pair.access_token)
        assert header["typ"] == ACCESS_TYP == "at+jwt"
        assert header["alg"] == "ES256"
        assert header["kid"] == env.ring.signing_key().kid
        assert claims == {
            "iss": ISSUER,
            "sub": "alice",
            "aud": AUDIENCE,
            "iat": t0,
            "exp": t0 + ACCESS,
            "jti": claims["jti"],
            "sid": pair.session_id,
            "client_id": "app-1",
            "scope": "read write",  # space-separated, duplicates dropped
            "roles": ["admin"],
        }
        assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 22

        assert pair.expires_in == ACCESS
        assert pair.access_expires_at == t0 + ACCESS
        assert pair.refresh_expires_at == t0 + REFRESH
        assert pair.scope == "read write"
        assert pair.token_type == "Bearer"
        assert pair.to_response() == {
            "access_token": pair.access_token,
            "token_type": "Bearer",
            "expires_in": ACCESS,
            "refresh_token": pair.refresh_token,
            "scope": "read write",
        }

        r_header, r_claims = parts(pair.refresh_token)
        assert r_header["typ"] == REFRESH_TYP == "refresh+jwt"
        # A refresh token is meant for the issuer itself and carries no grant.
        assert r_claims == {
            "iss": ISSUER,
            "sub": "alice",
            "aud": ISSUER,
            "iat": t0,
            "exp": t0 + REFRESH,
            "jti": r_claims["jti"],
            "sid": pair.session_id,
        }
        assert r_claims["jti"] != claims["jti"]

        bare = await svc.issue("bob")
        _, bare_claims = parts(bare.access_token)
        assert "scope" not in bare_claims and "client_id" not in bare_claims
        assert bare.scope is None and "scope" not in bare.to_response()
        assert bare.session_id != pair.session_id


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "name", ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid", "scope", "client_id", "cnf"]
)
async def test_issue_refuses_reserved_claims(env: Env, name: str) -> None:
    async with env.service() as svc:
        with pytest.raises(InvalidArgument):
            await svc.issue("alice", claims={name: "forced", "roles": ["x"]})
        assert await svc.sessions("alice") == []  # nothing was stored


@pytest.mark.asyncio
async def test_access_lifetime_above_one_hour_needs_explicit_consent(env: Env) -> None:
    with pytest.raises(InvalidArgument):
        async with env.service(access_lifetime=timedelta(hours=1, seconds=1)):
            pass
    async with env.service(access_lifetime=timedelta(hours=1)) as svc:
        assert (await svc.issue("alice")).expires_in == 3600
    async with env.service(
        access_lifetime=timedelta(hours=2), allow_long_access_tokens=True
    ) as svc:
        pair = await svc.issue("alice")
        assert pair.expires_in == 7200
        env.clock.advance(7200 + LEEWAY - 1)
        assert (await svc.verify(pair.access_token)).subject == "alice"
        env.clock.advance(1)
        with pytest.raises(ExpiredToken):
            await svc.verify(pair.access_token)


# -- verify ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_verify_gives_typed_claims(env: Env) -> None:
    async with env.service() as svc:
        pair = await svc.issue(
            "alice", scope="read write", client_id="app-1", claims={"roles": "admin ops"}
        )
        claims = await svc.verify(pair.access_token)
        assert claims.subject == "alice"
        assert claims.scopes == frozenset({"read", "write"})
        assert claims.has_scopes("read") and not claims.has_scopes("read", "admin")
        assert claims.session_id == pair.session_id
        assert claims.client_id == "app-1"
        assert claims.expires_at == pair.access_expires_at
        assert claims.jti == parts(pair.access_token)[1]["jti"]
        assert claims.roles() == frozenset({"admin", "ops"})


@pytest.mark.asyncio
async def test_access_and_refresh_tokens_are_not_interchangeable(env: Env) -> None:
    async with env.service() as svc:
        pair = await svc.issue("alice")
        with pytest.raises(InvalidType):
            await svc.verify(pair.refresh_token)
        with pytest.raises(InvalidType):
            await svc.refresh(pair.access_token)
        # Neither refusal touched the session: both tokens still do their own job.
        await svc.verify(pair.access_token)
        await svc.refresh(pair.refresh_token)


@pytest.mark.asyncio
async def test_access_token_expires_at_exp_plus_leeway(env: Env) -> None:
    async with env.service() as svc:
        pair = await svc.issue("alice")
        env.clock.set(ACCESS + LEEWAY - 1)
        assert (await svc.verify(pair.access_token)).subject == "alice"
        env.clock.set(ACCESS + LEEWAY)
        with pytest.raises(ExpiredToken):
            await svc.verify(pair.access_token)
        assert await svc.introspect(pair.access_token) == {"active": False}


@pytest.mark.asyncio
async def test_other_audience_issuer_or_key_refuses(env: Env) -> None:
    async with env.service() as svc:
        pair = await svc.issue("alice")

    def other(ring: KeyRing, *, issuer: str = ISSUER, audience: str = AUDIENCE) -> TokenService:
        # The refusals come before any store lookup, so the store does not matter here.
        return TokenService(
            ring, issuer=issuer, audience=audience, store=MemoryTokenStore(), clock=env.clock
        )

    with pytest.raises(InvalidClaim) as refused:
        other(env.ring, audience="https://other-api.example").verify(pair.access_token)
    assert refused.value.claim == "aud"
    with pytest.raises(InvalidClaim) as refused:
        other(env.ring, issuer="https://other-auth.example").verify(pair.access_token)
    assert refused.value.claim == "iss"
    with pytest.raises(InvalidClaim) as refused:
        other(env.ring, issuer="https://other-auth.example").refresh(pair.refresh_token)
    assert refused.value.claim in {"iss", "aud"}
    stranger = KeyRing.generate("ES256", clock=env.clock)
    with pytest.raises(KeyNotFound):
        other(stranger).verify(pair.access_token)


# -- refresh ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_refresh_rotates_to_a_new_pair(env: Env) -> None:
    t0 = env.clock.start
    async with env.service() as svc:
        first = await svc.issue("alice", scope="read", claims={"tier": "gold"})
        env.clock.advance(60)
        second = await svc.refresh(first.refresh_token)
        assert second.session_id == first.session_id
        assert second.access_token != first.access_token
        assert second.refresh_token != first.refresh_token
        assert second.access_expires_at == t0 + 60 + ACCESS
        assert second.refresh_expires_at == t0 + 60 + REFRESH
        assert second.scope == "read"
        claims = await svc.verify(second.access_token)
        assert claims["iat"] == t0 + 60 and claims["tier"] == "gold"
        assert claims.session_id == first.session_id
        # Rotation does not recall the previous access token: it lives until its exp.
        await svc.verify(first.access_token)
        (session,) = await svc.sessions("alice")
        assert session.last_used_at == t0 + 60 and session.created_at == t0


@pytest.mark.asyncio
async def test_reused_refresh_token_revokes_the_whole_family(env: Env) -> None:
    async with env.service() as svc:
        bystander = await svc.issue("alice")  # another login of the same user
        first = await svc.issue("alice")
        second = await svc.refresh(first.refresh_token)
        with pytest.raises(RefreshTokenReuse):
            await svc.refresh(first.refresh_token)
        with pytest.raises(RevokedToken):
            await svc.refresh(second.refresh_token)
        for token in (first.access_token, second.access_token):
            with pytest.raises(RevokedToken):
                await svc.verify(token)
        assert await svc.introspect(second.refresh_token) == {"active": False}
        await svc.verify(bystander.access_token)
        await svc.refresh(bystander.refresh_token)
        assert [s.family_id for s in await svc.sessions("alice")] == [bystander.session_id]


@pytest.mark.asyncio
async def test_reuse_grace_replays_the_same_pair_then_detects_reuse(env: Env) -> None:
    async with env.service(reuse_grace=timedelta(seconds=10)) as svc:
        first = await svc.issue("alice", scope="read")
        second = await svc.refresh(first.refresh_token)
        env.clock.advance(10)  # the last moment of the grace window
        assert await svc.refresh(first.refresh_token) == second
        await svc.verify(second.access_token)
        env.clock.advance(1)
        with pytest.raises(RefreshTokenReuse):
            await svc.refresh(first.refresh_token)
        with pytest.raises(RevokedToken):
            await svc.refresh(second.refresh_token)
        with pytest.raises(RevokedToken):
            await svc.verify(second.access_token)


@pytest.mark.asyncio
async def test_load_subject_refreshes_claims_and_ends_disabled_sessions(env: Env) -> None:
    users: dict[str, dict[str, Any]] = {"alice": {"roles": ["reader"]}}
    asked: list[str] = []

    def lookup(subject: str) -> dict[str, Any] | None:
        asked.append(subject)
        return users.get(subject)

    async def lookup_async(subject: str) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        return lookup(subject)

    # The async service takes a coroutine function; the sync one a plain function.
    loader = lookup_async if env.flavour == "async" else lookup
    async with env.service(load_subject=loader) as svc:
        first = await svc.issue("alice", claims={"roles": ["reader"]})
        assert asked == []  # issue uses the claims it is given
        users["alice"] = {"roles": ["editor"], "plan": "pro"}
        second = await svc.refresh(first.refresh_token)
        claims = await svc.verify(second.access_token)
        assert claims["roles"] == ["editor"] and claims["plan"] == "pro"
        assert asked == ["alice"]

        users["alice"] = {"sub": "mallory"}  # a loader may not override reserved claims
        with pytest.raises(InvalidArgument):
            await svc.refresh(second.refresh_token)
        users["alice"] = {"roles": ["editor"]}
        third = await svc.refresh(second.refresh_token)  # the refusal used nothing up

        del users["alice"]
        with pytest.raises(SubjectDisabled):
            await svc.refresh(third.refresh_token)
        with pytest.raises(RevokedToken) as refused:
            await svc.refresh(third.refresh_token)
        assert not isinstance(refused.value, RefreshTokenReuse)  # revoked, not rotated
        for pair in (first, second, third):
            with pytest.raises(RevokedToken):
                await svc.verify(pair.access_token)
        assert await svc.sessions("alice") == []


@pytest.mark.asyncio
async def test_session_has_an_absolute_end(env: Env) -> None:
    t0 = env.clock.start
    async with env.service() as svc:
        pair = await svc.issue("alice")
        assert pair.refresh_expires_at == t0 + REFRESH
        env.clock.set(13 * DAY)
        pair = await svc.refresh(pair.refresh_token)
        assert pair.refresh_expires_at == t0 + 27 * DAY
        env.clock.set(26 * DAY)
        pair = await svc.refresh(pair.refresh_token)
        # min(now + 14 days, session end): the refresh token never outlives the session.
        assert pair.refresh_expires_at == t0 + SESSION
        env.clock.set(SESSION - 1)
        pair = await svc.refresh(pair.refresh_token)
        assert pair.refresh_expires_at == t0 + SESSION
        # The access token, too, ends with the session (not ACCESS seconds later).
        assert pair.access_expires_at == t0 + SESSION
        assert pair.expires_in == 1
        await svc.verify(pair.access_token)
        (session,) = await svc.sessions("alice")
        assert session.expires_at == t0 + SESSION

        env.clock.set(SESSION)
        # The refresh token's own exp (plus leeway) has not passed; the session has.
        with pytest.raises(RevokedToken):
            await svc.refresh(pair.refresh_token)
        with pytest.raises(RevokedToken):
            await svc.verify(pair.access_token)
        assert await svc.sessions("alice") == []


# -- revoke (RFC 7009) -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_revoking_an_access_token_refuses_only_that_token(env: Env) -> None:
    async with env.service() as svc:
        pair = await svc.issue("alice")
        other = await svc.issue("alice")
        await svc.revoke(pair.access_token)
        with pytest.raises(RevokedToken):
            await svc.verify(pair.access_token)
        assert await svc.introspect(pair.access_token) == {"active": False}
        await svc.revoke(pair.access_token)  # idempotent
        await svc.verify(other.access_token)
        successor = await svc.refresh(pair.refresh_token)  # the family lives on
        await svc.verify(successor.access_token)


@pytest.mark.asyncio
async def test_revoking_a_refresh_token_revokes_its_family(env: Env) -> None:
    async with env.service() as svc:
        pair = await svc.issue("alice")
        rotated = await svc.refresh(pair.refresh_token)
        other = await svc.issue("alice")
        await svc.revoke(rotated.refresh_token)
        with pytest.raises(RevokedToken):
            await svc.refresh(rotated.refresh_token)
        for token in (pair.access_token, rotated.access_token):
            with pytest.raises(RevokedToken):
                await svc.verify(token)
        await svc.verify(other.access_token)
        await svc.refresh(other.refresh_token)


@pytest.mark.asyncio
async def test_revoke_ignores_invalid_tokens(env: Env) -> None:
    async with env.service() as svc:
        old = await svc.issue("alice")
        env.clock.set(ACCESS + LEEWAY)  # old.access_token has just expired
        live = await svc.issue("alice")
        _, access = parts(live.access_token)
        _, refresh = parts(live.refresh_token)
        for token in (
            "",
            "garbage",
            "a.b.c",
            old.access_token,
            forged(env, access, ACCESS_TYP),  # same jti and sid, foreign signature
            forged(env, refresh, REFRESH_TYP),
        ):
            await svc.revoke(token)
        await svc.verify(live.access_token)
        assert (await svc.introspect(live.refresh_token))["active"] is True
        await svc.refresh(live.refresh_token)
        await svc.refresh(old.refresh_token)  # the expired access token's family is intact
        assert len(await svc.sessions("alice")) == 2


# -- revoke_subject ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_revoke_subject_ends_every_session_issued_before(env: Env) -> None:
    async with env.service() as svc:
        laptop = await svc.issue("alice")
        phone = await svc.issue("alice")
        env.clock.advance(60)
        phone = await svc.refresh(phone.refresh_token)
        bob = await svc.issue("bob")
        env.clock.advance(5)
        await svc.revoke_subject("alice")
        for pair in (laptop, phone):
            with pytest.raises(RevokedToken):
                await svc.verify(pair.access_token)
            with pytest.raises(RevokedToken):
                await svc.refresh(pair.refresh_token)
        assert await svc.sessions("alice") == []
        await svc.verify(bob.access_token)
        await svc.refresh(bob.refresh_token)

        # The cutoff is inclusive: a login in the very instant of the logout is refused too.
        same_instant = await svc.issue("alice")
        with pytest.raises(RevokedToken):
            await svc.verify(same_instant.access_token)
        env.clock.advance(1)
        later = await svc.issue("alice")
        await svc.verify(later.access_token)
        later = await svc.refresh(later.refresh_token)
        await svc.verify(later.access_token)
        assert [s.family_id for s in await svc.sessions("alice")] == [later.session_id]


# -- introspect (RFC 7662) ----------------------------------------------------------------


@pytest.mark.asyncio
async def test_introspect_describes_active_tokens(env: Env) -> None:
    t0 = env.clock.start
    async with env.service() as svc:
        pair = await svc.issue(
            "alice", scope="read write", client_id="app-1", claims={"roles": ["x"]}
        )
        assert await svc.introspect(pair.access_token) == {
            "active": True,
            "token_type": "access_token",
            "sub": "alice",
            "exp": t0 + ACCESS,
            "iat": t0,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "jti": parts(pair.access_token)[1]["jti"],
            "scope": "read write",
            "client_id": "app-1",
        }
        assert await svc.introspect(pair.refresh_token) == {
            "active": True,
            "token_type": "refresh_token",
            "sub": "alice",
            "exp": t0 + REFRESH,
            "iat": t0,
            "iss": ISSUER,
            "aud": ISSUER,
            # No jti: a refresh token's id is the secret behind its stored hash.
        }
        # Introspecting a used refresh token answers inactive without reuse detection:
        # it is a question asked by a resource server, not a client presenting the token.
        successor = await svc.refresh(pair.refresh_token)
        assert await svc.introspect(pair.refresh_token) == {"active": False}
        await svc.verify(successor.access_token)
        await svc.refresh(successor.refresh_token)


@pytest.mark.asyncio
async def test_introspect_says_only_inactive_for_anything_not_valid(env: Env) -> None:
    async with env.service() as svc:
        revoked = await svc.issue("alice")
        await svc.revoke(revoked.access_token)
        revoked_family = await svc.issue("alice")
        await svc.revoke(revoked_family.refresh_token)
        good = await svc.issue("alice")
        header, payload, _ = good.access_token.split(".")
        other_signature = revoked.access_token.split(".")[2]
        _, claims = parts(good.access_token)
        inactive = [
            revoked.access_token,
            revoked_family.access_token,
            revoked_family.refresh_token,
            "garbage",
            "",
            f"{header}.{payload}.{other_signature}",  # a signature made for another token
            forged(env, claims, ACCESS_TYP),
        ]
        with pytest.raises(InvalidSignature):
            await svc.verify(inactive[-2])
        for token in inactive:
            assert await svc.introspect(token) == {"active": False}
        env.clock.set(ACCESS + LEEWAY)
        assert await svc.introspect(good.access_token) == {"active": False}  # expired
        assert (await svc.introspect(good.refresh_token))["active"] is True
        env.clock.set(REFRESH + LEEWAY)
        assert await svc.introspect(good.refresh_token) == {"active": False}


# -- sessions ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_sessions_list_newest_first_and_revoke_session(env: Env) -> None:
    t0 = env.clock.start
    async with env.service() as svc:
        laptop = await svc.issue("alice", metadata={"user_agent": "laptop", "ip": "192.0.2.1"})
        env.clock.advance(10)
        phone = await svc.issue(
            "alice", scope="read", client_id="mobile", metadata={"user_agent": "phone"}
        )
        bob = await svc.issue("bob")
        sessions = await svc.sessions("alice")
        assert [s.family_id for s in sessions] == [phone.session_id, laptop.session_id]
        newest, oldest = sessions
        assert (newest.subject, newest.created_at, newest.expires_at) == (
            "alice", t0 + 10, t0 + 10 + SESSION,
        )
        assert (newest.client_id, newest.scope, dict(newest.metadata)) == (
            "mobile", "read", {"user_agent": "phone"},
        )
        assert newest.revoked_at is None
        assert (oldest.created_at, oldest.client_id, oldest.scope) == (t0, None, None)
        assert dict(oldest.metadata) == {"user_agent": "laptop", "ip": "192.0.2.1"}

        assert await svc.revoke_session("alice", laptop.session_id) is True
        assert [s.family_id for s in await svc.sessions("alice")] == [phone.session_id]
        with pytest.raises(RevokedToken):
            await svc.verify(laptop.access_token)
        with pytest.raises(RevokedToken):
            await svc.refresh(laptop.refresh_token)
        assert await svc.revoke_session("alice", laptop.session_id) is False  # already gone

        # Another subject's session, or one that does not exist: refused, nothing changes.
        assert await svc.revoke_session("bob", phone.session_id) is False
        assert await svc.revoke_session("alice", bob.session_id) is False
        assert await svc.revoke_session("alice", "no-such-session") is False
        await svc.verify(phone.access_token)
        await svc.verify(bob.access_token)
        assert [s.family_id for s in await svc.sessions("bob")] == [bob.session_id]


# -- purge_expired -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_purge_expired_removes_only_what_can_no_longer_matter(env: Env) -> None:
    t0 = env.clock.start
    async with env.service() as svc:
        # Five entries that will all have expired: a session, two refresh
        # records, a revoked jti and a subject cutoff.
        old = await svc.issue("alice")
        env.clock.advance(60)
        old = await svc.refresh(old.refresh_token)
        await svc.revoke(old.access_token)
        await svc.revoke_subject("carol")
        env.clock.set(60 + SESSION + CUTOFF_MARGIN + 1)
        t1 = env.clock.now

        # Entries that are live: their purge would undo a revocation or end a login.
        live = await svc.issue("alice")
        revoked = await svc.issue("bob")
        await svc.revoke(revoked.access_token)
        await svc.revoke_subject("dave")
        dave = await svc.issue("dave")  # created at the cutoff: refused while it is kept

        if env.kind == "redis":
            # Documented: Redis drops every entry itself at the time its record
            # names, so purge has nothing to count; check that those times are set.
            assert await svc.purge_expired() == 0
            assert await svc.purge_expired() == 0
            expiries = redis_key_expiries(svc.store.prefix)
            assert all(ms > 0 for ms in expiries.values()), expiries
            assert expiries[f"fam:{live.session_id}"] == (t1 + SESSION) * 1000
            assert expiries[f"fam:{old.session_id}"] == (t0 + SESSION) * 1000
            revoked_jti = parts(revoked.access_token)[1]["jti"]
            # Kept while a policy could still accept the token: exp + leeway.
            assert expiries[f"jti:{revoked_jti}"] == (t1 + ACCESS + LEEWAY) * 1000
            assert expiries["cut:carol"] == (t0 + 60 + SESSION + CUTOFF_MARGIN) * 1000
            live_jti = parts(live.refresh_token)[1]["jti"]
            live_hash = hashlib.sha256(live_jti.encode()).hexdigest()
            assert expiries[f"rt:{live_hash}"] == (t1 + REFRESH + LEEWAY) * 1000
        else:
            assert await svc.purge_expired() == 5
            assert await svc.purge_expired() == 0

        await svc.verify(live.access_token)
        with pytest.raises(RevokedToken):
            await svc.verify(revoked.access_token)
        with pytest.raises(RevokedToken):
            await svc.verify(dave.access_token)
        assert [s.family_id for s in await svc.sessions("alice")] == [live.session_id]
        live = await svc.refresh(live.refresh_token)
        await svc.verify(live.access_token)


# -- a store that cannot answer ----------------------------------------------------------


@pytest.mark.asyncio
async def test_a_store_answering_the_wrong_type_is_unavailable(env: Env) -> None:
    """A broken store fails closed as StoreUnavailable (503), never as a crash (500)."""
    async with flaky_service(env) as (svc, store):
        pair = await svc.issue("alice")
        await svc.verify(pair.access_token)
        await svc.verify(pair.access_token)  # now in the verified-token cache too
        store.garbled = frozenset({"access_view", "load_refresh", "sessions"})
        for attempt in (
            svc.verify(pair.access_token),
            svc.introspect(pair.access_token),
            svc.refresh(pair.refresh_token),
            svc.sessions("alice"),
        ):
            with pytest.raises(StoreUnavailable) as failed:
                await attempt
            assert failed.value.__cause__ is None
        store.garbled = frozenset()
        await svc.verify(pair.access_token)
        await svc.refresh(pair.refresh_token)  # nothing above used it up


@pytest.mark.asyncio
async def test_store_down_fails_closed_and_recovers(env: Env) -> None:
    async with flaky_service(env) as (svc, store):
        pair = await svc.issue("alice")
        store.down = True
        attempts = [
            svc.issue("alice"),
            svc.verify(pair.access_token),
            svc.refresh(pair.refresh_token),
            svc.revoke(pair.access_token),
            svc.revoke(pair.refresh_token),
            svc.revoke_subject("alice"),
            svc.introspect(pair.access_token),
            svc.sessions("alice"),
            svc.revoke_session("alice", pair.session_id),
            svc.purge_expired(),
        ]
        for attempt in attempts:
            with pytest.raises(StoreUnavailable) as failed:
                await attempt
            assert DRIVER_MESSAGE not in str(failed.value)
            assert failed.value.__cause__ is None

        store.down = False
        # Nothing above took effect: no revocation, no rotation.
        await svc.verify(pair.access_token)
        rotated = await svc.refresh(pair.refresh_token)
        await svc.verify(rotated.access_token)
        await svc.issue("alice")

        # The connection lost in the middle of a flow: after the read, at the write.
        store.down, store.only = True, frozenset({"rotate"})
        with pytest.raises(StoreUnavailable):
            await svc.refresh(rotated.refresh_token)
        store.down = False
        latest = await svc.refresh(rotated.refresh_token)

        # A reuse whose revocation cannot be written is not let through either.
        store.down, store.only = True, frozenset({"revoke_family"})
        with pytest.raises(StoreUnavailable):
            await svc.refresh(rotated.refresh_token)
        store.down = False
        with pytest.raises(RefreshTokenReuse):
            await svc.refresh(rotated.refresh_token)
        with pytest.raises(RevokedToken):
            await svc.verify(latest.access_token)


# -- concurrent rotation ------------------------------------------------------------------


def _thread_race(service: TokenService, token: str, pool: ThreadPoolExecutor) -> list[object]:
    """RACERS threads released together by a barrier, each refreshing ``token`` once."""
    barrier = threading.Barrier(RACERS, timeout=30)

    def one(_: int) -> object:
        barrier.wait()
        try:
            return service.refresh(token)
        except Exception as exc:  # kept and judged by the test
            return exc

    return list(pool.map(one, range(RACERS)))


@pytest.mark.asyncio
@pytest.mark.parametrize("grace", [False, True], ids=["no-grace", "grace"])
async def test_concurrent_refreshes_rotate_exactly_once(env: Env, grace: bool) -> None:
    reuse_grace = timedelta(seconds=30) if grace else timedelta(0)
    async with env.service(reuse_grace=reuse_grace) as svc:
        pool = ThreadPoolExecutor(max_workers=RACERS) if env.flavour == "sync" else None
        try:
            for _round in range(RACE_ROUNDS):
                pair = await svc.issue("alice")
                if isinstance(svc.impl, TokenService):
                    assert pool is not None
                    outcomes = _thread_race(svc.impl, pair.refresh_token, pool)
                else:
                    outcomes = await asyncio.gather(
                        *(svc.impl.refresh(pair.refresh_token) for _ in range(RACERS)),
                        return_exceptions=True,
                    )
                pairs = [o for o in outcomes if isinstance(o, TokenPair)]
                refusals = [o for o in outcomes if not isinstance(o, TokenPair)]
                if grace:
                    # Everyone gets the one successor: the winner's, replayed to the rest.
                    assert refusals == []
                    assert len(pairs) == RACERS
                    assert all(p == pairs[0] for p in pairs)
                    await svc.verify(pairs[0].access_token)
                    await svc.refresh(pairs[0].refresh_token)
                else:
                    assert len(pairs) == 1, refusals[:3]
                    assert all(isinstance(r, RevokedToken) for r in refusals), refusals[:3]
                    assert any(isinstance(r, RefreshTokenReuse) for r in refusals)
                    # The losers were reuses: the family, winner included, is revoked.
                    with pytest.raises(RevokedToken):
                        await svc.verify(pairs[0].access_token)
                    with pytest.raises(RevokedToken):
                        await svc.refresh(pairs[0].refresh_token)
        finally:
            if pool is not None:
                pool.shutdown()

