"""``ThreadedStore``: a sync token store made awaitable without blocking the event loop.

Each call runs in the default thread pool (``asyncio.to_thread``). Right for
SQLite and for the memory store; Redis and PostgreSQL have native asyncio
stores of their own.
"""

from __future__ import annotations

import asyncio

from jwtward.tokens.records import (
    AccessView,
    FamilyRecord,
    RefreshRecord,
    RefreshView,
    SubjectView,
    TokenStore,
)

__all__ = ["ThreadedStore"]


class ThreadedStore:
    """An :class:`~jwtward.tokens.records.AsyncTokenStore` over a sync ``TokenStore``."""

    def __init__(self, store: TokenStore) -> None:
        self.sync_store = store

    async def create_family(self, family: FamilyRecord, first: RefreshRecord) -> None:
        await asyncio.to_thread(self.sync_store.create_family, family, first)

    async def load_refresh(self, token_hash: str) -> RefreshView | None:
        return await asyncio.to_thread(self.sync_store.load_refresh, token_hash)

    async def rotate(
        self,
        token_hash: str,
        used_at: float,
        successor: RefreshRecord,
        sealed_successor: bytes | None,
    ) -> bool:
        return await asyncio.to_thread(
            self.sync_store.rotate, token_hash, used_at, successor, sealed_successor
        )

    async def revoke_family(self, family_id: str, revoked_at: float) -> None:
        await asyncio.to_thread(self.sync_store.revoke_family, family_id, revoked_at)

    async def revoke_access(self, jti: str, expires_at: float) -> None:
        await asyncio.to_thread(self.sync_store.revoke_access, jti, expires_at)

    async def revoke_subject(self, subject: str, cutoff: float, keep_until: float) -> None:
        await asyncio.to_thread(self.sync_store.revoke_subject, subject, cutoff, keep_until)

    async def access_view(self, jti: str, family_id: str, subject: str) -> AccessView:
        return await asyncio.to_thread(self.sync_store.access_view, jti, family_id, subject)

    async def sessions(self, subject: str) -> SubjectView:
        return await asyncio.to_thread(self.sync_store.sessions, subject)

    async def purge_expired(self, now: float) -> int:
        return await asyncio.to_thread(self.sync_store.purge_expired, now)

    async def ping(self) -> None:
        await asyncio.to_thread(self.sync_store.ping)

    async def close(self) -> None:
        await asyncio.to_thread(self.sync_store.close)
