"""``AsyncJWKSClient``: a remote JWK Set for asyncio verifiers, on ``httpx``.

Install with ``pip install 'jwtward[jwks-async]'``; ``httpx`` is imported only
when a client is made, so the rest of jwtward never needs it.

The design: verification itself (:func:`jwtward.jwt.decode`) is pure CPU work
with no I/O and stays synchronous; the only step that may wait on the network
is finding the key. So :meth:`AsyncJWKSClient.decode` reads the token's ``kid``
from its policed, unverified header (for routing only), awaits
:meth:`~AsyncJWKSClient.select_async`, which may fetch, and then hands that one
:class:`~jwtward.Key` to the ordinary ``jwt.decode``, which parses the token
again and checks everything (the ``kid`` match, the key's algorithm, the
signature, the policy). There is no second, async copy of the verification
code to keep in step.

The caching rules are those of :mod:`jwtward.keys.remote`, shared with the sync
client. One fetch is in flight at a time per event loop: it runs as a task of
its own that every caller needing it joins through ``asyncio.shield``, so a
cancelled caller never cuts a fetch short nor leaves the cooldown unstarted,
and a task that needed a fetch while another ran awaits it and decides again.
A lookup of a known ``kid`` whose set may still be served never waits for a
fetch in flight. The client holds no loop-bound primitive, so it may be used
from several event loops (``asyncio.run`` twice, a worker thread's loop).

As in the sync client, redirects are not followed, no proxy is read from the
environment, no compression is asked for, the body is read in chunks only until
it passes ``max_document_size`` (one network read past it at most), and the
whole fetch is bounded by ``connect_timeout + read_timeout``.

The plain :meth:`~AsyncJWKSClient.select` (the :class:`~jwtward.KeySource`
protocol) answers from the cache only and never does I/O; call
:meth:`~AsyncJWKSClient.refresh` once at startup if sync code is to use it.
"""

from __future__ import annotations

import asyncio
import importlib
import ssl
import weakref
from collections.abc import Mapping
from dataclasses import replace
from types import ModuleType
from typing import Any

from jwtward import jws, jwt
from jwtward.jose.keys import Key
from jwtward.jose.keyset import KeySet
from jwtward.keys.remote import (
    REQUEST_HEADERS,
    BodyTooLarge,
    BoundedBody,
    FetchFailure,
    HTTPResult,
    JWKSOptions,
    RemoteJWKSBase,
    choose_key,
    needs_fetch,
    serves_without_fetch,
)
from jwtward.policy import Policy

__all__ = ["AsyncJWKSClient"]


def _httpx() -> ModuleType:
    try:
        return importlib.import_module("httpx")
    except ImportError:
        raise ImportError(
            "AsyncJWKSClient needs httpx: pip install 'jwtward[jwks-async]'"
        ) from None


async def fetch_async(
    url: str, options: JWKSOptions, tls: ssl.SSLContext
) -> HTTPResult | FetchFailure:
    """One GET of the JWK Set; every network fault becomes a ``FetchFailure``."""
    httpx = _httpx()
    timeout = httpx.Timeout(
        connect=options.connect_timeout,
        read=options.read_timeout,
        write=options.read_timeout,
        pool=options.connect_timeout,
    )
    try:
        async with (
            asyncio.timeout(options.total_timeout),
            httpx.AsyncClient(
                timeout=timeout, follow_redirects=False, trust_env=False, verify=tls
            ) as client,
            client.stream("GET", url, headers=REQUEST_HEADERS) as response,
        ):
            if response.status_code != 200:
                return HTTPResult(response.status_code, None, b"")
            body = BoundedBody(options.max_document_size)
            body.check_declared(response.headers.get("Content-Length"))
            async for chunk in response.aiter_raw():
                body.add(chunk)
            return HTTPResult(200, response.headers.get("Cache-Control"), body.value())
    except BodyTooLarge as exc:
        return FetchFailure(str(exc))
    except (TimeoutError, httpx.TimeoutException):
        return FetchFailure("the JWKS endpoint timed out")
    except (
        httpx.HTTPError,
        httpx.InvalidURL,
        httpx.StreamError,
        httpx.CookieConflict,
        OSError,
        ValueError,
    ) as exc:
        # Every other httpx refusal (a URL it will not send, a stream misuse)
        # is a failed fetch too: no httpx exception may escape the client.
        return FetchFailure(f"the JWKS endpoint could not be read ({type(exc).__name__})")


class AsyncJWKSClient(RemoteJWKSBase):
    """A remote JWK Set for asyncio code; ``await client.decode(token, policy)``.

    The keyword options and their defaults are those of
    :class:`~jwtward.keys.remote.RemoteJWKSBase`.
    """

    def _prepare(self) -> None:
        _httpx()
        self._tls = self._options.tls_context()
        # The fetch in flight, per running event loop: callers join it rather
        # than start their own. An entry lives only while its fetch runs (a
        # task refers to its loop, so a lasting entry would keep the loop).
        self._inflight: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
            weakref.WeakKeyDictionary()
        )

    async def _fetch_now(self) -> None:
        now = self._clock()
        # The attempt counts from its start: if this task is torn down before
        # the answer (the loop closing), the cooldown has still begun, and an
        # unknown kid meanwhile is "retry later", never "no such key".
        self._state = replace(self._state, last_attempt=now, last_error="a fetch was interrupted")
        self._fetched(await fetch_async(self._url, self._options, self._tls), now)

    def _running_fetch(self) -> asyncio.Task[None] | None:
        return self._inflight.get(asyncio.get_running_loop())

    def _start_fetch(self) -> asyncio.Task[None]:
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._fetch_now())
        self._inflight[loop] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._inflight.get(loop) is done:
                del self._inflight[loop]

        task.add_done_callback(forget)
        return task

    async def _join(self, task: asyncio.Task[None]) -> None:
        # Shielded: a caller that is cancelled (a request timeout, a client
        # gone) leaves the fetch running to its end, so its outcome and the
        # cooldown are recorded, and the next caller joins it instead of
        # starting another.
        await asyncio.shield(task)

    async def select_async(self, kid: str | None) -> Key:
        """The key for a token's ``kid``, fetching the JWK Set when the rules say so.

        Raises ``KeyNotFound`` when the issuer has no such key (after at most
        one refetch per cooldown) and ``KeySourceUnavailable`` when no key set
        may be served. A known ``kid`` in a servable set never waits for a
        fetch another task started: it is answered from the cache meanwhile.
        """
        running = self._running_fetch()
        if running is not None:
            if serves_without_fetch(self._state, self._options, self._clock(), kid):
                return choose_key(self._state, self._options, self._clock(), kid)
            await self._join(running)
        if needs_fetch(self._state, self._options, self._clock(), kid):
            await self._join(self._running_fetch() or self._start_fetch())
        return choose_key(self._state, self._options, self._clock(), kid)

    def select(self, kid: str | None) -> Key:
        """The key for ``kid`` from the cache as it is, without any I/O."""
        return choose_key(self._state, self._options, self._clock(), kid)

    async def refresh(self) -> KeySet:
        """Fetch now, whatever the cache and cooldown say; return the new set.

        Raises ``KeySourceUnavailable`` if this fetch failed (the last good set
        stays cached).
        """
        running = self._running_fetch()
        if running is not None:
            await self._join(running)
        await self._join(self._running_fetch() or self._start_fetch())
        return self._refreshed_keys()

    async def decode(
        self,
        token: str | bytes,
        policy: Policy | None = None,
        *,
        max_length: int = jws.DEFAULT_MAX_TOKEN_LENGTH,
    ) -> dict[str, Any]:
        """Verify a JWT with the issuer's key and apply ``policy``; return its claims."""
        header: Mapping[str, Any] = jws.unverified_header(token, max_length=max_length)
        key = await self.select_async(header.get("kid"))
        return jwt.decode(token, key, policy, max_length=max_length)
