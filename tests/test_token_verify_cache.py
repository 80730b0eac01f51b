"""The verified-token cache of the token service: faster, never more permissive.

A token enters the cache on its second use within about the cache's size
in distinct tokens (see ``jwtward.tokens.verified_cache``).
"""

from __future__ import annotations

import pytest

from jwtward.errors import ExpiredToken, InvalidSignature, InvalidToken, KeyNotFound, RevokedToken
from jwtward.keys import KeyRing
from jwtward.tokens import MemoryTokenStore, TokenService
from jwtward.tokens import flows as token_flows
from jwtward.tokens.verified_cache import VerifiedTokenCache


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


def cached(service: TokenService) -> VerifiedTokenCache:
    return service._core._verified


def verify_and_cache(service: TokenService, token: str) -> None:
    """Two uses: the second admits the token to the cache."""
    service.verify(token)
    service.verify(token)
    assert token in cached(service)


class CountingDecodes:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self._real = token_flows.jwt.decode_verified
        monkeypatch.setattr(token_flows.jwt, "decode_verified", self)

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        return self._real(*args, **kwargs)  # type: ignore[arg-type]


def test_a_repeated_token_is_verified_twice_then_served_from_the_cache(
    service: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = service.issue("alice")
    decodes = CountingDecodes(monkeypatch)
    for _ in range(5):
        assert service.verify(pair.access_token).subject == "alice"
    assert decodes.calls == 2


def test_a_token_used_once_is_not_cached(service: TokenService) -> None:
    pairs = [service.issue(f"user-{i}") for i in range(20)]
    for pair in pairs:
        service.verify(pair.access_token)
    assert len(cached(service)) == 0


def test_revocation_is_checked_on_every_hit(service: TokenService) -> None:
    pair = service.issue("alice")
    verify_and_cache(service, pair.access_token)
    service.revoke(pair.access_token)
    with pytest.raises(RevokedToken):
        service.verify(pair.access_token)
    other = service.issue("bob")
    verify_and_cache(service, other.access_token)
    service.revoke_subject("bob")
    with pytest.raises(RevokedToken):
        service.verify(other.access_token)


def test_a_cached_token_still_expires(service: TokenService, clock: Clock) -> None:
    pair = service.issue("alice")
    verify_and_cache(service, pair.access_token)
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
    verify_and_cache(service, pair.access_token)
    kid = ring.signing_key().kid
    ring.rotate()
    ring.revoke(kid)
    with pytest.raises(KeyNotFound):
        service.verify(pair.access_token)


def test_the_cache_is_bounded(
    ring: KeyRing, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(token_flows, "VERIFIED_CACHE_SIZE", 3)
    service = TokenService(ring, issuer="https://issuer", audience="api",
                           store=MemoryTokenStore(), clock=clock)
    pairs = [service.issue(f"user-{i}") for i in range(5)]
    for pair in pairs:
        verify_and_cache(service, pair.access_token)
    assert cached(service).tokens() == [p.access_token for p in pairs[2:]]


def test_a_token_back_after_more_than_twice_the_size_in_other_tokens_is_not_admitted(
    ring: KeyRing, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sightings are bounded too: a token seen long ago counts as new."""
    monkeypatch.setattr(token_flows, "VERIFIED_CACHE_SIZE", 4)
    service = TokenService(ring, issuer="https://issuer", audience="api",
                           store=MemoryTokenStore(), clock=clock)
    first, *others = [service.issue(f"user-{i}").access_token for i in range(10)]
    service.verify(first)
    for token in others[:8]:  # 2 x size other sightings: both sets rotated past it
        service.verify(token)
    service.verify(first)
    assert first not in cached(service)
    service.verify(first)  # seen just now: admitted
    assert first in cached(service)


def test_a_token_back_within_the_size_in_other_tokens_is_admitted(
    ring: KeyRing, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(token_flows, "VERIFIED_CACHE_SIZE", 4)
    service = TokenService(ring, issuer="https://issuer", audience="api",
                           store=MemoryTokenStore(), clock=clock)
    first, *others = [service.issue(f"user-{i}").access_token for i in range(5)]
    service.verify(first)
    for token in others:  # 4 other tokens: a 4-entry LRU would have just kept it
        service.verify(token)
    service.verify(first)
    assert cached(service).tokens() == [first]


class _CaseInsensitive(str):
    """A str whose equality ignores case: it must never find another token's entry."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.lower() == other.lower()

    def __hash__(self) -> int:
        return hash(self.lower())


def test_str_subclasses_never_hit_nor_enter_the_cache(
    service: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair = service.issue("alice")
    token = pair.access_token
    cached_one = _CaseInsensitive(token.lower())
    # Keyed by the lower-cased text, the forged str would find the real entry.
    cache = cached(service)
    cache.offer(token, (b"{}", "kid", 0.0))
    cache.offer(token, (b"{}", "kid", 0.0))
    assert token in cache
    assert cache.get(cached_one) is None
    with pytest.raises(InvalidToken):
        service.verify(cached_one)  # verified in full: the altered text fails
    decodes = CountingDecodes(monkeypatch)
    honest = _CaseInsensitive(service.issue("bob").access_token)
    for _ in range(3):
        assert service.verify(honest).subject == "bob"
    assert decodes.calls == 3
    assert cache.tokens() == [token]  # only the entry offered by hand above


def test_an_altered_copy_of_a_cached_token_is_verified_in_full(service: TokenService) -> None:
    pair = service.issue("alice")
    verify_and_cache(service, pair.access_token)
    head, payload, signature = pair.access_token.split(".")
    altered = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BA'}"
    with pytest.raises(InvalidSignature):
        service.verify(altered)
