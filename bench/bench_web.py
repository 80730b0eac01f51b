"""Requests per second of a protected FastAPI route: jwtward against PyJWT and no auth.

Three apps serve the same ``GET /orders`` route, each in its own uvicorn
process (one worker, no access log, the same event loop and HTTP parser for
all), on a free port of 127.0.0.1:

- ``none``: no authentication; the request still carries the bearer header.
- ``PyJWT``: an ``async`` dependency that reads the ``Authorization: Bearer``
  header and calls ``jwt.decode(token, key, algorithms=["ES256"],
  audience=..., issuer=..., options={"require": ["exp", "iss", "aud"]})``
  on a key object loaded once. It has no revocation check (PyJWT has none).
- ``jwtward``: ``Depends(auth.claims)`` of
  ``jwtward.web.fastapi.FastAPIAuth(AsyncTokenService(...))``, which checks
  the signature and claims and asks the token store, on every request,
  whether the token, its session or its subject was revoked. The store is a
  ``MemoryTokenStore`` behind a small async adapter defined here that calls it
  directly: the memory store never blocks, so it needs no thread hop. This
  adapter is the only bench-specific part of the jwtward app.

Every request of every app carries an ES256 access token issued by the
jwtward app's ``AsyncTokenService``; the PyJWT app verifies the same tokens
with the same public key. Two cases, measured in the same run:

- ``reused``: one token on every request, the common case (a client holds its
  token for its lifetime). jwtward's service keeps a memo of verified tokens,
  which admits a token on its second use, so it checks that signature twice;
  the store is still asked every time.
- ``distinct``: a pool of pre-issued tokens, each of its own session, walked in
  order. The pool is four times the service's memo, so every request misses
  the memo and pays for the signature (and, back only after 16k others, no
  token is ever admitted to it).

The load generator is a separate process: N keep-alive HTTP/1.1 connections
written with asyncio streams (no pipelining), each sending its next request
when the previous answer is read. A measurement warms up, then counts the
answers of a fixed interval. Rounds are interleaved (every app of a case runs
once per round, in a rotating order); the table shows the median req/s per
app and the spread of the rounds. Every answer must be a 200 with a complete
body: any other status, or a broken connection, fails the run.

Before timing, the script checks that the PyJWT and jwtward routes refuse a
request without a token and one with an altered signature, that the jwtward
route refuses a revoked token (PyJWT, without a store, must accept it: that is
the work it does not do), and that a token the jwtward route has just
accepted twice (and so memoized) is refused once revoked. Run from the
repository root::

    .venv/bin/python bench/bench_web.py [--quick] [--json] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request

from _inputs import tampered
from _report import base_parser, dump_json, environment, header, json_report, target_summary
from jwtward.tokens import AccessClaims

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
HOST = "127.0.0.1"
ISSUER = "https://auth.example.com"
AUDIENCE = "https://api.example.com"
SUBJECT = "user-1234567890"
SCOPE = "orders:read"
PATH = "/orders"
APPS = ("none", "PyJWT", "jwtward")
MODES = ("reused", "distinct")
# jwtward req/s over the PyJWT route's, at least.
TARGETS = {"reused": 1.5, "distinct": 1.15}
# A server that had less than this share of one CPU during a measurement was
# not the bottleneck (the load generator or the machine was): flagged.
MIN_SERVER_CPU = 0.85

# Environment of a server process (this module is also its app factory).
ENV_APP = "BENCH_WEB_APP"
ENV_STATE = "BENCH_WEB_STATE"
ENV_POOL = "BENCH_WEB_POOL"
ENV_PROFILE = "BENCH_WEB_PROFILE"


# -- the apps (run inside uvicorn) -----------------------------------------------------


class InlineMemoryStore:
    """An async token store over ``MemoryTokenStore`` that calls it on the loop.

    ``ThreadedStore`` would send every call to a thread, the right thing for a
    store that may block; the memory store only takes an uncontended lock
    around a few dict operations, so here it is called directly and the
    benchmark measures jwtward's request path rather than a thread hop.
    """

    def __init__(self) -> None:
        from jwtward.tokens import MemoryTokenStore

        self.sync_store = MemoryTokenStore()

    async def create_family(self, family: Any, first: Any) -> None:
        self.sync_store.create_family(family, first)

    async def load_refresh(self, token_hash: str) -> Any:
        return self.sync_store.load_refresh(token_hash)

    async def rotate(
        self, token_hash: str, used_at: float, successor: Any, sealed_successor: bytes | None
    ) -> bool:
        return self.sync_store.rotate(token_hash, used_at, successor, sealed_successor)

    async def revoke_family(self, family_id: str, revoked_at: float) -> None:
        self.sync_store.revoke_family(family_id, revoked_at)

    async def revoke_access(self, jti: str, expires_at: float) -> None:
        self.sync_store.revoke_access(jti, expires_at)

    async def revoke_subject(self, subject: str, cutoff: float, keep_until: float) -> None:
        self.sync_store.revoke_subject(subject, cutoff, keep_until)

    async def access_view(self, jti: str, family_id: str, subject: str) -> Any:
        return self.sync_store.access_view(jti, family_id, subject)

    async def sessions(self, subject: str) -> Any:
        return self.sync_store.sessions(subject)

    async def purge_expired(self, now: float) -> int:
        return self.sync_store.purge_expired(now)

    async def ping(self) -> None:
        self.sync_store.ping()

    async def close(self) -> None:
        self.sync_store.close()


def create_app() -> FastAPI:
    """The app named by ``BENCH_WEB_APP``, for ``uvicorn --factory``."""
    kind = os.environ[ENV_APP]
    state = Path(os.environ[ENV_STATE])
    if kind == "jwtward":
        app = _jwtward_app(state, int(os.environ[ENV_POOL]))
    elif kind == "PyJWT":
        app = _pyjwt_app(state)
    elif kind == "none":
        app = _plain_app()
    else:
        raise SystemExit(f"unknown app {kind!r}")

    @app.get("/ready")
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    return app


def _profiled(inner: Any) -> Any:
    """A lifespan that runs ``inner`` under cProfile when ``BENCH_WEB_PROFILE`` names a file."""
    target = os.environ.get(ENV_PROFILE)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with inner(app):
            if not target:
                yield
                return
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
            try:
                yield
            finally:
                profiler.disable()
                profiler.dump_stats(target)

    return lifespan


def _jwtward_app(state: Path, pool: int) -> FastAPI:
    from jwtward.keys import KeyRing
    from jwtward.tokens import AsyncTokenService
    from jwtward.web.fastapi import FastAPIAuth

    ring = KeyRing.generate("ES256")
    service = AsyncTokenService(ring, issuer=ISSUER, audience=AUDIENCE, store=InlineMemoryStore())
    auth = FastAPIAuth(service)
    victim: dict[str, str] = {}

    @contextlib.asynccontextmanager
    async def issue_tokens(_app: Any) -> AsyncIterator[None]:
        """Issue the tokens of the run (the store lives here), then publish them."""

        async def access() -> str:
            return (await service.issue(SUBJECT, scope=SCOPE)).access_token

        tokens = [await access() for _ in range(pool)]
        reused, revoked, victim["token"] = await access(), await access(), await access()
        await service.revoke(revoked)
        published = {
            "public_jwk": ring.signing_key().public_key().to_jwk(),
            "reused": reused,
            "revoked": revoked,
            "victim": victim["token"],
            "tokens": tokens,
        }
        partial = state.with_suffix(".partial")
        partial.write_text(json.dumps(published))
        partial.replace(state)
        yield

    app = FastAPI(lifespan=_profiled(issue_tokens))
    auth.install(app)

    @app.get(PATH)
    async def orders(claims: AccessClaims = Depends(auth.claims)) -> dict[str, Any]:  # noqa: B008
        return {"sub": claims.subject}

    @app.post("/bench/revoke-victim")
    async def revoke_victim() -> dict[str, bool]:
        """Revoke the check token (not timed): the memo must not outlive a revocation."""
        await service.revoke(victim["token"])
        return {"revoked": True}

    return app


def _pyjwt_app(state: Path) -> FastAPI:
    import jwt

    key = jwt.PyJWK(json.loads(state.read_text())["public_jwk"], algorithm="ES256")
    algorithms = ["ES256"]
    options: Any = {"require": ["exp", "iss", "aud"]}

    async def claims(request: Request) -> dict[str, Any]:
        """A minimal, correct bearer dependency: header, signature, exp, iss, aud."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "missing token", headers={"WWW-Authenticate": "Bearer"})
        try:
            decoded: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=AUDIENCE,
                issuer=ISSUER,
                options=options,
            )
        except jwt.InvalidTokenError:
            raise HTTPException(
                401, "invalid token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            ) from None
        return decoded

    app = FastAPI(lifespan=_profiled(_nothing))

    @app.get(PATH)
    async def orders(
        decoded: dict[str, Any] = Depends(claims),  # noqa: B008
    ) -> dict[str, Any]:
        return {"sub": decoded["sub"]}

    return app


def _plain_app() -> FastAPI:
    app = FastAPI(lifespan=_profiled(_nothing))

    @app.get(PATH)
    async def orders() -> dict[str, Any]:
        return {"sub": SUBJECT}

    return app


@contextlib.asynccontextmanager
async def _nothing(_app: Any) -> AsyncIterator[None]:
    yield


# -- raw HTTP/1.1 client -----------------------------------------------------------------


def request_bytes(port: int, token: str | None, method: str = "GET", path: str = PATH) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if method == "POST":
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of one answer (Content-Length framing, as uvicorn sends)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
            break
    body = await reader.readexactly(length) if length else b""
    return status, body


async def exchange(port: int, request: bytes) -> tuple[int, bytes]:
    """One request on a fresh connection."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(request)
        return await read_response(reader)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def server_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux ``/proc``), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Tally:
    done: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    stop: bool = False


async def _connection(port: int, requests: Iterator[bytes], tally: Tally) -> None:
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        tally.errors += 1
        return
    try:
        while not tally.stop:
            writer.write(next(requests))
            status, _body = await read_response(reader)
            if status == 200:
                tally.done += 1
            else:
                tally.errors += 1
                tally.statuses[status] = tally.statuses.get(status, 0) + 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        tally.errors += 1
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _cycle(items: Sequence[bytes]) -> Iterator[bytes]:
    while True:
        yield from items


async def generate_load(spec: dict[str, Any]) -> dict[str, Any]:
    """Drive one server: warm up, count answers over ``seconds``, stop every connection."""
    port, pid = spec["port"], spec["server_pid"]
    tokens: list[str] = json.loads(Path(spec["state"]).read_text())[spec["tokens"]]
    requests = _cycle([request_bytes(port, token) for token in tokens])
    tally = Tally()
    workers = [
        asyncio.create_task(_connection(port, requests, tally)) for _ in range(spec["connections"])
    ]
    await asyncio.sleep(spec["warmup"])
    done0, cpu0, start = tally.done, server_cpu_seconds(pid), time.perf_counter()
    await asyncio.sleep(spec["seconds"])
    done1, cpu1, end = tally.done, server_cpu_seconds(pid), time.perf_counter()
    tally.stop = True
    await asyncio.gather(*workers)
    elapsed = end - start
    return {
        "requests": done1 - done0,
        "seconds": elapsed,
        "errors": tally.errors,
        "statuses": {str(k): v for k, v in tally.statuses.items()},
        "server_cpu_share": None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / elapsed,
    }


# -- servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def server_options() -> tuple[str, str]:
    """The event loop and HTTP parser, the fastest installed, the same for every app."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return loop, http


@dataclass
class Server:
    app: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path


def start_server(app: str, state: Path, pool: int, workdir: Path, profile: Path | None) -> Server:
    port = free_port()
    loop, http = server_options()
    env = {**os.environ, ENV_APP: app, ENV_STATE: str(state), ENV_POOL: str(pool)}
    if profile is not None:
        env[ENV_PROFILE] = str(profile)
    log = workdir / f"{app}-{port}.log"
    command = [
        sys.executable, "-m", "uvicorn", "bench_web:create_app", "--factory",
        "--app-dir", str(BENCH_DIR), "--host", HOST, "--port", str(port),
        "--loop", loop, "--http", http, "--no-access-log", "--log-level", "warning",
        "--lifespan", "on",
    ]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=sink)  # noqa: S603
    server = Server(app, port, process, log)
    deadline = time.monotonic() + 120
    probe = request_bytes(port, None, path="/ready")
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the {app} server exited:\n{log.read_text()}")
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            if asyncio.run(exchange(port, probe))[0] == 200:
                return server
        time.sleep(0.1)
    stop_server(server)
    raise SystemExit(f"the {app} server did not come up:\n{log.read_text()}")


def stop_server(server: Server) -> None:
    """SIGINT (uvicorn then runs the lifespan shutdown: the profile is written), then wait."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def run_load(server: Server, state: Path, tokens: str, args: argparse.Namespace) -> dict[str, Any]:
    """One measurement, by a load generator process of its own."""
    seconds, warmup = args.seconds, args.warmup
    spec = {
        "port": server.port,
        "server_pid": server.process.pid,
        "state": str(state),
        "tokens": tokens,
        "seconds": seconds,
        "warmup": warmup,
        "connections": args.connections,
    }
    done = subprocess.run(  # noqa: S603
        [sys.executable, str(Path(__file__).resolve()), "--load-generator", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + warmup + 60,
    )
    if done.returncode != 0:
        raise SystemExit(f"the load generator failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    if result["errors"]:
        raise SystemExit(
            f"{server.app}: {result['errors']} failed requests (statuses {result['statuses']});"
            f" see {server.log}"
        )
    return result


# -- checks before timing ------------------------------------------------------------------


def check(servers: dict[str, Server], published: dict[str, Any]) -> None:
    """Every protected route refuses what it must; a bench that skipped a check would fail."""

    def status(app: str, token: str | None, method: str = "GET", path: str = PATH) -> int:
        port = servers[app].port
        return asyncio.run(exchange(port, request_bytes(port, token, method, path)))[0]

    good, revoked, victim = published["reused"], published["revoked"], published["victim"]
    for app in APPS:
        assert status(app, good) == 200, app
        assert status(app, published["tokens"][0]) == 200, app
    for app in ("PyJWT", "jwtward"):
        assert status(app, None) == 401, f"{app} accepted a request without a token"
        assert status(app, tampered(good)) == 401, f"{app} accepted an altered signature"
    assert status("jwtward", revoked) == 401, "jwtward accepted a revoked token"
    assert status("PyJWT", revoked) == 200, "PyJWT has no store: it accepts a revoked token"
    assert status("jwtward", victim) == 200  # seen once
    assert status("jwtward", victim) == 200  # seen twice: now in the service's memo
    assert status("jwtward", None, "POST", "/bench/revoke-victim") == 200
    assert status("jwtward", victim) == 401, "jwtward's memo outlived a revocation"


# -- the run -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    mode: str
    rates: dict[str, list[float]]  # req/s per round, per app
    cpu: dict[str, list[float | None]]  # server CPU share per round, per app

    def median(self, app: str) -> float:
        return statistics.median(self.rates[app])

    def spread(self, app: str) -> float:
        """Half the range of the rounds, relative to the median (±%)."""
        rates = self.rates[app]
        return (max(rates) - min(rates)) / 2 / self.median(app) * 100

    def cpu_us(self, app: str) -> float | None:
        """Median server CPU microseconds per request: robust when the machine is busy."""
        costs = [
            share / rate * 1e6
            for share, rate in zip(self.cpu[app], self.rates[app], strict=True)
            if share is not None
        ]
        return statistics.median(costs) if costs else None

    @property
    def vs_pyjwt(self) -> float:
        return self.median("jwtward") / self.median("PyJWT")

    @property
    def vs_none(self) -> float:
        return self.median("jwtward") / self.median("none")

    @property
    def target(self) -> float:
        return TARGETS[self.mode]

    @property
    def met(self) -> bool:
        return self.vs_pyjwt >= self.target

    def starved(self) -> list[str]:
        """Apps whose server did not have (nearly) a full CPU in some round."""
        return [
            app
            for app, shares in self.cpu.items()
            if any(share is not None and share < MIN_SERVER_CPU for share in shares)
        ]


def measure_all(
    servers: dict[str, Server], state: Path, args: argparse.Namespace, quiet: bool
) -> list[Result]:
    tokens_for = {"reused": "reused_list", "distinct": "tokens"}
    results = []
    for mode in MODES:
        rates: dict[str, list[float]] = {app: [] for app in APPS}
        cpu: dict[str, list[float | None]] = {app: [] for app in APPS}
        for round_index in range(args.rounds):
            shift = round_index % len(APPS)
            for app in APPS[shift:] + APPS[:shift]:
                outcome = run_load(servers[app], state, tokens_for[mode], args)
                rates[app].append(outcome["requests"] / outcome["seconds"])
                cpu[app].append(outcome["server_cpu_share"])
            if not quiet:
                print(f"  {mode} round {round_index + 1}/{args.rounds} done", file=sys.stderr)
        results.append(Result(mode, rates, cpu))
    return results


# -- output --------------------------------------------------------------------------------

DISTRIBUTIONS = (
    ("jwtward", "jwtward"),
    ("PyJWT", "PyJWT"),
    ("fastapi", "fastapi"),
    ("starlette", "starlette"),
    ("uvicorn", "uvicorn"),
    ("cryptography", "cryptography"),
)


def web_environment() -> dict[str, Any]:
    loop, http = server_options()
    return environment(
        DISTRIBUTIONS, machine={"cpus": os.cpu_count()}, extra={"loop": loop, "http": http}
    )


def print_header(args: argparse.Namespace, pool: int) -> None:
    env = web_environment()
    cpus = f", {env['cpus']} CPUs"
    print(
        f"{header(env, DISTRIBUTIONS, cpus)}\n"
        f"uvicorn: one worker per app, loop {env['loop']}, http {env['http']}, no access log;"
        f" load: {args.connections} keep-alive connections from one separate process\n"
        f"{args.rounds} interleaved rounds of {args.seconds:g}s (after {args.warmup:g}s warm-up)"
        f" per app and case; req/s is the median round, ± half the range\n"
        "jwtward route: FastAPIAuth(AsyncTokenService) with Depends(auth.claims), checking\n"
        "revocation in its store on every request (MemoryTokenStore called on the loop through\n"
        "a bench adapter, no thread hop); PyJWT route: jwt.decode (ES256, aud, iss, exp), no\n"
        f"revocation check. reused: one token; distinct: {pool} tokens walked in order (4x the\n"
        "service's verified-token memo, so every request verifies a signature)"
    )
    print(
        f"\n{'case':<10}{'none':>16}{'PyJWT':>16}{'jwtward':>16}"
        f"{'/PyJWT':>9}{'/none':>8}{'target':>8}"
    )
    print("-" * (10 + 16 * 3 + 9 + 8 + 8 + 7))


def print_row(result: Result) -> None:
    columns = "".join(
        f"{f'{result.median(app):,.0f} ±{result.spread(app):.0f}%':>16}" for app in APPS
    )
    verdict = "ok" if result.met else "MISS"
    print(
        f"{result.mode:<10}{columns}{result.vs_pyjwt:>8.2f}x{result.vs_none:>7.2f}x"
        f"{result.target:>7.2f}x  {verdict}"
    )


def print_summary(results: Sequence[Result]) -> None:
    for result in results:
        starved = result.starved()
        if starved:
            print(
                f"note: {result.mode}: the server of {', '.join(starved)} had less than"
                f" {MIN_SERVER_CPU:.0%} of a CPU in some round: the load generator or the"
                " machine, not that server, limited those rounds"
            )
    if all(r.cpu_us(app) is not None for r in results for app in APPS):
        print("server CPU per request, median round (µs; lower is better):")
        for r in results:
            cost = {app: r.cpu_us(app) or math.nan for app in APPS}
            columns = "".join(f"{cost[app]:>16,.0f}" for app in APPS)
            print(f"{r.mode:<10}{columns}{cost['PyJWT'] / cost['jwtward']:>8.2f}x")
    target_summary(
        [r for r in results if not r.met],
        lambda r: f"{r.mode} ({r.vs_pyjwt:.2f}x of PyJWT, target {r.target:.2f}x)",
    )


def as_json(results: Sequence[Result], args: argparse.Namespace, pool: int) -> dict[str, Any]:
    return json_report(
        web_environment(),
        [
            {
                "case": r.mode,
                "requests_per_second": {app: round(r.median(app), 1) for app in APPS},
                "rounds": {app: [round(rate, 1) for rate in r.rates[app]] for app in APPS},
                "server_cpu_share": {
                    app: [None if s is None else round(s, 3) for s in r.cpu[app]] for app in APPS
                },
                "server_cpu_us_per_request": {
                    app: None if (c := r.cpu_us(app)) is None else round(c, 1) for app in APPS
                },
                "jwtward_vs_pyjwt": round(r.vs_pyjwt, 4),
                "jwtward_vs_none": round(r.vs_none, 4),
                "target": r.target,
                "met": r.met,
            }
            for r in results
        ],
        rounds=args.rounds,
        seconds=args.seconds,
        warmup=args.warmup,
        connections=args.connections,
        distinct_tokens=pool,
    )


# -- profiling -------------------------------------------------------------------------


def profile_jwtward(state_dir: Path, pool: int, args: argparse.Namespace) -> None:
    """cProfile inside a jwtward server under load, per case: where a request's time goes."""
    import pstats

    for mode, tokens in (("reused", "reused_list"), ("distinct", "tokens")):
        state = state_dir / f"profile-{mode}.json"
        stats_path = state_dir / f"profile-{mode}.prof"
        server = start_server("jwtward", state, pool, state_dir, stats_path)
        try:
            _add_reused_list(state)
            outcome = run_load(server, state, tokens, args)
        finally:
            stop_server(server)
        rate = outcome["requests"] / outcome["seconds"]
        print(f"\n== jwtward server under cProfile, {mode} token(s): {rate:,.0f} req/s profiled ==")
        stats = pstats.Stats(str(stats_path))
        stats.sort_stats("tottime").print_stats(args.profile_lines)
        stats.sort_stats("cumulative").print_stats(args.profile_lines)
        # jwtward's own frames and FastAPI's dependency solver, which runs its dependencies.
        stats.sort_stats("cumulative").print_stats(r"jwtward/|dependencies/utils", 40)


def _add_reused_list(state: Path) -> None:
    """The reused case as a one-item token list, so the load generator reads both alike."""
    published = json.loads(state.read_text())
    published["reused_list"] = [published["reused"]]
    state.write_text(json.dumps(published))


# -- command line ----------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = base_parser(__doc__, "3 rounds of 1 s (0.5 s warm-up)")
    parser.add_argument("--seconds", type=float, help="counted seconds per measurement (3)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per measurement (1)")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of the table, profile the jwtward server under load (cProfile)",
    )
    parser.add_argument("--profile-lines", type=int, default=30, help=argparse.SUPPRESS)
    parser.add_argument("--load-generator", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (3 if args.quick else 5)
    args.seconds = args.seconds or (1.0 if args.quick else 3.0)
    args.warmup = args.warmup or (0.5 if args.quick else 1.0)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.load_generator:
        print(json.dumps(asyncio.run(generate_load(json.loads(args.load_generator)))))
        return 0
    from jwtward.tokens import flows

    pool = 4 * flows.VERIFIED_CACHE_SIZE
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        workdir = Path(tmp)
        if args.profile:
            profile_jwtward(workdir, pool, args)
            return 0
        state = workdir / "state.json"
        servers: dict[str, Server] = {}
        try:
            servers["jwtward"] = start_server("jwtward", state, pool, workdir, None)
            _add_reused_list(state)
            for app in ("none", "PyJWT"):
                servers[app] = start_server(app, state, pool, workdir, None)
            check(servers, json.loads(state.read_text()))
            if not args.json:
                print_header(args, pool)
                print(flush=True)
            results = measure_all(servers, state, args, quiet=args.json)
        finally:
            for server in servers.values():
                stop_server(server)
    if args.json:
        dump_json(as_json(results, args, pool))
    else:
        for result in results:
            print_row(result)
        print()
        print_summary(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
