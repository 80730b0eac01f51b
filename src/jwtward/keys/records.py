"""What a key store holds: keys with their rotation state and times.

These types are the contract between the pure rotation logic
(:mod:`jwtward.keys.rotation`), the :class:`~jwtward.keys.ring.KeyRing` and
every key store. Times are POSIX seconds (floats), passed in, never read
from a clock here.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from jwtward.errors import StoreUnavailable
from jwtward.jose.keys import Key

__all__ = [
    "KeyRecord",
    "KeyState",
    "KeyStore",
    "StoreConflict",
    "StoreError",
    "StoreSnapshot",
]


class KeyState(enum.Enum):
    """Where a key is in its life. Only ``ACTIVE`` keys sign."""

    PENDING = "pending"  # published in the JWKS, not signing yet
    ACTIVE = "active"  # signs; published
    RETIRED = "retired"  # verifies tokens it signed until they expire; published
    REVOKED = "revoked"  # verifies nothing; gone from the JWKS at once


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One key of a ring and its schedule.

    ``activates_at``: when it starts (or started) signing. ``retires_at``:
    when it stops signing (``None`` while no successor is scheduled).
    ``expires_at``: when, retired, it stops verifying and leaves the JWKS.
    """

    key: Key
    state: KeyState
    created_at: float
    activates_at: float
    retires_at: float | None = None
    expires_at: float | None = None
    revoked_at: float | None = None


@dataclass(frozen=True, slots=True)
class StoreSnapshot:
    """The records of a store at one ``version`` (for compare-and-swap)."""

    version: int
    records: tuple[KeyRecord, ...]


class StoreError(StoreUnavailable):
    """A key store cannot be read or written (unreachable, corrupt, full disk).

    Retryable: the web layer answers 503, never a token decision.
    """


class StoreConflict(StoreError):
    """Another process changed the store since the snapshot was loaded."""


class KeyStore(Protocol):
    """Persistent storage of a key ring, shared safely by several processes.

    ``save`` is a compare-and-swap: it writes only if the stored version is
    still ``expected_version`` and returns the new version; otherwise it
    raises :class:`StoreConflict` and the caller reloads and decides again.
    So the store, not each process on its own, decides which key is active.
    Private key material is encrypted at rest by every implementation.
    """

    def load(self) -> StoreSnapshot: ...

    def save(self, expected_version: int, records: Sequence[KeyRecord]) -> int: ...
