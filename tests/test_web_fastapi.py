"""The FastAPI integration over HTTP: RFC 6750 answers, cookies, CSRF, sessions, attacks.

Most checks drive the app in process (``fastapi.testclient`` and httpx's
``ASGITransport``); the RFC 6750 cases and the adversarial tokens are also
replayed against a real uvicorn server on a free port, so what a client sees
on the wire (status, ``WWW-Authenticate``, ``Set-Cookie``) is what is asserted.
The service's clock is a fake that moves only when a test moves it, so the
cookie ``Max-Age`` and the expiry cases are exact.
"""

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Annotated, Any

import httpx
import pytest
import uvicorn
from fastapi import Depends, FastAPI, Security
from fastapi.testclient import TestClient

from jwtward import jwe
from jwtward.errors import InvalidArgument
from jwtward.jose.keys import Key
from jwtward.keys import KeyRing
from jwtward.tokens import (
    AccessClaims,
    AsyncTokenService,
    MemoryTokenStore,
    ThreadedStore,
    TokenService,
)
from jwtward.web import WebSettings
from jwtward.web.fastapi import FastAPIAuth

ISSUER = "https://auth.example"
AUDIENCE = "https://api.example"
BASE = "https://testserver"
ACCESS = 15 * 60
REFRESH = 14 * 86_400
LEEWAY = 30
REFRESH_COOKIE = "__Secure-jwtward-refresh"
CSRF_COOKIE = "__Secure-jwtward-csrf"
ACCESS_COOKIE = "__Secure-jwtward-access"


class FakeClock:
    """POSIX seconds that move only when told (starting at the real, whole-second time)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SwitchableStore:
    """An async token store that can be switched off, failing like a lost connection."""

    def __init__(self) -> None:
        self.inner = ThreadedStore(MemoryTokenStore())
        self.down = False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        async def call(*args: Any) -> Any:
            if self.down:
                raise ConnectionError("connection refused by 10.0.0.7:6543 (driver detail)")
            return await method(*args)

        return call


class Harness:
    """One app with every kind of route, its auth object, service, store and clock."""

    def __init__(self, ring: KeyRing, settings: WebSettings | None = None) -> None:
        self.clock = FakeClock()
        self.store = SwitchableStore()
        self.service = AsyncTokenService(
            ring, issuer=ISSUER, audience=AUDIENCE, store=self.store, clock=self.clock
        )
        self.auth = FastAPIAuth(self.service, settings)
        self.app = build_app(self.auth)


def build_app(auth: FastAPIAuth) -> FastAPI:
    app = FastAPI()
    auth.install(app)
    app.include_router(auth.router())

    @app.post("/login")
    async def login(who: str = "alice", scope: str = "orders:read", body: bool = False) -> Any:
        roles = ["admin"] if who == "root" else ["customer"]
        return await auth.login_response(
            who, scope=scope, claims={"roles": roles}, include_refresh_token=body
        )

    @app.get("/me")
    async def me(claims: Annotated[AccessClaims, Depends(auth.claims)]) -> dict[str, Any]:
        return {"sub": claims.subject, "scopes": sorted(claims.scopes)}

    @app.post("/me")
    async def change_me(claims: Annotated[AccessClaims, Depends(auth.claims)]) -> dict[str, Any]:
        return {"sub": claims.subject, "changed": True}

    @app.get("/orders")
    async def orders(
        claims: Annotated[AccessClaims, Security(auth.claims, scopes=["orders:read"])],
    ) -> dict[str, Any]:
        return {"sub": claims.subject}

    @app.post("/orders")
    async def create_order(
        claims: Annotated[
            AccessClaims, Security(auth.claims, scopes=["orders:read", "orders:write"])
        ],
    ) -> dict[str, Any]:
        return {"sub": claims.subject}

    @app.get("/maybe")
    async def maybe(claims: Annotated[AccessClaims | None, Depends(auth.optional_claims)]) -> Any:
        return {"sub": None if claims is None else claims.subject}

    @app.get("/admin")
    async def admin(claims: Annotated[AccessClaims, Depends(auth.require_roles("admin"))]) -> Any:
        return {"sub": claims.subject}

    return app


# -- helpers -------------------------------------------------------------------------------


def parse_set_cookie(value: str) -> tuple[str, str, dict[str, str]]:
    """Name, value and attributes (lower-cased names; flags map to "") of one Set-Cookie."""
    first, *rest = value.split("; ")
    name, _, cookie_value = first.partition("=")
    attributes: dict[str, str] = {}
    for part in rest:
        key, _, attr = part.partition("=")
        attributes[key.lower()] = attr
    return name, cookie_value, attributes


def set_cookies(response: httpx.Response) -> dict[str, tuple[str, dict[str, str]]]:
    out = {}
    for raw in response.headers.get_list("set-cookie"):
        name, value, attributes = parse_set_cookie(raw)
        assert name not in out, "a cookie set twice in one response"
        out[name] = (value, attributes)
    return out


def claims_of(token: str) -> dict[str, Any]:
    """The payload of a compact JWS, unverified (to read exp for the Max-Age check)."""
    segment = token.split(".")[1]
    padded = segment + "=" * (-len(segment) % 4)
    result: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return result


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def challenge(response: httpx.Response) -> str | None:
    values = response.headers.get_list("www-authenticate")
    assert len(values) <= 1
    return values[0] if values else None


def assert_invalid_token(response: httpx.Response, description: str, realm: str = "api") -> None:
    assert response.status_code == 401, response.text
    assert challenge(response) == (
        f'Bearer realm="{realm}", error="invalid_token", error_description="{description}"'
    )
    assert response.json() == {"error": "invalid_token", "error_description": description}
    assert response.headers["cache-control"] == "no-store"


def assert_invalid_request(response: httpx.Response, description: str) -> None:
    # RFC 6750 §3 makes the challenge optional for a 400; the core sends none.
    assert response.status_code == 400, response.text
    assert challenge(response) is None
    assert response.json() == {"error": "invalid_request", "error_description": description}


def assert_leaks_nothing(response: httpx.Response, token: str) -> None:
    """No echo of the token (nor of any long part of it), no traceback, no driver detail."""
    text = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    for piece in [token, *token.split(".")]:
        if len(piece) >= 12:
            assert piece not in text
    for marker in ("Traceback", 'File "', "10.0.0.7", "driver detail"):
        assert marker not in text


def login(client: TestClient, **params: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Log in; the body and the cookie values (the client's own jar is emptied)."""
    response = client.post("/login", params=params)
    assert response.status_code == 200, response.text
    cookies = {name: value for name, (value, _attrs) in set_cookies(response).items()}
    client.cookies.clear()
    return response.json(), cookies


def cookie_header(**cookies: str) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}


def refresh_cookie(value: str) -> dict[str, str]:
    return {"Cookie": f"{REFRESH_COOKIE}={value}"}


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    return KeyRing.generate("ES256")


@pytest.fixture
def harness(ring: KeyRing) -> Harness:
    return Harness(ring)


@pytest.fixture
def client(harness: Harness) -> Iterator[TestClient]:
    with TestClient(harness.app, base_url=BASE) as test_client:
        yield test_client


@pytest.fixture
def cookie_harness(ring: KeyRing) -> Harness:
    return Harness(
        ring,
        WebSettings(access_cookie="jwtward-access", trusted_origins=("https://app.example",)),
    )


@pytest.fixture
def cookie_client(cookie_harness: Harness) -> Iterator[TestClient]:
    with TestClient(cookie_harness.app, base_url=BASE) as test_client:
        yield test_client


# -- happy paths ------------------------------------------------------------------------------


def test_login_body_and_protected_routes(client: TestClient) -> None:
    body, cookies = login(client)
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "csrf_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == ACCESS
    assert body["scope"] == "orders:read"
    assert claims_of(body["access_token"])["csrf"] == body["csrf_token"]
    assert cookies[CSRF_COOKIE] == body["csrf_token"]
    assert set(cookies) == {REFRESH_COOKIE, CSRF_COOKIE}

    token = body["access_token"]
    assert client.get("/me", headers=bearer(token)).json() == {
        "sub": "alice", "scopes": ["orders:read"],
    }
    assert client.get("/orders", headers=bearer(token)).json() == {"sub": "alice"}
    # Scheme names are compared without case (RFC 9110 §11.1).
    assert client.get("/me", headers={"Authorization": f"bEaReR {token}"}).status_code == 200
    # Bearer requests need no CSRF proof, even unsafe ones.
    assert client.post("/me", headers=bearer(token)).json() == {"sub": "alice", "changed": True}


def test_login_with_refresh_token_in_body(client: TestClient) -> None:
    body, cookies = login(client, body=True)
    assert body["refresh_token"] == cookies[REFRESH_COOKIE]
    assert claims_of(body["refresh_token"])["sid"] == claims_of(body["access_token"])["sid"]


def test_login_refuses_a_caller_csrf_claim(harness: Harness) -> None:
    import asyncio

    with pytest.raises(InvalidArgument):
        asyncio.run(harness.auth.login_response("alice", claims={"csrf": "mine"}))


def test_optional_claims(client: TestClient) -> None:
    assert client.get("/maybe").json() == {"sub": None}
    body, _ = login(client)
    assert client.get("/maybe", headers=bearer(body["access_token"])).json() == {"sub": "alice"}
    # Broken credentials are refused, never taken for an anonymous call.
    assert_invalid_token(
        client.get("/maybe", headers=bearer("abc.def.ghi")), "the token is not valid"
    )
    assert_invalid_request(
        client.get("/maybe", headers={"Authorization": "Bearer"}),
        "the Authorization header must be 'Bearer <token>'",
    )


def test_require_roles(client: TestClient) -> None:
    customer, _ = login(client)
    root, _ = login(client, who="root")
    refused = client.get("/admin", headers=bearer(customer["access_token"]))
    assert refused.status_code == 403
    assert challenge(refused) == (
        'Bearer realm="api", error="insufficient_scope", '
        'error_description="the token does not carry the required role"'
    )
    assert client.get("/admin", headers=bearer(root["access_token"])).json() == {"sub": "root"}
    assert_invalid_token(client.get("/admin", headers=bearer("x.y.z")), "the token is not valid")
    assert client.get("/admin").status_code == 401


@pytest.mark.asyncio
async def test_async_client_over_asgi_transport(harness: Harness) -> None:
    transport = httpx.ASGITransport(app=harness.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        response = await http.post("/login")
        body = response.json()
        refresh = set_cookies(response)[REFRESH_COOKIE][0]
        http.cookies.clear()
        assert (await http.get("/orders", headers=bearer(body["access_token"]))).status_code == 200
        rotated = await http.post(
            "/auth/refresh",
            headers={**refresh_cookie(refresh), "X-CSRF-Token": body["csrf_token"]},
        )
        assert rotated.status_code == 200
        missing = await http.get("/me")
        assert missing.status_code == 401
        assert challenge(missing) == 'Bearer realm="api"'


# -- RFC 6750 answers ---------------------------------------------------------------------


def test_missing_credentials_is_a_bare_challenge(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Basic YWxpY2U6cHc="}):
        response = client.get("/me", headers=headers)
        assert response.status_code == 401
        assert challenge(response) == 'Bearer realm="api"'
        assert response.json() == {"error": "unauthorized"}


def test_realm_comes_from_settings(ring: KeyRing) -> None:
    harness = Harness(ring, WebSettings(realm="shop"))
    with TestClient(harness.app, base_url=BASE) as client:
        assert challenge(client.get("/me")) == 'Bearer realm="shop"'
        assert_invalid_token(client.get("/me", headers=bearer("a.b.c")), "the token is not valid",
                             realm="shop")


MALFORMED_HEADERS: list[list[tuple[str, str]]] = [
    [("Authorization", "Bearer")],
    [("Authorization", "Bearer    ")],
    [("Authorization", "Bearer a.b.c d.e.f")],
    [("Authorization", "Bearer abc$def")],
    [("Authorization", "Bearer a,b")],
    [("Authorization", "Bearer ====")],
    [("Authorization", "Bearer " + "a" * 20_000)],
]


@pytest.mark.parametrize("headers", MALFORMED_HEADERS, ids=range(len(MALFORMED_HEADERS)))
def test_malformed_authorization_is_invalid_request(
    client: TestClient, headers: list[tuple[str, str]]
) -> None:
    assert_invalid_request(
        client.get("/me", headers=headers), "the Authorization header must be 'Bearer <token>'"
    )


def test_two_authorization_headers(client: TestClient) -> None:
    body, _ = login(client)
    token = body["access_token"]
    response = client.get(
        "/me", headers=[("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    )
    assert_invalid_request(response, "send exactly one Authorization header")


def test_token_in_query_is_refused(client: TestClient) -> None:
    body, _ = login(client)
    response = client.get("/me", params={"access_token": body["access_token"]})
    assert_invalid_request(
        response, "tokens are not accepted in the URL; use the Authorization header"
    )
    assert_leaks_nothing(response, body["access_token"])


@pytest.mark.parametrize("query", ["access%5Ftoken=x", "%61ccess_token=x", "a=1&access%5ftoken"])
def test_token_in_query_is_refused_however_the_name_is_encoded(
    client: TestClient, query: str
) -> None:
    body, _ = login(client)
    response = client.get(f"/me?{query}", headers=bearer(body["access_token"]))
    assert_invalid_request(
        response, "tokens are not accepted in the URL; use the Authorization header"
    )


def test_query_strings_merely_mentioning_access_token_are_fine(client: TestClient) -> None:
    """Only a parameter named access_token is a token in the URL."""
    body, _ = login(client)
    for params in ({"no_access_token": "1"}, {"q": "access_token"}):
        response = client.get("/me", params=params, headers=bearer(body["access_token"]))
        assert response.status_code == 200, params


def test_cookies_are_no_credentials_without_an_access_cookie(client: TestClient) -> None:
    """With the access cookie off, cookies neither authenticate nor make a Bearer ambiguous."""
    body, _ = login(client)
    token = body["access_token"]
    jar = cookie_header(**{"__Host-access_token": token, "access_token": token, "x": "y"})
    assert client.get("/me", headers={**bearer(token), **jar}).status_code == 200
    missing = client.get("/me", headers=jar)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer realm=")
    assert "error=" not in missing.headers["WWW-Authenticate"]


def test_the_cookie_and_query_checks_still_apply_with_the_access_cookie_on(
    cookie_client: TestClient,
) -> None:
    body, _ = login(cookie_client)
    token = body["access_token"]
    in_url = cookie_client.get("/me", params={"access_token": token},
                               headers=cookie_header(x="y"))
    assert_invalid_request(
        in_url, "tokens are not accepted in the URL; use the Authorization header"
    )
    assert cookie_client.get("/me", headers={**bearer(token), **cookie_header(x="y")}
                             ).status_code == 200


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA"])
def test_garbage_token(client: TestClient, token: str) -> None:
    assert_invalid_token(client.get("/me", headers=bearer(token)), "the token is not valid")


def test_expired_token(client: TestClient, harness: Harness) -> None:
    body, _ = login(client)
    harness.clock.advance(ACCESS + LEEWAY - 1)
    assert client.get("/me", headers=bearer(body["access_token"])).status_code == 200
    harness.clock.advance(2)
    response = client.get("/me", headers=bearer(body["access_token"]))
    assert_invalid_token(response, "the token has expired")
    assert_leaks_nothing(response, body["access_token"])


def test_revoked_token(client: TestClient, harness: Harness) -> None:
    import asyncio

    body, _ = login(client)
    asyncio.run(harness.service.revoke(body["access_token"]))
    assert_invalid_token(
        client.get("/me", headers=bearer(body["access_token"])), "the token has been revoked"
    )


def test_wrong_signature(client: TestClient) -> None:
    body, _ = login(client)
    head, payload, signature = body["access_token"].split(".")
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    assert_invalid_token(
        client.get("/me", headers=bearer(f"{head}.{payload}.{flipped}")), "the token is not valid"
    )
    other = Harness(KeyRing.generate("ES256"))
    with TestClient(other.app, base_url=BASE) as foreign:
        foreign_body, _ = login(foreign)
    assert_invalid_token(
        client.get("/me", headers=bearer(foreign_body["access_token"])), "the token is not valid"
    )


def test_insufficient_scope_names_the_scope(client: TestClient) -> None:
    body, _ = login(client, scope="profile")
    response = client.get("/orders", headers=bearer(body["access_token"]))
    assert response.status_code == 403
    assert challenge(response) == (
        'Bearer realm="api", error="insufficient_scope", '
        'error_description="the token does not grant the required scope", scope="orders:read"'
    )
    assert response.json() == {
        "error": "insufficient_scope",
        "error_description": "the token does not grant the required scope",
        "scope": "orders:read",
    }
    # Every required scope is named, in the route's order.
    reader, _ = login(client)
    response = client.post("/orders", headers=bearer(reader["access_token"]))
    assert response.status_code == 403
    assert response.json()["scope"] == "orders:read orders:write"


def test_store_down_is_503_with_retry_after(client: TestClient, harness: Harness) -> None:
    body, cookies = login(client)
    harness.store.down = True
    response = client.get("/me", headers=bearer(body["access_token"]))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert challenge(response) is None
    assert response.json() == {
        "error": "temporarily_unavailable", "error_description": "try again shortly",
    }
    assert_leaks_nothing(response, body["access_token"])
    # A refresh while the store is down keeps the cookie (the session may be fine).
    refreshed = client.post(
        "/auth/refresh",
        headers={**refresh_cookie(cookies[REFRESH_COOKIE]), "X-CSRF-Token": body["csrf_token"]},
    )
    assert refreshed.status_code == 503
    assert refreshed.headers.get_list("set-cookie") == []
    assert client.post("/auth/logout", headers=bearer(body["access_token"])).status_code == 503
    login_down = client.post("/login")
    assert login_down.status_code == 503
    assert login_down.headers["retry-after"] == "1"
    harness.store.down = False
    assert client.get("/me", headers=bearer(body["access_token"])).status_code == 200


def test_never_422_for_odd_requests(client: TestClient, cookie_client: TestClient) -> None:
    odd: list[dict[str, Any]] = [
        {"headers": {"Authorization": "Bearer \t"}},
        {"headers": {"Authorization": ""}},
        {"headers": {"Cookie": "=; ;;; a"}},
        {"params": {"access_token": ""}},
        {"params": {"scopes": "x", "security_scopes": "y", "credentials": "z"}},
        {"headers": {"Authorization": "Bearer \u00e9t\u00e9".encode("latin-1")}},
        {"headers": {"Authorization": b"Bearer \xff\xfe"}},
    ]
    for http in (client, cookie_client):
        for path in ("/me", "/orders", "/maybe", "/admin"):
            for request in odd:
                status = http.get(path, **request).status_code
                # Without usable credentials the optional route serves an anonymous caller.
                allowed = (200, 400, 401) if path == "/maybe" else (400, 401)
                assert status in allowed, (path, request, status)
        for path in ("/auth/refresh", "/auth/logout"):
            for content in (b"[", b"\xff\xfe", b"[]", b'{"refresh_token": 5}', b"x" * 40_000):
                status = http.post(path, content=content).status_code
                assert status == 400, (path, content[:10], status)


def test_without_install_the_answer_is_still_right(ring: KeyRing) -> None:
    service = AsyncTokenService(
        ring, issuer=ISSUER, audience=AUDIENCE, store=ThreadedStore(MemoryTokenStore())
    )
    auth = FastAPIAuth(service)
    app = FastAPI()

    @app.get("/me")
    async def me(claims: Annotated[AccessClaims, Depends(auth.claims)]) -> str:
        return claims.subject

    with TestClient(app, base_url=BASE) as client:
        response = client.get("/me")
        assert response.status_code == 401
        assert challenge(response) == 'Bearer realm="api"'
        assert client.get("/me", headers={"Authorization": "Bearer"}).status_code == 400


def test_configuration_errors(ring: KeyRing, harness: Harness) -> None:
    sync = TokenService(ring, issuer=ISSUER, audience=AUDIENCE, store=MemoryTokenStore())
    with pytest.raises(InvalidArgument, match="AsyncTokenService"):
        FastAPIAuth(sync)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="refresh cookie is scoped"):
        harness.auth.router(prefix="/session")
    with pytest.raises(InvalidArgument):
        harness.auth.require_roles()


# -- cookies, CSRF -----------------------------------------------------------------------------


def test_cookie_attributes(client: TestClient, harness: Harness) -> None:
    response = client.post("/login")
    cookies = set_cookies(response)
    refresh_value, refresh = cookies[REFRESH_COOKIE]
    exp = claims_of(refresh_value)["exp"]
    assert refresh == {
        "path": "/auth/refresh", "max-age": str(int(exp - harness.clock.now)),
        "secure": "", "httponly": "", "samesite": "Strict",
    }
    assert int(refresh["max-age"]) == REFRESH
    _csrf_value, csrf = cookies[CSRF_COOKIE]
    assert csrf == {"path": "/", "max-age": str(REFRESH), "secure": "", "samesite": "Strict"}
    assert "httponly" not in csrf  # scripts read it to send the header
    assert response.headers["cache-control"] == "no-store"
    # The standard library reads the same attributes.
    jar: SimpleCookie = SimpleCookie()
    jar.load(response.headers.get_list("set-cookie")[0])
    morsel = jar[REFRESH_COOKIE]
    assert morsel["httponly"] is True and morsel["secure"] is True
    assert morsel["samesite"] == "Strict" and morsel["path"] == "/auth/refresh"

    # After some time, the rotated cookie's Max-Age is the new token's remaining lifetime.
    harness.clock.advance(3600)
    rotated = client.post(
        "/auth/refresh",
        headers={**refresh_cookie(refresh_value), "X-CSRF-Token": response.json()["csrf_token"]},
    )
    new_value, new_attrs = set_cookies(rotated)[REFRESH_COOKIE]
    assert new_attrs["max-age"] == str(int(claims_of(new_value)["exp"] - harness.clock.now))


def test_access_cookie_and_csrf(cookie_client: TestClient) -> None:
    body, cookies = login(cookie_client)
    assert set(cookies) == {REFRESH_COOKIE, CSRF_COOKIE, ACCESS_COOKIE}
    access = {ACCESS_COOKIE: cookies[ACCESS_COOKIE]}
    csrf = body["csrf_token"]

    assert cookie_client.get("/me", headers=cookie_header(**access)).status_code == 200

    refused = cookie_client.post("/me", headers=cookie_header(**access))
    assert refused.status_code == 403
    assert challenge(refused) is None
    assert refused.json() == {
        "error": "csrf_failed",
        "error_description": (
            "missing X-CSRF-Token header: a request authenticated by cookie must send the "
            "session's CSRF token (the __Secure-jwtward-csrf cookie, or csrf_token from the "
            "login response) in that header"
        ),
    }
    wrong = cookie_client.post("/me", headers={**cookie_header(**access), "X-CSRF-Token": "x" * 32})
    assert wrong.status_code == 403
    assert wrong.json()["error_description"] == (
        "the X-CSRF-Token header does not match this session's CSRF token"
    )
    ok = cookie_client.post("/me", headers={**cookie_header(**access), "X-CSRF-Token": csrf})
    assert ok.json() == {"sub": "alice", "changed": True}

    for origin in (BASE, "https://app.example"):
        headers = {**cookie_header(**access), "X-CSRF-Token": csrf, "Origin": origin}
        assert cookie_client.post("/me", headers=headers).status_code == 200
    foreign = cookie_client.post(
        "/me", headers={**cookie_header(**access), "X-CSRF-Token": csrf,
                        "Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    assert foreign.json()["error_description"] == (
        "Origin 'https://evil.example' is not this application's origin nor a trusted one"
    )
    cross = cookie_client.post(
        "/me", headers={**cookie_header(**access), "X-CSRF-Token": csrf,
                        "Sec-Fetch-Site": "cross-site"},
    )
    assert cross.status_code == 403

    # A Bearer request needs no CSRF proof.
    assert cookie_client.post("/me", headers=bearer(body["access_token"])).status_code == 200
    # Header and cookie at once: ambiguous.
    both = cookie_client.get(
        "/me", headers={**bearer(body["access_token"]), **cookie_header(**access)}
    )
    assert_invalid_request(both, "send the token in the Authorization header or a cookie, not both")


# -- refresh and logout ----------------------------------------------------------------------


def test_refresh_rotation_and_reuse(client: TestClient, harness: Harness) -> None:
    body, cookies = login(client)
    csrf = body["csrf_token"]
    first = cookies[REFRESH_COOKIE]

    no_header = client.post("/auth/refresh", headers=refresh_cookie(first))
    assert no_header.status_code == 403
    assert no_header.json()["error_description"].startswith("missing X-CSRF-Token header")
    wrong = client.post("/auth/refresh", headers={**refresh_cookie(first), "X-CSRF-Token": "no"})
    assert wrong.status_code == 403
    assert wrong.json() == {
        "error": "csrf_failed",
        "error_description": "the X-CSRF-Token header does not match this session's CSRF token",
    }
    foreign = client.post(
        "/auth/refresh",
        headers={**refresh_cookie(first), "X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    # None of these refusals used the token: it still rotates.
    harness.clock.advance(10)
    rotated = client.post("/auth/refresh", headers={**refresh_cookie(first), "X-CSRF-Token": csrf})
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert set(new) == {"access_token", "token_type", "expires_in", "scope", "csrf_token"}
    assert new["csrf_token"] == csrf  # the CSRF token is bound to the session, kept on refresh
    second = set_cookies(rotated)[REFRESH_COOKIE][0]
    assert second != first
    assert client.get("/orders", headers=bearer(new["access_token"])).status_code == 200

    # Reusing the first token revokes the whole session.
    reused = client.post("/auth/refresh", headers={**refresh_cookie(first), "X-CSRF-Token": csrf})
    assert_invalid_token(reused, "the token has been revoked")
    dropped = set_cookies(reused)
    assert dropped[REFRESH_COOKIE] == ("", {
        "path": "/auth/refresh", "max-age": "0", "secure": "", "httponly": "", "samesite": "Strict",
    })
    assert_leaks_nothing(reused, first)
    assert_invalid_token(
        client.post("/auth/refresh", headers={**refresh_cookie(second), "X-CSRF-Token": csrf}),
        "the token has been revoked",
    )
    assert_invalid_token(
        client.get("/me", headers=bearer(new["access_token"])), "the token has been revoked"
    )
    assert_invalid_token(
        client.get("/me", headers=bearer(body["access_token"])), "the token has been revoked"
    )


def test_refresh_from_json_body(client: TestClient) -> None:
    body, _ = login(client, body=True)
    rotated = client.post("/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    assert rotated.headers.get_list("set-cookie") == []
    new = rotated.json()
    assert set(new) == {"access_token", "token_type", "expires_in", "scope", "refresh_token"}
    assert client.get("/me", headers=bearer(new["access_token"])).status_code == 200
    reused = client.post("/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert_invalid_token(reused, "the token has been revoked")
    assert reused.headers.get_list("set-cookie") == []
    assert client.post(
        "/auth/refresh", json={"refresh_token": new["refresh_token"]}
    ).status_code == 401


def test_refresh_request_shapes(client: TestClient) -> None:
    body, cookies = login(client, body=True)
    nothing = client.post("/auth/refresh")
    assert_invalid_token(
        nothing, "no refresh token: the __Secure-jwtward-refresh cookie is missing"
    )
    both = client.post(
        "/auth/refresh", headers=refresh_cookie(cookies[REFRESH_COOKIE]),
        json={"refresh_token": body["refresh_token"]},
    )
    assert_invalid_request(
        both, "send the refresh token in its cookie or in the body, not both"
    )
    # An access token is not a refresh token.
    assert_invalid_token(
        client.post("/auth/refresh", json={"refresh_token": body["access_token"]}),
        "the token is not valid",
    )
    assert_invalid_request(
        client.post("/auth/refresh", content=b"{not json"),
        "the request body must be a JSON object",
    )


def test_logout_revokes_and_clears(client: TestClient) -> None:
    body, cookies = login(client)
    response = client.post("/auth/logout", headers=bearer(body["access_token"]))
    assert response.status_code == 204
    assert response.content == b""
    cleared = set_cookies(response)
    assert cleared == {
        REFRESH_COOKIE: ("", {"path": "/auth/refresh", "max-age": "0", "secure": "",
                              "httponly": "", "samesite": "Strict"}),
        CSRF_COOKIE: ("", {"path": "/", "max-age": "0", "secure": "", "samesite": "Strict"}),
    }
    assert_invalid_token(
        client.get("/me", headers=bearer(body["access_token"])), "the token has been revoked"
    )
    assert_invalid_token(
        client.post(
            "/auth/refresh",
            headers={**refresh_cookie(cookies[REFRESH_COOKIE]), "X-CSRF-Token": body["csrf_token"]},
        ),
        "the token has been revoked",
    )
    # Logging out again, or with nothing, still clears the cookies.
    again = client.post("/auth/logout", headers=bearer(body["access_token"]))
    assert again.status_code == 204
    assert client.post("/auth/logout").status_code == 204
    assert_invalid_request(
        client.post("/auth/logout", headers={"Authorization": "Bearer a b"}),
        "the Authorization header must be 'Bearer <token>'",
    )


def test_logout_with_refresh_token_only(client: TestClient) -> None:
    body, _ = login(client, body=True)
    assert client.post(
        "/auth/logout", json={"refresh_token": body["refresh_token"]}
    ).status_code == 204
    assert client.post(
        "/auth/refresh", json={"refresh_token": body["refresh_token"]}
    ).status_code == 401
    assert client.get("/me", headers=bearer(body["access_token"])).status_code == 401


def test_logout_by_access_cookie_needs_csrf(cookie_client: TestClient) -> None:
    body, cookies = login(cookie_client)
    access = cookie_header(**{ACCESS_COOKIE: cookies[ACCESS_COOKIE]})
    refused = cookie_client.post("/auth/logout", headers=access)
    assert refused.status_code == 403
    assert cookie_client.get("/me", headers=bearer(body["access_token"])).status_code == 200
    done = cookie_client.post(
        "/auth/logout", headers={**access, "X-CSRF-Token": body["csrf_token"]}
    )
    assert done.status_code == 204
    assert set(set_cookies(done)) == {REFRESH_COOKIE, CSRF_COOKIE, ACCESS_COOKIE}
    assert cookie_client.get("/me", headers=bearer(body["access_token"])).status_code == 401


# -- OpenAPI -------------------------------------------------------------------------------------


def test_openapi_declares_scheme_and_scopes(harness: Harness) -> None:
    document = harness.app.openapi()
    assert document["components"]["securitySchemes"] == {
        "bearerAuth": {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "An access token (JWT) from the login route.",
        }
    }
    paths = document["paths"]
    assert paths["/me"]["get"]["security"] == [{"bearerAuth": []}]
    assert paths["/orders"]["get"]["security"] == [{"bearerAuth": ["orders:read"]}]
    assert paths["/orders"]["post"]["security"] == [
        {"bearerAuth": ["orders:read", "orders:write"]}
    ]
    assert paths["/admin"]["get"]["security"] == [{"bearerAuth": []}]
    # The dependencies declare no parameter of their own (nothing FastAPI could 422 on).
    for route in ("/me", "/orders", "/maybe", "/admin"):
        assert "parameters" not in paths[route]["get"]
    assert "/auth/refresh" in paths and "/auth/logout" in paths


def test_example_app() -> None:
    from examples import fastapi_app

    with TestClient(fastapi_app.app, base_url=BASE) as client:
        document = client.get("/openapi.json").json()
        assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
        assert document["paths"]["/orders"]["get"]["security"] == [{"bearerAuth": ["orders:read"]}]
        assert document["paths"]["/orders"]["post"]["security"] == [
            {"bearerAuth": ["orders:write"]}
        ]
        assert client.post("/login", json={"username": "demo", "password": "no"}).status_code == 401
        login_response = client.post("/login", json={"username": "demo", "password": "demo"})
        token = login_response.json()["access_token"]
        client.cookies.clear()
        assert client.get("/me", headers=bearer(token)).json() == {
            "sub": "demo", "scopes": ["orders:read"],
        }
        assert client.get("/orders", headers=bearer(token)).status_code == 200
        refused = client.post("/orders", headers=bearer(token))
        assert refused.status_code == 403
        assert refused.json()["scope"] == "orders:write"
        assert challenge(client.get("/me")) == 'Bearer realm="example"'


# -- adversarial tokens ------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge(header: dict[str, Any], claims: dict[str, Any], key: Key | None) -> str:
    """A compact JWS signed with ``key`` exactly as given (no library checks on the header)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode("ascii")) if key is not None else b""
    return f"{signing_input}.{b64(signature)}"


def adversarial_tokens(ring: KeyRing, valid: str, refresh: str) -> dict[str, tuple[str, int]]:
    """Every hostile token class, and the status it must get (401, or 400 for bad requests)."""
    key = ring.signing_key()
    header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
    claims = claims_of(valid)
    public_jwk = json.dumps(key.public_key().to_jwk()).encode()
    hs_header = b64(json.dumps({**header, "alg": "HS256"}).encode())
    hs_input = f"{hs_header}.{b64(json.dumps(claims).encode())}"
    confused = f"{hs_input}.{b64(hmac.new(public_jwk, hs_input.encode(), hashlib.sha256).digest())}"
    pem = key.public_key().to_pem()
    confused_pem = hs_input + "." + b64(hmac.new(pem, hs_input.encode(), hashlib.sha256).digest())
    head, body, signature = valid.split(".")
    last = base64.urlsafe_b64decode("AAA" + signature[-1])[-1] & 0x3F  # its 6-bit value
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    non_canonical = f"{head}.{body}.{signature[:-1]}{alphabet[last | 1]}"
    enc_key = Key.generate("A256KW")
    now = int(claims["iat"])
    return {
        "alg-none": (forge({**header, "alg": "none"}, claims, None), 401),
        "alg-None": (forge({**header, "alg": "None"}, claims, None), 401),
        "key-confusion-jwk": (confused, 401),
        "key-confusion-pem": (confused_pem, 401),
        "jku": (forge({**header, "jku": "https://evil.example/jwks"}, claims, key), 401),
        "x5u": (forge({**header, "x5u": "https://evil.example/cert"}, claims, key), 401),
        "jwk": (forge({**header, "jwk": key.public_key().to_jwk()}, claims, key), 401),
        "x5c": (forge({**header, "x5c": ["MIIB"]}, claims, key), 401),
        "kid-path": (forge({**header, "kid": "../../etc/passwd"}, claims, key), 401),
        "kid-sql": (forge({**header, "kid": "' OR '1'='1' --"}, claims, key), 401),
        "kid-control": (forge({**header, "kid": "a\u0000b"}, claims, key), 401),
        "crit": (forge({**header, "crit": ["exp"]}, claims, key), 401),
        "crit-unknown": (forge({**header, "crit": ["x"], "x": 1}, claims, key), 401),
        "oversize": (forge(header, {**claims, "pad": "A" * 9000}, key), 401),
        "too-large-for-header": ("a" * 17_000, 400),
        "non-canonical-b64": (non_canonical, 401),
        "padded-b64": (f"{head}.{body}.{signature}==", 401),
        "expired": (forge(header, {**claims, "iat": now - 7200, "exp": now - 3600}, key), 401),
        "wrong-aud": (forge(header, {**claims, "aud": "https://other.example"}, key), 401),
        "wrong-iss": (forge(header, {**claims, "iss": "https://evil.example"}, key), 401),
        "no-typ": (forge({"alg": key.alg, "kid": key.kid}, claims, key), 401),
        "typ-jwt": (forge({**header, "typ": "JWT"}, claims, key), 401),
        "exp-bool": (forge(header, {**claims, "exp": True}, key), 401),
        "refresh-as-access": (refresh, 401),
        "jwe": (jwe.encrypt(json.dumps(claims).encode(), enc_key), 401),
        "nested-jwe": (
            jwe.encrypt(valid.encode(), enc_key, headers={"cty": "JWT", "typ": "at+jwt"}), 401
        ),
        "two-segments": (f"{head}.{body}", 401),
        "empty-signature": (f"{head}.{body}.", 401),
    }


@pytest.fixture(scope="module")
def live_service(ring: KeyRing) -> AsyncTokenService:
    return AsyncTokenService(
        ring, issuer=ISSUER, audience=AUDIENCE, store=ThreadedStore(MemoryTokenStore())
    )


@pytest.fixture(scope="module")
def live_server(live_service: AsyncTokenService) -> Iterator[str]:
    """The app served by uvicorn on 127.0.0.1 (a free port), in a thread."""
    app = build_app(FastAPIAuth(live_service))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        assert thread.is_alive(), "uvicorn stopped at start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def live(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
def live_session(live: httpx.Client) -> dict[str, Any]:
    response = live.post("/login", params={"body": True})
    assert response.status_code == 200
    live.cookies.clear()
    return dict(response.json())


def test_live_forgery_control(
    live: httpx.Client, live_session: dict[str, Any], ring: KeyRing
) -> None:
    """The forging helper is right: the valid token re-signed as is passes."""
    key = ring.signing_key()
    claims = claims_of(live_session["access_token"])
    same = forge({"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}, claims, key)
    assert live.get("/me", headers=bearer(same)).status_code == 200


ROUTES = (("GET", "/me"), ("GET", "/orders"), ("POST", "/me"), ("GET", "/maybe"))


def test_live_adversarial_tokens(
    live: httpx.Client, live_session: dict[str, Any], ring: KeyRing
) -> None:
    cases = adversarial_tokens(ring, live_session["access_token"], live_session["refresh_token"])
    for name, (token, status) in cases.items():
        for method, path in ROUTES:
            response = live.request(method, path, headers=bearer(token))
            assert response.status_code == status, (name, path, response.text)
            if status == 401:
                assert response.json()["error"] == "invalid_token", name
                assert challenge(response) is not None
                assert challenge(response).startswith(  # type: ignore[union-attr]
                    'Bearer realm="api", error="invalid_token"'
                )
            else:
                assert response.json()["error"] == "invalid_request", name
            assert_leaks_nothing(response, token)
        if name == "refresh-as-access":
            continue  # a refresh token presented as one is fine: the access side is what counts
        # Presented as a refresh token, no hostile token rotates either.
        refreshed = live.post("/auth/refresh", json={"refresh_token": token})
        assert refreshed.status_code in (400, 401), (name, refreshed.text)
        assert_leaks_nothing(refreshed, token)


def test_live_rfc6750_answers(live: httpx.Client, live_session: dict[str, Any]) -> None:
    token = live_session["access_token"]
    assert live.get("/orders", headers=bearer(token)).json() == {"sub": "alice"}
    missing = live.get("/me")
    assert (missing.status_code, challenge(missing)) == (401, 'Bearer realm="api"')
    assert_invalid_request(
        live.get("/me", headers={"Authorization": "Bearer"}),
        "the Authorization header must be 'Bearer <token>'",
    )
    assert_invalid_request(
        live.get("/me", headers=[("Authorization", f"Bearer {token}")] * 2),
        "send exactly one Authorization header",
    )
    assert_invalid_request(
        live.get("/me", params={"access_token": token}),
        "tokens are not accepted in the URL; use the Authorization header",
    )
    assert_invalid_token(live.get("/me", headers=bearer("x.y.z")), "the token is not valid")
    scoped = live.post("/orders", headers=bearer(token))
    assert scoped.status_code == 403
    assert challenge(scoped) == (
        'Bearer realm="api", error="insufficient_scope", error_description="the token does '
        'not grant the required scope", scope="orders:read orders:write"'
    )
    # Cookies over the wire: the refresh cookie rotates through the real server too.
    fresh = live.post("/login")
    cookies = set_cookies(fresh)
    live.cookies.clear()
    refresh_value, attributes = cookies[REFRESH_COOKIE]
    assert attributes["path"] == "/auth/refresh" and "secure" in attributes
    rotated = live.post(
        "/auth/refresh",
        headers={**refresh_cookie(refresh_value), "X-CSRF-Token": fresh.json()["csrf_token"],
                 "Origin": str(live.base_url).rstrip("/")},
    )
    assert rotated.status_code == 200, rotated.text
    assert live.post(
        "/auth/logout", headers=bearer(rotated.json()["access_token"])
    ).status_code == 204
    assert live.get("/me", headers=bearer(rotated.json()["access_token"])).status_code == 401
