"""``AsyncTokenService``: the asyncio twin of :class:`~jwtward.tokens.service.TokenService`.

Same flows, same rules; store calls and the ``load_subject`` callback are
awaited (a plain function is accepted for the callback too). Stores that
only exist synchronously (memory, SQLite) are wrapped by
:class:`~jwtward.tokens.async_adapter.ThreadedStore` so that no blocking call
runs on the event loop.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from jwtward.errors import JWTWardError
from jwtward.tokens.claims import AccessClaims, TokenPair
from jwtward.tokens.flows import Flow, SigningKeys, StoreCall
from jwtward.tokens.records import AsyncTokenStore, FamilyRecord
from jwtward.tokens.service import ServiceBase, checked_answer, store_failure

__all__ = ["AsyncTokenService"]

T = TypeVar("T")

AsyncSubjectLoader = Callable[[str], Awaitable[Mapping[str, Any] | None] | Mapping[str, Any] | None]


class AsyncTokenService(ServiceBase[AsyncTokenStore, AsyncSubjectLoader]):
    """Issue, verify, refresh and revoke tokens from asyncio code; see TokenService."""

    def __init__(
        self,
        keys: SigningKeys,
        *,
        issuer: str,
        audience: str | Collection[str],
        store: AsyncTokenStore,
        access_lifetime: timedelta = timedelta(minutes=15),
        refresh_lifetime: timedelta = timedelta(days=14),
        session_lifetime: timedelta = timedelta(days=30),
        reuse_grace: timedelta = timedelta(0),
        leeway: timedelta = timedelta(seconds=30),
        allow_long_access_tokens: bool = False,
        load_subject: AsyncSubjectLoader | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._setup(
            keys,
            load_subject,
            issuer=issuer,
            audience=audience,
            access_lifetime=access_lifetime,
            refresh_lifetime=refresh_lifetime,
            session_lifetime=session_lifetime,
            reuse_grace=reuse_grace,
            leeway=leeway,
            allow_long_access_tokens=allow_long_access_tokens,
            clock=clock,
        )
        self._store = store

    async def _run(self, flow: Flow[T]) -> T:
        answer: Any = None
        try:
            while True:
                step = flow.send(answer)
                if isinstance(step, StoreCall):
                    answer = await self._call(step)
                else:
                    assert self._load_subject is not None  # noqa: S101 - flows ask only then
                    answer = self._load_subject(step.subject)
                    if inspect.isawaitable(answer):
                        answer = await answer
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            flow.close()

    async def _call(self, step: StoreCall) -> Any:
        try:
            answer = await getattr(self._store, step.method)(*step.args)
        except JWTWardError:
            raise
        except Exception as exc:  # fail closed: a store failure is never a token decision
            raise store_failure(step.method, exc) from None
        return checked_answer(step.method, answer)

    async def issue(
        self,
        subject: str,
        *,
        claims: Mapping[str, Any] | None = None,
        scope: str | list[str] | None = None,
        client_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> TokenPair:
        return await self._run(
            self._core.issue(
                subject, claims=claims, scope=scope, client_id=client_id, metadata=metadata
            )
        )

    async def verify(self, access_token: str | bytes) -> AccessClaims:
        # Lifecycle.verify's three steps without the generator: the hot path.
        core = self._core
        claims = core.access_claims(access_token)
        view = await self._call(core.access_view_call(claims))
        return core.admit_access(claims, view)

    async def refresh(self, refresh_token: str | bytes, *, csrf: str | None = None) -> TokenPair:
        return await self._run(self._core.refresh(refresh_token, csrf=csrf))

    async def revoke(self, token: str | bytes) -> None:
        await self._run(self._core.revoke(token))

    async def revoke_subject(self, subject: str) -> None:
        await self._run(self._core.revoke_subject(subject))

    async def sessions(self, subject: str) -> list[FamilyRecord]:
        return await self._run(self._core.sessions(subject))

    async def revoke_session(self, subject: str, session_id: str) -> bool:
        return await self._run(self._core.revoke_session(subject, session_id))

    async def introspect(self, token: str | bytes) -> dict[str, Any]:
        return await self._run(self._core.introspect(token))

    async def purge_expired(self) -> int:
        return await self._run(self._core.purge())

    async def close(self) -> None:
        await self._store.close()

    async def __aenter__(self) -> AsyncTokenService:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()
