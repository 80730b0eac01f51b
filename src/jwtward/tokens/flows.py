"""The token lifecycle's operations, written once for the sync and the async service.

Each operation is a generator (a sans-I/O flow): it signs and verifies
tokens and applies the decisions of :mod:`jwtward.tokens.lifecycle` itself,
and *yields* what it needs from outside, a :class:`StoreCall` or a
:class:`SubjectCall`, receiving the answer back through ``send``. The sync
:class:`~jwtward.tokens.service.TokenService` answers with plain calls, the
:class:`~jwtward.tokens.async_service.AsyncTokenService` with awaits; neither
holds any rule of its own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from jwtward import jwt
from jwtward.codecs import dumps, loads_object
from jwtward.errors import (
    CSRFMismatch,
    DecodeError,
    InvalidArgument,
    InvalidToken,
    RefreshTokenReuse,
    RevokedToken,
    SubjectDisabled,
)
from jwtward.jose.keys import Key
from jwtward.jose.keyset import KeySource
from jwtward.policy import Policy
from jwtward.tokens import events, lifecycle
from jwtward.tokens.claims import AccessClaims, TokenPair
from jwtward.tokens.lifecycle import RefreshDecision, Settings
from jwtward.tokens.records import AccessView, FamilyRecord
from jwtward.tokens.verified_cache import VerifiedTokenCache

__all__ = ["Flow", "Lifecycle", "SigningKeys", "StoreCall", "SubjectCall"]

T = TypeVar("T")

# How often a refresh re-reads the store after losing a rotation race; the
# second read always decides (the winner's write is then visible).
_ROTATE_ATTEMPTS = 3
# Verified access tokens kept (by their exact text) so that a client sending
# the same token on every request pays the signature check twice, then never
# (a token is admitted on its second use: see verified_cache). Revocation is
# still checked on every request; expiry and the signing key's standing too.
VERIFIED_CACHE_SIZE = 4096
_MAX_METADATA = 8
_MAX_METADATA_VALUE = 256


@dataclass(frozen=True, slots=True)
class StoreCall:
    """A request to the token store: ``store.<method>(*args)``."""

    method: str
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class SubjectCall:
    """A request to the ``load_subject`` callback: fresh claims, or None if disabled."""

    subject: str


Flow = Generator[StoreCall | SubjectCall, Any, T]


class SigningKeys(KeySource, Protocol):
    """What the service needs of a key ring: the key that signs now, and key lookup by kid."""

    def signing_key(self, alg: str | None = None) -> Key: ...


def _metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """Session metadata (user agent, address): bounded, strings only, shown never trusted."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping) or len(metadata) > _MAX_METADATA:
        raise InvalidArgument(f"metadata must be a mapping of at most {_MAX_METADATA} strings")
    clean: dict[str, str] = {}
    for name, value in metadata.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidArgument("metadata names and values must be strings")
        clean[name[:64]] = value[:_MAX_METADATA_VALUE]
    return clean


class Lifecycle:
    """Issue, verify, refresh, revoke and introspect, as flows over a store."""

    def __init__(
        self,
        keys: SigningKeys,
        settings: Settings,
        *,
        clock: Callable[[], float],
        has_subject_loader: bool,
    ) -> None:
        if not callable(getattr(keys, "signing_key", None)) or not callable(
            getattr(keys, "select", None)
        ):
            raise InvalidArgument("keys must be a KeyRing (signing_key and select)")
        if not callable(clock):
            raise InvalidArgument("clock must be a callable returning POSIX seconds")
        self.keys = keys
        self.settings = settings
        self._verified = VerifiedTokenCache(VERIFIED_CACHE_SIZE)
        self._clock = clock
        self._has_subject_loader = has_subject_loader
        self.access_policy = Policy(
            issuer=settings.issuer,
            audience=settings.audience,
            typ=lifecycle.ACCESS_TYP,
            require=("iat", "jti", "sub", "sid"),
            leeway=settings.leeway,
            max_lifetime=settings.access_lifetime,
            clock=clock,
        )
        self.refresh_policy = Policy(
            issuer=settings.issuer,
            audience=settings.issuer,
            typ=lifecycle.REFRESH_TYP,
            require=("iat", "jti", "sub", "sid"),
            leeway=settings.leeway,
            max_lifetime=settings.refresh_lifetime,
            clock=clock,
        )

    def now(self) -> float:
        value = self._clock()
        if type(value) not in (int, float) or not math.isfinite(value):
            raise InvalidArgument("clock must return finite POSIX seconds")
        return float(value)

    # -- token making ----------------------------------------------------------------

    def _make_pair(
        self, family: FamilyRecord, claims: Mapping[str, Any], now: float
    ) -> tuple[TokenPair, dict[str, Any]]:
        """A signed pair for ``family``, and the new refresh token's claims."""
        key = self.keys.signing_key()
        access = lifecycle.access_claims(self.settings, family, claims, now)
        refresh = lifecycle.refresh_claims(self.settings, family, now)
        pair = TokenPair(
            access_token=jwt.encode(access, key, typ=lifecycle.ACCESS_TYP, clock=self._clock),
            refresh_token=jwt.encode(refresh, key, typ=lifecycle.REFRESH_TYP, clock=self._clock),
            expires_in=access["exp"] - access["iat"],
            access_expires_at=access["exp"],
            refresh_expires_at=refresh["exp"],
            session_id=family.family_id,
            scope=family.scope,
        )
        return pair, refresh

    def issue(
        self,
        subject: str,
        *,
        claims: Mapping[str, Any] | None = None,
        scope: str | list[str] | None = None,
        client_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Flow[TokenPair]:
        """A new session for ``subject`` and its first pair."""
        lifecycle.check_identifier(subject, "subject")
        if client_id is not None:
            lifecycle.check_identifier(client_id, "client_id")
        extra = lifecycle.check_extra_claims(claims)
        now = self.now()
        family = FamilyRecord(
            family_id=lifecycle.new_session_id(),
            subject=subject,
            created_at=now,
            expires_at=now + self.settings.session_lifetime.total_seconds(),
            last_used_at=now,
            client_id=client_id,
            scope=lifecycle.normalize_scope(scope),
            claims=extra,
            metadata=_metadata(metadata),
        )
        pair, refresh = self._make_pair(family, extra, now)
        first = lifecycle.new_refresh_record(family, refresh, self.refresh_policy.leeway_seconds)
        yield StoreCall("create_family", (family, first))
        events.emit("session_started", user=subject, session=family.family_id)
        return pair

    # -- verification ------------------------------------------------------------------

    def access_claims(self, token: str | bytes) -> dict[str, Any]:
        """The claims of an access token whose signature and claims pass, cached by token.

        The first half of :meth:`verify`, which the services also call
        directly on their hot path (see :meth:`access_view_call`). A cache hit
        still needs the token unexpired now and its signing key still trusted
        by the ring (a revoked key drops its tokens at once).
        """
        cache = self._verified
        hit = cache.get(token)
        if hit is not None:
            payload, kid, exp = hit
            if self.now() < exp + self.access_policy.leeway_seconds and (
                self._key_still_trusted(kid)
            ):
                # Parsed strictly and checked when it was cached.
                return json.loads(payload)  # type: ignore[no-any-return]
            cache.discard(token)
        verified = jwt.decode_verified(token, self.keys, self.access_policy)
        claims = verified.claims
        if not isinstance(claims["sid"], str):
            raise InvalidToken("claim 'sid' is not a string")
        cache.offer(token, (verified.payload, verified.key.kid, float(claims["exp"])))
        return claims

    def _key_still_trusted(self, kid: str) -> bool:
        try:
            self.keys.select(kid)
        except InvalidToken:
            return False
        return True

    def verify(self, token: str | bytes) -> Flow[AccessClaims]:
        """The claims of a valid, unrevoked access token.

        Every request of a protected route runs this, so the services run
        its three steps directly (:meth:`access_claims`, the store call of
        :meth:`access_view_call`, :meth:`admit_access`) rather than through
        the generator; this flow is the same three steps, for flows that
        verify on their way (introspection).
        """
        claims = self.access_claims(token)
        view = yield self.access_view_call(claims)
        return self.admit_access(claims, view)

    @staticmethod
    def access_view_call(claims: Mapping[str, Any]) -> StoreCall:
        """The store call reading what could have revoked a verified access token."""
        return StoreCall("access_view", (claims["jti"], claims["sid"], claims["sub"]))

    def admit_access(self, claims: dict[str, Any], view: AccessView) -> AccessClaims:
        """The token's claims if nothing in ``view`` revoked it; :class:`RevokedToken` if so."""
        reason = lifecycle.access_refusal(view, claims, self.now())
        if reason is not None:
            raise RevokedToken(reason)
        return AccessClaims._adopt(claims)

    def _refresh_claims(self, token: str | bytes) -> dict[str, Any]:
        claims = jwt.decode(token, self.keys, self.refresh_policy)
        if not isinstance(claims["sid"], str):
            raise InvalidToken("claim 'sid' is not a string")
        return claims

    # -- rotation -----------------------------------------------------------------------------

    def refresh(self, token: str | bytes, *, csrf: str | None = None) -> Flow[TokenPair]:
        """Rotate: the successor pair, or a refusal (a reuse revokes the whole session).

        With ``csrf`` (a cookie-borne refresh), the token's ``csrf`` claim must
        match it before anything else happens (:class:`CSRFMismatch`).
        """
        claims = self._refresh_claims(token)
        if csrf is not None and not lifecycle.csrf_matches(claims, csrf):
            raise CSRFMismatch("the CSRF token does not match this session")
        jti = claims["jti"]
        digest = lifecycle.token_hash(jti)
        grace = self.settings.grace_seconds
        for _attempt in range(_ROTATE_ATTEMPTS):
            view = yield StoreCall("load_refresh", (digest,))
            now = self.now()
            decision = lifecycle.refresh_decision(view, now, grace)
            if decision is RefreshDecision.REPLAY:
                assert view is not None and view.record.successor is not None  # noqa: S101
                events.emit("refresh_replayed", user=claims["sub"], session=claims["sid"])
                return self._open_successor(jti, view.record.successor)
            if decision is RefreshDecision.REUSE:
                assert view is not None  # noqa: S101
                yield StoreCall("revoke_family", (view.record.family_id, now))
                events.emit("refresh_reuse_detected", user=claims["sub"], session=claims["sid"])
                raise RefreshTokenReuse(
                    "the refresh token was already used; the session has been revoked"
                )
            if decision is not RefreshDecision.ROTATE:
                raise RevokedToken(_REFUSALS[decision])
            assert view is not None and view.family is not None  # noqa: S101
            family = view.family
            fresh = yield from self._reload_subject(family, now)
            pair, refresh = self._make_pair(family, fresh, now)
            sealed = None
            if grace > 0:
                sealed = lifecycle.seal_successor(jti, _pair_bytes(pair))
            successor = lifecycle.new_refresh_record(
                family, refresh, self.refresh_policy.leeway_seconds
            )
            if (yield StoreCall("rotate", (digest, now, successor, sealed))):
                events.emit("refresh", user=family.subject, session=family.family_id)
                return pair
            # Lost a race with another rotation of the same token: read again.
        raise RevokedToken("the refresh token could not be rotated")

    def _reload_subject(self, family: FamilyRecord, now: float) -> Flow[Mapping[str, Any]]:
        """The claims the next access token carries: the session's, or fresh ones."""
        if not self._has_subject_loader:
            return family.claims
        fresh = yield SubjectCall(family.subject)
        if fresh is None:
            yield StoreCall("revoke_family", (family.family_id, now))
            events.emit("subject_disabled", user=family.subject, session=family.family_id)
            raise SubjectDisabled("the subject may no longer get tokens; the session has ended")
        return lifecycle.keep_session_claims(family, fresh)

    def _open_successor(self, jti: str, sealed: bytes) -> TokenPair:
        opened = lifecycle.open_successor(jti, sealed)
        if opened is None:
            raise RevokedToken("the refresh token was already used")
        try:
            fields = loads_object(opened)
            return TokenPair(**fields)
        except (DecodeError, TypeError):
            raise RevokedToken("the refresh token was already used") from None

    # -- revocation ----------------------------------------------------------------------------

    def revoke(self, token: str | bytes) -> Flow[None]:
        """RFC 7009: revoke an access token (its jti) or a refresh token (its session).

        A token that is not valid (bad signature, expired, unknown) is not an
        error: there is nothing left to revoke.
        """
        try:
            claims = jwt.decode(token, self.keys, self.access_policy)
        except InvalidToken:
            pass
        else:
            # Denied as long as the policy could accept it (exp + leeway).
            expires = float(claims["exp"]) + self.access_policy.leeway_seconds
            yield StoreCall("revoke_access", (claims["jti"], expires))
            events.emit("revoke", kind="access_token", user=claims["sub"], session=claims["sid"])
            return
        try:
            claims = self._refresh_claims(token)
        except InvalidToken:
            return
        yield StoreCall("revoke_family", (claims["sid"], self.now()))
        events.emit("revoke", kind="refresh_token", user=claims["sub"], session=claims["sid"])

    def revoke_subject(self, subject: str) -> Flow[None]:
        """Log ``subject`` out everywhere: every session created until now is refused."""
        lifecycle.check_identifier(subject, "subject")
        now = self.now()
        keep_until = now + self.settings.session_lifetime.total_seconds() + 3600
        yield StoreCall("revoke_subject", (subject, now, keep_until))
        events.emit("revoke_subject", user=subject)

    def revoke_session(self, subject: str, session_id: str) -> Flow[bool]:
        """Revoke one of ``subject``'s sessions by id; False if it is not theirs or not alive."""
        if not isinstance(session_id, str):
            raise InvalidArgument("session_id must be a string")
        sessions = yield from self.sessions(subject)
        if not any(family.family_id == session_id for family in sessions):
            return False
        yield StoreCall("revoke_family", (session_id, self.now()))
        events.emit("revoke", kind="session", user=subject, session=session_id)
        return True

    def sessions(self, subject: str) -> Flow[list[FamilyRecord]]:
        """``subject``'s sessions that can still be used, newest first."""
        lifecycle.check_identifier(subject, "subject")
        view = yield StoreCall("sessions", (subject,))
        now = self.now()
        return [
            family
            for family in view.families
            if lifecycle.session_refusal(family, view.subject_cutoff, now) is None
        ]

    # -- introspection ---------------------------------------------------------------------------

    def introspect(self, token: str | bytes) -> Flow[dict[str, Any]]:
        """RFC 7662: ``{"active": false}`` for anything not valid now, else its claims."""
        try:
            claims = yield from self.verify(token)
        except InvalidToken:
            pass
        else:
            return _introspection(claims, "access_token")
        try:
            refresh = self._refresh_claims(token)
        except InvalidToken:
            return {"active": False}
        view = yield StoreCall("load_refresh", (lifecycle.token_hash(refresh["jti"]),))
        decision = lifecycle.refresh_decision(view, self.now(), 0)
        if decision is not RefreshDecision.ROTATE:
            return {"active": False}
        # A refresh token's jti is the secret behind its stored hash: never echoed.
        return _introspection({k: v for k, v in refresh.items() if k != "jti"}, "refresh_token")

    def purge(self) -> Flow[int]:
        return (yield StoreCall("purge_expired", (self.now(),)))  # type: ignore[no-any-return]


_REFUSALS = {
    RefreshDecision.REVOKED: "the session has been revoked",
    RefreshDecision.EXPIRED: "the session has expired; log in again",
    RefreshDecision.UNKNOWN: "the refresh token is not known",
}
_INTROSPECTED = ("scope", "client_id", "exp", "iat", "nbf", "sub", "aud", "iss", "jti")


def _pair_bytes(pair: TokenPair) -> bytes:
    return dumps(
        {
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "expires_in": pair.expires_in,
            "access_expires_at": pair.access_expires_at,
            "refresh_expires_at": pair.refresh_expires_at,
            "session_id": pair.session_id,
            "scope": pair.scope,
            "token_type": pair.token_type,
        }
    )


def _introspection(claims: Mapping[str, Any], token_type: str) -> dict[str, Any]:
    body: dict[str, Any] = {"active": True, "token_type": token_type}
    for name in _INTROSPECTED:
        if name in claims:
            body[name] = claims[name]
    return body
