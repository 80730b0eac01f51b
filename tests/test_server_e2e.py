"""End to end: ``jwtward serve`` as a real process, driven over HTTP like a client would.

Every test here talks to a server started with ``python -m jwtward serve`` in
a temporary data directory, and sets it up with the command line
(``python -m jwtward users add``), so what is checked is what an operator
gets: the process starts, answers, logs, stops and starts again with its
users, keys and revocations intact. The same suite runs on each storage
configuration (SQLite by default, Redis, PostgreSQL), because a server that
only works on one store is not the product. Redis and PostgreSQL runs are
isolated by a random namespace, removed afterwards; an unreachable server
skips them with a reason, and fails them under ``CI=true``.

Separate tests run two servers on one PostgreSQL store (a token from one is
accepted and revoked on the other, and they agree on one signing key) and
follow the documented serve command in a fresh clone of the repository.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from jwtward import Policy, jwt
from jwtward.errors import InvalidToken
from jwtward.keys import JWKSClient
from jwtward.server.config import ServerConfig
from jwtward.server.runtime import open_backends
from tests.servers import (
    drop_postgres_schema,
    drop_redis_prefix,
    postgres_dsn,
    redis_keys,
    redis_url,
    require,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("sqlite", "redis", "postgresql")
CLIENT_ID = "svc"
CLIENT_SECRET = "0123456789abcdef-secret"
REFRESH_COOKIE = "__Secure-jwtward-refresh"
# Each start is fast (well under a second here); the bound only catches a hang.
START_TIMEOUT = 30.0
POLL_EVERY = 0.05
# The fresh clone makes a virtualenv and installs the server's dependencies.
CLONE_TIMEOUT = 300.0


# -- processes ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_environment() -> dict[str, str]:
    """The caller's environment without any ``JWTWARD_*`` setting that would leak in."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("JWTWARD_") and name != "VIRTUAL_ENV"
    }


def run_cli(
    args: list[str], env: Mapping[str, str], *, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter running our own CLI
        [sys.executable, "-m", "jwtward", *args],
        input=stdin,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def stop_process(process: subprocess.Popen[bytes], *, group: bool = False) -> int:
    """SIGTERM (a graceful uvicorn shutdown), SIGKILL if it has not exited within 15 s."""
    if process.poll() is None:
        if group:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            if group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
            process.wait(timeout=15)
    return process.returncode


def assert_graceful_exit(code: int, logs: Path) -> None:
    """The server shut down on SIGTERM: the lifespan ran to its end, nothing was killed.

    uvicorn re-raises the signal it caught once its graceful shutdown is
    over, so a clean stop exits by SIGTERM (-15), not with status 0.
    """
    text = logs.read_text(errors="replace")
    assert code in (0, -signal.SIGTERM), f"exit {code}:\n{text[-4000:]}"
    assert "Application shutdown complete." in text, text[-4000:]


def wait_until_answers(
    process: subprocess.Popen[bytes], url: str, *, timeout: float, logs: Path
) -> httpx.Response:
    """Poll ``url`` until it answers 200; fail with the server's log if it dies or hangs."""
    deadline = time.monotonic() + timeout
    last: str = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"the server exited with {process.returncode} before answering {url}:\n"
                + logs.read_text(errors="replace")[-4000:]
            )
        try:
            response = httpx.get(url, timeout=2)
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        else:
            if response.status_code == 200:
                return response
            last = f"status {response.status_code}"
        time.sleep(POLL_EVERY)
    pytest.fail(f"{url} did not answer 200 within {timeout} s ({last}):\n"
                + logs.read_text(errors="replace")[-4000:])


@dataclass
class ServerProcess:
    """One ``jwtward serve`` process; its stdout and stderr go to files kept for the log checks."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    @classmethod
    def start(
        cls, *, port: int, data_dir: Path, env: Mapping[str, str], logs: Path, name: str
    ) -> ServerProcess:
        logs.mkdir(parents=True, exist_ok=True)
        stdout, stderr = logs / f"{name}.out", logs / f"{name}.err"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter running our own CLI
                [sys.executable, "-m", "jwtward", "serve", "--host", "127.0.0.1",
                 "--port", str(port), "--data-dir", str(data_dir)],
                env=dict(env), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
            )
        return cls(process, stdout, stderr)

    def wait_healthy(self, origin: str) -> None:
        wait_until_answers(self.process, f"{origin}/healthz", timeout=START_TIMEOUT,
                           logs=self.stderr)

    def stop(self) -> int:
        return stop_process(self.process)


# -- a deployment: one data directory and store, served by one process at a time ------------------


@dataclass
class Session:
    """What a client holds after a login or a refresh."""

    access_token: str
    refresh_token: str
    csrf_token: str | None
    body: dict[str, Any]


@dataclass
class Deployment:
    """A server configuration (store, namespace, data dir) and the process serving it now."""

    kind: str
    root: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    server: ServerProcess | None = None
    starts: int = 0
    # Everything secret this suite saw: none of it may appear in any log.
    secrets: set[str] = field(default_factory=set)
    cli_output: list[str] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        self.server = ServerProcess.start(
            port=self.port, data_dir=self.data_dir, env=self.env, logs=self.root / "logs",
            name=f"serve-{self.starts}",
        )
        self.server.wait_healthy(self.origin)

    def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            assert_graceful_exit(server.stop(), server.stderr)

    def log_lines(self) -> list[str]:
        """Every line every server process of this deployment wrote to stderr."""
        lines: list[str] = []
        for path in sorted((self.root / "logs").glob("*.err")):
            lines.extend(path.read_text(errors="replace").splitlines())
        return lines

    def all_output(self) -> str:
        texts = [path.read_text(errors="replace") for path in (self.root / "logs").iterdir()]
        return "\n".join([*texts, *self.cli_output])

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        result = run_cli([*args, "--data-dir", str(self.data_dir)], self.env, stdin=stdin)
        self.cli_output.extend((result.stdout, result.stderr))
        return result

    def new_user(self, prefix: str) -> tuple[str, str]:
        """A user made by the CLI (name, password), as an operator would."""
        name = f"{prefix}-{secrets.token_hex(3)}"
        password = f"pw-{secrets.token_urlsafe(18)}"
        self.secrets.add(password)
        result = self.cli("users", "add", name, "--password-stdin", stdin=password + "\n")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"added user {name}"
        return name, password

    # -- HTTP -------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request on a fresh connection with no cookie jar: cookies are sent explicitly."""
        with httpx.Client(base_url=self.origin, timeout=15) as client:
            return client.request(method, path, **kwargs)

    def login_response(self, username: str, password: str, **extra: Any) -> httpx.Response:
        headers = extra.pop("headers", None)
        return self.request(
            "POST", "/auth/login", json={"username": username, "password": password, **extra},
            headers=headers,
        )

    def login(self, username: str, password: str, *, user_agent: str = "e2e") -> Session:
        response = self.login_response(
            username, password, include_refresh_token=True, headers={"User-Agent": user_agent}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        cookie = refresh_cookie(response)
        assert body["refresh_token"] == cookie
        return self._session(body, cookie)

    def _session(self, body: dict[str, Any], refresh_token: str) -> Session:
        session = Session(body["access_token"], refresh_token, body.get("csrf_token"), body)
        self.secrets.update({session.access_token, session.refresh_token})
        if session.csrf_token:
            self.secrets.add(session.csrf_token)
        refresh_jti = unverified_claims(refresh_token)["jti"]
        self.secrets.add(refresh_jti)
        return session

    def refresh_by_body(self, refresh_token: str) -> httpx.Response:
        response = self.request("POST", "/auth/refresh", json={"refresh_token": refresh_token})
        if response.status_code == 200:
            body = response.json()
            self._session(body, body["refresh_token"])
        return response

    def refresh_by_cookie(
        self, refresh_token: str, csrf: str | None, *, origin: str | None = None
    ) -> httpx.Response:
        headers = {"Cookie": f"{REFRESH_COOKIE}={refresh_token}",
                   "Origin": origin or self.origin}
        if csrf is not None:
            headers["X-CSRF-Token"] = csrf
        response = self.request("POST", "/auth/refresh", headers=headers)
        if response.status_code == 200:
            self._session(response.json(), refresh_cookie(response))
        return response

    def me(self, access_token: str) -> httpx.Response:
        return self.request("GET", "/auth/me", headers=bearer(access_token))

    def client_call(self, path: str, token: str) -> httpx.Response:
        return self.request("POST", path, data={"token": token},
                            auth=(CLIENT_ID, CLIENT_SECRET))

    def jwks(self) -> dict[str, Any]:
        response = self.request("GET", "/.well-known/jwks.json")
        assert response.status_code == 200
        document: dict[str, Any] = response.json()
        return document


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refresh_cookie(response: httpx.Response) -> str:
    """The refresh token in the response's refresh cookie, its attributes checked on the way."""
    for value in response.headers.get_list("set-cookie"):
        if value.startswith(f"{REFRESH_COOKIE}="):
            attributes = [part.strip() for part in value.split(";")]
            assert "HttpOnly" in attributes and "Secure" in attributes
            assert "SameSite=Strict" in attributes and "Path=/auth/refresh" in attributes
            return attributes[0].split("=", 1)[1]
    raise AssertionError(f"no refresh cookie in {response.headers.get_list('set-cookie')}")


def unverified_claims(token: str) -> dict[str, Any]:
    """A JWT's payload without any check: only to learn ids the tests compare against."""
    payload = token.split(".")[1]
    padded = payload + "=" * (-len(payload) % 4)
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return claims


def base_env(**settings: str) -> dict[str, str]:
    env = clean_environment()
    env["JWTWARD_CLIENTS"] = json.dumps({CLIENT_ID: CLIENT_SECRET})
    env.update(settings)
    return env


@pytest.fixture(scope="module", params=BACKENDS)
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Deployment]:
    """A running server on one store, shared by this module's tests for that store."""
    kind: str = request.param
    require(kind)
    namespace = f"jwtward_e2e_{secrets.token_hex(6)}"
    settings = {"JWTWARD_NAMESPACE": namespace}
    if kind == "redis":
        settings["JWTWARD_STORE"] = redis_url()
    elif kind == "postgresql":
        settings["JWTWARD_STORE"] = postgres_dsn()
    found = Deployment(kind, tmp_path_factory.mktemp(f"e2e-{kind}"), base_env(**settings))
    found.secrets.add(CLIENT_SECRET)
    try:
        found.start()
        yield found
    finally:
        try:
            found.stop()
        finally:
            if kind == "redis":
                drop_redis_prefix(f"{namespace}:")
                assert redis_keys(f"{namespace}:") == []
            elif kind == "postgresql":
                drop_postgres_schema(namespace)


# -- the suite, on every store --------------------------------------------------------------------


def test_health_readiness_and_metadata(deployment: Deployment) -> None:
    """/healthz and /readyz answer; RFC 8414 metadata names this server's endpoints."""
    health = deployment.request("GET", "/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = deployment.request("GET", "/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})

    metadata = deployment.request("GET", "/.well-known/oauth-authorization-server")
    assert metadata.status_code == 200
    origin = deployment.origin
    assert metadata.json() == {
        "issuer": origin,
        "jwks_uri": f"{origin}/.well-known/jwks.json",
        "revocation_endpoint": f"{origin}/oauth/revoke",
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic",
                                                       "client_secret_post"],
        "introspection_endpoint": f"{origin}/oauth/introspect",
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic",
                                                          "client_secret_post"],
        "response_types_supported": [],
    }
    jwks = deployment.request("GET", "/.well-known/jwks.json")
    assert jwks.status_code == 200
    assert jwks.headers["cache-control"].startswith("public, max-age=")
    keys = jwks.json()["keys"]
    assert len(keys) == 1
    assert keys[0]["alg"] == "ES256" and "d" not in keys[0]


def test_login_me_and_remote_jwks_verification(deployment: Deployment) -> None:
    """A login's access token is accepted by /auth/me and by a verifier that only has the JWKS."""
    name, password = deployment.new_user("alice")
    response = deployment.login_response(name, password)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "csrf_token"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    cookie = refresh_cookie(response)
    session = deployment._session(body, cookie)

    me = deployment.me(session.access_token)
    assert me.status_code == 200, me.text
    claims = me.json()
    assert claims["sub"] == name
    assert claims["iss"] == deployment.origin and claims["aud"] == "jwtward"
    assert claims["exp"] - claims["iat"] == 900
    assert isinstance(claims["sid"], str) and isinstance(claims["jti"], str)

    anonymous = deployment.request("GET", "/auth/me")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    forged = session.access_token[:-4] + ("AAAA" if not session.access_token.endswith("AAAA")
                                           else "BBBB")
    assert deployment.me(forged).status_code == 401

    verifier = JWKSClient(f"{deployment.origin}/.well-known/jwks.json",
                          allow_insecure_loopback=True)
    policy = Policy(issuer=deployment.origin, audience="jwtward", typ="at+jwt")
    verified = jwt.decode(session.access_token, verifier, policy)
    assert verified["sub"] == name and verified["jti"] == claims["jti"]
    with pytest.raises(InvalidToken):
        jwt.decode(forged, verifier, policy)
    # The refresh token is signed by the same key but is not an access token.
    with pytest.raises(InvalidToken):
        jwt.decode(session.refresh_token, verifier, policy)

    # A wrong password and an unknown user get the same answer.
    wrong = deployment.login_response(name, password + "x")
    unknown = deployment.login_response(f"nobody-{secrets.token_hex(3)}", password)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {
        "error": "invalid_grant", "error_description": "invalid username or password"}


def test_refresh_by_cookie_and_body_then_reuse_revokes_the_family(deployment: Deployment) -> None:
    """Rotation through both transports; replaying a used refresh token ends the whole session."""
    name, password = deployment.new_user("bob")
    first = deployment.login(name, password)
    assert first.csrf_token

    # A cookie refresh must prove its origin and carry the session's CSRF token.
    assert deployment.refresh_by_cookie(first.refresh_token, None).status_code == 403
    assert deployment.refresh_by_cookie(first.refresh_token, "not-the-csrf").status_code == 403
    foreign = deployment.refresh_by_cookie(first.refresh_token, first.csrf_token,
                                           origin="https://evil.example")
    assert foreign.status_code == 403
    # None of the refusals used the token up.
    by_cookie = deployment.refresh_by_cookie(first.refresh_token, first.csrf_token)
    assert by_cookie.status_code == 200, by_cookie.text
    cookie_body = by_cookie.json()
    assert "refresh_token" not in cookie_body
    assert cookie_body["csrf_token"] == first.csrf_token
    assert cookie_body["token_type"] == "Bearer"
    second = Session(cookie_body["access_token"], refresh_cookie(by_cookie),
                     first.csrf_token, cookie_body)
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert deployment.me(second.access_token).status_code == 200

    by_body = deployment.refresh_by_body(second.refresh_token)
    assert by_body.status_code == 200, by_body.text
    third_body = by_body.json()
    assert {"access_token", "refresh_token", "token_type", "expires_in"} <= set(third_body)
    third = Session(third_body["access_token"], third_body["refresh_token"], None, third_body)
    assert deployment.me(third.access_token).status_code == 200
    sid = unverified_claims(first.access_token)["sid"]
    assert unverified_claims(third.access_token)["sid"] == sid

    # Replaying the used token: refused, and the family is revoked with everything in it.
    replay = deployment.refresh_by_body(second.refresh_token)
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_token"
    for access in (first.access_token, second.access_token, third.access_token):
        assert deployment.me(access).status_code == 401
    assert deployment.refresh_by_body(third.refresh_token).status_code == 401
    dead_cookie = deployment.refresh_by_cookie(third.refresh_token, first.csrf_token)
    assert dead_cookie.status_code == 401
    # A dead refresh cookie is cleared.
    assert any(value.startswith(f"{REFRESH_COOKIE}=;") and "Max-Age=0" in value
               for value in dead_cookie.headers.get_list("set-cookie"))


def test_logout_ends_the_session(deployment: Deployment) -> None:
    """Logout by access token or by refresh token revokes the session and clears the cookies."""
    name, password = deployment.new_user("carol")
    one = deployment.login(name, password)
    other = deployment.login(name, password)

    out = deployment.request("POST", "/auth/logout", headers=bearer(one.access_token))
    assert out.status_code == 204
    cleared = out.headers.get_list("set-cookie")
    assert any(value.startswith(f"{REFRESH_COOKIE}=;") and "Max-Age=0" in value
               for value in cleared)
    assert deployment.me(one.access_token).status_code == 401
    assert deployment.refresh_by_body(one.refresh_token).status_code == 401
    # The user's other session is untouched.
    assert deployment.me(other.access_token).status_code == 200

    by_refresh = deployment.request("POST", "/auth/logout",
                                    json={"refresh_token": other.refresh_token})
    assert by_refresh.status_code == 204
    assert deployment.me(other.access_token).status_code == 401
    assert deployment.refresh_by_body(other.refresh_token).status_code == 401


def test_logout_all_ends_every_session_but_not_later_ones(deployment: Deployment) -> None:
    name, password = deployment.new_user("dave")
    one = deployment.login(name, password)
    two = deployment.login(name, password)
    bystander_name, bystander_password = deployment.new_user("erin")
    bystander = deployment.login(bystander_name, bystander_password)

    assert deployment.request("POST", "/auth/logout-all").status_code == 401
    out = deployment.request("POST", "/auth/logout-all", headers=bearer(two.access_token))
    assert out.status_code == 204
    for session in (one, two):
        assert deployment.me(session.access_token).status_code == 401
        assert deployment.refresh_by_body(session.refresh_token).status_code == 401
    assert deployment.me(bystander.access_token).status_code == 200
    # A login right after the cutoff starts a session that works.
    again = deployment.login(name, password)
    assert deployment.me(again.access_token).status_code == 200
    assert deployment.refresh_by_body(again.refresh_token).status_code == 200


def test_sessions_list_and_revoke_one(deployment: Deployment) -> None:
    name, password = deployment.new_user("frank")
    laptop = deployment.login(name, password, user_agent="laptop-agent")
    phone = deployment.login(name, password, user_agent="phone-agent")
    laptop_sid = unverified_claims(laptop.access_token)["sid"]
    phone_sid = unverified_claims(phone.access_token)["sid"]

    assert deployment.request("GET", "/auth/sessions").status_code == 401
    listed = deployment.request("GET", "/auth/sessions", headers=bearer(phone.access_token))
    assert listed.status_code == 200
    assert listed.headers["cache-control"] == "no-store"
    sessions = listed.json()["sessions"]
    assert [entry["id"] for entry in sessions] == [phone_sid, laptop_sid]  # newest first
    by_id = {entry["id"]: entry for entry in sessions}
    assert by_id[phone_sid]["current"] is True and by_id[laptop_sid]["current"] is False
    assert by_id[phone_sid]["user_agent"] == "phone-agent"
    assert by_id[laptop_sid]["user_agent"] == "laptop-agent"
    assert by_id[laptop_sid]["address"] == "127.0.0.1"
    for entry in sessions:
        assert entry["created_at"] <= entry["last_used_at"] < entry["expires_at"]

    # Someone else cannot end this user's session, even knowing its id.
    other_name, other_password = deployment.new_user("grace")
    intruder = deployment.login(other_name, other_password)
    stolen = deployment.request("DELETE", f"/auth/sessions/{laptop_sid}",
                                headers=bearer(intruder.access_token))
    assert stolen.status_code == 404
    assert deployment.me(laptop.access_token).status_code == 200

    ended = deployment.request("DELETE", f"/auth/sessions/{laptop_sid}",
                               headers=bearer(phone.access_token))
    assert ended.status_code == 204
    assert deployment.me(laptop.access_token).status_code == 401
    assert deployment.refresh_by_body(laptop.refresh_token).status_code == 401
    assert deployment.me(phone.access_token).status_code == 200
    after = deployment.request("GET", "/auth/sessions", headers=bearer(phone.access_token))
    assert [entry["id"] for entry in after.json()["sessions"]] == [phone_sid]
    again = deployment.request("DELETE", f"/auth/sessions/{laptop_sid}",
                               headers=bearer(phone.access_token))
    assert again.status_code == 404


def test_introspection_and_revocation_for_clients(deployment: Deployment) -> None:
    """RFC 7662 and RFC 7009: client authentication, active and inactive answers."""
    name, password = deployment.new_user("heidi")
    session = deployment.login(name, password)

    # Unauthenticated or badly authenticated clients are refused, whatever the token.
    for kwargs in (
        {},
        {"auth": (CLIENT_ID, "wrong-secret-0123456789")},
        {"auth": ("nobody", CLIENT_SECRET)},
    ):
        refused = deployment.request("POST", "/oauth/introspect",
                                     data={"token": session.access_token}, **kwargs)
        assert refused.status_code == 401
        assert refused.json()["error"] == "invalid_client"
        assert refused.headers["www-authenticate"].startswith("Basic")
    unauthenticated_revoke = deployment.request("POST", "/oauth/revoke",
                                                data={"token": session.access_token})
    assert unauthenticated_revoke.status_code == 401
    assert deployment.me(session.access_token).status_code == 200

    access = deployment.client_call("/oauth/introspect", session.access_token)
    assert access.status_code == 200
    assert access.headers["cache-control"] == "no-store"
    claims = unverified_claims(session.access_token)
    info = access.json()
    assert info["active"] is True and info["token_type"] == "access_token"
    for name_ in ("sub", "exp", "iat", "iss", "aud", "jti"):
        assert info[name_] == claims[name_]
    # client_secret_post works too.
    posted = deployment.request("POST", "/oauth/introspect", data={
        "token": session.access_token, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert posted.json() == info

    refresh = deployment.client_call("/oauth/introspect", session.refresh_token).json()
    assert refresh["active"] is True and refresh["token_type"] == "refresh_token"
    assert refresh["sub"] == name and "jti" not in refresh
    assert deployment.client_call("/oauth/introspect", "not-a-token").json() == {"active": False}
    missing = deployment.request("POST", "/oauth/introspect", data={},
                                 auth=(CLIENT_ID, CLIENT_SECRET))
    assert missing.status_code == 400

    # Revoke the access token: inactive at once, refused by /auth/me; the session goes on.
    assert deployment.client_call("/oauth/revoke", session.access_token).status_code == 200
    assert deployment.client_call("/oauth/introspect", session.access_token).json() == {
        "active": False}
    assert deployment.me(session.access_token).status_code == 401
    # Revoking a refresh token ends its session.
    assert deployment.client_call("/oauth/revoke", session.refresh_token).status_code == 200
    assert deployment.client_call("/oauth/introspect", session.refresh_token).json() == {
        "active": False}
    assert deployment.refresh_by_body(session.refresh_token).status_code == 401
    # RFC 7009 §2.2: an invalid token is not an error.
    assert deployment.client_call("/oauth/revoke", "not-a-token").status_code == 200


def test_failed_logins_are_rate_limited(deployment: Deployment) -> None:
    name, password = deployment.new_user("ivan")
    for _ in range(5):
        assert deployment.login_response(name, "wrong password").status_code == 401
    blocked = deployment.login_response(name, password)
    assert blocked.status_code == 429
    assert blocked.json()["error"] == "slow_down"
    assert 1 <= int(blocked.headers["retry-after"]) <= 300
    # The limit is per user: another user (same address) still logs in.
    other_name, other_password = deployment.new_user("judy")
    assert deployment.login_response(other_name, other_password).status_code == 200
    events = [json.loads(line) for line in deployment.log_lines() if line.startswith("{")]
    assert {"event": "login_rate_limited", "user": name, "address": "127.0.0.1"} in events


def test_restart_keeps_users_keys_and_revocations(deployment: Deployment) -> None:
    name, password = deployment.new_user("mallory")
    kept = deployment.login(name, password)
    revoked_access = deployment.login(name, password)
    assert deployment.client_call("/oauth/revoke", revoked_access.access_token).status_code == 200
    logged_out = deployment.login(name, password)
    assert deployment.request("POST", "/auth/logout",
                              headers=bearer(logged_out.access_token)).status_code == 204
    kids_before = [key["kid"] for key in deployment.jwks()["keys"]]

    deployment.stop()
    deployment.start()

    assert [key["kid"] for key in deployment.jwks()["keys"]] == kids_before
    assert deployment.me(kept.access_token).status_code == 200
    verifier = JWKSClient(f"{deployment.origin}/.well-known/jwks.json",
                          allow_insecure_loopback=True)
    policy = Policy(issuer=deployment.origin, audience="jwtward", typ="at+jwt")
    assert jwt.decode(kept.access_token, verifier, policy)["sub"] == name
    assert deployment.me(revoked_access.access_token).status_code == 401
    assert deployment.me(logged_out.access_token).status_code == 401
    assert deployment.refresh_by_body(logged_out.refresh_token).status_code == 401
    assert deployment.refresh_by_body(kept.refresh_token).status_code == 200
    fresh = deployment.login(name, password)
    assert deployment.me(fresh.access_token).status_code == 200
    # The key was loaded, not made again.
    banner = (deployment.root / "logs" / f"serve-{deployment.starts}.out").read_text()
    assert "keys:  loaded" in banner


def test_audit_log_has_one_json_line_per_event_and_no_secret(deployment: Deployment) -> None:
    """Auth events are JSON lines on stderr; no token, password or key reaches any log."""
    name, password = deployment.new_user("oscar")
    assert deployment.login_response(name, "not the password").status_code == 401
    session = deployment.login(name, password)
    rotated = deployment.refresh_by_body(session.refresh_token)
    assert rotated.status_code == 200
    assert deployment.refresh_by_body(session.refresh_token).status_code == 401  # reuse
    other = deployment.login(name, password)
    assert deployment.client_call("/oauth/revoke", other.access_token).status_code == 200

    events = []
    for line in deployment.log_lines():
        if line.startswith("{"):
            record = json.loads(line)
            assert isinstance(record, dict)
            if "event" in record:
                events.append(record)
    mine = [event for event in events if event.get("user") == name]
    counts: dict[str, int] = {}
    for event in mine:
        counts[event["event"]] = counts.get(event["event"], 0) + 1
    assert counts.get("login_failed") == 1
    assert counts.get("login_ok") == 2
    assert counts.get("refresh") == 1, f"no refresh event in the audit log: {counts}"
    assert counts.get("refresh_reuse_detected") == 1, f"no reuse event: {counts}"
    assert counts.get("revoke") == 1
    revoke = next(event for event in mine if event["event"] == "revoke")
    assert revoke["kind"] == "access_token"
    assert revoke["session"] == unverified_claims(other.access_token)["sid"]

    # Nothing secret anywhere: server stdout/stderr of every start, and CLI output.
    output = deployment.all_output()
    forbidden = set(deployment.secrets)
    forbidden.update(signing_key_material(deployment))
    for secret in sorted(forbidden):
        assert secret not in output, f"a secret ({len(secret)} chars) appears in the logs"
    # No JWT-shaped string at all (a token cut short would escape the exact search).
    assert "eyJ" not in output


def signing_key_material(deployment: Deployment) -> set[str]:
    """The master key and every private key member, read from the deployment's own store."""
    found = set()
    master = deployment.data_dir / "master.key"
    if master.exists():
        found.add(master.read_text().strip())
    config = ServerConfig(
        data_dir=deployment.data_dir,
        store=deployment.env.get("JWTWARD_STORE"),
        namespace=deployment.env["JWTWARD_NAMESPACE"],
    )
    backends = open_backends(config)
    try:
        for record in backends.key_store.load().records:
            private = record.key.to_jwk(private=True)
            found.update(str(private[member]) for member in ("d", "p", "q") if member in private)
    finally:
        backends.close()
    assert found, "no key material found to look for"
    return found


# -- two servers on one PostgreSQL store ----------------------------------------------------------


def test_two_servers_share_one_postgres_store(tmp_path: Path) -> None:
    """Tokens, revocations and the one active signing key are shared through PostgreSQL."""
    require("postgresql")
    schema = f"jwtward_e2e_{secrets.token_hex(6)}"
    master_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    issuer = "https://jwtward-e2e.example"
    env = base_env(JWTWARD_STORE=postgres_dsn(), JWTWARD_NAMESPACE=schema,
                   JWTWARD_MASTER_KEY=master_key, JWTWARD_ISSUER=issuer)
    # Separate data dirs: anything shared must go through the store.
    one = Deployment("postgresql", tmp_path / "one", env)
    two = Deployment("postgresql", tmp_path / "two", env)
    servers: list[tuple[Deployment, ServerProcess]] = []
    try:
        # Both start at once on an empty schema: they race to make the first key.
        for node in (one, two):
            node.starts += 1
            node.server = ServerProcess.start(
                port=node.port, data_dir=node.data_dir, env=env, logs=node.root / "logs",
                name="serve-1")
            servers.append((node, node.server))
        for node, server in servers:
            server.wait_healthy(node.origin)

        jwks_one, jwks_two = one.jwks(), two.jwks()
        assert jwks_one == jwks_two
        assert len(jwks_one["keys"]) == 1
        listing = run_cli(["keys", "list", "--store", postgres_dsn(), "--data-dir",
                           str(tmp_path / "cli")], env)
        assert listing.returncode == 0, listing.stderr
        rows = [line.split("\t") for line in listing.stdout.splitlines()]
        assert [row[2] for row in rows].count("active") == 1, listing.stdout
        assert rows[[row[2] for row in rows].index("active")][0] == jwks_one["keys"][0]["kid"]

        name, password = one.new_user("nina")
        session = one.login(name, password)
        on_two = two.me(session.access_token)
        assert on_two.status_code == 200, on_two.text
        assert on_two.json()["iss"] == issuer
        # Rotate on the other server; the new access token works back on the first.
        rotated = two.refresh_by_body(session.refresh_token)
        assert rotated.status_code == 200, rotated.text
        newer = rotated.json()
        assert one.me(newer["access_token"]).status_code == 200
        # The used refresh token is known as used on both.
        assert one.refresh_by_body(session.refresh_token).status_code == 401
        assert two.me(newer["access_token"]).status_code == 401  # family revoked by the reuse

        # A revocation on one is honoured by the other (after the other has cached the token).
        fresh = two.login(name, password)
        assert one.me(fresh.access_token).status_code == 200
        assert two.me(fresh.access_token).status_code == 200
        assert two.client_call("/oauth/revoke", fresh.access_token).status_code == 200
        assert one.me(fresh.access_token).status_code == 401
        assert one.client_call("/oauth/introspect", fresh.access_token).json() == {
            "active": False}
        # Logout on one ends the session on the other.
        last = one.login(name, password)
        assert two.me(last.access_token).status_code == 200
        assert one.request("POST", "/auth/logout",
                           headers=bearer(last.access_token)).status_code == 204
        assert two.me(last.access_token).status_code == 401
        assert two.refresh_by_body(last.refresh_token).status_code == 401

        # Still one key, the same one, on both.
        assert one.jwks() == two.jwks() == jwks_one
    finally:
        try:
            for node in (one, two):
                node.stop()
        finally:
            drop_postgres_schema(schema)


# -- the documented serve command in a fresh clone -------------------------------------------------


def test_fresh_clone_serves_with_the_documented_command(tmp_path: Path) -> None:
    """``scripts/serve.sh`` in a fresh clone makes its venv, installs, and serves until /readyz.

    Slow (a virtualenv and a pip install, up to a few minutes) but never
    skipped: it is the promise the README makes to a new user.
    """
    git = shutil.which("git")
    assert git is not None, "git is needed to clone the repository"
    clone = tmp_path / "clone"
    cloned = subprocess.run(  # noqa: S603 - git on our own repository
        [git, "clone", "--quiet", str(REPO_ROOT), str(clone)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert cloned.returncode == 0, cloned.stderr
    assert not (clone / ".venv").exists()

    port = free_port()
    env = clean_environment()
    # The command stays the documented one; its port comes from the environment.
    env["JWTWARD_PORT"] = str(port)
    logs = tmp_path / "serve.log"
    with logs.open("wb") as log:
        process = subprocess.Popen(
            ["scripts/serve.sh"],  # noqa: S607 - the documented command, as a user types it
            cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    try:
        ready = wait_until_answers(process, f"http://127.0.0.1:{port}/readyz",
                                   timeout=CLONE_TIMEOUT, logs=logs)
        assert ready.json() == {"status": "ready"}
        assert (clone / ".venv" / "bin" / "jwtward").exists()
        master = clone / "jwtward-data" / "master.key"
        assert master.exists() and (master.stat().st_mode & 0o777) == 0o600
    finally:
        code = stop_process(process, group=True)
    assert_graceful_exit(code, logs)
