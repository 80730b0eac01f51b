"""FastAPI integration: dependencies that yield verified claims, and the session routes.

::

    auth = FastAPIAuth(service)            # an AsyncTokenService
    auth.install(app)                      # renders refusals per RFC 6750
    app.include_router(auth.router())      # POST /auth/refresh, POST /auth/logout

    @app.get("/orders")
    async def orders(claims: AccessClaims = Security(auth.claims, scopes=["orders:read"])):
        ...

The dependencies read the ``Authorization`` header, cookies and query
string from the ``Request`` itself and declare no parameter FastAPI would
validate, so no token input, however broken, can produce a 422: it is a 400,
401, 403 or 503 with the RFC 6750 challenge. They sit on a real
``fastapi.security`` scheme (HTTP Bearer, format JWT), so the OpenAPI
document declares the scheme and each route's required scopes, and Swagger's
"Authorize" button works.

Everything is awaited on the event loop: only :class:`AsyncTokenService` is
accepted, whose stores are native asyncio or run in threads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from enum import Enum
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.responses import JSONResponse
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase

from jwtward.errors import InvalidArgument, InvalidToken, JWTWardError
from jwtward.tokens.async_service import AsyncTokenService
from jwtward.tokens.claims import AccessClaims, TokenPair
from jwtward.web.challenges import AuthFailure, invalid_request, missing
from jwtward.web.cookies import clear_cookies
from jwtward.web.handlers import (
    MAX_TOKEN_BODY,
    cookie_refresh_csrf,
    logout_headers,
    optional_refresh_token,
    parse_json_body,
    refresh_token_from,
    role_failure,
    scope_failure,
    service_failure,
    session_claims,
    token_response,
)
from jwtward.web.settings import WebSettings
from jwtward.web.transport import (
    RequestInfo,
    bearer_token,
    check_csrf,
    check_origin,
    extract_credentials,
)

__all__ = ["BearerScheme", "FastAPIAuth", "read_bounded_body", "request_info"]


ClaimsDependency = Callable[..., Awaitable[AccessClaims]]
OptionalClaimsDependency = Callable[..., Awaitable[AccessClaims | None]]


def _one(values: list[str]) -> str | None:
    """A header sent once; several copies are joined so that they never compare equal."""
    if not values:
        return None
    return values[0] if len(values) == 1 else ", ".join(values)


def request_info(request: Request, settings: WebSettings) -> RequestInfo:
    """What the neutral transport checks need, read from a Starlette request."""
    headers = request.headers
    return RequestInfo(
        method=request.method,
        authorization=headers.getlist("authorization"),
        cookies=request.cookies,
        query_token="access_token" in request.query_params,
        origin=_one(headers.getlist("origin")),
        sec_fetch_site=_one(headers.getlist("sec-fetch-site")),
        own_origin=f"{request.url.scheme}://{request.url.netloc}",
        csrf_header=_one(headers.getlist(settings.csrf_header)),
    )


def _query_may_name_a_token(scope: Mapping[str, Any]) -> bool:
    """Whether the raw query string could decode to an ``access_token`` parameter.

    A name may be percent-encoded (``access%5Ftoken``), so any ``%`` sends the
    request to the full parse too.
    """
    query: bytes = scope.get("query_string", b"")
    return b"access_token" in query or b"%" in query


def _credentials_info(request: Request, settings: WebSettings) -> RequestInfo:
    """Just what finding the credentials needs: the hot path of every protected request.

    Cookies and the query string are parsed only when the raw request holds
    them; the origin headers wait for the CSRF check of a cookie request.
    """
    headers = request.headers
    cookies: dict[str, str] = {}
    if settings.access_cookie is not None and "cookie" in headers:
        cookies = request.cookies
    query_token = False
    if _query_may_name_a_token(request.scope):
        query_token = "access_token" in request.query_params
    return RequestInfo(
        method=request.method,
        authorization=headers.getlist("authorization"),
        cookies=cookies,
        query_token=query_token,
    )


def _header_bearer_values(request: Request, settings: WebSettings) -> list[str] | None:
    """The ``Authorization`` values, when that header is the only place a token can be.

    ``None`` when a cookie or the query string must be looked at too (an
    access-token cookie is configured and the request carries cookies, or
    the query string may name ``access_token``): those requests take the
    general path through :func:`extract_credentials`. Read from the raw ASGI
    headers (lower-cased names, latin-1 values, as Starlette reads them)
    without building Starlette's header, cookie and query objects: this runs
    on every protected request.
    """
    scope = request.scope
    if _query_may_name_a_token(scope):
        return None
    cookies_matter = settings.access_cookie is not None
    values: list[str] = []
    for name, value in scope["headers"]:
        if name == b"authorization":
            values.append(value.decode("latin-1"))
        elif name == b"cookie" and cookies_matter:
            return None
    return values


class BearerScheme(SecurityBase):
    """The OpenAPI ``http``/``bearer`` scheme, and the claims dependency in one object.

    FastAPI lists every dependency that is a :class:`SecurityBase` in the
    route's OpenAPI security requirements, with the scopes of its
    ``Security(...)``; making the claims dependency the scheme itself keeps
    the request path to one dependency (reading the credentials, verifying,
    checking scopes) instead of three.
    """

    def __init__(
        self,
        auth: FastAPIAuth,
        *,
        scheme_name: str,
        description: str | None,
        optional: bool,
    ) -> None:
        self.model = HTTPBearerModel(bearerFormat="JWT", description=description)
        self.scheme_name = scheme_name
        self._auth = auth
        self._optional = optional

    async def __call__(
        self, request: Request, security_scopes: SecurityScopes
    ) -> AccessClaims | None:
        auth = self._auth
        settings = auth.settings
        token: str | None
        try:
            values = _header_bearer_values(request, settings)
            if values is not None:
                token, via = bearer_token(values), "header"
            else:
                credentials = extract_credentials(_credentials_info(request, settings), settings)
                token = None if credentials is None else credentials.token
                via = "header" if credentials is None else credentials.via
        except AuthFailure as failure:
            raise auth.refusal(request, failure) from None
        if token is None:
            if self._optional:
                return None
            raise auth.refusal(request, missing())
        return await auth._verify(request, token, via == "cookie", security_scopes.scopes)


class FastAPIAuth:
    """Dependencies and route helpers for one :class:`AsyncTokenService`.

    - ``auth.claims``: ``Depends(auth.claims)`` or
      ``Security(auth.claims, scopes=[...])``; yields :class:`AccessClaims`.
    - ``auth.optional_claims``: ``None`` without credentials; bad ones are
      still refused (a broken token is never mistaken for an anonymous call).
    - ``auth.require_roles("admin")``: a dependency requiring every role named.
    - ``auth.install(app)``: the exception handler rendering refusals.
    - ``auth.login_response`` / ``refresh_response`` / ``logout_response``
      and ``auth.router()``: the session routes.
    """

    def __init__(
        self,
        service: AsyncTokenService,
        settings: WebSettings | None = None,
        *,
        scheme_name: str = "bearerAuth",
        description: str | None = "An access token (JWT) from the login route.",
    ) -> None:
        if not isinstance(service, AsyncTokenService):
            raise InvalidArgument(
                "FastAPIAuth needs an AsyncTokenService: a sync service would block the event loop"
            )
        self.service = service
        self.settings = settings if settings is not None else WebSettings()
        self.claims: ClaimsDependency = BearerScheme(  # type: ignore[assignment]
            self, scheme_name=scheme_name, description=description, optional=False
        )
        self.optional_claims: OptionalClaimsDependency = BearerScheme(
            self, scheme_name=scheme_name, description=description, optional=True
        )
        self.scheme = self.claims

    # -- refusals ---------------------------------------------------------------------------

    def refusal(self, request: Request, failure: AuthFailure) -> Exception:
        """The exception to raise for ``failure``, in this realm.

        Without :meth:`install` the app has no handler for :class:`AuthFailure`;
        an ``HTTPException`` with the same status and headers keeps the answer
        correct (if less tidy) instead of turning into a 500.
        """
        failure = failure.with_realm(self.settings.realm)
        handlers = getattr(request.app, "exception_handlers", {})
        if AuthFailure in handlers:
            return failure
        return HTTPException(failure.status, failure.body(), headers=dict(failure.headers()))

    def render(self, failure: AuthFailure) -> JSONResponse:
        """The JSON answer to ``failure`` (repeated headers such as ``Set-Cookie`` kept)."""
        response = JSONResponse(failure.body(), status_code=failure.status)
        for name, value in failure.headers():
            response.headers.append(name, value)
        return response

    def install(self, app: FastAPI) -> None:
        """Render :class:`AuthFailure` and the token service's errors as RFC 6750 answers."""

        async def handle(_request: Request, exc: Exception) -> Response:
            if isinstance(exc, AuthFailure):
                return self.render(exc)
            if isinstance(exc, JWTWardError):
                return self.render(service_failure(exc, self.settings))
            raise exc  # pragma: no cover - registered only for the two types above

        app.add_exception_handler(AuthFailure, handle)
        app.add_exception_handler(JWTWardError, handle)

    # -- dependencies -----------------------------------------------------------------------

    async def _verify(
        self, request: Request, token: str, from_cookie: bool, required: list[str]
    ) -> AccessClaims:
        try:
            claims = await self.service.verify(token)
        except JWTWardError as exc:
            raise self.refusal(request, service_failure(exc, self.settings)) from None
        if from_cookie:
            try:
                check_csrf(request_info(request, self.settings), claims, self.settings)
            except AuthFailure as failure:
                raise self.refusal(request, failure) from None
        if required:
            lacking = scope_failure(claims, required)
            if lacking is not None:
                raise self.refusal(request, lacking)
        return claims

    def require_roles(self, *roles: str, claim: str = "roles") -> ClaimsDependency:
        """A dependency yielding the claims when the token carries every role in ``roles``."""
        if not roles or not all(isinstance(role, str) and role for role in roles):
            raise InvalidArgument("require_roles needs at least one non-empty role name")
        wanted = tuple(roles)

        async def roles_dependency(
            request: Request,
            claims: AccessClaims = Depends(self.claims),  # noqa: B008 - FastAPI idiom
        ) -> AccessClaims:
            failure = role_failure(claims, wanted, claim)
            if failure is not None:
                raise self.refusal(request, failure)
            return claims

        return roles_dependency

    # -- session routes ---------------------------------------------------------------------

    def _token_json(
        self, pair: TokenPair, csrf: str | None, *, include_refresh_token: bool, set_cookies: bool
    ) -> JSONResponse:
        body, headers = token_response(
            self.settings, pair, csrf,
            include_refresh_token=include_refresh_token, set_cookies=set_cookies,
        )
        response = JSONResponse(body)
        for name, value in headers:
            response.headers.append(name, value)
        return response

    async def login_response(
        self,
        subject: str,
        *,
        claims: Mapping[str, Any] | None = None,
        scope: str | list[str] | None = None,
        client_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        include_refresh_token: bool = False,
        set_cookies: bool = True,
    ) -> JSONResponse:
        """Start a session for ``subject`` (already authenticated by the app).

        The body holds the access token and the session's ``csrf_token``;
        the refresh token goes in its ``HttpOnly`` cookie (and in the body
        only with ``include_refresh_token``, for clients that are not
        browsers).
        """
        bound, csrf = session_claims(claims)
        pair = await self.service.issue(
            subject, claims=bound, scope=scope, client_id=client_id, metadata=metadata
        )
        return self._token_json(
            pair, csrf, include_refresh_token=include_refresh_token, set_cookies=set_cookies
        )

    async def _json_body(self, request: Request) -> object:
        """The request's JSON body, ``None`` when empty; bounded, and 400 when not JSON."""
        data = await read_bounded_body(request, MAX_TOKEN_BODY)
        try:
            if data is None:
                raise invalid_request("the request body is too large")
            return parse_json_body(data)
        except AuthFailure as failure:
            raise self.refusal(request, failure) from None

    async def refresh_response(
        self, request: Request, *, set_cookies_for_body: bool = False
    ) -> JSONResponse:
        """Rotate the refresh token the request presents and answer with the new pair.

        From the refresh cookie: the request must pass the origin check and
        carry the session's CSRF token in the CSRF header; the new refresh
        token replaces the cookie. From a JSON body ``{"refresh_token": ...}``
        (clients that are not browsers): no CSRF proof is needed, the new
        refresh token is in the body, and no cookie is set unless
        ``set_cookies_for_body``. A used token revokes its session (401).
        """
        info = request_info(request, self.settings)
        body = await self._json_body(request)
        try:
            token, via = refresh_token_from(info, self.settings, body)
            csrf = cookie_refresh_csrf(info, self.settings) if via == "cookie" else None
        except AuthFailure as failure:
            raise self.refusal(request, failure) from None
        try:
            pair = await self.service.refresh(token, csrf=csrf)
        except JWTWardError as exc:
            refused = service_failure(exc, self.settings)
            if via == "cookie" and refused.status == 401:
                # A dead refresh cookie is of no further use to the browser: drop it.
                dropped = tuple(("Set-Cookie", value) for value in clear_cookies(self.settings))
                refused = dataclasses.replace(
                    refused, extra_headers=refused.extra_headers + dropped
                )
            raise self.refusal(request, refused) from None
        if via == "cookie":
            return self._token_json(pair, csrf, include_refresh_token=False, set_cookies=True)
        return self._token_json(
            pair, None, include_refresh_token=True, set_cookies=set_cookies_for_body
        )

    async def logout_response(self, request: Request) -> Response:
        """End the session the request presents, clear the cookies, answer 204.

        The access token (header or cookie) names its session (``sid``),
        which is revoked whole; a refresh token in the refresh cookie or in
        a JSON body ``{"refresh_token": ...}`` revokes its session too. An
        invalid or expired token has nothing left to revoke and is ignored,
        so logging out always clears the browser's cookies; a store that
        cannot answer is a 503, never a silent success.
        """
        settings = self.settings
        info = request_info(request, settings)
        body = await self._json_body(request)
        try:
            credentials = extract_credentials(info, settings)
            refresh_token, via = optional_refresh_token(info, settings, body)
            if via == "cookie":
                check_origin(info, settings)
        except AuthFailure as failure:
            raise self.refusal(request, failure) from None
        try:
            if credentials is not None:
                claims = await self._claims_or_none(credentials.token)
                if claims is not None:
                    if credentials.via == "cookie":
                        check_csrf(info, claims, settings)
                    if claims.session_id is not None:
                        await self.service.revoke_session(claims.subject, claims.session_id)
            if refresh_token is not None:
                await self.service.revoke(refresh_token)
        except AuthFailure as failure:
            raise self.refusal(request, failure) from None
        except JWTWardError as exc:
            raise self.refusal(request, service_failure(exc, settings)) from None
        response = Response(status_code=204)
        for name, value in logout_headers(settings):
            response.headers.append(name, value)
        return response

    async def _claims_or_none(self, token: str) -> AccessClaims | None:
        try:
            return await self.service.verify(token)
        except InvalidToken:
            return None

    def router(
        self, prefix: str = "/auth", *, tags: list[str | Enum] | None = None
    ) -> APIRouter:
        """An ``APIRouter`` with ``POST {prefix}/refresh`` and ``POST {prefix}/logout``.

        The refresh cookie is only sent to ``settings.refresh_path``, so the
        refresh route must live there: a mismatch is refused at once rather
        than found when every browser refresh fails.
        """
        if f"{prefix}/refresh" != self.settings.refresh_path:
            raise InvalidArgument(
                f"the refresh route would be {prefix}/refresh but the refresh cookie is scoped "
                f"to {self.settings.refresh_path}; set WebSettings(refresh_path=...) to match"
            )
        router = APIRouter(prefix=prefix, tags=["auth"] if tags is None else tags)

        async def refresh(request: Request) -> Response:
            """Rotate the refresh token (cookie + CSRF header, or JSON body)."""
            return await self.refresh_response(request)

        async def logout(request: Request) -> Response:
            """Revoke the current session and clear the token cookies."""
            return await self.logout_response(request)

        router.add_api_route("/refresh", refresh, methods=["POST"], response_model=None)
        router.add_api_route(
            "/logout", logout, methods=["POST"], status_code=204, response_model=None
        )
        return router


async def read_bounded_body(request: Request, limit: int) -> bytes | None:
    """The body, read in chunks and abandoned past ``limit`` bytes (``None`` then).

    Never holds more than ``limit`` bytes (plus one chunk) in memory, whatever
    the client sends or claims in ``Content-Length``.
    """
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > limit:
            return None
    return bytes(data)
