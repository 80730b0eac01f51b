"""The decisions of the token lifecycle, as pure functions of state and time.

Nothing here does I/O. Every store and both service flavours (sync and
async) use these functions, so a rule is written once: what a refresh token
presented now means (rotate, replay within the grace, reuse, revoked,
expired), whether an access token is revoked, which claims a new pair
carries, and how the successor pair is sealed for the grace window.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from jwtward.codecs import dumps
from jwtward.errors import DecodeError, InvalidArgument
from jwtward.tokens.records import AccessView, FamilyRecord, RefreshRecord, RefreshView

__all__ = [
    "ACCESS_TYP",
    "REFRESH_TYP",
    "RESERVED_CLAIMS",
    "SESSION_BOUND_CLAIMS",
    "RefreshDecision",
    "Settings",
    "access_claims",
    "access_refusal",
    "check_extra_claims",
    "check_identifier",
    "csrf_matches",
    "keep_session_claims",
    "new_jti",
    "new_refresh_record",
    "new_session_id",
    "normalize_scope",
    "open_successor",
    "refresh_claims",
    "refresh_decision",
    "seal_successor",
    "session_refusal",
    "token_hash",
]

ACCESS_TYP = "at+jwt"  # RFC 9068
REFRESH_TYP = "refresh+jwt"
# Claims the service writes itself; a caller's claims never override them.
RESERVED_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid", "scope", "client_id", "typ", "cnf"}
)
# Claims that belong to the session, not to the subject: carried by every
# token of the session (refresh tokens included) and kept when load_subject
# gives fresh claims. ``csrf`` binds the web layer's CSRF token to the session.
SESSION_BOUND_CLAIMS = ("csrf",)
_MAX_ACCESS_LIFETIME = timedelta(hours=1)
MAX_EXTRA_CLAIMS_BYTES = 4096
MAX_IDENTIFIER_LENGTH = 255
_SEAL_INFO = b"jwtward refresh grace v1"
_NONCE_BYTES = 12


@dataclass(frozen=True, slots=True)
class Settings:
    """The lifecycle's configuration, checked once.

    ``access_lifetime`` is at most one hour unless
    ``allow_long_access_tokens`` says otherwise: an access token cannot be
    recalled without a store lookup, so it must be short. ``session_lifetime``
    is the absolute end of a login; refreshes never go past it.
    ``reuse_grace`` (default zero: off) lets a refresh token be presented
    again for that long after its rotation and get the same successor pair.
    """

    issuer: str
    audience: tuple[str, ...]
    access_lifetime: timedelta = timedelta(minutes=15)
    refresh_lifetime: timedelta = timedelta(days=14)
    session_lifetime: timedelta = timedelta(days=30)
    reuse_grace: timedelta = timedelta(0)
    leeway: timedelta = timedelta(seconds=30)
    allow_long_access_tokens: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.issuer, str) or not self.issuer:
            raise InvalidArgument("issuer must be a non-empty string")
        if not self.audience or not all(isinstance(a, str) and a for a in self.audience):
            raise InvalidArgument("audience must be a non-empty string or list of strings")
        for name in ("access_lifetime", "refresh_lifetime", "session_lifetime"):
            value = getattr(self, name)
            if type(value) is not timedelta or value <= timedelta(0):
                raise InvalidArgument(f"{name} must be a positive timedelta")
        for name in ("reuse_grace", "leeway"):
            value = getattr(self, name)
            if type(value) is not timedelta or value < timedelta(0):
                raise InvalidArgument(f"{name} must be a timedelta of zero or more")
        if self.reuse_grace > timedelta(minutes=5):
            raise InvalidArgument("reuse_grace is at most 5 minutes: it weakens reuse detection")
        if self.access_lifetime > _MAX_ACCESS_LIFETIME and not self.allow_long_access_tokens:
            raise InvalidArgument(
                "access_lifetime is at most 1 hour; pass allow_long_access_tokens=True to go beyond"
            )
        if self.refresh_lifetime > self.session_lifetime:
            raise InvalidArgument("refresh_lifetime cannot exceed session_lifetime")

    @property
    def grace_seconds(self) -> float:
        return self.reuse_grace.total_seconds()


# -- ids and hashes ---------------------------------------------------------------


def new_session_id() -> str:
    """A fresh family (session) id: 128 random bits."""
    return secrets.token_urlsafe(16)


def new_jti() -> str:
    """A fresh token id: 256 random bits (a refresh token's id is its secret)."""
    return secrets.token_urlsafe(32)


def token_hash(jti: str) -> str:
    """What a store keeps of a refresh token: the SHA-256 of its ``jti`` (invariant 10)."""
    return hashlib.sha256(jti.encode("utf-8")).hexdigest()


# -- claims -----------------------------------------------------------------------------


def check_extra_claims(claims: Mapping[str, Any] | None) -> dict[str, Any]:
    """A caller's claims: JSON, at most 4 KiB, never overriding what the service writes.

    The bound keeps every token under the default 8 KiB a verifier accepts.
    """
    if claims is None:
        return {}
    if not isinstance(claims, Mapping):
        raise InvalidArgument(f"claims must be a mapping, got {type(claims).__name__}")
    clash = RESERVED_CLAIMS & claims.keys()
    if clash:
        raise InvalidArgument(f"claims {sorted(clash)} are set by the token service itself")
    try:
        size = len(dumps(dict(claims)))
    except DecodeError as exc:
        raise InvalidArgument(f"claims: {exc}") from None
    if size > MAX_EXTRA_CLAIMS_BYTES:
        raise InvalidArgument(f"claims take {size} bytes of JSON; at most {MAX_EXTRA_CLAIMS_BYTES}")
    return dict(claims)


def check_identifier(value: object, what: str) -> str:
    """A subject or session id: 1 to 255 characters of UTF-8 text without NUL."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_IDENTIFIER_LENGTH:
        raise InvalidArgument(f"{what} must be a string of 1 to {MAX_IDENTIFIER_LENGTH} characters")
    if "\x00" in value:
        raise InvalidArgument(f"{what} must not contain NUL")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"{what} must be valid Unicode text") from None
    return value


def normalize_scope(scope: object) -> str | None:
    """RFC 9068 ``scope``: one space-separated string of distinct scope tokens, or None."""
    if scope is None:
        return None
    if isinstance(scope, str):
        items = scope.split()
    elif isinstance(scope, list | tuple | set | frozenset):
        items = list(scope)
    else:
        raise InvalidArgument("scope must be a string or a collection of strings")
    for item in items:
        # RFC 6749 §3.3: scope tokens are printable ASCII without space, '"' and '\'.
        if not isinstance(item, str) or not item or not all(
            0x21 <= ord(c) <= 0x7E and c not in '"\\' for c in item
        ):
            raise InvalidArgument(f"invalid scope token {item!r:.40}")
    unique = list(dict.fromkeys(items))
    return " ".join(unique) if unique else None


def access_claims(
    settings: Settings, family: FamilyRecord, claims: Mapping[str, Any], now: float
) -> dict[str, Any]:
    """The claims of a new access token (RFC 9068) of ``family``."""
    iat = int(now)
    body: dict[str, Any] = dict(claims)
    body.update(
        iss=settings.issuer,
        sub=family.subject,
        aud=settings.audience[0] if len(settings.audience) == 1 else list(settings.audience),
        iat=iat,
        # Never past the session's end: a verifier checking only the signature
        # must not accept it longer than the session lives.
        exp=min(iat + int(settings.access_lifetime.total_seconds()), int(family.expires_at)),
        jti=new_jti(),
        sid=family.family_id,
    )
    if family.client_id is not None:
        body["client_id"] = family.client_id
    if family.scope:
        body["scope"] = family.scope
    return body


def refresh_claims(settings: Settings, family: FamilyRecord, now: float) -> dict[str, Any]:
    """The claims of a new refresh token: meant for the issuer itself, never past the session."""
    iat = int(now)
    body: dict[str, Any] = {
        "iss": settings.issuer,
        "sub": family.subject,
        "aud": settings.issuer,
        "iat": iat,
        "exp": min(
            iat + int(settings.refresh_lifetime.total_seconds()), int(family.expires_at)
        ),
        "jti": new_jti(),
        "sid": family.family_id,
    }
    for name in SESSION_BOUND_CLAIMS:
        if name in family.claims:
            body[name] = family.claims[name]
    return body


def keep_session_claims(family: FamilyRecord, fresh: Mapping[str, Any]) -> dict[str, Any]:
    """Fresh subject claims, with the session's own claims (``csrf``) kept as they were."""
    merged = check_extra_claims(fresh)
    for name in SESSION_BOUND_CLAIMS:
        if name in family.claims:
            merged[name] = family.claims[name]
        else:
            merged.pop(name, None)
    return merged


def csrf_matches(claims: Mapping[str, Any], presented: object) -> bool:
    """Constant-time comparison of a presented CSRF token with the session's ``csrf`` claim."""
    expected = claims.get("csrf")
    if not isinstance(expected, str) or not isinstance(presented, str) or not expected:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8"))


def new_refresh_record(
    family: FamilyRecord, claims: Mapping[str, Any], leeway_seconds: float
) -> RefreshRecord:
    """The store's record of a new refresh token.

    Kept until ``exp + leeway``: as long as the token can pass the policy, a
    second use of it must be seen as a reuse, never as an unknown token.
    """
    return RefreshRecord(
        token_hash=token_hash(claims["jti"]),
        family_id=family.family_id,
        issued_at=float(claims["iat"]),
        expires_at=float(claims["exp"]) + leeway_seconds,
    )


# -- decisions ------------------------------------------------------------------------------


class RefreshDecision(enum.Enum):
    """What a refresh token presented now means."""

    ROTATE = "rotate"  # unused, session alive: issue the successor
    REPLAY = "replay"  # used within the grace: hand out the same successor again
    REUSE = "reuse"  # used before: revoke the whole session
    REVOKED = "revoked"  # the session was revoked (or its subject logged out everywhere)
    EXPIRED = "expired"  # the session reached its absolute end
    UNKNOWN = "unknown"  # the store does not know this token


def session_refusal(family: FamilyRecord | None, cutoff: float | None, now: float) -> str | None:
    """Why a session can no longer be used, or None while it can."""
    if family is None:
        return "the session is not known"
    if family.revoked_at is not None:
        return "the session has been revoked"
    if cutoff is not None and family.created_at <= cutoff:
        return "the subject has been logged out everywhere"
    if now >= family.expires_at:
        return "the session has expired"
    return None


def refresh_decision(view: RefreshView | None, now: float, grace_seconds: float) -> RefreshDecision:
    """Decide what to do with a refresh token whose signature and claims already passed."""
    if view is None or view.family is None or view.record.family_id != view.family.family_id:
        return RefreshDecision.UNKNOWN
    family = view.family
    if family.revoked_at is not None or (
        view.subject_cutoff is not None and family.created_at <= view.subject_cutoff
    ):
        return RefreshDecision.REVOKED
    if now >= family.expires_at:
        return RefreshDecision.EXPIRED
    used_at = view.record.used_at
    if used_at is None:
        return RefreshDecision.ROTATE
    # No lower bound: another server whose clock runs a little ahead may have
    # rotated the token "after" now.
    if grace_seconds > 0 and view.record.successor is not None and now - used_at <= grace_seconds:
        return RefreshDecision.REPLAY
    return RefreshDecision.REUSE


def access_refusal(
    view: AccessView, claims: Mapping[str, Any], now: float
) -> str | None:
    """Why a verified access token is revoked, or None when it stands."""
    if view.jti_revoked:
        return "the token has been revoked"
    family = view.family
    if family is not None and family.subject != claims.get("sub"):
        return "the session is not known"
    return session_refusal(family, view.subject_cutoff, now)


# -- the sealed successor (reuse grace) ------------------------------------------------------


def _seal_key(jti: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO).derive(
        jti.encode("utf-8")
    )


def seal_successor(jti: str, payload: bytes) -> bytes:
    """``payload`` (the successor pair) under a key only the old token's ``jti`` gives."""
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(_seal_key(jti)).encrypt(nonce, payload, token_hash(jti).encode())


def open_successor(jti: str, sealed: bytes) -> bytes | None:
    """The sealed successor pair, or None if it does not open with this ``jti``."""
    if len(sealed) <= _NONCE_BYTES:
        return None
    nonce, body = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
    try:
        return AESGCM(_seal_key(jti)).decrypt(nonce, body, token_hash(jti).encode())
    except InvalidTag:
        return None
