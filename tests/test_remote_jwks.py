"""The remote JWKS clients against a real HTTP server on 127.0.0.1 whose answers change.

The cache clock is injected (a ``FakeClock``): TTLs, cooldowns and staleness
are crossed by advancing it, never by sleeping. Real time passes only where
the network itself is under test (a read timeout of a fraction of a second).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from jwtward import Key, KeySource, Policy, jwt
from jwtward.errors import (
    InvalidArgument,
    JWTWardError,
    KeyNotFound,
    KeySourceUnavailable,
)
from jwtward.keys import remote_async
from jwtward.keys.remote import (
    BodyTooLarge,
    BoundedBody,
    CacheState,
    FetchFailure,
    HTTPResult,
    JWKSOptions,
    apply_fetch,
    check_url,
    choose_key,
    needs_fetch,
    ttl_for,
)
from jwtward.keys.remote_async import AsyncJWKSClient
from jwtward.keys.remote_sync import JWKSClient, _read_body

TEN_MB = 10 * 1024 * 1024
HANDLER_WAIT = 10.0  # seconds; a bound on every wait for the server thread, never reached

# -- fixtures: keys, a clock, a changing server ---------------------------------------

K1 = Key.generate("ES256", kid="k1")
K2 = Key.generate("ES256", kid="k2")
K3 = Key.generate("ES256", kid="k3")


def jwks(*keys: Key) -> dict[str, Any]:
    return {"keys": [key.to_jwk() for key in keys]}


def token(key: Key, **claims: Any) -> str:
    return jwt.encode({"sub": "user-1", **claims}, key)


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Answer:
    """What the server says to the next GETs of /jwks."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    hold: bool = False  # wait for server.release before answering
    stream_size: int | None = None  # send this many bytes, chunked by the handler
    declare_length: bool = True


def json_answer(doc: Any, cache_control: str | None = None) -> Answer:
    headers = {"Content-Type": "application/json"}
    if cache_control is not None:
        headers["Cache-Control"] = cache_control
    return Answer(body=json.dumps(doc).encode(), headers=headers)


class _QuietHTTPServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out and hung up is expected here, not an error."""


class JWKSServer:
    """An HTTP server in a thread; tests set ``answer`` and read the counters."""

    def __init__(self) -> None:
        self.answer = json_answer(jwks(K1))
        self.requests: dict[str, int] = {}
        self.release = threading.Event()
        self.received = threading.Event()
        self.handler_done = threading.Event()
        self.sent = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.requests[self.path] = server.requests.get(self.path, 0) + 1
                server.received.set()
                try:
                    server.respond(self, server.answer)
                finally:
                    server.handler_done.set()

        self.httpd = _QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks"

    def count(self, path: str = "/jwks") -> int:
        return self.requests.get(path, 0)

    def respond(self, handler: BaseHTTPRequestHandler, answer: Answer) -> None:
        if answer.hold:
            self.release.wait(HANDLER_WAIT)
        handler.send_response(answer.status)
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        if answer.stream_size is not None:
            self.stream(handler, answer)
            return
        handler.send_header("Content-Length", str(len(answer.body)))
        handler.end_headers()
        handler.wfile.write(answer.body)

    def stream(self, handler: BaseHTTPRequestHandler, answer: Answer) -> None:
        assert answer.stream_size is not None
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        handler.connection.settimeout(HANDLER_WAIT)
        if answer.declare_length:
            handler.send_header("Content-Length", str(answer.stream_size))
        handler.end_headers()
        chunk = b'{"keys": [' + b" " * (65536 - 10)
        try:
            while self.sent < answer.stream_size:
                handler.wfile.write(chunk)
                handler.wfile.flush()
                self.sent += len(chunk)
        except OSError:
            handler.close_connection = True

    def __enter__(self) -> JWKSServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(HANDLER_WAIT)


@pytest.fixture
def server() -> Iterator[JWKSServer]:
    with JWKSServer() as srv:
        yield srv


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def sync_client(server: JWKSServer, clock: FakeClock, **options: Any) -> JWKSClient:
    options.setdefault("allow_insecure_loopback", True)
    options.setdefault("read_timeout", 2.0)
    options.setdefault("connect_timeout", 2.0)
    return JWKSClient(server.url, clock=clock, **options)


def async_client(server: JWKSServer, clock: FakeClock, **options: Any) -> AsyncJWKSClient:
    options.setdefault("allow_insecure_loopback", True)
    options.setdefault("read_timeout", 2.0)
    options.setdefault("connect_timeout", 2.0)
    return AsyncJWKSClient(server.url, clock=clock, **options)


class RawServer:
    """A TCP server on 127.0.0.1 that runs ``script(connection)`` for each request.

    For answers no HTTP server library would send: headers or a body trickled
    a byte at a time. A script stops as soon as the client hangs up.
    """

    def __init__(self, script: Callable[[socket.socket], None]) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.hung_up = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks"

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(HANDLER_WAIT)
                try:
                    connection.recv(65536)
                    self.script(connection)
                except OSError:
                    self.hung_up.set()

    def __enter__(self) -> RawServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(HANDLER_WAIT)
        self.listener.close()


def trickle(connection: socket.socket, data: bytes, pause: threading.Event) -> None:
    """Send ``data`` one byte at a time, a short wait between bytes."""
    for byte in data:
        connection.sendall(bytes([byte]))
        pause.wait(0.05)


# -- the sync client ------------------------------------------------------------------


def test_jwt_decode_accepts_the_client_as_key_source(server: JWKSServer, clock: FakeClock) -> None:
    client = sync_client(server, clock)
    assert isinstance(client, KeySource)
    claims = jwt.decode(token(K1, aud="api"), client, Policy(audience="api"))
    assert claims["sub"] == "user-1"
    assert jwt.decode(token(K1), client)["sub"] == "user-1"
    assert server.count() == 1  # the second decode used the cache


def test_token_signed_by_a_key_not_published_is_refused(
    server: JWKSServer, clock: FakeClock
) -> None:
    client = sync_client(server, clock)
    forged = Key.generate("ES256", kid="k1")  # same kid, other key
    with pytest.raises(JWTWardError) as info:
        jwt.decode(token(forged), client)
    assert info.value.status_code == 401


def test_rotation_refetches_on_unknown_kid_once_per_cooldown(
    server: JWKSServer, clock: FakeClock
) -> None:
    client = sync_client(server, clock, refetch_cooldown=timedelta(seconds=30))
    assert client.select("k1").kid == "k1"
    server.answer = json_answer(jwks(K1, K2))
    # Within the cooldown of the first fetch, the new kid is not fetched for.
    clock.advance(29.9)
    with pytest.raises(KeyNotFound):
        client.select("k2")
    assert server.count() == 1
    clock.advance(0.1)
    assert jwt.decode(token(K2), client)["sub"] == "user-1"
    assert server.count() == 2
    # A made-up kid right after: no fetch within the cooldown, KeyNotFound.
    for _ in range(5):
        with pytest.raises(KeyNotFound):
            client.select("made-up")
    assert server.count() == 2
    # After the cooldown, one refetch, then KeyNotFound again.
    clock.advance(30)
    with pytest.raises(KeyNotFound):
        client.select("made-up")
    with pytest.raises(KeyNotFound):
        client.select("made-up")
    assert server.count() == 3


def test_removed_key_stops_verifying_after_refetch(server: JWKSServer, clock: FakeClock) -> None:
    server.answer = json_answer(jwks(K1, K2), cache_control="max-age=60")
    client = sync_client(server, clock, min_ttl=60)
    old = token(K1)
    assert jwt.decode(old, client)["sub"] == "user-1"
    server.answer = json_answer(jwks(K2), cache_control="max-age=60")
    clock.advance(60)
    with pytest.raises(KeyNotFound):
        jwt.decode(old, client)
    assert server.count() == 2


@pytest.mark.parametrize(
    ("cache_control", "options", "fresh_for"),
    [
        ("max-age=120", {}, 120),
        ("public, max-age=120, must-revalidate", {}, 120),
        ("max-age=5", {"min_ttl": 60}, 60),  # bounded below
        ("max-age=999999", {"max_ttl": 3600}, 3600),  # bounded above
        (None, {"default_ttl": 300}, 300),
        ("no-store", {"min_ttl": 45}, 45),
        ("private", {"default_ttl": 200}, 200),
    ],
)
def test_max_age_honoured_within_bounds(
    server: JWKSServer,
    clock: FakeClock,
    cache_control: str | None,
    options: dict[str, Any],
    fresh_for: float,
) -> None:
    server.answer = json_answer(jwks(K1), cache_control=cache_control)
    client = sync_client(server, clock, refetch_cooldown=1, **options)
    client.select("k1")
    clock.advance(fresh_for - 0.5)
    client.select("k1")
    assert server.count() == 1
    clock.advance(0.5)
    client.select("k1")
    assert server.count() == 2


def test_stale_while_error_until_max_staleness_then_503(
    server: JWKSServer, clock: FakeClock
) -> None:
    server.answer = json_answer(jwks(K1), cache_control="max-age=60")
    client = sync_client(server, clock, min_ttl=60, refetch_cooldown=30, max_staleness=600)
    tok = token(K1)
    jwt.decode(tok, client)
    server.answer = Answer(status=500, body=b"oops")
    clock.advance(60)  # expired: a refetch fails, the last good set serves
    assert jwt.decode(tok, client)["sub"] == "user-1"
    assert server.count() == 2
    clock.advance(10)  # within the cooldown of the failure: no new request
    jwt.decode(tok, client)
    assert server.count() == 2
    clock.advance(590)  # exactly max_staleness past expiry: still served
    jwt.decode(tok, client)
    assert server.count() == 3
    clock.advance(0.001)
    with pytest.raises(KeySourceUnavailable) as info:
        jwt.decode(tok, client)
    assert info.value.status_code == 503
    assert "HTTP 500" in str(info.value)
    assert not isinstance(info.value, KeyNotFound)
    # The endpoint recovers: after the cooldown the next lookup fetches and serves.
    server.answer = json_answer(jwks(K1), cache_control="max-age=60")
    clock.advance(30)
    assert jwt.decode(tok, client)["sub"] == "user-1"
    assert client.state.last_error is None


def test_first_fetch_failing_is_503_and_respects_cooldown(
    server: JWKSServer, clock: FakeClock
) -> None:
    server.answer = Answer(status=503)
    client = sync_client(server, clock)
    with pytest.raises(KeySourceUnavailable):
        client.select("k1")
    with pytest.raises(KeySourceUnavailable):
        jwt.decode(token(K1), client)
    assert server.count() == 1
    server.answer = json_answer(jwks(K1))
    clock.advance(30)
    assert client.select("k1").kid == "k1"


def test_slow_endpoint_times_out_and_stale_set_serves(server: JWKSServer, clock: FakeClock) -> None:
    client = sync_client(server, clock, read_timeout=0.2, default_ttl=60, min_ttl=60)
    client.select("k1")
    server.answer = Answer(hold=True, body=json.dumps(jwks(K2)).encode())
    clock.advance(60)
    assert client.select("k1").kid == "k1"  # stale, served after the timeout
    assert "timed out" in (client.state.last_error or "")
    fresh = sync_client(server, clock, read_timeout=0.2)
    with pytest.raises(KeySourceUnavailable, match="timed out"):
        fresh.select("k1")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"keys": [}',
        b'{"keys": 5}',
        b'["keys"]',
        b'{"keys": [{"kty": "EC"}]}',
        b'{"keys": [], "keys": []}',
        b"",
    ],
)
def test_garbage_keeps_the_last_good_set(server: JWKSServer, clock: FakeClock, body: bytes) -> None:
    client = sync_client(server, clock, default_ttl=60, min_ttl=60)
    client.select("k1")
    server.answer = Answer(body=body)
    clock.advance(60)
    assert client.select("k1").kid == "k1"
    assert server.count() == 2
    assert "invalid JWK Set" in (client.state.last_error or "")
    with pytest.raises(KeySourceUnavailable, match="invalid JWK Set"):
        sync_client(server, clock).select("k1")


@pytest.mark.parametrize("declare_length", [True, False])
def test_ten_megabyte_body_is_refused_without_reading_it_all(
    server: JWKSServer, clock: FakeClock, declare_length: bool
) -> None:
    server.answer = Answer(stream_size=TEN_MB, declare_length=declare_length)
    client = sync_client(server, clock)
    with pytest.raises(KeySourceUnavailable, match="larger than 524288 bytes"):
        client.select("k1")
    assert server.handler_done.wait(HANDLER_WAIT)
    # The client closed the connection: the server could not send the rest.
    assert server.sent < TEN_MB


def test_body_reader_reads_at_most_the_limit_plus_one() -> None:
    class Endless:
        headers: dict[str, str] = {}  # noqa: RUF012

        def __init__(self) -> None:
            self.read = 0

        def read1(self, size: int) -> bytes:
            self.read += size
            return b"x" * size

    endless = Endless()
    with pytest.raises(BodyTooLarge):
        _read_body(endless, 1000)  # type: ignore[arg-type]
    assert endless.read == 1001


def test_document_at_the_size_limit_is_accepted(server: JWKSServer, clock: FakeClock) -> None:
    body = json.dumps(jwks(K1)).encode()
    server.answer = Answer(body=body)
    assert sync_client(server, clock, max_document_size=len(body)).select("k1").kid == "k1"
    with pytest.raises(KeySourceUnavailable, match="larger than"):
        sync_client(server, clock, max_document_size=len(body) - 1).select("k1")


def test_duplicate_kids_refuse_the_set(server: JWKSServer, clock: FakeClock) -> None:
    doc = jwks(K1)
    doc["keys"].append(Key.generate("ES256", kid="k1").to_jwk())
    server.answer = json_answer(doc)
    with pytest.raises(KeySourceUnavailable, match="duplicate kid"):
        sync_client(server, clock).select("k1")


def test_private_members_refuse_the_set(server: JWKSServer, clock: FakeClock) -> None:
    server.answer = json_answer({"keys": [K1.to_jwk(private=True)]})
    client = sync_client(server, clock)
    with pytest.raises(KeySourceUnavailable, match="invalid JWK Set"):
        client.select("k1")
    assert client.state.keys is None


def test_key_count_is_bounded(server: JWKSServer, clock: FakeClock) -> None:
    server.answer = json_answer(jwks(K1, K2, K3))
    with pytest.raises(KeySourceUnavailable, match="more than 2 keys"):
        sync_client(server, clock, max_keys=2).select("k1")
    assert sync_client(server, clock, max_keys=3).select("k3").kid == "k3"


def test_unsupported_keys_are_skipped_and_default_alg_binds(
    server: JWKSServer, clock: FakeClock
) -> None:
    rsa = Key.generate("RS256", kid="r1")
    rsa_jwk = rsa.to_jwk()
    del rsa_jwk["alg"]
    doc = {"keys": [{"kty": "weird", "kid": "w"}, rsa_jwk, K1.to_jwk()]}
    server.answer = json_answer(doc)
    client = sync_client(server, clock, default_alg="RS256")
    assert jwt.decode(token(rsa), client)["sub"] == "user-1"
    assert jwt.decode(token(K1), client)["sub"] == "user-1"
    assert len(client.state.keys or ()) == 2


def test_a_set_with_no_usable_key_is_refused(server: JWKSServer, clock: FakeClock) -> None:
    server.answer = json_answer({"keys": [{"kty": "weird", "kid": "w"}]})
    with pytest.raises(KeySourceUnavailable, match="no usable key"):
        sync_client(server, clock).select("w")


def test_redirects_are_not_followed(server: JWKSServer, clock: FakeClock) -> None:
    target = f"http://127.0.0.1:{server.port}/elsewhere"
    server.answer = Answer(status=302, headers={"Location": target})
    with pytest.raises(KeySourceUnavailable, match="redirect"):
        sync_client(server, clock).select("k1")
    assert server.count("/elsewhere") == 0


def test_token_without_kid_uses_the_only_key(server: JWKSServer, clock: FakeClock) -> None:
    unnamed = Key.from_jwk({k: v for k, v in K1.to_jwk(private=True).items() if k != "kid"})
    server.answer = json_answer({"keys": [unnamed.public_key().to_jwk()]})
    client = sync_client(server, clock)
    tok = jwt.encode({"sub": "user-1"}, unnamed)
    assert jwt.decode(tok, client)["sub"] == "user-1"


def test_concurrent_threads_share_one_fetch(server: JWKSServer, clock: FakeClock) -> None:
    server.answer = json_answer(jwks(K1))
    server.answer.hold = True
    client = sync_client(server, clock)
    results: list[str] = []
    errors: list[BaseException] = []

    def lookup() -> None:
        try:
            results.append(client.select("k1").kid)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=lookup) for _ in range(8)]
    for thread in threads:
        thread.start()
    assert server.received.wait(HANDLER_WAIT)
    server.release.set()
    for thread in threads:
        thread.join(HANDLER_WAIT)
    assert errors == []
    assert results == ["k1"] * 8
    assert server.count() == 1


def test_rotation_during_an_outage_gives_503(server: JWKSServer, clock: FakeClock) -> None:
    server.answer = json_answer(jwks(K1), cache_control="max-age=300")
    client = sync_client(server, clock, min_ttl=60, refetch_cooldown=30)
    client.refresh()
    server.answer = Answer(status=503)  # the endpoint goes down as the issuer rotates to k2
    rotated = token(K2)
    clock.advance(31)  # cooldown over: the unknown kid refetches, which fails
    with pytest.raises(KeySourceUnavailable) as info:
        jwt.decode(rotated, client)
    assert info.value.status_code == 503 and not isinstance(info.value, KeyNotFound)
    assert server.count() == 2
    clock.advance(400)  # the set is stale now, served within max_staleness
    assert client.select("k1").kid == "k1"
    with pytest.raises(KeySourceUnavailable):
        jwt.decode(rotated, client)
    server.answer = json_answer(jwks(K1), cache_control="max-age=300")
    clock.advance(30)  # back up, still without k2: now a verdict on the token
    with pytest.raises(KeyNotFound):
        jwt.decode(rotated, client)


def test_trickled_headers_are_cut_at_the_total_timeout(clock: FakeClock) -> None:
    pause = threading.Event()

    def script(connection: socket.socket) -> None:
        trickle(connection, b"HTTP/1.1 200 OK\r\n" + b"X" * 200 + b": y\r\n", pause)
        connection.sendall(b"Content-Length: %d\r\n\r\n%s" % (len(_body(K1)), _body(K1)))

    with RawServer(script) as raw:
        client = JWKSClient(
            raw.url,
            allow_insecure_loopback=True,
            clock=clock,
            connect_timeout=0.2,
            read_timeout=0.2,
        )
        with pytest.raises(KeySourceUnavailable, match="timed out"):
            client.select("k1")
        # The client hung up while the server was still trickling, rather
        # than noticing the deadline only once everything had arrived.
        assert raw.hung_up.wait(HANDLER_WAIT)
        pause.set()


def test_trickled_chunked_body_is_cut_at_the_total_timeout(clock: FakeClock) -> None:
    pause = threading.Event()

    def script(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        # A chunk-size line (here with a long chunk extension) is read whole
        # by one read call: only a deadline on the socket can cut it short.
        body = _body(K1)
        trickle(connection, b"%x" % len(body) + b";" * 200, pause)
        connection.sendall(b"\r\n%s\r\n0\r\n\r\n" % body)

    with RawServer(script) as raw:
        client = JWKSClient(
            raw.url,
            allow_insecure_loopback=True,
            clock=clock,
            connect_timeout=0.2,
            read_timeout=0.2,
        )
        with pytest.raises(KeySourceUnavailable, match="timed out"):
            client.select("k1")
        # The client hung up while the server was still trickling, rather
        # than noticing the deadline only once everything had arrived.
        assert raw.hung_up.wait(HANDLER_WAIT)
        pause.set()


def test_known_kid_is_served_while_another_thread_fetches(
    server: JWKSServer, clock: FakeClock
) -> None:
    client = sync_client(server, clock, default_ttl=60, min_ttl=60, read_timeout=HANDLER_WAIT * 3)
    client.refresh()
    server.answer = json_answer(jwks(K1, K2))
    server.answer.hold = True
    clock.advance(60)  # expired: the next lookup refetches, and the endpoint hangs
    fetcher = threading.Thread(target=client.select, args=("k1",))
    fetcher.start()
    assert server.received.wait(HANDLER_WAIT)
    served: list[str] = []
    done = threading.Event()

    def lookup() -> None:
        served.append(client.select("k1").kid)
        done.set()

    threading.Thread(target=lookup, daemon=True).start()
    assert done.wait(HANDLER_WAIT)  # answered while the fetch still hangs
    assert fetcher.is_alive() and served == ["k1"]
    server.release.set()
    fetcher.join(HANDLER_WAIT)
    assert client.select("k2").kid == "k2"
    assert server.count() == 2


def test_clock_stepping_back_refetches(server: JWKSServer, clock: FakeClock) -> None:
    clock.now = 1_700_000_000.0
    client = sync_client(server, clock, default_ttl=300, min_ttl=60, max_staleness=600)
    client.refresh()
    clock.advance(-86400)  # a wall clock corrected back by one day
    assert client.select("k1").kid == "k1"
    assert server.count() == 2  # the set's age was unknown: it was fetched again
    server.answer = Answer(status=500)
    clock.advance(-86400)
    with pytest.raises(KeySourceUnavailable, match="age is unknown"):
        client.select("k1")
    assert server.count() == 3  # the cooldown did not wait for the clock to catch up


def test_refresh_bypasses_the_cooldown_and_reports_failure(
    server: JWKSServer, clock: FakeClock
) -> None:
    client = sync_client(server, clock)
    assert [key.kid for key in client.refresh()] == ["k1"]
    server.answer = json_answer(jwks(K1, K2))
    assert [key.kid for key in client.refresh()] == ["k1", "k2"]
    assert server.count() == 2
    server.answer = Answer(status=500)
    with pytest.raises(KeySourceUnavailable, match="HTTP 500"):
        client.refresh()
    assert client.select("k2").kid == "k2"  # the last good set stays


# -- URLs and options ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://issuer.example/jwks",
        "http://10.0.0.1/jwks",
        "http://127.0.0.1.example/jwks",
        "ftp://127.0.0.1/jwks",
        "file:///etc/jwks.json",
        "https:///jwks",
        "https://user:pw@issuer.example/jwks",
        "https://issuer.example:99999/jwks",
        "https://exa mple.com/jwks",
        "https://issuer.example/jw ks",
        "https://issuer.example/\x00",
        "https://issuer.example/jwks\r\nX-Evil: 1",
        "https://a\tb.example/jwks",
        " https://issuer.example/jwks",
        "https://ex\u00e4mple.com/jwks",
        "https://\u3002example/jwks",
        "https://issuer.example/jwks?",
        "https://issuer.example/jwks#",
    ],
)
def test_insecure_or_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidArgument):
        JWKSClient(url, allow_insecure_loopback=True)
    with pytest.raises(InvalidArgument):
        AsyncJWKSClient(url, allow_insecure_loopback=True)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/jwks", "http://localhost:8080/jwks", "http://[::1]/jwks"]
)
def test_loopback_http_only_when_explicitly_allowed(url: str) -> None:
    with pytest.raises(InvalidArgument, match="https"):
        JWKSClient(url)
    assert check_url(url, allow_insecure_loopback=True) == url


def test_https_is_accepted_without_fetching() -> None:
    client = JWKSClient("https://issuer.example/.well-known/jwks.json")
    assert client.url == "https://issuer.example/.well-known/jwks.json"
    assert client.state.last_attempt is None


@pytest.mark.parametrize(
    "options",
    [
        {"min_ttl": 100, "max_ttl": 10},
        {"refetch_cooldown": -1},
        {"read_timeout": 0},
        {"connect_timeout": float("inf")},
        {"max_staleness": float("nan")},
        {"default_ttl": timedelta(days=-1)},
        {"max_document_size": 0},
        {"max_keys": 5000},
        {"max_keys": True},
        {"max_staleness": "1h"},
        {"default_alg": 256},
        {"default_alg": "RS265"},
        {"default_alg": "none"},
        {"refetch_cooldown": 0},
        {"refetch_cooldown": 0.5},
    ],
)
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        JWKSClient("https://issuer.example/jwks", **options)


# -- the pure decisions, directly --------------------------------------------------------


def test_ttl_for_reads_max_age_only_as_a_whole_directive() -> None:
    options = JWKSOptions(min_ttl=10, max_ttl=1000, default_ttl=77)
    assert ttl_for("s-maxage=500", options) == 77
    assert ttl_for("max-age=500", options) == 500
    assert ttl_for('max-age="500"', options) == 500
    assert ttl_for("max-age=abc", options) == 77
    assert ttl_for("no-cache, max-age=500", options) == 10


def test_decisions_follow_state_and_time() -> None:
    options = JWKSOptions(refetch_cooldown=30, max_staleness=100)
    empty = CacheState()
    assert needs_fetch(empty, options, 0.0, "k1")
    state = apply_fetch(empty, options, 0.0, HTTPResult(200, "max-age=60", _body(K1)))
    assert not needs_fetch(state, options, 59.9, "k1")
    assert not needs_fetch(state, options, 29.9, "k2")
    assert needs_fetch(state, options, 30.0, "k2")
    assert needs_fetch(state, options, 60.0, "k1")
    failed = apply_fetch(state, options, 60.0, HTTPResult(500, None, b""))
    assert failed.keys is state.keys and failed.last_error is not None
    assert not needs_fetch(failed, options, 89.9, "k1")
    assert choose_key(failed, options, 160.0, "k1").kid == "k1"
    with pytest.raises(KeySourceUnavailable):
        choose_key(failed, options, 160.001, "k1")
    with pytest.raises(KeyNotFound):
        choose_key(state, options, 10.0, "k2")  # fresh, fetched: a verdict on the token
    with pytest.raises(KeySourceUnavailable):
        choose_key(failed, options, 100.0, "k2")  # the refetch failed: retry later
    with pytest.raises(KeySourceUnavailable):
        choose_key(state, options, 60.0, "k2")  # the set is stale: retry later


def _body(*keys: Key) -> bytes:
    return json.dumps(jwks(*keys)).encode()


def test_bounded_body_refuses_declared_length_before_reading() -> None:
    body = BoundedBody(100)
    body.check_declared("100")
    with pytest.raises(BodyTooLarge):
        body.check_declared("101")
    assert body.want() == 101


# -- the async client --------------------------------------------------------------------


def run(make: Callable[[], Any]) -> Any:
    return asyncio.run(make())


def test_async_decode_and_rotation_with_cooldown(server: JWKSServer, clock: FakeClock) -> None:
    async def scenario() -> None:
        client = async_client(server, clock, refetch_cooldown=30)
        assert (await client.decode(token(K1, aud="api"), Policy(audience="api")))["sub"]
        server.answer = json_answer(jwks(K1, K2))
        with pytest.raises(KeyNotFound):
            await client.decode(token(K2))
        assert server.count() == 1
        clock.advance(30)
        assert (await client.decode(token(K2)))["sub"] == "user-1"
        assert server.count() == 2
        with pytest.raises(KeyNotFound):
            await client.select_async("made-up")
        assert server.count() == 2
        # The sync KeySource view answers from the cache, without I/O.
        assert jwt.decode(token(K2), client)["sub"] == "user-1"

    run(scenario)


def test_async_stale_while_error_then_503(server: JWKSServer, clock: FakeClock) -> None:
    async def scenario() -> None:
        client = async_client(server, clock, default_ttl=60, min_ttl=60, max_staleness=100)
        await client.select_async("k1")
        server.answer = Answer(body=b"{garbage")
        clock.advance(60)
        assert (await client.select_async("k1")).kid == "k1"
        assert server.count() == 2
        clock.advance(100.001)
        with pytest.raises(KeySourceUnavailable) as info:
            await client.decode(token(K1))
        assert info.value.status_code == 503

    run(scenario)


def test_async_timeout_and_huge_body(server: JWKSServer, clock: FakeClock) -> None:
    async def scenario() -> None:
        server.answer = Answer(hold=True, body=_body(K1))
        with pytest.raises(KeySourceUnavailable, match="timed out"):
            await async_client(server, clock, read_timeout=0.2).select_async("k1")
        server.release.set()
        server.handler_done.clear()
        server.answer = Answer(stream_size=TEN_MB, declare_length=False)
        with pytest.raises(KeySourceUnavailable, match="larger than"):
            await async_client(server, clock).select_async("k1")

    run(scenario)
    assert server.handler_done.wait(HANDLER_WAIT)
    assert server.sent < TEN_MB


def test_async_refuses_redirects_and_bad_sets(server: JWKSServer, clock: FakeClock) -> None:
    async def scenario() -> None:
        server.answer = Answer(status=301, headers={"Location": "/elsewhere"})
        with pytest.raises(KeySourceUnavailable, match="redirect"):
            await async_client(server, clock).select_async("k1")
        assert server.count("/elsewhere") == 0
        doc = jwks(K1)
        doc["keys"].append(K1.to_jwk())
        server.answer = json_answer(doc)
        with pytest.raises(KeySourceUnavailable, match="duplicate kid"):
            await async_client(server, clock).select_async("k1")
        server.answer = json_answer({"keys": [K1.to_jwk(private=True)]})
        with pytest.raises(KeySourceUnavailable):
            await async_client(server, clock).select_async("k1")
        server.answer = Answer(status=500)
        with pytest.raises(KeySourceUnavailable, match="HTTP 500"):
            await async_client(server, clock).refresh()

    run(scenario)


def test_async_concurrent_lookups_share_one_fetch(server: JWKSServer, clock: FakeClock) -> None:
    async def scenario() -> list[str]:
        client = async_client(server, clock)

        async def release_when_asked() -> None:
            await asyncio.to_thread(server.received.wait, HANDLER_WAIT)
            server.release.set()

        releaser = asyncio.create_task(release_when_asked())
        keys = await asyncio.gather(*(client.select_async("k1") for _ in range(10)))
        await releaser
        return [key.kid for key in keys]

    server.answer = json_answer(jwks(K1))
    server.answer.hold = True
    assert run(scenario) == ["k1"] * 10
    assert server.count() == 1


def test_async_max_age_honoured(server: JWKSServer, clock: FakeClock) -> None:
    async def scenario() -> None:
        server.answer = json_answer(jwks(K1), cache_control="max-age=90")
        client = async_client(server, clock, min_ttl=10)
        await client.select_async("k1")
        clock.advance(89.9)
        await client.select_async("k1")
        assert server.count() == 1
        clock.advance(0.1)
        await client.select_async("k1")
        assert server.count() == 2

    run(scenario)


def test_async_rotation_during_an_outage_gives_503(server: JWKSServer, clock: FakeClock) -> None:
    async def scenario() -> None:
        client = async_client(server, clock, refetch_cooldown=30)
        await client.refresh()
        server.answer = Answer(status=503)
        clock.advance(31)
        with pytest.raises(KeySourceUnavailable):
            await client.decode(token(K2))
        assert server.count() == 2

    run(scenario)


def test_async_cancelled_caller_still_starts_the_cooldown(
    server: JWKSServer, clock: FakeClock
) -> None:
    async def scenario() -> None:
        client = async_client(server, clock, refetch_cooldown=30)
        lookup = asyncio.create_task(client.select_async("made-up-0"))
        await asyncio.to_thread(server.received.wait, HANDLER_WAIT)
        lookup.cancel()  # the caller gives up (a request timeout, a client gone)
        with pytest.raises(asyncio.CancelledError):
            await lookup
        assert client.state.last_attempt == clock.now
        server.release.set()
        for n in range(1, 5):
            with pytest.raises(KeyNotFound):
                await client.select_async(f"made-up-{n}")
        assert server.count() == 1
        assert (await client.select_async("k1")).kid == "k1"

    server.answer = json_answer(jwks(K1))
    server.answer.hold = True
    run(scenario)


def test_async_client_serves_several_event_loops(server: JWKSServer, clock: FakeClock) -> None:
    client = async_client(server, clock, default_ttl=60, min_ttl=60)

    async def burst() -> list[str]:
        keys = await asyncio.gather(*(client.select_async("k1") for _ in range(3)))
        return [key.kid for key in keys]

    assert asyncio.run(burst()) == ["k1"] * 3
    clock.advance(60)  # expired: the second loop's burst fetches again
    assert asyncio.run(burst()) == ["k1"] * 3
    assert server.count() == 2


def test_async_fetch_turns_urls_httpx_refuses_into_failures() -> None:
    async def scenario() -> None:
        options = JWKSOptions(allow_insecure_loopback=True)
        for url in ("http://127.0.0.1:9/\x00", "http://127.0.0.1:9/jwks\r\nX-Evil: 1"):
            outcome = await remote_async.fetch_async(url, options, options.tls_context())
            assert isinstance(outcome, FetchFailure)

    run(scenario)


def test_async_client_without_httpx_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(ImportError, match=r"jwtward\[jwks-async\]"):
        AsyncJWKSClient("https://issuer.example/jwks")
    with pytest.raises(ImportError, match=r"jwtward\[jwks-async\]"):
        remote_async._httpx()
