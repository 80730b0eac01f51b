"""The jwtward token server: a FastAPI application over the configured stores.

Routes: ``POST /auth/login`` (first-party username and password),
``/auth/refresh``, ``/auth/logout``, ``/auth/logout-all``, ``GET /auth/me``,
``GET /auth/sessions``, ``DELETE /auth/sessions/{id}``; RFC 7009
``POST /oauth/revoke`` and RFC 7662 ``POST /oauth/introspect`` for
configured clients; RFC 8414 metadata and the JWK Set under
``/.well-known/``; ``/healthz`` and ``/readyz``.

Blocking work (password hashing, the users store, the rate limiter, key
maintenance) runs in worker threads; the event loop only awaits.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from jwtward.errors import InvalidArgument, JWTWardError, StoreUnavailable
from jwtward.server.passwords import PasswordHasher
from jwtward.server.ratelimit import RateLimits, address_key, username_key
from jwtward.server.runtime import Backends
from jwtward.server.users import User, normalize_username
from jwtward.tokens import AccessClaims, AsyncTokenService, events
from jwtward.web.challenges import AuthFailure
from jwtward.web.fastapi import FastAPIAuth, read_bounded_body, request_info
from jwtward.web.handlers import NO_STORE, logout_headers, service_failure
from jwtward.web.settings import WebSettings
from jwtward.web.transport import check_origin

__all__ = ["create_app"]

logger = logging.getLogger("jwtward.server")
audit = events.emit

_MAX_LOGIN_BODY = 8192
_MAINTAIN_EVERY = 60.0


def _problem(status: int, error: str, description: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={**dict(NO_STORE), **headers},
    )


class _Server:
    """The route handlers, holding the backends they share."""

    def __init__(self, backends: Backends, hasher: PasswordHasher) -> None:
        config = backends.config
        self.backends = backends
        self.config = config
        self.hasher = hasher
        self.limits = RateLimits(
            username_limit=config.login_user_limit,
            username_window=float(config.login_window),
            address_limit=config.login_address_limit,
            address_window=float(config.login_window),
        )
        self.service: AsyncTokenService = backends.async_token_service(
            load_subject=self.load_subject
        )
        self.auth = FastAPIAuth(
            self.service,
            WebSettings(
                realm="jwtward",
                refresh_cookie=config.refresh_cookie,
                refresh_path="/auth/refresh",
                cookie_domain=config.cookie_domain,
                trusted_origins=tuple(config.trusted_origins),
                insecure_development_cookies=not config.cookie_secure,
            ),
        )

    async def load_subject(self, subject: str) -> Mapping[str, Any] | None:
        """Fresh claims at each refresh; a deleted or disabled user gets no new tokens."""
        user = await asyncio.to_thread(self.backends.users.get, subject)
        if user is None or user.disabled:
            audit("refresh_refused", user=subject, reason="user disabled or deleted")
            return None
        return dict(user.claims)

    # -- login ---------------------------------------------------------------------------

    async def _login_fields(self, request: Request) -> tuple[str, str, bool] | JSONResponse:
        content_type = _content_type(request)
        if content_type not in (_JSON, _FORM):
            # Also what keeps a foreign page's text/plain "simple request" out.
            return _problem(400, "invalid_request", "send application/json (or a form)")
        try:
            check_origin(request_info(request, self.auth.settings), self.auth.settings)
        except AuthFailure as failure:
            return self.auth.render(failure)
        raw = await read_bounded_body(request, _MAX_LOGIN_BODY)
        if raw is None:
            return _problem(400, "invalid_request", "the request body is too large")
        data: object
        if content_type == _FORM:
            data = _form_fields(raw, ("username", "password"))
        else:
            try:
                data = json.loads(raw) if raw else None
            except (ValueError, RecursionError):
                data = None
        if not isinstance(data, dict):
            return _problem(400, "invalid_request", "send a JSON object with username and password")
        username, password = data.get("username"), data.get("password")
        if not isinstance(username, str) or not isinstance(password, str) or not password:
            return _problem(400, "invalid_request", "username and password must be strings")
        return username, password, data.get("include_refresh_token") is True

    async def _admit(self, username: str | None, address: str, now: float) -> int | None:
        """Whether this attempt may check a password; the ``Retry-After`` seconds if not.

        The username's attempt is counted as a failure *before* the password
        is checked (and forgiven after a success), so parallel guesses cannot
        all pass a check made before any of them was counted. The address
        is only checked here; its failures are counted after the check, so
        successful logins from a shared address never lock it.
        """
        limiter, limits = self.backends.limiter, self.limits
        retry_after = None
        if username is not None:
            decision = await asyncio.to_thread(
                limiter.hit, username_key(username), limit=limits.username_limit,
                window=limits.username_window, now=now,
            )
            if not decision.allowed:
                retry_after = decision.retry_after
        decision = await asyncio.to_thread(
            limiter.check, address_key(address), limit=limits.address_limit,
            window=limits.address_window, now=now,
        )
        if not decision.allowed:
            retry_after = max(retry_after or 0, decision.retry_after)
        return retry_after

    async def _count_address_failure(self, address: str, now: float) -> None:
        limits = self.limits
        await asyncio.to_thread(
            self.backends.limiter.hit, address_key(address), limit=limits.address_limit,
            window=limits.address_window, now=now,
        )

    async def login(self, request: Request) -> Response:
        fields = await self._login_fields(request)
        if isinstance(fields, Response):
            return fields
        raw_name, password, include_refresh = fields
        address = request.client.host if request.client else "unknown"
        try:
            username = normalize_username(raw_name)
        except InvalidArgument:
            username = None
        now = time.time()
        try:
            retry_after = await self._admit(username, address, now)
            if retry_after is not None:
                audit("login_rate_limited", user=username, address=address)
                return _problem(
                    429, "slow_down", "too many failed logins; try again later",
                    **{"Retry-After": str(retry_after)},
                )
            user = None
            if username is not None:
                user = await asyncio.to_thread(self.backends.users.get, username)
            result = await asyncio.to_thread(
                self.hasher.verify, None if user is None else user.password_hash, password
            )
            if user is None or not result.ok or user.disabled:
                await self._count_address_failure(address, now)
                audit("login_failed", user=username if user is not None else None,
                      address=address)
                return _problem(
                    401, "invalid_grant", "invalid username or password",
                    **{"WWW-Authenticate": 'Bearer realm="jwtward"'},
                )
            await asyncio.to_thread(self.backends.limiter.reset, username_key(user.username))
            if result.needs_rehash:
                await self._rehash(user, password)
            response = await self.auth.login_response(
                user.username,
                claims=dict(user.claims),
                scope=user.scope,
                include_refresh_token=include_refresh,
                metadata={
                    "user_agent": request.headers.get("user-agent", "")[:256],
                    "address": address,
                },
            )
        except StoreUnavailable as exc:
            return self.auth.render(service_failure(exc, self.auth.settings))
        audit("login_ok", user=user.username, address=address)
        return response

    async def _rehash(self, user: User, password: str) -> None:
        new_hash = await asyncio.to_thread(self.hasher.hash, password)
        await asyncio.to_thread(
            self.backends.users.set_password_hash, user.username, new_hash, time.time()
        )
        audit("password_rehashed", user=user.username)

    # -- the caller's own sessions ---------------------------------------------------------

    async def logout_all(self, claims: AccessClaims) -> Response:
        try:
            await self.service.revoke_subject(claims.subject)
        except JWTWardError as exc:
            return self.auth.render(service_failure(exc, self.auth.settings))
        response = Response(status_code=204)
        for name, value in logout_headers(self.auth.settings):
            response.headers.append(name, value)
        return response

    async def sessions(self, claims: AccessClaims) -> Response:
        try:
            families = await self.service.sessions(claims.subject)
        except JWTWardError as exc:
            return self.auth.render(service_failure(exc, self.auth.settings))
        body = [
            {
                "id": family.family_id,
                "created_at": int(family.created_at),
                "last_used_at": int(family.last_used_at),
                "expires_at": int(family.expires_at),
                "user_agent": family.metadata.get("user_agent", ""),
                "address": family.metadata.get("address", ""),
                "current": family.family_id == claims.session_id,
            }
            for family in families
        ]
        return JSONResponse({"sessions": body}, headers=dict(NO_STORE))

    async def revoke_session(self, session_id: str, claims: AccessClaims) -> Response:
        try:
            revoked = await self.service.revoke_session(claims.subject, session_id)
        except JWTWardError as exc:
            return self.auth.render(service_failure(exc, self.auth.settings))
        if not revoked:
            return _problem(404, "not_found", "no such session")
        return Response(status_code=204)

    # -- RFC 7009 and RFC 7662 ----------------------------------------------------------------

    async def _client_form(self, request: Request) -> tuple[str, str] | JSONResponse:
        """The authenticated client and the ``token`` form field, or the refusal."""
        if _content_type(request) != _FORM:
            return _problem(400, "invalid_request", "send application/x-www-form-urlencoded")
        raw = await read_bounded_body(request, 16384)
        if raw is None:
            return _problem(400, "invalid_request", "the request body is too large")
        form = _form_fields(raw, ("client_id", "client_secret", "token", "token_type_hint"))
        client_id, secret = _basic_credentials(request.headers.get("authorization"))
        if client_id is None:
            form_id, form_secret = form.get("client_id"), form.get("client_secret")
            if isinstance(form_id, str) and isinstance(form_secret, str):
                client_id, secret = form_id, form_secret
        expected = self.config.clients.get(client_id or "")
        if (
            client_id is None
            or secret is None
            or expected is None
            or not hmac.compare_digest(expected.encode(), secret.encode())
        ):
            audit("client_auth_failed", client=client_id)
            return _problem(
                401, "invalid_client", "client authentication failed",
                **{"WWW-Authenticate": 'Basic realm="jwtward"'},
            )
        token = form.get("token")
        if not isinstance(token, str) or not token:
            return _problem(400, "invalid_request", "the token parameter is required")
        return client_id, token

    async def oauth_revoke(self, request: Request) -> Response:
        found = await self._client_form(request)
        if isinstance(found, Response):
            return found
        client_id, token = found
        try:
            await self.service.revoke(token)
        except JWTWardError as exc:
            return self.auth.render(service_failure(exc, self.auth.settings))
        audit("oauth_revoke", client=client_id)
        return Response(status_code=200, headers=dict(NO_STORE))

    async def oauth_introspect(self, request: Request) -> Response:
        found = await self._client_form(request)
        if isinstance(found, Response):
            return found
        _client, token = found
        try:
            body = await self.service.introspect(token)
        except JWTWardError as exc:
            return self.auth.render(service_failure(exc, self.auth.settings))
        return JSONResponse(body, headers=dict(NO_STORE))

    # -- discovery and health -------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        issuer = self.config.public_issuer.rstrip("/")
        methods = ["client_secret_basic", "client_secret_post"]
        return {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "revocation_endpoint": f"{issuer}/oauth/revoke",
            "revocation_endpoint_auth_methods_supported": methods,
            "introspection_endpoint": f"{issuer}/oauth/introspect",
            "introspection_endpoint_auth_methods_supported": methods,
            # Sessions start with first-party login (POST /auth/login), not an
            # OAuth authorization grant: no authorization or token endpoint.
            "response_types_supported": [],
        }

    async def jwks(self) -> Response:
        ring = self.backends.ring()
        try:
            document = await asyncio.to_thread(ring.jwks)
        except JWTWardError as exc:
            return self.auth.render(service_failure(exc, self.auth.settings))
        # Successors are published `publish_ahead` before they sign: a cache
        # far shorter than that always holds the next key before it is used.
        max_age = int(min(ring.policy.publish_ahead_seconds / 4, 900))
        return JSONResponse(
            document, headers={"Cache-Control": f"public, max-age={max_age}"}
        )

    async def ready(self) -> Response:
        backends = self.backends
        try:
            await asyncio.to_thread(backends.token_store.ping)
            await asyncio.to_thread(backends.users.ping)
            await asyncio.to_thread(backends.limiter.ping)
            await asyncio.to_thread(backends.ring().signing_key)
        except (JWTWardError, OSError) as exc:
            logger.warning("not ready: %s", type(exc).__name__)
            return JSONResponse(
                {"status": "unavailable"}, status_code=503, headers={"Retry-After": "1"}
            )
        return JSONResponse({"status": "ready"})

    async def maintain_keys(self) -> None:
        """Run the ring's schedule every minute; safe with several servers on one store."""
        while True:
            try:
                changed = await asyncio.to_thread(self.backends.ring().maintain)
                if changed:
                    audit("keys_rotated")
            except JWTWardError as exc:
                logger.warning("key maintenance failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(_MAINTAIN_EVERY)


_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()



def _form_fields(raw: bytes, names: tuple[str, ...]) -> dict[str, str | None]:
    """The named fields of a URL-encoded form (first value each; malformed text: none)."""
    try:
        parsed = urllib.parse.parse_qs(
            raw.decode("utf-8"), keep_blank_values=True, max_num_fields=20, strict_parsing=False
        )
    except (UnicodeDecodeError, ValueError):
        return {}
    return {name: parsed[name][0] if name in parsed else None for name in names}


def _basic_credentials(header: str | None) -> tuple[str | None, str | None]:
    if not header:
        return None, None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None, None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else (None, None)


def create_app(backends: Backends, *, hasher: PasswordHasher | None = None) -> FastAPI:
    """The token server over ``backends`` (closed when the app shuts down)."""
    server = _Server(backends, hasher or PasswordHasher())

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(server.maintain_keys())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await server.service.close()
            await asyncio.to_thread(backends.close)

    app = FastAPI(title="jwtward token server", lifespan=lifespan)
    server.auth.install(app)
    auth = server.auth
    app.state.jwtward = server

    app.add_api_route("/auth/login", server.login, methods=["POST"], response_model=None)
    app.include_router(auth.router(prefix="/auth"))

    async def logout_all(claims: AccessClaims = Depends(auth.claims)) -> Response:  # noqa: B008
        return await server.logout_all(claims)

    async def me(claims: AccessClaims = Depends(auth.claims)) -> Response:  # noqa: B008
        return JSONResponse(claims.to_dict(), headers=dict(NO_STORE))

    async def sessions(claims: AccessClaims = Depends(auth.claims)) -> Response:  # noqa: B008
        return await server.sessions(claims)

    async def revoke_session(
        session_id: str, claims: AccessClaims = Depends(auth.claims)  # noqa: B008
    ) -> Response:
        return await server.revoke_session(session_id, claims)

    async def metadata() -> Response:
        return JSONResponse(server.metadata())

    async def healthz() -> Response:
        return JSONResponse({"status": "ok"})

    app.add_api_route("/auth/logout-all", logout_all, methods=["POST"], response_model=None)
    app.add_api_route("/auth/me", me, methods=["GET"], response_model=None)
    app.add_api_route("/auth/sessions", sessions, methods=["GET"], response_model=None)
    app.add_api_route(
        "/auth/sessions/{session_id}", revoke_session, methods=["DELETE"], response_model=None
    )
    app.add_api_route("/oauth/revoke", server.oauth_revoke, methods=["POST"], response_model=None)
    app.add_api_route(
        "/oauth/introspect", server.oauth_introspect, methods=["POST"], response_model=None
    )
    app.add_api_route(
        "/.well-known/oauth-authorization-server", metadata, methods=["GET"], response_model=None
    )
    app.add_api_route("/.well-known/jwks.json", server.jwks, methods=["GET"], response_model=None)
    app.add_api_route("/healthz", healthz, methods=["GET"], response_model=None)
    app.add_api_route("/readyz", server.ready, methods=["GET"], response_model=None)
    return app
