"""What a token store keeps, and the protocol every store implements.

A *family* is one login: the refresh tokens that descend from it by rotation
and the access tokens issued with them, which carry its id as ``sid``. A
*refresh record* is one refresh token, known to the store only by the
SHA-256 of its ``jti`` (invariant 10: a copy of the store gives nobody a
usable token).

Stores load and save; they decide nothing. The decisions (is this refresh a
reuse? is this access token revoked?) are pure functions in
:mod:`jwtward.tokens.lifecycle`, shared by every store and by the sync and
async services. The one thing a store must do itself is the compare-and-swap
of :meth:`TokenStore.rotate`: of many concurrent rotations of one refresh
token, exactly one may succeed (invariant 9).

Every store raises :class:`~jwtward.errors.StoreUnavailable` when it cannot
answer, never a driver's own exception (invariant 11).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "AccessView",
    "AsyncTokenStore",
    "FamilyRecord",
    "RefreshRecord",
    "RefreshView",
    "SubjectView",
    "TokenStore",
]


@dataclass(frozen=True, slots=True)
class FamilyRecord:
    """One login session and what every token of it carries.

    ``claims`` and ``scope`` are what :meth:`TokenService.issue` was given;
    refreshed access tokens carry them again unless a ``load_subject``
    callback gives fresher ones. ``expires_at`` is the absolute end of the
    session: no refresh extends it. ``metadata`` holds what the session list
    shows (user agent, client address); nothing in it is trusted.
    """

    family_id: str
    subject: str
    created_at: float
    expires_at: float
    last_used_at: float
    revoked_at: float | None = None
    client_id: str | None = None
    scope: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    """One refresh token: the hash of its ``jti``, its family, and whether it was used.

    ``successor`` is the sealed successor pair, kept only when a reuse grace
    is configured: it is encrypted under a key derived from the token's own
    ``jti``, which the store never sees, so only a client presenting this
    same token again can open it.
    """

    token_hash: str
    family_id: str
    issued_at: float
    expires_at: float
    used_at: float | None = None
    successor: bytes | None = None


@dataclass(frozen=True, slots=True)
class RefreshView:
    """A refresh record with its family and its subject's cutoff, read together."""

    record: RefreshRecord
    family: FamilyRecord | None
    subject_cutoff: float | None


@dataclass(frozen=True, slots=True)
class AccessView:
    """What decides whether an access token is revoked, read in one round trip.

    ``jti_revoked``: the token itself was revoked; ``family``: its session
    (``None`` when the store does not know it); ``subject_cutoff``: tokens of
    the subject's sessions created at or before this time are refused.
    """

    jti_revoked: bool
    family: FamilyRecord | None
    subject_cutoff: float | None


@dataclass(frozen=True, slots=True)
class SubjectView:
    """A subject's sessions (newest first) and its cutoff, read together.

    Every session the store still holds, revoked and ended ones included: the
    service decides which are alive.
    """

    families: Sequence[FamilyRecord]
    subject_cutoff: float | None


class TokenStore(Protocol):
    """Persistent state of the token lifecycle (sync flavour).

    Times are POSIX seconds. Entries may be dropped once they can no longer
    matter: a refresh record after its ``expires_at``, a family after its
    ``expires_at``, a revoked ``jti`` after the token's ``exp``, a subject
    cutoff after ``keep_until``.
    """

    def create_family(self, family: FamilyRecord, first: RefreshRecord) -> None:
        """Save a new session and its first refresh token."""
        ...

    def load_refresh(self, token_hash: str) -> RefreshView | None:
        """The refresh record with this hash, its family and subject cutoff; None if unknown."""
        ...

    def rotate(self, token_hash: str, used_at: float, successor: RefreshRecord,
               sealed_successor: bytes | None) -> bool:
        """Atomically mark the record used and save its successor.

        Succeeds (True) only if the record exists, is unused and its family
        is not revoked; then it also sets the family's ``last_used_at``. Of
        many concurrent calls for one hash, at most one returns True.
        """
        ...

    def revoke_family(self, family_id: str, revoked_at: float) -> None:
        """Mark a session revoked (idempotent: the first revocation time is kept)."""
        ...

    def revoke_access(self, jti: str, expires_at: float) -> None:
        """Deny one access token until its ``exp``."""
        ...

    def revoke_subject(self, subject: str, cutoff: float, keep_until: float) -> None:
        """Refuse every session of ``subject`` created at or before ``cutoff``."""
        ...

    def access_view(self, jti: str, family_id: str, subject: str) -> AccessView:
        """Everything :func:`~jwtward.tokens.lifecycle.access_refusal` needs, in one read."""
        ...

    def sessions(self, subject: str) -> SubjectView:
        """The sessions of ``subject`` (newest first) and its cutoff."""
        ...

    def purge_expired(self, now: float) -> int:
        """Delete what can no longer matter; the number of entries removed."""
        ...

    def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers now (for readiness checks)."""
        ...

    def close(self) -> None:
        """Release connections; the store must not be used afterwards."""
        ...


class AsyncTokenStore(Protocol):
    """The same operations as :class:`TokenStore`, awaitable (asyncio flavour)."""

    async def create_family(self, family: FamilyRecord, first: RefreshRecord) -> None: ...

    async def load_refresh(self, token_hash: str) -> RefreshView | None: ...

    async def rotate(self, token_hash: str, used_at: float, successor: RefreshRecord,
                     sealed_successor: bytes | None) -> bool: ...

    async def revoke_family(self, family_id: str, revoked_at: float) -> None: ...

    async def revoke_access(self, jti: str, expires_at: float) -> None: ...

    async def revoke_subject(self, subject: str, cutoff: float, keep_until: float) -> None: ...

    async def access_view(self, jti: str, family_id: str, subject: str) -> AccessView: ...

    async def sessions(self, subject: str) -> SubjectView: ...

    async def purge_expired(self, now: float) -> int: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
