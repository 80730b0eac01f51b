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
decides again, so concurrent requests cause one fetch, not one each.
"""

from __future__ import annotations

import functools
import http.client
import threading
import time
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
)

__all__ = ["JWKSClient"]

_CHUNK = 64 * 1024


class _HTTPConnection(http.client.HTTPConnection):
    """Connects within the connect timeout, then waits for data within the read timeout."""

    def __init__(self, *args: Any, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timeout = read_timeout

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(self._read_timeout)


class _HTTPSConnection(http.client.HTTPSConnection):
    """As :class:`_HTTPConnection`, after the TLS handshake."""

    def __init__(self, *args: Any, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timeout = read_timeout

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(self._read_timeout)


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, read_timeout: float) -> None:
        super().__init__()
        self._read_timeout = read_timeout

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(_HTTPConnection, read_timeout=self._read_timeout)
        return self.do_open(connection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, options: JWKSOptions) -> None:
        super().__init__()
        self._read_timeout = options.read_timeout
        self._tls = options.tls_context()

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(_HTTPSConnection, read_timeout=self._read_timeout)
        return self.do_open(connection, req, context=self._tls)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Turns every redirect into an ``HTTPError`` with the 3xx status."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _opener(options: JWKSOptions) -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        _NoRedirect(),
        _HTTPHandler(options.read_timeout),
        _HTTPSHandler(options),
    )


def _read_body(response: http.client.HTTPResponse, limit: int, deadline: float) -> bytes:
    body = BoundedBody(limit)
    body.check_declared(response.headers.get("Content-Length"))
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("the JWKS endpoint is too slow")
        # read1 waits for data at most once, so each call is bounded by the
        # read timeout and the deadline check above bounds the whole body.
        chunk = response.read1(min(body.want(), _CHUNK))
        if not chunk:
            return body.value()
        body.add(chunk)


def fetch(
    url: str, options: JWKSOptions, opener: urllib.request.OpenerDirector
) -> HTTPResult | FetchFailure:
    """One GET of the JWK Set; every network fault becomes a ``FetchFailure``."""
    deadline = time.monotonic() + options.total_timeout
    request = urllib.request.Request(url, headers=REQUEST_HEADERS, method="GET")  # noqa: S310
    try:
        with opener.open(request, timeout=options.connect_timeout) as response:
            body = _read_body(response, options.max_document_size, deadline)
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
        self._opener = _opener(self._options)

    def select(self, kid: str | None) -> Key:
        """The key for a token's ``kid`` (a :class:`~jwtward.KeySource`).

        Raises ``KeyNotFound`` when the issuer has no such key (after at most
        one refetch per cooldown) and ``KeySourceUnavailable`` when no key set
        may be served.
        """
        if needs_fetch(self._state, self._options, self._clock(), kid):
            with self._lock:
                now = self._clock()
                if needs_fetch(self._state, self._options, now, kid):
                    self._fetched(fetch(self._url, self._options, self._opener), now)
        return choose_key(self._state, self._options, self._clock(), kid)

    def refresh(self) -> KeySet:
        """Fetch now, whatever the cache and cooldown say; return the new set.

        Raises ``KeySourceUnavailable`` if this fetch failed (the last good set
        stays cached). Useful at startup, to fail fast on a wrong URL.
        """
        with self._lock:
            now = self._clock()
            self._fetched(fetch(self._url, self._options, self._opener), now)
            return self._refreshed_keys()
