"""``JWKSClient``: a thread-safe remote JWK Set for synchronous verifiers.

It is a :class:`~jwtward.KeySource`, so ``jwt.decode(token, client, policy)``
just works: the token's ``kid`` is looked up in the cached set, which is
fetched, refetched and kept stale-while-error by the rules of
:mod:`jwtward.keys.remote`. HTTP is done with the standard library's
``urllib.request`` (no extra dependency), configured to:

* never follow redirects (a 3xx is a failed fetch),
* read no proxy from the environment (the keys come from the configured host),
* ask for no compression and read at most ``max_document_size + 1`` bytes,
* bound the connection by ``connect_timeout``, every wait for data by
  ``read_timeout``, and the whole fetch by about their sum.

Lookups of a fresh, known ``kid`` take no lock. Fetches are serialized by one
lock: a thread that needs a fetch while another fetches waits for it and then
decides again, so concurrent requests cause one fetch, not one each. A lookup
of a known ``kid`` whose set may still be served (fresh or within
``max_staleness``) never waits: if another thread is fetching it is answered
from the cache (stale-while-revalidate), so a hanging endpoint stalls at most
the one thread that fetches, and that one for at most ``total_timeout``.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import socket
import ssl
import threading
import urllib.error
import urllib.request
from typing import Any

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

__all__ = ["JWKSClient"]

_CHUNK = 64 * 1024


class _Watchdog:
    """Shuts the fetch's socket down when the whole-fetch deadline passes.

    Socket timeouts bound each wait for data, not their sum: an endpoint that
    sends one byte just inside every read timeout would hold a fetch (and the
    fetch lock) indefinitely. One timer, started before connecting and always
    cancelled, bounds the whole fetch; a reader blocked in ``recv`` wakes at
    the shutdown, and :attr:`fired` tells the fetch to discard what it read.
    """

    __slots__ = ("_fired", "_guard", "_sock", "_timer")

    def __init__(self, seconds: float) -> None:
        self._guard = threading.Lock()
        self._sock: socket.socket | None = None
        self._fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()

    @property
    def fired(self) -> bool:
        return self._fired

    def watch(self, sock: socket.socket) -> None:
        """Guard ``sock``; shut it down at once if the deadline already passed."""
        with self._guard:
            self._sock = sock
            if self._fired:
                _shutdown(sock)

    def _fire(self) -> None:
        with self._guard:
            self._fired = True
            if self._sock is not None:
                _shutdown(self._sock)


def _shutdown(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for a TLS socket: its own shutdown
    # would tear down the TLS state under the reading thread's feet.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _HTTPConnection(http.client.HTTPConnection):
    """Connects within the connect timeout, then waits for data within the read
    timeout, under the fetch's watchdog (for HTTPS: after the TLS handshake)."""

    def __init__(self, *args: Any, read_timeout: float, watchdog: _Watchdog, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timeout = read_timeout
        self._watchdog = watchdog

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(self._read_timeout)
        self._watchdog.watch(self.sock)


class _HTTPSConnection(_HTTPConnection, http.client.HTTPSConnection):
    """As :class:`_HTTPConnection`; HTTPSConnection.connect wraps the socket in TLS."""


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, read_timeout: float, watchdog: _Watchdog) -> None:
        super().__init__()
        self._read_timeout = read_timeout
        self._watchdog = watchdog

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(
            _HTTPConnection, read_timeout=self._read_timeout, watchdog=self._watchdog
        )
        return self.do_open(connection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, options: JWKSOptions, tls: ssl.SSLContext, watchdog: _Watchdog) -> None:
        super().__init__()
        self._read_timeout = options.read_timeout
        self._tls = tls
        self._watchdog = watchdog

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(
            _HTTPSConnection, read_timeout=self._read_timeout, watchdog=self._watchdog
        )
        return self.do_open(connection, req, context=self._tls)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Turns every redirect into an ``HTTPError`` with the 3xx status."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener(
    options: JWKSOptions, tls: ssl.SSLContext, watchdog: _Watchdog
) -> urllib.request.OpenerDirector:
    """An opener for one fetch, its connections guarded by that fetch's watchdog."""
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        _NoRedirect(),
        _HTTPHandler(options.read_timeout, watchdog),
        _HTTPSHandler(options, tls, watchdog),
    )


def _read_body(response: http.client.HTTPResponse, limit: int) -> bytes:
    body = BoundedBody(limit)
    body.check_declared(response.headers.get("Content-Length"))
    while True:
        chunk = response.read1(min(body.want(), _CHUNK))
        if not chunk:
            return body.value()
        body.add(chunk)


def fetch(url: str, options: JWKSOptions, tls: ssl.SSLContext) -> HTTPResult | FetchFailure:
    """One GET of the JWK Set within ``total_timeout``; every fault is a ``FetchFailure``."""
    with _Watchdog(options.total_timeout) as watchdog:
        outcome = _get(url, options, _opener(options, tls, watchdog))
    if watchdog.fired:
        # Whatever was read may be cut short by the shutdown: never judge it.
        return FetchFailure("the JWKS endpoint timed out")
    return outcome


def _get(
    url: str, options: JWKSOptions, opener: urllib.request.OpenerDirector
) -> HTTPResult | FetchFailure:
    request = urllib.request.Request(url, headers=REQUEST_HEADERS, method="GET")  # noqa: S310
    try:
        with opener.open(request, timeout=options.connect_timeout) as response:
            body = _read_body(response, options.max_document_size)
            return HTTPResult(response.status, response.headers.get("Cache-Control"), body)
    except urllib.error.HTTPError as exc:
        exc.close()
        return HTTPResult(exc.code, None, b"")
    except BodyTooLarge as exc:
        return FetchFailure(str(exc))
    except TimeoutError:
        return FetchFailure("the JWKS endpoint timed out")
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            return FetchFailure("the JWKS endpoint timed out")
        return FetchFailure("the JWKS endpoint could not be reached")
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # ValueError covers malformed responses.
        return FetchFailure(f"the JWKS endpoint could not be read ({type(exc).__name__})")


class JWKSClient(RemoteJWKSBase):
    """A remote JWK Set, cached and refreshed by the rules of :mod:`jwtward.keys.remote`.

    ``JWKSClient("https://issuer.example/.well-known/jwks.json",
    default_alg="RS256")`` then ``jwt.decode(token, client, policy)``. The
    keyword options and their defaults are those of :class:`RemoteJWKSBase`.
    """

    def _prepare(self) -> None:
        self._lock = threading.Lock()
        self._tls = self._options.tls_context()

    def _fetch_now(self) -> None:
        now = self._clock()
        self._fetched(fetch(self._url, self._options, self._tls), now)

    def select(self, kid: str | None) -> Key:
        """The key for a token's ``kid`` (a :class:`~jwtward.KeySource`).

        Raises ``KeyNotFound`` when the issuer has no such key (after at most
        one refetch per cooldown) and ``KeySourceUnavailable`` when no key set
        may be served. A known ``kid`` in a servable set never waits for
        another thread's fetch: it is answered from the cache meanwhile.
        """
        if needs_fetch(self._state, self._options, self._clock(), kid):
            if serves_without_fetch(self._state, self._options, self._clock(), kid):
                if self._lock.acquire(blocking=False):
                    try:
                        if needs_fetch(self._state, self._options, self._clock(), kid):
                            self._fetch_now()
                    finally:
                        self._lock.release()
            else:
                with self._lock:
                    if needs_fetch(self._state, self._options, self._clock(), kid):
                        self._fetch_now()
        return choose_key(self._state, self._options, self._clock(), kid)

    def refresh(self) -> KeySet:
        """Fetch now, whatever the cache and cooldown say; return the new set.

        Raises ``KeySourceUnavailable`` if this fetch failed (the last good set
        stays cached). Useful at startup, to fail fast on a wrong URL.
        """
        with self._lock:
            self._fetch_now()
            return self._refreshed_keys()
