"""The tokens layer: access/refresh pairs, rotation with reuse detection, revocation.

Stores: :class:`MemoryTokenStore` (one process), :class:`SQLiteTokenStore`
(the embedded default), and in their own modules, imported on demand so their
drivers stay optional: ``jwtward.tokens.redis_store`` (redis-py) and
``jwtward.tokens.postgres_store`` (psycopg 3).
"""

from jwtward.tokens.async_adapter import ThreadedStore
from jwtward.tokens.async_service import AsyncTokenService
from jwtward.tokens.claims import AccessClaims, TokenPair
from jwtward.tokens.lifecycle import ACCESS_TYP, REFRESH_TYP
from jwtward.tokens.memory_store import MemoryTokenStore
from jwtward.tokens.records import (
    AccessView,
    AsyncTokenStore,
    FamilyRecord,
    RefreshRecord,
    RefreshView,
    SubjectView,
    TokenStore,
)
from jwtward.tokens.service import TokenService
from jwtward.tokens.sqlite_store import SQLiteTokenStore

__all__ = [
    "ACCESS_TYP",
    "REFRESH_TYP",
    "AccessClaims",
    "AccessView",
    "AsyncTokenService",
    "AsyncTokenStore",
    "FamilyRecord",
    "MemoryTokenStore",
    "RefreshRecord",
    "RefreshView",
    "SQLiteTokenStore",
    "SubjectView",
    "ThreadedStore",
    "TokenPair",
    "TokenService",
    "TokenStore",
]
