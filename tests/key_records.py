"""Key records and protections shared by the key-store suites (file, SQLite and PostgreSQL).

Every store must hand back exactly what it was given, so the suites build
their records the same way (every state, every optional time, set or not)
and compare them through one view of a record: the JWK with its private
members, the alg and kid, the state and each time.
"""

from __future__ import annotations

from typing import Any

from jwtward import Key
from jwtward.keys.records import KeyRecord, KeyState, StoreSnapshot
from jwtward.keys.sealing import ScryptParams

__all__ = [
    "FAST_SCRYPT",
    "MASTER_KEY",
    "PASSPHRASE",
    "PRIVATE_MEMBERS",
    "PROTECTIONS",
    "as_comparable",
    "assert_same_records",
    "hs_record",
    "records_of",
]

# The smallest cost the sealing accepts: the tests are about the stores, not the KDF.
FAST_SCRYPT = ScryptParams(n=1 << 14)
PASSPHRASE = "correct horse battery staple"
MASTER_KEY = bytes(range(32))
PRIVATE_MEMBERS = ("d", "k", "p", "q", "dp", "dq", "qi")
# Keyword arguments of each protection a store may seal its private keys with.
PROTECTIONS: dict[str, dict[str, Any]] = {
    "passphrase": {"passphrase": PASSPHRASE, "scrypt": FAST_SCRYPT},
    "master-key": {"master_key": MASTER_KEY},
}


def records_of(keys: list[Key]) -> list[KeyRecord]:
    """One record per key, cycling through every state and every optional time."""
    states = list(KeyState)
    return [
        KeyRecord(
            key=key,
            state=states[i % len(states)],
            created_at=1_700_000_000.25 + i,
            activates_at=1_700_086_400.5 + i,
            retires_at=None if i % 2 else 1_707_862_400.0 + i,
            expires_at=None if i % 3 else 1_708_000_000.125 + i,
            revoked_at=None if i % 4 != 3 else 1_705_000_000.0 + i,
        )
        for i, key in enumerate(keys)
    ]


def as_comparable(record: KeyRecord) -> tuple[Any, ...]:
    """Everything a store must keep of a record, in a form that compares by value."""
    key = record.key
    return (
        key.to_jwk(private=key.is_private),
        key.is_private,
        key.alg,
        key.kid,
        record.state,
        record.created_at,
        record.activates_at,
        record.retires_at,
        record.expires_at,
        record.revoked_at,
    )


def assert_same_records(loaded: StoreSnapshot, expected: list[KeyRecord]) -> None:
    assert [as_comparable(r) for r in loaded.records] == [as_comparable(r) for r in expected]


def hs_record(kid: str, seed: int = 0) -> KeyRecord:
    """A small active HS256 record whose secret depends on ``seed`` (cheap to make in bulk)."""
    secret = bytes((seed + i) % 256 for i in range(32))
    key = Key.from_secret(secret, alg="HS256", kid=kid)
    return KeyRecord(key=key, state=KeyState.ACTIVE, created_at=float(seed), activates_at=0.0)
