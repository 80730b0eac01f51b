"""The verified-token cache of the token service: faster, never more permissive."""

from __future__ import annotations

import pytest

from jwtward.errors import ExpiredToken, KeyNotFound, RevokedToken
from jwtward.keys import KeyRing
from jwtward.tokens import MemoryTokenStore, TokenService
from jwtward.tokens import flows as token_flows


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ring(clock: Clock) -> KeyRing:
    return KeyRing.generate("ES256", clock=clock)


@pytest.fixture
def service(ring: KeyRing, clock: Clock) -> TokenService:
    return TokenService(ring, issuer="https://issuer", audience="api",
                        store=MemoryTokenStore(), clock=clock)


def cached(service: TokenService) -> dict[str, object]:
    return service._core._verified  # type: ignore[return-value]


def test_a_repeated_token_is_verified_once(
    service: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = service.issue("alice")
    calls = 0
    real = token_flows.jwt.decode_verified

    def counting(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(token_flows.jwt, "decode_verified", counting)
    for _ in range(5):
        assert service.verify(pair.access_token).subject == "alice"
    assert calls == 1


def test_revocation_is_checked_on_every_hit(service: TokenService) -> None:
    pair = service.issue("alice")
    service.verify(pair.access_token)
    assert pair.access_token in cached(service)
    service.revoke(pair.access_token)
    with pytest.raises(RevokedToken):
        service.verify(pair.access_token)
    other = service.issue("bob")
    service.verify(other.access_token)
    service.revoke_subject("bob")
    with pytest.raises(RevokedToken):
        service.verify(other.access_token)


def test_a_cached_token_still_expires(service: TokenService, clock: Clock) -> None:
    pair = service.issue("alice")
    service.verify(pair.access_token)
    clock.now = pair.access_expires_at + 29  # within the 30 s leeway
    service.verify(pair.access_token)
    clock.now = pair.access_expires_at + 30
    with pytest.raises(ExpiredToken):
        service.verify(pair.access_token)
    assert pair.access_token not in cached(service)


def test_a_revoked_signing_key_drops_its_cached_tokens(
    service: TokenService, ring: KeyRing
) -> None:
    pair = service.issue("alice")
    service.verify(pair.access_token)
    kid = ring.signing_key().kid
    ring.rotate()
    ring.revoke(kid)
    with pytest.raises(KeyNotFound):
        service.verify(pair.access_token)


def test_the_cache_is_bounded(service: TokenService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(token_flows, "VERIFIED_CACHE_SIZE", 3)
    pairs = [service.issue(f"user-{i}") for i in range(5)]
    for pair in pairs:
        service.verify(pair.access_token)
    assert list(cached(service)) == [p.access_token for p in pairs[2:]]
