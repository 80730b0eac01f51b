"""``MemoryKeyStore``: a key store held in the memory of one process.

For tests and for single-process issuers that accept losing their keys on
restart (every restart then begins a new ring, and tokens signed before it
stop verifying). Nothing is written anywhere, so nothing is at rest to
encrypt. It keeps the compare-and-swap contract of
:class:`~jwtward.keys.records.KeyStore` exactly, so several threads sharing
one store agree on the ring as processes sharing a file or database do.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from jwtward.errors import InvalidArgument
from jwtward.keys.records import KeyRecord, StoreConflict, StoreSnapshot

__all__ = ["MemoryKeyStore"]


def _records(records: Iterable[KeyRecord]) -> tuple[KeyRecord, ...]:
    checked = tuple(records)
    for record in checked:
        if not isinstance(record, KeyRecord):
            raise InvalidArgument(f"a key store holds KeyRecords, got {type(record).__name__}")
    return checked


class MemoryKeyStore:
    """Thread-safe in-memory storage of a key ring, versioned for compare-and-swap."""

    __slots__ = ("_lock", "_snapshot")

    def __init__(self, records: Iterable[KeyRecord] = ()) -> None:
        self._lock = threading.Lock()
        self._snapshot = StoreSnapshot(version=0, records=_records(records))

    def load(self) -> StoreSnapshot:
        """The records and their version (immutable, so safe to share)."""
        with self._lock:
            return self._snapshot

    def save(self, expected_version: int, records: Sequence[KeyRecord]) -> int:
        """Replace the records if nobody saved since ``expected_version``; the new version.

        Raises :class:`~jwtward.keys.records.StoreConflict` otherwise: the
        caller reloads and decides again.
        """
        if type(expected_version) is not int:
            raise InvalidArgument("expected_version must be an int")
        new_records = _records(records)
        with self._lock:
            if self._snapshot.version != expected_version:
                raise StoreConflict("the key store changed since it was loaded")
            self._snapshot = StoreSnapshot(version=expected_version + 1, records=new_records)
            return expected_version + 1

    def __repr__(self) -> str:
        snapshot = self._snapshot
        return f"MemoryKeyStore(version={snapshot.version}, keys={len(snapshot.records)})"
