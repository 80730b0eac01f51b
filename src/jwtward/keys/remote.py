"""The decisions of a remote JWKS client, free of I/O: what to do given the cache, the time
and the outcome of a fetch.

A resource server verifies another issuer's tokens with the keys that issuer
publishes as a JWK Set at an HTTPS URL. The rules here decide when that
document is fetched, what is served from the cache and when the answer is a
refusal. The sync client (:mod:`jwtward.keys.remote_sync`, on ``urllib``) and
the async client (:mod:`jwtward.keys.remote_async`, on ``httpx``) only move
bytes and hold a lock; both run exactly these functions, so they behave alike.

The rules, with times read from an injected clock:

* A fetched set is fresh for ``Cache-Control: max-age`` seconds, clamped to
  ``[min_ttl, max_ttl]`` (``default_ttl`` when the header gives no max-age;
  ``no-store``/``no-cache`` count as ``min_ttl``, since a verifier cannot ask
  the issuer on every request).
* No two fetches are closer than ``refetch_cooldown`` (default 30 s, at least
  1 s), whatever the reason (expiry, an unknown ``kid``, a failing endpoint):
  a flood of tokens with made-up kids costs the issuer one request per
  cooldown at most. Only an explicit ``refresh()`` bypasses it. A clock that
  steps back ends the cooldown and makes the cached set count as expired.
* A token whose ``kid`` is not in the cached set causes one refetch (cooldown
  permitting); if the kid is still unknown the answer is ``KeyNotFound`` only
  when the set is fresh and the last fetch succeeded. During an outage or from
  a stale set it is ``KeySourceUnavailable``: the issuer may have rotated to
  that key, so a valid token must get "retry later", not "rejected".
* Stale-while-error: when the endpoint fails, times out, redirects or returns
  anything but a valid, non-empty JWK Set, the last good set keeps serving
  until it has been expired for ``max_staleness``; after that every lookup
  raises :class:`~jwtward.errors.KeySourceUnavailable` (HTTP 503, retryable),
  never a decision about the token. So an issuer's revoked key keeps
  verifying at most ``max_ttl + max_staleness`` after it left the JWK Set.
* Only ``https://`` URLs in plain printable ASCII are fetched; ``http://``
  only for a loopback host and only with ``allow_insecure_loopback=True``
  (tests, sidecars). Redirects are never followed: a JWKS URL is
  configuration, and a 3xx counts as a failure, so a compromised or
  misconfigured endpoint cannot move the key source to another host or scheme.
* The document is bounded (``max_document_size``, default 512 KiB: a larger
  declared ``Content-Length`` is refused before reading, and at most that many
  bytes plus one are ever read) and so is its key count (``max_keys``).
  Private key members make the whole set invalid (``public_only``); keys of a
  type or algorithm jwtward does not offer are left out.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from jwtward.codecs import loads_object
from jwtward.errors import (
    DecodeError,
    InvalidArgument,
    JWTWardError,
    KeyNotFound,
    KeySourceUnavailable,
)
from jwtward.jose.algorithms import algorithm
from jwtward.jose.keys import Key
from jwtward.jose.keyset import MAX_JWKS_KEYS, KeySet

__all__ = [
    "DEFAULT_MAX_DOCUMENT_SIZE",
    "REQUEST_HEADERS",
    "BodyTooLarge",
    "BoundedBody",
    "CacheState",
    "FetchFailure",
    "HTTPResult",
    "JWKSOptions",
    "RemoteJWKSBase",
    "apply_fetch",
    "check_url",
    "choose_key",
    "needs_fetch",
    "parse_jwks",
    "serves_without_fetch",
    "ttl_for",
    "usable_keys",
]

DEFAULT_MAX_DOCUMENT_SIZE: Final = 512 * 1024
REQUEST_HEADERS: Final = {
    "Accept": "application/jwk-set+json, application/json",
    # Compressed bodies are not asked for: a small gzip body can inflate far
    # beyond the document bound before any check could run.
    "Accept-Encoding": "identity",
}

Seconds = float | int | timedelta
_MAX_SECONDS: Final = 10.0 * 365 * 86400  # finite: sockets and timers refuse infinity
_MIN_REFETCH_COOLDOWN: Final = 1.0  # below it, made-up kids would hammer the issuer
_PRINTABLE_URL: Final = re.compile(r"[!-~]+")


def _seconds(name: str, value: Seconds) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value < _MAX_SECONDS
    ):
        raise InvalidArgument(
            f"{name} must be from 0 to {_MAX_SECONDS:.0f} seconds (or a timedelta)"
        )
    return float(value)


def check_url(url: str, *, allow_insecure_loopback: bool = False) -> str:
    """``url`` if it is an HTTPS URL (or loopback HTTP when explicitly allowed).

    Plain HTTP would let anyone on the path substitute their own keys and so
    forge every token; a loopback host never leaves the machine.
    """
    if not isinstance(url, str):
        raise InvalidArgument("the JWKS URL must be a string")
    if not _PRINTABLE_URL.fullmatch(url):
        # Spaces, control characters and non-ASCII text are read differently
        # by different HTTP stacks (and urlsplit silently drops some), so the
        # host fetched could differ from the host checked here.
        raise InvalidArgument(
            "the JWKS URL must be printable ASCII without spaces (percent-encode the rest)"
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _port = parts.port
    except ValueError:
        raise InvalidArgument("the JWKS URL does not parse") from None
    if not host:
        raise InvalidArgument("the JWKS URL has no host")
    if urlunsplit(parts) != url:
        raise InvalidArgument("the JWKS URL is not in its plain form (it changes when parsed)")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument("the JWKS URL must not carry credentials")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http":
        if not allow_insecure_loopback:
            raise InvalidArgument("the JWKS URL must use https")
        if not _is_loopback(host):
            raise InvalidArgument("plain http is allowed for loopback hosts only")
        return url
    raise InvalidArgument("the JWKS URL must use https")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class JWKSOptions:
    """The bounds of one remote JWKS client; durations in seconds (or a timedelta)."""

    default_alg: str | None = None
    min_ttl: float = 60.0
    max_ttl: float = 86400.0
    default_ttl: float = 300.0
    refetch_cooldown: float = 30.0
    max_staleness: float = 6 * 3600.0
    connect_timeout: float = 5.0
    read_timeout: float = 5.0
    max_document_size: int = DEFAULT_MAX_DOCUMENT_SIZE
    max_keys: int = 100
    allow_insecure_loopback: bool = False
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in (
            "min_ttl",
            "max_ttl",
            "default_ttl",
            "refetch_cooldown",
            "max_staleness",
            "connect_timeout",
            "read_timeout",
        ):
            object.__setattr__(self, name, _seconds(name, getattr(self, name)))
        if self.min_ttl > self.max_ttl:
            raise InvalidArgument("min_ttl must not exceed max_ttl")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise InvalidArgument("timeouts must be positive")
        for name, upper in (("max_document_size", 1 << 26), ("max_keys", MAX_JWKS_KEYS)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
                raise InvalidArgument(f"{name} must be an integer from 1 to {upper}")
        if self.refetch_cooldown < _MIN_REFETCH_COOLDOWN:
            raise InvalidArgument(
                f"refetch_cooldown must be at least {_MIN_REFETCH_COOLDOWN:.0f} second"
            )
        if self.default_alg is not None:
            # A misspelt name would make every fetched set invalid: a lasting
            # outage discovered at the first fetch instead of at startup.
            try:
                algorithm(self.default_alg)
            except JWTWardError as exc:
                raise InvalidArgument(f"default_alg: {exc}") from None
        if self.ssl_context is not None and not isinstance(self.ssl_context, ssl.SSLContext):
            raise InvalidArgument("ssl_context must be an ssl.SSLContext")

    @property
    def total_timeout(self) -> float:
        """The bound on one whole fetch, from connecting to the last byte."""
        return self.connect_timeout + self.read_timeout

    def tls_context(self) -> ssl.SSLContext:
        """The configured context, or one that verifies against the system CAs."""
        return self.ssl_context or ssl.create_default_context()


# -- what a fetch produced -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HTTPResult:
    """A complete HTTP answer: status, the ``Cache-Control`` header and the body."""

    status: int
    cache_control: str | None
    body: bytes


@dataclass(frozen=True, slots=True)
class FetchFailure:
    """No answer to judge: the connection failed, timed out or the body was too large."""

    reason: str


class BodyTooLarge(Exception):
    """Raised inside the fetchers only; they turn it into a :class:`FetchFailure`."""


class BoundedBody:
    """Collects a response body and stops at ``limit`` bytes plus one.

    The fetchers ask :meth:`want` how much to read next, so the body is never
    read whole: one byte past the limit proves it too large.
    """

    __slots__ = ("_chunks", "_limit", "_size")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: list[bytes] = []
        self._size = 0

    def check_declared(self, content_length: str | None) -> None:
        """Refuse a declared ``Content-Length`` over the limit before reading anything."""
        if content_length is None:
            return
        text = content_length.strip()
        if text.isdigit() and int(text) > self._limit:
            raise BodyTooLarge(f"the JWK Set is larger than {self._limit} bytes")

    def want(self) -> int:
        """How many more bytes may be read: up to the limit plus one."""
        return self._limit + 1 - self._size

    def add(self, chunk: bytes) -> None:
        self._chunks.append(chunk)
        self._size += len(chunk)
        if self._size > self._limit:
            raise BodyTooLarge(f"the JWK Set is larger than {self._limit} bytes")

    def value(self) -> bytes:
        return b"".join(self._chunks)


# -- the cache and the decisions ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CacheState:
    """What the client knows: the last good set and the last fetch attempt."""

    keys: KeySet | None = None
    fetched_at: float = 0.0
    expires_at: float = 0.0
    last_attempt: float | None = None
    last_error: str | None = None


_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d{1,12})\"?\s*(?:$|,)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|[,\s])(?:no-store|no-cache)\s*(?:$|[,=])", re.IGNORECASE)


def ttl_for(cache_control: str | None, options: JWKSOptions) -> float:
    """How long a fetched set stays fresh, from ``Cache-Control`` within the bounds."""
    if cache_control is None:
        ttl = options.default_ttl
    elif _NO_CACHE.search(cache_control):
        ttl = options.min_ttl
    else:
        match = _MAX_AGE.search(cache_control)
        ttl = float(match.group(1)) if match else options.default_ttl
    return min(max(ttl, options.min_ttl), options.max_ttl)


def _cooldown_over(state: CacheState, options: JWKSOptions, now: float) -> bool:
    # A clock that stepped back (a wall clock corrected by NTP, a restored VM)
    # ends the cooldown: otherwise no fetch would happen until it caught up.
    last = state.last_attempt
    return last is None or now < last or now - last >= options.refetch_cooldown


def _stepped_back(state: CacheState, now: float) -> bool:
    """Whether ``now`` is before the set was fetched: its age is then unknown."""
    return state.keys is not None and now < state.fetched_at


def needs_fetch(state: CacheState, options: JWKSOptions, now: float, kid: str | None) -> bool:
    """Whether a lookup of ``kid`` at ``now`` should fetch the JWK Set first.

    A set fetched "in the future" of ``now`` (the clock stepped back) counts
    as expired, so it is refetched rather than served as fresh for as long as
    the clock took to catch up.
    """
    if state.keys is None or now >= state.expires_at or _stepped_back(state, now):
        return _cooldown_over(state, options, now)
    if kid is not None and kid not in state.keys:
        return _cooldown_over(state, options, now)
    return False


def serves_without_fetch(
    state: CacheState, options: JWKSOptions, now: float, kid: str | None
) -> bool:
    """Whether ``kid`` can be answered at ``now`` from the cache, fetch or not.

    True for a known ``kid`` (or none) in a set still within ``max_staleness``:
    such a lookup need not wait for a fetch in flight, it serves the cached
    key meanwhile (stale-while-revalidate).
    """
    if (
        state.keys is None
        or now > state.expires_at + options.max_staleness
        or _stepped_back(state, now)
    ):
        return False
    return kid is None or kid in state.keys


def parse_jwks(body: bytes, options: JWKSOptions) -> KeySet:
    """The key set in a fetched body; raises a ``JWTWardError`` for anything else."""
    try:
        doc = loads_object(body, max_size=options.max_document_size)
    except DecodeError as exc:
        raise KeySourceUnavailable(f"the JWK Set is not a JSON object: {exc}") from None
    entries = doc.get("keys")
    if isinstance(entries, list) and len(entries) > options.max_keys:
        raise KeySourceUnavailable(f"the JWK Set holds more than {options.max_keys} keys")
    keys = KeySet.from_jwks(
        doc, public_only=True, ignore_unsupported=True, default_alg=options.default_alg
    )
    if not len(keys):
        raise KeySourceUnavailable("the JWK Set holds no usable key")
    return keys


def apply_fetch(
    state: CacheState, options: JWKSOptions, now: float, outcome: HTTPResult | FetchFailure
) -> CacheState:
    """The state after a fetch at ``now``: a new fresh set, or the old one kept.

    Every failure keeps the last good set (stale-while-error) and records why.
    """
    if isinstance(outcome, FetchFailure):
        return replace(state, last_attempt=now, last_error=outcome.reason)
    if outcome.status != 200:
        if 300 <= outcome.status < 400:
            reason = f"the JWKS endpoint redirected (HTTP {outcome.status}); redirects are refused"
        else:
            reason = f"the JWKS endpoint answered HTTP {outcome.status}"
        return replace(state, last_attempt=now, last_error=reason)
    try:
        keys = parse_jwks(outcome.body, options)
    except JWTWardError as exc:
        return replace(state, last_attempt=now, last_error=f"invalid JWK Set: {exc}")
    ttl = ttl_for(outcome.cache_control, options)
    return CacheState(keys=keys, fetched_at=now, expires_at=now + ttl, last_attempt=now)


def usable_keys(state: CacheState, options: JWKSOptions, now: float) -> KeySet:
    """The set to serve at ``now``: fresh, or stale within ``max_staleness``.

    When the clock is before the fetch (it stepped back) and the refetch that
    triggers failed, the set's age cannot be told, so it is not served.
    """
    if state.keys is None:
        raise KeySourceUnavailable(
            f"no JWK Set could be fetched ({state.last_error or 'not fetched yet'})"
        )
    if _stepped_back(state, now):
        raise KeySourceUnavailable(
            "the clock is before the cached JWK Set was fetched, so its age is unknown "
            f"({state.last_error or 'no refetch attempted'})"
        )
    if now > state.expires_at + options.max_staleness:
        raise KeySourceUnavailable(
            "the cached JWK Set is stale beyond max_staleness "
            f"({state.last_error or 'no refetch attempted'})"
        )
    return state.keys


def choose_key(state: CacheState, options: JWKSOptions, now: float, kid: str | None) -> Key:
    """The key for ``kid`` from the set served at ``now``.

    Raises ``KeySourceUnavailable`` (503) when no set may be served and
    ``KeyNotFound`` (401) when the set has no such key. An unknown ``kid`` is
    a decision about the token only when the set is fresh and the last fetch
    succeeded: during an outage or from a stale set, the issuer may well have
    rotated to that key, so the answer is "retry later" (503), not "forged".
    """
    keys = usable_keys(state, options, now)
    if kid is not None and kid not in keys:
        if state.last_error is not None or not state.fetched_at <= now < state.expires_at:
            raise KeySourceUnavailable(
                "the token's kid is not in the cached JWK Set, which could not be "
                f"refreshed ({state.last_error or 'the cached set is stale'})"
            )
        raise KeyNotFound("no key in the issuer's JWK Set has the token's kid")
    return keys.select(kid)


# -- what both clients share ------------------------------------------------------------


class RemoteJWKSBase:
    """Configuration, clock and cache state common to the sync and async clients.

    The cache state is one immutable :class:`CacheState` replaced as a whole,
    so a reader never sees half of an update; the subclasses serialize the
    fetches.
    """

    def __init__(
        self,
        url: str,
        *,
        default_alg: str | None = None,
        min_ttl: Seconds = 60.0,
        max_ttl: Seconds = 86400.0,
        default_ttl: Seconds = 300.0,
        refetch_cooldown: Seconds = 30.0,
        max_staleness: Seconds = 6 * 3600.0,
        connect_timeout: Seconds = 5.0,
        read_timeout: Seconds = 5.0,
        max_document_size: int = DEFAULT_MAX_DOCUMENT_SIZE,
        max_keys: int = 100,
        allow_insecure_loopback: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._options = JWKSOptions(
            default_alg=default_alg,
            min_ttl=_seconds("min_ttl", min_ttl),
            max_ttl=_seconds("max_ttl", max_ttl),
            default_ttl=_seconds("default_ttl", default_ttl),
            refetch_cooldown=_seconds("refetch_cooldown", refetch_cooldown),
            max_staleness=_seconds("max_staleness", max_staleness),
            connect_timeout=_seconds("connect_timeout", connect_timeout),
            read_timeout=_seconds("read_timeout", read_timeout),
            max_document_size=max_document_size,
            max_keys=max_keys,
            allow_insecure_loopback=allow_insecure_loopback,
            ssl_context=ssl_context,
        )
        self._url = check_url(url, allow_insecure_loopback=allow_insecure_loopback)
        if not callable(clock):
            raise InvalidArgument("clock must be a callable returning seconds")
        self._clock = clock
        self._state = CacheState()
        self._prepare()

    def _prepare(self) -> None:
        """Set up the transport and the lock: each client does its own."""

    @property
    def url(self) -> str:
        return self._url

    @property
    def options(self) -> JWKSOptions:
        return self._options

    @property
    def state(self) -> CacheState:
        """A snapshot of the cache (for health checks and metrics)."""
        return self._state

    def _fetched(self, outcome: HTTPResult | FetchFailure, now: float) -> None:
        self._state = apply_fetch(self._state, self._options, now, outcome)

    def _refreshed_keys(self) -> KeySet:
        """After a forced fetch: the new set, or the failure as a 503."""
        state = self._state
        if state.keys is None or state.last_error is not None:
            raise KeySourceUnavailable(
                f"the JWK Set could not be refreshed ({state.last_error or 'unknown'})"
            )
        return state.keys

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._url!r})"
