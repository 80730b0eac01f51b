"""``MemoryTokenStore``: the token lifecycle in the memory of one process.

For tests, demos and single-process services that accept that a restart
logs everybody out (sessions are lost, and so are revocations). One lock
guards everything, so rotation is atomic between threads exactly as the
database stores make it atomic between processes.
"""

from __future__ import annotations

import dataclasses
import threading

from jwtward.tokens.records import (
    AccessView,
    FamilyRecord,
    RefreshRecord,
    RefreshView,
    SubjectView,
)

__all__ = ["MemoryTokenStore"]


class MemoryTokenStore:
    """A :class:`~jwtward.tokens.records.TokenStore` in a few dicts behind one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, FamilyRecord] = {}
        self._refresh: dict[str, RefreshRecord] = {}
        self._revoked_jti: dict[str, float] = {}
        self._cutoffs: dict[str, tuple[float, float]] = {}

    def create_family(self, family: FamilyRecord, first: RefreshRecord) -> None:
        with self._lock:
            self._families[family.family_id] = family
            self._refresh[first.token_hash] = first

    def load_refresh(self, token_hash: str) -> RefreshView | None:
        with self._lock:
            record = self._refresh.get(token_hash)
            if record is None:
                return None
            family = self._families.get(record.family_id)
            cutoff = None if family is None else self._cutoff(family.subject)
            return RefreshView(record, family, cutoff)

    def _cutoff(self, subject: str) -> float | None:
        entry = self._cutoffs.get(subject)
        return None if entry is None else entry[0]

    def rotate(
        self,
        token_hash: str,
        used_at: float,
        successor: RefreshRecord,
        sealed_successor: bytes | None,
    ) -> bool:
        with self._lock:
            record = self._refresh.get(token_hash)
            if record is None or record.used_at is not None:
                return False
            family = self._families.get(record.family_id)
            if family is None or family.revoked_at is not None:
                return False
            self._refresh[token_hash] = dataclasses.replace(
                record, used_at=used_at, successor=sealed_successor
            )
            self._refresh[successor.token_hash] = successor
            self._families[family.family_id] = dataclasses.replace(family, last_used_at=used_at)
            return True

    def revoke_family(self, family_id: str, revoked_at: float) -> None:
        with self._lock:
            family = self._families.get(family_id)
            if family is not None and family.revoked_at is None:
                self._families[family_id] = dataclasses.replace(family, revoked_at=revoked_at)

    def revoke_access(self, jti: str, expires_at: float) -> None:
        with self._lock:
            self._revoked_jti[jti] = max(expires_at, self._revoked_jti.get(jti, expires_at))

    def revoke_subject(self, subject: str, cutoff: float, keep_until: float) -> None:
        with self._lock:
            old = self._cutoffs.get(subject)
            if old is not None:
                cutoff, keep_until = max(cutoff, old[0]), max(keep_until, old[1])
            self._cutoffs[subject] = (cutoff, keep_until)

    def access_view(self, jti: str, family_id: str, subject: str) -> AccessView:
        with self._lock:
            return AccessView(
                jti_revoked=jti in self._revoked_jti,
                family=self._families.get(family_id),
                subject_cutoff=self._cutoff(subject),
            )

    def sessions(self, subject: str) -> SubjectView:
        with self._lock:
            found = [f for f in self._families.values() if f.subject == subject]
            cutoff = self._cutoff(subject)
        found.sort(key=lambda f: f.created_at, reverse=True)
        return SubjectView(tuple(found), cutoff)

    def purge_expired(self, now: float) -> int:
        with self._lock:
            before = self._size()
            self._refresh = {h: r for h, r in self._refresh.items() if r.expires_at > now}
            self._families = {i: f for i, f in self._families.items() if f.expires_at > now}
            self._revoked_jti = {j: exp for j, exp in self._revoked_jti.items() if exp > now}
            self._cutoffs = {s: c for s, c in self._cutoffs.items() if c[1] > now}
            return before - self._size()

    def _size(self) -> int:
        return (
            len(self._refresh) + len(self._families) + len(self._revoked_jti) + len(self._cutoffs)
        )

    def ping(self) -> None:
        """Always answers: memory is never down."""

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"MemoryTokenStore(families={len(self._families)}, refresh={len(self._refresh)})"
