"""The keys layer: key rings with rotation, persistent key stores, remote JWKS.

The async JWKS client lives in :mod:`jwtward.keys.remote_async` and is not
imported here, so that httpx stays an optional dependency.
"""

from jwtward.keys.file_store import FileKeyStore
from jwtward.keys.memory_store import MemoryKeyStore
from jwtward.keys.records import (
    KeyRecord,
    KeyState,
    KeyStore,
    StoreConflict,
    StoreError,
    StoreSnapshot,
)
from jwtward.keys.remote_sync import JWKSClient
from jwtward.keys.ring import KeyRing
from jwtward.keys.rotation import RotationPolicy
from jwtward.keys.sealing import PlaintextKeyWarning, ScryptParams, UnsealError
from jwtward.keys.sqlite_store import SQLiteKeyStore

__all__ = [
    "FileKeyStore",
    "JWKSClient",
    "KeyRecord",
    "KeyRing",
    "KeyState",
    "KeyStore",
    "MemoryKeyStore",
    "PlaintextKeyWarning",
    "RotationPolicy",
    "SQLiteKeyStore",
    "ScryptParams",
    "StoreConflict",
    "StoreError",
    "StoreSnapshot",
    "UnsealError",
]
