"""Flask integration: ``FlaskAuth``, the ``required`` / ``optional`` decorators, route helpers.

::

    auth = FlaskAuth(TokenService(KeyRing.generate("ES256"), issuer=..., audience=...))
    auth.init_app(app)
    app.register_blueprint(auth.blueprint())          # POST /auth/refresh, /auth/logout

    @app.get("/orders")
    @auth.required(scopes=["orders:read"])
    def orders():
        return {"user": auth.current_claims.subject}

Flask runs views in threads, so this integration drives the synchronous
:class:`~jwtward.tokens.TokenService`; ``async def`` views are guarded the
same way (the check runs before the coroutine is awaited). Every refusal is
an :class:`~jwtward.web.challenges.AuthFailure` rendered by an error handler
that :meth:`FlaskAuth.init_app` registers: RFC 6750 status, challenge and
JSON body, never a 500 or a 422 for anything a client sends as a token.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast, overload

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    has_request_context,
    jsonify,
    request,
)
from flask.blueprints import BlueprintSetupState

from jwtward.errors import (
    InvalidArgument,
    InvalidToken,
    JWTWardError,
    KeySourceUnavailable,
    StoreUnavailable,
)
from jwtward.tokens.claims import AccessClaims, TokenPair
from jwtward.tokens.service import TokenService
from jwtward.web import handlers
from jwtward.web.challenges import AuthFailure, invalid_request, missing
from jwtward.web.cookies import clear_cookies
from jwtward.web.settings import WebSettings
from jwtward.web.transport import RequestInfo, check_csrf, check_origin, extract_credentials

__all__ = ["SERVICE_EXTENSION", "FlaskAuth", "get_current_claims"]

logger = logging.getLogger("jwtward.web")

F = TypeVar("F", bound=Callable[..., Any])

#: ``app.extensions`` key under which an application may hand its TokenService.
SERVICE_EXTENSION = "jwtward.token_service"
_STATE_EXTENSION = "jwtward.flask"
_CLAIMS_ATTR = "jwtward_claims"
# RFC 6750 §2.3: the URI query parameter that must never carry a token.
_QUERY_PARAM = "access_token"
_MAX_BODY = handlers.MAX_TOKEN_BODY

# app.config key -> (WebSettings field, accepted types, what the value must be)
_CONFIG: dict[str, tuple[str, tuple[type, ...], str]] = {
    "JWT_REALM": ("realm", (str,), "a string"),
    "JWT_REFRESH_COOKIE": ("refresh_cookie", (str,), "a cookie name"),
    "JWT_REFRESH_PATH": ("refresh_path", (str,), "a path starting with '/'"),
    "JWT_ACCESS_COOKIE": ("access_cookie", (str, type(None)), "a cookie name or None"),
    "JWT_ACCESS_COOKIE_PATH": ("access_cookie_path", (str,), "a path starting with '/'"),
    "JWT_CSRF_HEADER": ("csrf_header", (str,), "a header name"),
    "JWT_CSRF_COOKIE": ("csrf_cookie", (str,), "a cookie name"),
    "JWT_COOKIE_DOMAIN": ("cookie_domain", (str, type(None)), "a domain or None"),
    "JWT_TRUSTED_ORIGINS": (
        "trusted_origins", (list, tuple, frozenset, set, str), "a list of origins"
    ),
    # Last, so that its warning is logged once, for the final settings.
    "JWT_INSECURE_DEVELOPMENT_COOKIES": ("insecure_development_cookies", (bool,), "a bool"),
}


@dataclass(frozen=True, slots=True)
class _State:
    """What one application uses: its token service and its transport settings."""

    service: TokenService
    settings: WebSettings


def get_current_claims() -> AccessClaims | None:
    """The verified claims of the current request, ``None`` when it carried no token.

    Set by :meth:`FlaskAuth.required` and :meth:`FlaskAuth.optional`; outside a
    guarded view (or outside a request) it is ``None``, never a stale value.
    """
    if not has_request_context():
        return None
    return cast("AccessClaims | None", g.get(_CLAIMS_ATTR))


def _render(failure: AuthFailure) -> Response:
    response = jsonify(failure.body())
    response.status_code = failure.status
    for name, value in failure.headers():
        response.headers.add(name, value)
    return response


class FlaskAuth:
    """The jwtward extension for Flask: Bearer and cookie authentication with CSRF.

    ``service`` is a synchronous :class:`~jwtward.tokens.TokenService`; when
    ``None``, :meth:`init_app` takes it from
    ``app.extensions["jwtward.token_service"]`` (so an application factory
    can build it from its own configuration). ``settings`` are the defaults
    that the ``app.config`` keys below override, each optional:

    - ``JWT_REALM`` (str, ``"api"``): the realm of ``WWW-Authenticate``.
    - ``JWT_REFRESH_COOKIE`` (str, ``"jwtward-refresh"``): the refresh
      cookie's name (sent as ``__Secure-<name>``).
    - ``JWT_REFRESH_PATH`` (str, ``"/auth/refresh"``): the only path the
      refresh cookie is sent to; must be where :meth:`refresh_response` runs
      (the :meth:`blueprint` checks it).
    - ``JWT_ACCESS_COOKIE`` (str or None, ``None``): opt in to an access-token
      cookie for server-rendered pages; off, the token travels in the body.
    - ``JWT_ACCESS_COOKIE_PATH`` (str, ``"/"``): that cookie's path.
    - ``JWT_CSRF_HEADER`` (str, ``"X-CSRF-Token"``): the header in which
      cookie-authenticated unsafe requests send the session's CSRF token.
    - ``JWT_CSRF_COOKIE`` (str, ``"jwtward-csrf"``): the script-readable
      cookie handing that token to the page.
    - ``JWT_COOKIE_DOMAIN`` (str or None, ``None``): ``None`` keeps cookies
      host-only, the safest choice.
    - ``JWT_TRUSTED_ORIGINS`` (list of origins, or one string of
      whitespace-separated origins for environment-sourced config): origins
      besides the request's own allowed to send cookie-authenticated requests.
    - ``JWT_INSECURE_DEVELOPMENT_COOKIES`` (bool, ``False``): drop ``Secure``
      and the ``__Secure-`` prefix so cookies work over plain HTTP; local
      development only (a warning is logged).

    A value of the wrong type or refused by :class:`WebSettings` raises
    :class:`~jwtward.errors.InvalidArgument` naming the key, at ``init_app``:
    a misconfigured app fails at start, not at its first request.

    The request's own origin (for the ``Origin`` check) is taken from
    ``request.host_url``; behind a proxy, apply ``werkzeug``'s ``ProxyFix`` or
    list the public origin in ``JWT_TRUSTED_ORIGINS``.
    """

    def __init__(
        self,
        service: TokenService | None = None,
        settings: WebSettings | None = None,
        app: Flask | None = None,
    ) -> None:
        if settings is not None and not isinstance(settings, WebSettings):
            raise InvalidArgument("settings must be a WebSettings")
        if service is not None:
            _check_service(service, "service")
        self._service = service
        self._settings = settings if settings is not None else WebSettings()
        if app is not None:
            self.init_app(app)

    # -- setup -------------------------------------------------------------------------

    def init_app(self, app: Flask) -> None:
        """Read the ``JWT_*`` config, find the service, register the error handler."""
        service = self._service
        if service is None:
            service = app.extensions.get(SERVICE_EXTENSION)
            if service is None:
                raise InvalidArgument(
                    "FlaskAuth needs a TokenService: pass it to FlaskAuth(service) or set "
                    f"app.extensions[{SERVICE_EXTENSION!r}] before init_app"
                )
            _check_service(service, f"app.extensions[{SERVICE_EXTENSION!r}]")
        settings = _settings_from_config(self._settings, app.config)
        app.extensions[_STATE_EXTENSION] = _State(service, settings)
        app.register_error_handler(AuthFailure, self._handle_failure)

    def _state(self) -> _State:
        state = current_app.extensions.get(_STATE_EXTENSION)
        if not isinstance(state, _State):
            raise InvalidArgument("FlaskAuth.init_app(app) was not called for this application")
        return state

    @property
    def service(self) -> TokenService:
        """The token service of the current application."""
        return self._state().service

    @property
    def settings(self) -> WebSettings:
        """The transport settings of the current application (config applied)."""
        return self._state().settings

    def _handle_failure(self, failure: AuthFailure) -> Response:
        return _render(failure.with_realm(self._state().settings.realm))

    # -- authentication ----------------------------------------------------------------

    @property
    def current_claims(self) -> AccessClaims | None:
        """The current request's verified claims; ``None`` when an optional token was absent."""
        return get_current_claims()

    def _authenticate(self, *, required: bool) -> AccessClaims | None:
        state = self._state()
        info = _request_info(state.settings)
        credentials = extract_credentials(info, state.settings)
        if credentials is None:
            if required:
                raise missing()
            return None
        claims = _verify(state, credentials.token)
        if credentials.via == "cookie":
            check_csrf(info, claims, state.settings)
        return claims

    def _guard(
        self, view: F, *, required: bool, scopes: tuple[str, ...], roles: tuple[str, ...]
    ) -> F:
        def check() -> None:
            g.pop(_CLAIMS_ATTR, None)
            claims = self._authenticate(required=required)
            if claims is not None:
                failure = handlers.scope_failure(claims, scopes) or handlers.role_failure(
                    claims, roles
                )
                if failure is not None:
                    raise failure
            setattr(g, _CLAIMS_ATTR, claims)

        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                check()
                return await view(*args, **kwargs)

            return cast("F", async_wrapper)

        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            check()
            return view(*args, **kwargs)

        return cast("F", wrapper)

    @overload
    def required(self, view: F) -> F: ...
    @overload
    def required(
        self, view: None = None, *, scopes: Iterable[str] = (), roles: Iterable[str] = ()
    ) -> Callable[[F], F]: ...

    def required(
        self,
        view: F | None = None,
        *,
        scopes: Iterable[str] = (),
        roles: Iterable[str] = (),
    ) -> F | Callable[[F], F]:
        """Guard a view: a valid access token granting every scope and role named, or a refusal.

        Use as ``@auth.required`` or ``@auth.required(scopes=["orders:read"])``.
        ``roles`` are read from the token's ``roles`` claim
        (:meth:`AccessClaims.roles`).
        """
        wanted_scopes = _names(scopes, "scopes")
        wanted_roles = _names(roles, "roles")

        def decorate(fn: F) -> F:
            return self._guard(fn, required=True, scopes=wanted_scopes, roles=wanted_roles)

        return decorate(view) if view is not None else decorate

    @overload
    def optional(self, view: F) -> F: ...
    @overload
    def optional(self, view: None = None) -> Callable[[F], F]: ...

    def optional(self, view: F | None = None) -> F | Callable[[F], F]:
        """Guard a view that also serves anonymous requests.

        No token: the view runs with ``current_claims`` ``None``. A token that
        is present but bad is still refused (401): a client that sent one
        expects it to count, and silently ignoring it would hide its expiry.
        """

        def decorate(fn: F) -> F:
            return self._guard(fn, required=False, scopes=(), roles=())

        return decorate(view) if view is not None else decorate

    # -- route helpers -----------------------------------------------------------------

    def login_response(
        self,
        subject: str,
        *,
        claims: Mapping[str, Any] | None = None,
        scope: str | list[str] | None = None,
        include_refresh_token: bool = False,
        metadata: Mapping[str, str] | None = None,
        client_id: str | None = None,
        set_cookies: bool = True,
    ) -> Response:
        """Start a session for an authenticated ``subject``: the token response and cookies.

        Call it from your login view once *you* have checked the user's
        credentials. The session gets a fresh CSRF token (the ``csrf``
        claim, kept across refreshes); the refresh token goes in its cookie
        and, only with ``include_refresh_token=True`` (clients that are not
        browsers), in the body too.
        """
        state = self._state()
        bound, csrf = handlers.session_claims(claims)
        try:
            pair = state.service.issue(
                subject, claims=bound, scope=scope, client_id=client_id, metadata=metadata
            )
        except (StoreUnavailable, KeySourceUnavailable) as exc:
            # Retryable: a 503 for the client. Other errors are the caller's bugs and propagate.
            raise handlers.service_failure(exc, state.settings) from None
        return _token_json(
            state, pair, csrf, include_refresh_token=include_refresh_token, set_cookies=set_cookies
        )

    def refresh_response(self, *, set_cookies_for_body: bool = False) -> Response:
        """Rotate the refresh token of this request: from its cookie, or a JSON body.

        Cookie (browsers): the request must come from the application's
        origin and carry the session's CSRF token in the CSRF header; the
        answer sets the new refresh cookie and returns the new access token.
        Body ``{"refresh_token": ...}`` (other clients): no cookie, no CSRF;
        the answer carries the new refresh token in its body (and sets no
        cookie unless ``set_cookies_for_body``). A refresh token presented
        twice revokes its whole session: 401 ``invalid_token``.
        """
        state = self._state()
        settings = state.settings
        info = _request_info(settings)
        token, via = handlers.refresh_token_from(info, settings, _json_body())
        csrf = handlers.cookie_refresh_csrf(info, settings) if via == "cookie" else None
        try:
            pair = state.service.refresh(token, csrf=csrf)
        except JWTWardError as exc:
            failure = handlers.service_failure(exc, settings)
            if via == "cookie" and failure.status == 401:
                # A dead refresh cookie is of no further use to the browser: drop it.
                dropped = tuple(("Set-Cookie", value) for value in clear_cookies(settings))
                failure = dataclasses.replace(
                    failure, extra_headers=failure.extra_headers + dropped
                )
            raise failure from None
        if via == "cookie":
            return _token_json(state, pair, csrf, include_refresh_token=False, set_cookies=True)
        return _token_json(
            state, pair, None, include_refresh_token=True, set_cookies=set_cookies_for_body
        )

    def logout_response(self) -> Response:
        """End the session this request presents, clear the token cookies, answer 204.

        The access token (header, or cookie with a passing CSRF check) names
        its session (``sid``), which is revoked whole; a refresh token in the
        refresh cookie (when the refresh path covers the logout route) or in
        a JSON body ``{"refresh_token": ...}`` revokes its session too. An
        invalid or expired token has nothing left to revoke and is ignored,
        so logging out always clears the cookies; a store that cannot answer
        is a 503, never a silent success.
        """
        state = self._state()
        settings = state.settings
        info = _request_info(settings)
        body = _json_body()
        credentials = extract_credentials(info, settings)
        refresh_token, via = handlers.optional_refresh_token(info, settings, body)
        if via == "cookie":
            check_origin(info, settings)
        try:
            if credentials is not None:
                claims = _claims_or_none(state.service, credentials.token)
                if claims is not None:
                    if credentials.via == "cookie":
                        check_csrf(info, claims, settings)
                    if claims.session_id is not None:
                        state.service.revoke_session(claims.subject, claims.session_id)
            if refresh_token is not None:
                state.service.revoke(refresh_token)
        except JWTWardError as exc:
            raise handlers.service_failure(exc, settings) from None
        response = current_app.response_class(status=204)
        for name, value in handlers.logout_headers(settings):
            response.headers.add(name, value)
        return response

    def blueprint(self, url_prefix: str = "/auth", *, name: str = "jwtward") -> Blueprint:
        """A blueprint with ``POST {url_prefix}/refresh`` and ``POST {url_prefix}/logout``.

        Registering it checks that ``{url_prefix}/refresh`` is the configured
        refresh path: otherwise the browser would never send the cookie there.
        """
        bp = Blueprint(name, __name__, url_prefix=url_prefix)

        def check_path(setup: BlueprintSetupState) -> None:
            state = setup.app.extensions.get(_STATE_EXTENSION)
            if not isinstance(state, _State):
                raise InvalidArgument(
                    "call FlaskAuth.init_app(app) before registering its blueprint"
                )
            route = (setup.url_prefix or "").rstrip("/") + "/refresh"
            if route != state.settings.refresh_path:
                raise InvalidArgument(
                    f"the blueprint's refresh route {route!r} is not JWT_REFRESH_PATH "
                    f"{state.settings.refresh_path!r}: the refresh cookie would never reach it"
                )

        bp.record(check_path)
        bp.add_url_rule("/refresh", "refresh", self.refresh_response, methods=["POST"])
        bp.add_url_rule("/logout", "logout", self.logout_response, methods=["POST"])
        return bp


# -- helpers ---------------------------------------------------------------------------


def _check_service(service: object, where: str) -> None:
    verify = getattr(service, "verify", None)
    if not callable(verify) or not callable(getattr(service, "refresh", None)):
        raise InvalidArgument(f"{where} must be a TokenService")
    if inspect.iscoroutinefunction(verify):
        raise InvalidArgument(
            f"{where} is asynchronous: Flask views need the synchronous TokenService"
        )


def _names(values: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(values, str):
        values = values.split()
    names = tuple(values)
    if not all(isinstance(v, str) and v and not re.search(r"[\s\"\\]", v) for v in names):
        raise InvalidArgument(f"{what} must be names without spaces, quotes or backslashes")
    return names


def _token_json(
    state: _State,
    pair: TokenPair,
    csrf: str | None,
    *,
    include_refresh_token: bool,
    set_cookies: bool,
) -> Response:
    body, headers = handlers.token_response(
        state.settings, pair, csrf, include_refresh_token=include_refresh_token,
        set_cookies=set_cookies,
    )
    response = jsonify(body)
    for name, value in headers:
        response.headers.add(name, value)
    return response


def _json_body() -> object:
    """The request's JSON body, ``None`` when empty; bounded, and 400 when not JSON."""
    length = request.content_length
    if length is not None and length > _MAX_BODY:
        raise invalid_request("the request body is too large")
    data = request.stream.read(_MAX_BODY + 1)
    if len(data) > _MAX_BODY:
        raise invalid_request("the request body is too large")
    return handlers.parse_json_body(data)



def _claims_or_none(service: TokenService, token: str) -> AccessClaims | None:
    try:
        return service.verify(token)
    except InvalidToken:
        return None


def _verify(state: _State, token: str) -> AccessClaims:
    try:
        return state.service.verify(token)
    except JWTWardError as exc:
        raise handlers.service_failure(exc, state.settings) from None


def _one(values: list[str]) -> str | None:
    """A header sent once; several copies are joined so that they never compare equal."""
    if not values:
        return None
    return values[0] if len(values) == 1 else ", ".join(values)


def _request_info(settings: WebSettings) -> RequestInfo:
    return RequestInfo(
        method=request.method,
        authorization=request.headers.getlist("Authorization"),
        cookies=request.cookies,
        query_token=_QUERY_PARAM in request.args,
        origin=_one(request.headers.getlist("Origin")),
        sec_fetch_site=_one(request.headers.getlist("Sec-Fetch-Site")),
        own_origin=request.host_url.rstrip("/"),
        csrf_header=_one(request.headers.getlist(settings.csrf_header)),
    )


def _settings_from_config(base: WebSettings, config: Mapping[str, Any]) -> WebSettings:
    settings = base
    for key, (name, types, what) in _CONFIG.items():
        if key not in config:
            continue
        value = config[key]
        if not isinstance(value, types):
            raise InvalidArgument(f"app.config[{key!r}] must be {what}, not {type(value).__name__}")
        if key == "JWT_TRUSTED_ORIGINS":
            value = tuple(value.split()) if isinstance(value, str) else tuple(cast("Any", value))
        try:
            settings = dataclasses.replace(settings, **{name: value})
        except InvalidArgument as exc:
            raise InvalidArgument(f"app.config[{key!r}]: {exc}") from None
    unknown = sorted(k for k in config if k.startswith("JWT_") and k not in _CONFIG)
    if unknown:
        logger.warning("jwtward: app.config keys not understood (typos?): %s", ", ".join(unknown))
    return settings
