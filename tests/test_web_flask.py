"""The Flask integration, through Flask's test client and over real HTTP.

Most cases run twice: once through the test client (no network) and once
against the same app served by werkzeug on a free 127.0.0.1 port and driven
with httpx, so that what a real HTTP stack does to headers (merging
duplicates, cookie parsing) cannot hide a difference. Expected challenges
are written out literally: a change of wording in the library shows here.
The adversarial token classes go over real HTTP only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from jwtward import jwe
from jwtward.errors import InvalidArgument, StoreUnavailable
from jwtward.jose.keys import Key
from jwtward.keys import KeyRing
from jwtward.tokens import AsyncTokenService, MemoryTokenStore, TokenService
from jwtward.web import WebSettings
from jwtward.web.flask import SERVICE_EXTENSION, FlaskAuth, get_current_claims

ISSUER = "https://auth.example"
AUDIENCE = "https://api.example"
REALM = "shop"
TRUSTED = "https://app.example"
REFRESH = "__Secure-jwtward-refresh"
ACCESS = "__Secure-jwtward-access"
CSRF = "__Secure-jwtward-csrf"

MISSING = f'Bearer realm="{REALM}"'
NOT_VALID = (
    f'Bearer realm="{REALM}", error="invalid_token", error_description="the token is not valid"'
)
EXPIRED = (
    f'Bearer realm="{REALM}", error="invalid_token", error_description="the token has expired"'
)
REVOKED = (
    f'Bearer realm="{REALM}", error="invalid_token", '
    'error_description="the token has been revoked"'
)


def insufficient(scope: str) -> str:
    return (
        f'Bearer realm="{REALM}", error="insufficient_scope", '
        f'error_description="the token does not grant the required scope", scope="{scope}"'
    )


class SwitchableStore(MemoryTokenStore):
    """A memory store that can be made to fail like a database that went away."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_") and name != "down" and object.__getattribute__(self, "down"):
            raise StoreUnavailable("the token store cannot answer right now")
        return object.__getattribute__(self, name)


@dataclass
class Env:
    app: Flask
    auth: FlaskAuth
    service: TokenService
    store: SwitchableStore
    ring: KeyRing


def build_app(service: TokenService) -> tuple[Flask, FlaskAuth]:
    app = Flask("jwtward-flask-test")
    app.config.update(
        JWT_REALM=REALM,
        JWT_ACCESS_COOKIE="jwtward-access",
        JWT_TRUSTED_ORIGINS=[TRUSTED],
    )
    auth = FlaskAuth(service)
    auth.init_app(app)
    app.register_blueprint(auth.blueprint())

    @app.post("/auth/login")
    def login() -> Any:
        body = request.get_json()
        return auth.login_response(
            body["subject"],
            scope=body.get("scope"),
            claims=body.get("claims"),
            include_refresh_token=bool(body.get("include_refresh_token")),
            metadata={"device": "test"},
        )

    @app.get("/me")
    @auth.required
    def me() -> Any:
        claims = auth.current_claims
        assert claims is not None
        return {"sub": claims.subject, "sid": claims.session_id, "kind": "sync"}

    @app.get("/orders")
    @auth.required(scopes=["orders:read"])
    def orders() -> Any:
        return {"orders": [], "sub": get_current_claims()["sub"]}  # type: ignore[index]

    @app.post("/orders")
    @auth.required(scopes=["orders:write"])
    def create_order() -> Any:
        return {"created": True}

    @app.get("/both")
    @auth.required(scopes=["orders:read", "orders:write"])
    def both() -> Any:
        return {"ok": True}

    @app.get("/admin")
    @auth.required(roles=["admin"])
    def admin() -> Any:
        return {"admin": True}

    @app.get("/maybe")
    @auth.optional
    def maybe() -> Any:
        claims = auth.current_claims
        return jsonify(sub=None if claims is None else claims.subject)

    @app.get("/async/me")
    @auth.required(scopes=["orders:read"])
    async def async_me() -> Any:
        claims = auth.current_claims
        assert claims is not None
        return {"sub": claims.subject, "kind": "async"}

    @app.get("/async/maybe")
    @auth.optional
    async def async_maybe() -> Any:
        claims = get_current_claims()
        return jsonify(sub=None if claims is None else claims.subject, kind="async")

    return app, auth


@pytest.fixture(scope="module")
def env() -> Env:
    ring = KeyRing.generate("ES256")
    store = SwitchableStore()
    service = TokenService(ring, issuer=ISSUER, audience=AUDIENCE, store=store)
    app, auth = build_app(service)
    return Env(app, auth, service, store, ring)


# -- the two transports ---------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    text: str

    def header(self, name: str) -> str | None:
        values = self.all(name)
        assert len(values) <= 1, values
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.text)


Headers = Sequence[tuple[str, str]]


class Client:
    origin: str

    def call(
        self, method: str, path: str, headers: Headers = (), body: bytes | None = None
    ) -> Reply:
        raise NotImplementedError

    def get(self, path: str, headers: Headers = ()) -> Reply:
        return self.call("GET", path, headers)

    def post(
        self, path: str, headers: Headers = (), json_body: object = None, raw: bytes | None = None
    ) -> Reply:
        headers = list(headers)
        body = raw
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers.append(("Content-Type", "application/json"))
        return self.call("POST", path, headers, body)


class FlaskTestClient(Client):
    origin = "http://localhost"

    def __init__(self, app: Flask) -> None:
        # No cookie jar: every test sends its Cookie header by hand.
        self._client = app.test_client(use_cookies=False)

    def call(
        self, method: str, path: str, headers: Headers = (), body: bytes | None = None
    ) -> Reply:
        response = self._client.open(path, method=method, headers=list(headers), data=body)
        return Reply(response.status_code, list(response.headers.items()), response.text)


class HTTPClient(Client):
    def __init__(self, base: str) -> None:
        self.origin = base
        self._client = httpx.Client(base_url=base, timeout=10)

    def call(
        self, method: str, path: str, headers: Headers = (), body: bytes | None = None
    ) -> Reply:
        response = self._client.request(method, path, headers=list(headers), content=body)
        self._client.cookies.clear()
        return Reply(response.status_code, list(response.headers.multi_items()), response.text)

    def close(self) -> None:
        self._client.close()


@pytest.fixture(scope="module")
def server(env: Env) -> Iterator[HTTPClient]:
    srv = make_server("127.0.0.1", 0, env.app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    client = HTTPClient(f"http://127.0.0.1:{srv.server_port}")
    try:
        yield client
    finally:
        client.close()
        srv.shutdown()
        thread.join(5)


@pytest.fixture(params=["test_client", "http"])
def client(request: pytest.FixtureRequest, env: Env) -> Client:
    if request.param == "http":
        return request.getfixturevalue("server")  # type: ignore[no-any-return]
    return FlaskTestClient(env.app)


def bearer(token: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token}")]


def cookie(**values: str) -> tuple[str, str]:
    return ("Cookie", "; ".join(f"{k}={v}" for k, v in values.items()))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def payload_of(token: str) -> dict[str, Any]:
    return json.loads(unb64(token.split(".")[1]))  # type: ignore[no-any-return]


def parse_set_cookie(value: str) -> tuple[str, str, dict[str, str]]:
    """name, value and attributes (lower-cased names; flags map to "")."""
    first, *rest = value.split("; ")
    name, _, val = first.partition("=")
    attrs: dict[str, str] = {}
    for part in rest:
        key, _, attr = part.partition("=")
        attrs[key.lower()] = attr
    return name, val, attrs


def cookies_of(reply: Reply) -> dict[str, tuple[str, dict[str, str]]]:
    out = {}
    for raw in reply.all("Set-Cookie"):
        name, value, attrs = parse_set_cookie(raw)
        out[name] = (value, attrs)
    return out


def assert_failure(
    reply: Reply, status: int, error: str, challenge: str | None, description: str | None = None
) -> None:
    assert reply.status == status, reply.text
    assert reply.header("WWW-Authenticate") == challenge
    assert reply.header("Cache-Control") == "no-store"
    body = reply.json()
    assert body["error"] == error
    if description is not None:
        assert body["error_description"] == description


def login(client: Client, subject: str = "alice", **extra: object) -> Reply:
    reply = client.post("/auth/login", json_body={"subject": subject, **extra})
    assert reply.status == 200, reply.text
    return reply


# -- happy paths ------------------------------------------------------------------------


def test_bearer_sync_view(client: Client, env: Env) -> None:
    pair = env.service.issue("alice")
    reply = client.get("/me", bearer(pair.access_token))
    assert reply.status == 200
    assert reply.json() == {"sub": "alice", "sid": pair.session_id, "kind": "sync"}
    # The scheme is compared without case (RFC 6750 §2.1 / RFC 9110 §11.1).
    reply = client.get("/me", [("Authorization", f"bEaReR {pair.access_token}")])
    assert reply.status == 200


def test_async_views(client: Client, env: Env) -> None:
    pair = env.service.issue("bob", scope="orders:read")
    reply = client.get("/async/me", bearer(pair.access_token))
    assert reply.status == 200
    assert reply.json() == {"sub": "bob", "kind": "async"}
    assert client.get("/async/maybe").json() == {"sub": None, "kind": "async"}
    assert client.get("/async/maybe", bearer(pair.access_token)).json() == {
        "sub": "bob", "kind": "async"
    }
    assert_failure(client.get("/async/me"), 401, "unauthorized", MISSING)
    other = env.service.issue("bob")
    assert_failure(
        client.get("/async/me", bearer(other.access_token)), 403, "insufficient_scope",
        insufficient("orders:read"),
    )


def test_optional_view(client: Client, env: Env) -> None:
    assert client.get("/maybe").json() == {"sub": None}
    pair = env.service.issue("carol")
    assert client.get("/maybe", bearer(pair.access_token)).json() == {"sub": "carol"}
    # A token that is sent but bad is refused, not silently ignored.
    assert_failure(
        client.get("/maybe", bearer(pair.access_token[:-4] + "AAAA")), 401, "invalid_token",
        NOT_VALID,
    )


def test_current_claims_do_not_leak_between_requests(env: Env) -> None:
    with env.app.test_request_context("/"):
        assert env.auth.current_claims is None
        assert get_current_claims() is None
    assert get_current_claims() is None  # outside any request


def test_scopes_and_roles(client: Client, env: Env) -> None:
    reader = env.service.issue("dave", scope="orders:read")
    assert client.get("/orders", bearer(reader.access_token)).json() == {
        "orders": [], "sub": "dave"
    }
    assert_failure(
        client.get("/both", bearer(reader.access_token)), 403, "insufficient_scope",
        insufficient("orders:read orders:write"),
    )
    both = env.service.issue("dave", scope=["orders:read", "orders:write"])
    assert client.get("/both", bearer(both.access_token)).status == 200
    admin = env.service.issue("erin", claims={"roles": ["admin"]})
    assert client.get("/admin", bearer(admin.access_token)).json() == {"admin": True}
    reply = client.get("/admin", bearer(reader.access_token))
    assert_failure(
        reply, 403, "insufficient_scope",
        f'Bearer realm="{REALM}", error="insufficient_scope", '
        'error_description="the token does not carry the required role"',
    )


# -- RFC 6750 refusals -----------------------------------------------------------------


def test_missing_credentials(client: Client) -> None:
    reply = client.get("/me")
    assert_failure(reply, 401, "unauthorized", MISSING)
    assert "error_description" not in reply.json()
    # Another scheme is no Bearer credential at all (RFC 6750 §3.1: no error code).
    assert_failure(client.get("/me", [("Authorization", "Basic YTpi")]), 401, "unauthorized",
                   MISSING)


@pytest.mark.parametrize(
    "value",
    ["Bearer", "Bearer a b", "Bearer tok!en", "Bearer ===", "Bearer a,b", "Bearer a b c",
     "Bearer " + "a" * 20000],
)
def test_malformed_authorization_header(client: Client, value: str) -> None:
    reply = client.get("/me", [("Authorization", value)])
    assert_failure(
        reply, 400, "invalid_request", None, "the Authorization header must be 'Bearer <token>'"
    )


@pytest.mark.parametrize("value", ["Bearer ", "Bearer a\tb", "Bearer \t"])
def test_malformed_authorization_whitespace(env: Env, value: str) -> None:
    """Values an HTTP client refuses to send (trailing space, tab): through the test client."""
    reply = FlaskTestClient(env.app).get("/me", [("Authorization", value)])
    assert_failure(
        reply, 400, "invalid_request", None, "the Authorization header must be 'Bearer <token>'"
    )


def test_two_authorization_headers(client: Client, env: Env) -> None:
    token = env.service.issue("alice").access_token
    reply = client.get("/me", [*bearer(token), *bearer(token)])
    # The test client keeps two headers; a real HTTP stack merges them into one value.
    assert reply.status == 400, reply.text
    assert reply.json()["error"] == "invalid_request"
    assert reply.header("WWW-Authenticate") is None


def test_header_and_cookie_together(client: Client, env: Env) -> None:
    token = env.service.issue("alice").access_token
    reply = client.get("/me", [*bearer(token), cookie(**{ACCESS: token})])
    assert_failure(
        reply, 400, "invalid_request", None,
        "send the token in the Authorization header or a cookie, not both",
    )


def test_token_in_query_refused(client: Client, env: Env) -> None:
    token = env.service.issue("alice").access_token
    reply = client.get(f"/me?access_token={token}")
    assert_failure(
        reply, 400, "invalid_request", None,
        "tokens are not accepted in the URL; use the Authorization header",
    )
    assert token not in reply.text


def test_bad_expired_revoked(client: Client, env: Env) -> None:
    pair = env.service.issue("alice")
    header, payload, signature = pair.access_token.split(".")
    flipped = signature[:-6] + ("A" if signature[-6] != "A" else "B") + signature[-5:]
    assert_failure(
        client.get("/me", bearer(f"{header}.{payload}.{flipped}")), 401, "invalid_token",
        NOT_VALID, "the token is not valid",
    )
    past = TokenService(
        env.ring, issuer=ISSUER, audience=AUDIENCE, store=env.store,
        clock=lambda: time.time() - 3600,
    )
    expired = past.issue("alice").access_token
    assert_failure(client.get("/me", bearer(expired)), 401, "invalid_token", EXPIRED,
                   "the token has expired")
    env.service.revoke(pair.access_token)
    assert_failure(client.get("/me", bearer(pair.access_token)), 401, "invalid_token", REVOKED,
                   "the token has been revoked")


def test_store_down_is_503(client: Client, env: Env) -> None:
    token = env.service.issue("alice").access_token
    env.store.down = True
    try:
        reply = client.get("/me", bearer(token))
        login_reply = client.post("/auth/login", json_body={"subject": "alice"})
    finally:
        env.store.down = False
    for answer in (reply, login_reply):
        assert_failure(answer, 503, "temporarily_unavailable", None, "try again shortly")
        assert answer.header("Retry-After") == "1"
    assert client.get("/me", bearer(token)).status == 200  # back without a restart


# -- cookies and CSRF ---------------------------------------------------------------------


def test_login_cookies(client: Client) -> None:
    reply = login(client, "alice", scope="orders:read")
    body = reply.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "csrf_token"}
    assert body["token_type"] == "Bearer"
    assert reply.header("Cache-Control") == "no-store"
    jar = cookies_of(reply)
    assert set(jar) == {REFRESH, CSRF, ACCESS}
    access_claims = payload_of(body["access_token"])
    issued = access_claims["iat"]

    refresh_value, refresh = jar[REFRESH]
    assert payload_of(refresh_value)["sid"] == access_claims["sid"]
    assert refresh == {
        "path": "/auth/refresh",
        "max-age": str(payload_of(refresh_value)["exp"] - issued),
        "secure": "",
        "httponly": "",
        "samesite": "Strict",
    }
    assert int(refresh["max-age"]) == 14 * 86_400

    csrf_value, csrf = jar[CSRF]
    assert csrf_value == body["csrf_token"] == access_claims["csrf"]
    assert csrf == {"path": "/", "max-age": refresh["max-age"], "secure": "",
                    "samesite": "Strict"}  # readable by scripts: no HttpOnly

    access_value, access = jar[ACCESS]
    assert access_value == body["access_token"]
    assert access == {"path": "/", "max-age": str(body["expires_in"]), "secure": "",
                      "httponly": "", "samesite": "Strict"}

    with_refresh = login(client, "alice", include_refresh_token=True).json()
    assert payload_of(with_refresh["refresh_token"])["sub"] == "alice"


def test_login_refuses_csrf_claim(env: Env) -> None:
    with env.app.test_request_context("/"), pytest.raises(InvalidArgument, match="csrf"):
        env.auth.login_response("alice", claims={"csrf": "mine"})


def _session(client: Client) -> tuple[str, str, str]:
    reply = login(client, "frank", scope="orders:write")
    jar = cookies_of(reply)
    return jar[ACCESS][0], jar[REFRESH][0], reply.json()["csrf_token"]


def test_cookie_unsafe_request_needs_csrf(client: Client) -> None:
    access, _, csrf = _session(client)
    jar = cookie(**{ACCESS: access})
    assert client.get("/me", [jar]).status == 200  # safe method: no CSRF proof needed

    reply = client.post("/orders", [jar])
    assert_failure(
        reply, 403, "csrf_failed", None,
        "missing X-CSRF-Token header: a request authenticated by cookie must send the "
        f"session's CSRF token (the {CSRF} cookie, or csrf_token from the login response) "
        "in that header",
    )
    reply = client.post("/orders", [jar, ("X-CSRF-Token", csrf + "x")])
    assert_failure(reply, 403, "csrf_failed", None,
                   "the X-CSRF-Token header does not match this session's CSRF token")
    assert client.post("/orders", [jar, ("X-CSRF-Token", csrf)]).json() == {"created": True}
    own = client.post("/orders", [jar, ("X-CSRF-Token", csrf), ("Origin", client.origin),
                                  ("Sec-Fetch-Site", "same-origin")])
    assert own.status == 200
    trusted = client.post("/orders", [jar, ("X-CSRF-Token", csrf), ("Origin", TRUSTED)])
    assert trusted.status == 200


def test_cookie_request_from_foreign_origin(client: Client) -> None:
    access, _, csrf = _session(client)
    proof = [cookie(**{ACCESS: access}), ("X-CSRF-Token", csrf)]
    reply = client.post("/orders", [*proof, ("Origin", "https://evil.example")])
    assert_failure(reply, 403, "csrf_failed", None,
                   "Origin 'https://evil.example' is not this application's origin nor a "
                   "trusted one")
    reply = client.post("/orders", [*proof, ("Sec-Fetch-Site", "cross-site")])
    assert reply.status == 403
    assert "cross-site request refused" in reply.json()["error_description"]
    reply = client.post("/orders", [*proof, ("Origin", "null")])
    assert reply.status == 403


def test_bearer_post_needs_no_csrf(client: Client, env: Env) -> None:
    token = env.service.issue("gina", scope="orders:write").access_token
    reply = client.post("/orders", [*bearer(token), ("Origin", "https://evil.example")])
    assert reply.status == 200
    assert reply.json() == {"created": True}


# -- refresh and logout helpers -------------------------------------------------------------


def test_refresh_rotation_and_reuse(client: Client) -> None:
    access, refresh, csrf = _session(client)
    jar = cookie(**{REFRESH: refresh})
    reply = client.post("/auth/refresh", [jar])
    assert_failure(reply, 403, "csrf_failed", None)
    assert "missing X-CSRF-Token header" in reply.json()["error_description"]
    reply = client.post("/auth/refresh", [jar, ("X-CSRF-Token", "nope")])
    assert_failure(reply, 403, "csrf_failed", None,
                   "the X-CSRF-Token header does not match this session's CSRF token")
    reply = client.post("/auth/refresh", [jar, ("X-CSRF-Token", csrf),
                                          ("Origin", "https://evil.example")])
    assert reply.status == 403

    reply = client.post("/auth/refresh", [jar, ("X-CSRF-Token", csrf), ("Origin", client.origin)])
    assert reply.status == 200, reply.text
    body = reply.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "csrf_token"}
    assert body["csrf_token"] == csrf  # bound to the session, kept across refreshes
    new_jar = cookies_of(reply)
    new_refresh = new_jar[REFRESH][0]
    assert new_refresh != refresh
    assert new_jar[REFRESH][1]["max-age"] == str(
        payload_of(new_refresh)["exp"] - payload_of(body["access_token"])["iat"]
    )
    assert client.get("/me", bearer(body["access_token"])).status == 200

    # The used token again: the whole family is revoked, and the browser told to forget it.
    reply = client.post("/auth/refresh", [jar, ("X-CSRF-Token", csrf)])
    assert_failure(reply, 401, "invalid_token", REVOKED, "the token has been revoked")
    cleared = cookies_of(reply)
    assert cleared[REFRESH] == ("", {"path": "/auth/refresh", "max-age": "0", "secure": "",
                                     "httponly": "", "samesite": "Strict"})
    reply = client.post("/auth/refresh", [cookie(**{REFRESH: new_refresh}),
                                          ("X-CSRF-Token", csrf)])
    assert_failure(reply, 401, "invalid_token", REVOKED)
    assert_failure(client.get("/me", bearer(body["access_token"])), 401, "invalid_token",
                   REVOKED)
    assert_failure(client.get("/me", bearer(access)), 401, "invalid_token", REVOKED)


def test_refresh_by_body(client: Client, env: Env) -> None:
    pair = env.service.issue("hank")
    reply = client.post("/auth/refresh", json_body={"refresh_token": pair.refresh_token})
    assert reply.status == 200, reply.text
    body = reply.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert reply.all("Set-Cookie") == []
    reply = client.post("/auth/refresh", json_body={"refresh_token": pair.refresh_token})
    assert_failure(reply, 401, "invalid_token", REVOKED)
    assert reply.all("Set-Cookie") == []
    assert client.post(
        "/auth/refresh", json_body={"refresh_token": body["refresh_token"]}
    ).status == 401
    # An access token is not a refresh token.
    other = env.service.issue("hank")
    reply = client.post("/auth/refresh", json_body={"refresh_token": other.access_token})
    assert_failure(reply, 401, "invalid_token", NOT_VALID)


def test_refresh_malformed_requests(client: Client, env: Env) -> None:
    pair = env.service.issue("ivan")
    reply = client.post("/auth/refresh")
    assert_failure(reply, 401, "invalid_token", NOT_VALID.replace(
        "the token is not valid", f"no refresh token: the {REFRESH} cookie is missing"))
    both = client.post("/auth/refresh", [cookie(**{REFRESH: pair.refresh_token})],
                       json_body={"refresh_token": pair.refresh_token})
    assert_failure(both, 400, "invalid_request", None,
                   "send the refresh token in its cookie or in the body, not both")
    for raw in (b"{not json", b"[1, 2]", b'{"refresh_token": 5}', b"[" * 5000):
        reply = client.post("/auth/refresh", [("Content-Type", "application/json")], raw=raw)
        assert reply.status == 400, (raw[:20], reply.text)
        assert reply.json()["error"] == "invalid_request"
    huge = client.post("/auth/refresh", [("Content-Type", "application/json")],
                       raw=b'{"refresh_token": "' + b"a" * 40000 + b'"}')
    assert_failure(huge, 400, "invalid_request", None, "the request body is too large")
    assert client.post("/auth/refresh", json_body={"refresh_token": "a.b.c"}).status == 401


def test_logout(client: Client, env: Env) -> None:
    reply = login(client, "judy", include_refresh_token=True)
    body = reply.json()
    out = client.post("/auth/logout", bearer(body["access_token"]))
    assert out.status == 204
    assert out.text == ""
    cleared = cookies_of(out)
    assert set(cleared) == {REFRESH, CSRF, ACCESS}
    assert all(value == "" and attrs["max-age"] == "0" for value, attrs in cleared.values())
    assert cleared[REFRESH][1]["path"] == "/auth/refresh"
    assert_failure(client.get("/me", bearer(body["access_token"])), 401, "invalid_token",
                   REVOKED)
    assert client.post(
        "/auth/refresh", json_body={"refresh_token": body["refresh_token"]}
    ).status == 401

    # By refresh token only, and with nothing at all (idempotent).
    pair = env.service.issue("judy")
    assert client.post("/auth/logout", json_body={"refresh_token": pair.refresh_token}).status \
        == 204
    assert_failure(client.get("/me", bearer(pair.access_token)), 401, "invalid_token", REVOKED)
    assert client.post("/auth/logout").status == 204
    assert client.post("/auth/logout", bearer("not-a-token")).status == 204


def test_logout_by_cookie_needs_csrf(client: Client) -> None:
    access, _, csrf = _session(client)
    jar = cookie(**{ACCESS: access})
    assert client.post("/auth/logout", [jar]).status == 403
    assert client.get("/me", [jar]).status == 200  # not logged out by the refused request
    assert client.post("/auth/logout", [jar, ("X-CSRF-Token", csrf)]).status == 204
    assert_failure(client.get("/me", [jar]), 401, "invalid_token", REVOKED)


def test_store_down_during_refresh_and_logout(client: Client, env: Env) -> None:
    pair = env.service.issue("kate")
    env.store.down = True
    try:
        refreshed = client.post("/auth/refresh", json_body={"refresh_token": pair.refresh_token})
        out = client.post("/auth/logout", bearer(pair.access_token))
    finally:
        env.store.down = False
    for reply in (refreshed, out):
        assert_failure(reply, 503, "temporarily_unavailable", None)
        assert reply.header("Retry-After") == "1"
    assert client.get("/me", bearer(pair.access_token)).status == 200


# -- configuration ---------------------------------------------------------------------------


def test_config_keys_are_read(env: Env) -> None:
    app = Flask("configured")
    app.config.update(
        JWT_REALM="orders-api",
        JWT_REFRESH_COOKIE="rt",
        JWT_REFRESH_PATH="/session/refresh",
        JWT_ACCESS_COOKIE="at",
        JWT_ACCESS_COOKIE_PATH="/api",
        JWT_CSRF_HEADER="X-XSRF",
        JWT_CSRF_COOKIE="xsrf",
        JWT_COOKIE_DOMAIN="example.com",
        JWT_TRUSTED_ORIGINS="https://a.example https://b.example",
        JWT_INSECURE_DEVELOPMENT_COOKIES=True,
    )
    auth = FlaskAuth(env.service, app=app)
    with app.app_context():
        assert auth.settings == WebSettings(
            realm="orders-api", refresh_cookie="rt", refresh_path="/session/refresh",
            access_cookie="at", access_cookie_path="/api", csrf_header="X-XSRF",
            csrf_cookie="xsrf", cookie_domain="example.com",
            trusted_origins=("https://a.example", "https://b.example"),
            insecure_development_cookies=True,
        )
    app.register_blueprint(auth.blueprint("/session"))

    @app.post("/login")
    def login_view() -> Any:
        return auth.login_response("lee")

    @app.get("/api/me")
    @auth.required
    def me() -> Any:
        return {"ok": True}

    client = app.test_client(use_cookies=False)
    assert client.get("/api/me").headers["WWW-Authenticate"] == 'Bearer realm="orders-api"'
    reply = client.post("/login")
    jar = {}
    for raw in reply.headers.getlist("Set-Cookie"):
        name, value, attrs = parse_set_cookie(raw)
        jar[name] = (value, attrs)
    assert set(jar) == {"rt", "xsrf", "at"}  # no __Secure- prefix in development mode
    assert jar["rt"][1]["path"] == "/session/refresh"
    assert jar["at"][1]["path"] == "/api"
    assert all(attrs["domain"] == "example.com" for _, attrs in jar.values())
    assert all("secure" not in attrs for _, attrs in jar.values())
    csrf = reply.get_json()["csrf_token"]
    refreshed = client.post("/session/refresh", headers=[
        ("Cookie", f"rt={jar['rt'][0]}"), ("X-XSRF", csrf), ("Origin", "https://b.example")])
    assert refreshed.status_code == 200, refreshed.text


def test_service_from_app_extensions(env: Env) -> None:
    app = Flask("factory")
    app.extensions[SERVICE_EXTENSION] = env.service
    auth = FlaskAuth()
    auth.init_app(app)

    @app.get("/me")
    @auth.required
    def me() -> Any:
        return {"sub": auth.current_claims.subject}  # type: ignore[union-attr]

    token = env.service.issue("mia").access_token
    reply = app.test_client().get("/me", headers=bearer(token))
    assert reply.get_json() == {"sub": "mia"}
    assert reply.status_code == 200


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("JWT_REALM", 'a"b', "JWT_REALM"),
        ("JWT_REALM", 5, "JWT_REALM"),
        ("JWT_REFRESH_PATH", "auth/refresh", "JWT_REFRESH_PATH"),
        ("JWT_REFRESH_COOKIE", "bad name", "JWT_REFRESH_COOKIE"),
        ("JWT_ACCESS_COOKIE", "a;b", "JWT_ACCESS_COOKIE"),
        ("JWT_ACCESS_COOKIE_PATH", "x", "JWT_ACCESS_COOKIE_PATH"),
        ("JWT_CSRF_HEADER", "X CSRF", "JWT_CSRF_HEADER"),
        ("JWT_CSRF_COOKIE", "", "JWT_CSRF_COOKIE"),
        ("JWT_COOKIE_DOMAIN", 7, "JWT_COOKIE_DOMAIN"),
        ("JWT_TRUSTED_ORIGINS", ["ftp://x.example"], "JWT_TRUSTED_ORIGINS"),
        ("JWT_TRUSTED_ORIGINS", 3, "JWT_TRUSTED_ORIGINS"),
        ("JWT_INSECURE_DEVELOPMENT_COOKIES", "yes", "JWT_INSECURE_DEVELOPMENT_COOKIES"),
    ],
)
def test_invalid_config_refused(env: Env, key: str, value: object, message: str) -> None:
    app = Flask("bad")
    app.config[key] = value
    with pytest.raises(InvalidArgument, match=message):
        FlaskAuth(env.service).init_app(app)
    assert "jwtward.flask" not in app.extensions


def test_invalid_setup_refused(env: Env) -> None:
    with pytest.raises(InvalidArgument, match="needs a TokenService"):
        FlaskAuth().init_app(Flask("none"))
    app = Flask("wrong")
    app.extensions[SERVICE_EXTENSION] = object()
    with pytest.raises(InvalidArgument, match="must be a TokenService"):
        FlaskAuth().init_app(app)
    async_service = AsyncTokenService(env.ring, issuer=ISSUER, audience=AUDIENCE,
                                      store=MemoryTokenStore())  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="asynchronous"):
        FlaskAuth(async_service)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="scopes"):
        FlaskAuth(env.service).required(scopes=["a b"])
    app = Flask("mismatch")
    auth = FlaskAuth(env.service, app=app)
    with pytest.raises(InvalidArgument, match="JWT_REFRESH_PATH"):
        app.register_blueprint(auth.blueprint("/login"))


# -- adversarial tokens over real HTTP --------------------------------------------------------


def _forge(header: Mapping[str, Any], payload: str, key: Key | None) -> str:
    head = b64(json.dumps(header, separators=(",", ":")).encode())
    signing_input = f"{head}.{payload}".encode()
    signature = b"" if key is None else key.sign(signing_input)
    return f"{head}.{payload}.{b64(signature)}"


def _adversarial(env: Env) -> dict[str, str]:
    pair = env.service.issue("mallory", scope="orders:read")
    good = pair.access_token
    head_b64, payload, _ = good.split(".")
    header = json.loads(unb64(head_b64))
    key = env.ring.signing_key()
    public_pem = key.public_key().to_pem()
    hs_header = {**header, "alg": "HS256"}
    hs_head = b64(json.dumps(hs_header).encode())
    hs_sig = hmac.new(public_pem, f"{hs_head}.{payload}".encode(), hashlib.sha256).digest()
    jwk = key.public_key().to_jwk()
    tokens = {
        "alg none": _forge({**header, "alg": "none"}, payload, None),
        "alg None": _forge({**header, "alg": "None"}, payload, None),
        "HS256 with the public key as secret": f"{hs_head}.{payload}.{b64(hs_sig)}",
        "jku": _forge({**header, "jku": "https://evil.example/jwks.json"}, payload, key),
        "x5u": _forge({**header, "x5u": "https://evil.example/cert.pem"}, payload, key),
        "jwk": _forge({**header, "jwk": jwk}, payload, key),
        "x5c": _forge({**header, "x5c": ["MIIBkTCB+wIJAKHHIG..."]}, payload, key),
        "kid path": _forge({**header, "kid": "../../../../etc/passwd"}, payload, key),
        "kid sql": _forge({**header, "kid": "x' UNION SELECT 'secret' --"}, payload, key),
        "kid control": _forge({**header, "kid": "a\x00\n\x1b"}, payload, key),
        "kid long": _forge({**header, "kid": "k" * 5000}, payload, key),
        "crit unknown": _forge({**header, "crit": ["x-evil"], "x-evil": 1}, payload, key),
        "crit exp": _forge({**header, "crit": ["exp"]}, payload, key),
        "oversize": _forge(
            header,
            b64(json.dumps({**payload_of(good), "pad": "p" * 9000}).encode()),
            key,
        ),
        "padded base64": good + "=",
        "refresh token as access": pair.refresh_token,
        "JWE where JWS expected": jwe.encrypt(
            unb64(payload), Key.generate("A256KW"), headers={"typ": "at+jwt"}
        ),
        "truncated": good.rsplit(".", 1)[0],
        "empty segments": "..",
        "payload not json": _forge(header, b64(b"not json"), key),
        "payload array": _forge(header, b64(b"[1]"), key),
        "typ JWT": _forge({**header, "typ": "JWT"}, payload, key),
        "duplicate header member": (
            b64(b'{"alg":"ES256","alg":"ES256","typ":"at+jwt","kid":"'
                + header["kid"].encode() + b'"}') + "." + payload + "." + good.split(".")[2]
        ),
    }
    # Non-canonical base64: the same signature bytes with nonzero unused trailing bits.
    sig = good.split(".")[2]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(sig[-1])
    tokens["non-canonical base64"] = f"{head_b64}.{payload}.{sig[:-1]}{alphabet[last | 1]}"
    assert unb64(tokens["non-canonical base64"].split(".")[2]) == unb64(sig)
    for name, (issuer, audience) in {
        "wrong aud": (ISSUER, "https://other-api.example"),
        "wrong iss": ("https://evil.example", AUDIENCE),
    }.items():
        other = TokenService(env.ring, issuer=issuer, audience=audience, store=env.store)
        tokens[name] = other.issue("mallory", scope="orders:read").access_token
    past = TokenService(env.ring, issuer=ISSUER, audience=AUDIENCE, store=env.store,
                        clock=lambda: time.time() - timedelta(hours=2).total_seconds())
    tokens["expired"] = past.issue("mallory", scope="orders:read").access_token
    return tokens


ADVERSARIAL = [
    "alg none", "alg None", "HS256 with the public key as secret", "jku", "x5u", "jwk", "x5c",
    "kid path", "kid sql", "kid control", "kid long", "crit unknown", "crit exp", "oversize",
    "padded base64", "refresh token as access", "JWE where JWS expected", "truncated",
    "empty segments", "payload not json", "payload array", "typ JWT", "duplicate header member",
    "non-canonical base64", "wrong aud", "wrong iss", "expired",
]


@pytest.fixture(scope="module")
def adversarial(env: Env) -> dict[str, str]:
    tokens = _adversarial(env)
    assert sorted(tokens) == sorted(ADVERSARIAL)
    return tokens


def _assert_refused(reply: Reply, token: str) -> None:
    assert reply.status in (400, 401), reply.text
    assert reply.header("WWW-Authenticate") in (None, NOT_VALID, EXPIRED)
    everything = reply.text + "".join(v for _, v in reply.headers)
    assert "Traceback" not in everything
    for part in token.split("."):
        if len(part) >= 8:
            assert part not in everything


def test_control_token_is_accepted(server: HTTPClient, env: Env) -> None:
    """The forging code is right: the same claims, honestly signed, pass."""
    good = env.service.issue("mallory", scope="orders:read").access_token
    head, payload, _ = good.split(".")
    resigned = _forge(json.loads(unb64(head)), payload, env.ring.signing_key())
    assert server.get("/orders", bearer(resigned)).status == 200


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_adversarial_token_over_http(
    server: HTTPClient, adversarial: dict[str, str], name: str
) -> None:
    token = adversarial[name]
    for path in ("/orders", "/async/me", "/maybe"):
        _assert_refused(server.get(path, bearer(token)), token)
        _assert_refused(server.get(path, [cookie(**{ACCESS: token})]), token)
    _assert_refused(server.post("/orders", bearer(token)), token)
    refreshed = server.post("/auth/refresh", json_body={"refresh_token": token})
    if name != "refresh token as access":
        _assert_refused(refreshed, token)
    else:
        assert refreshed.status == 200  # it *is* a refresh token: that route takes it


def test_adversarial_expectations(server: HTTPClient, adversarial: dict[str, str]) -> None:
    """Every class is well-formed on the wire (b64token), so each is a 401 ``invalid_token``."""
    for name in ADVERSARIAL:
        reply = server.get("/orders", bearer(adversarial[name]))
        expected = EXPIRED if name == "expired" else NOT_VALID
        assert (name, reply.status, reply.header("WWW-Authenticate")) == (name, 401, expected)
