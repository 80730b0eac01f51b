"""Framework-neutral pieces of the login, refresh and logout routes and of route checks.

The Flask and FastAPI integrations differ only in how they read a request
and write a response; what a login answers, which refresh token a request
presents, when a refresh needs a CSRF proof and how a missing scope or role
is refused are decided here, once, so both frameworks answer alike. Nothing
here does I/O: the integrations call the token service (sync or async) and
pass the results in.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from jwtward.errors import CSRFMismatch, InvalidArgument, JWTWardError
from jwtward.tokens.claims import AccessClaims, TokenPair
from jwtward.web.challenges import (
    AuthFailure,
    csrf_failure,
    failure_for,
    insufficient_scope,
    invalid_request,
)
from jwtward.web.cookies import clear_cookies, session_cookies
from jwtward.web.settings import WebSettings
from jwtward.web.transport import RequestInfo, check_origin, failure_for_cookie_refresh

__all__ = [
    "MAX_TOKEN_BODY",
    "NO_STORE",
    "cookie_refresh_csrf",
    "login_response_body",
    "logout_headers",
    "optional_refresh_token",
    "parse_json_body",
    "refresh_token_from",
    "role_failure",
    "scope_failure",
    "service_failure",
    "session_claims",
    "token_response",
]

# Token responses must not be cached by anything on the way (RFC 6749 §5.1).
NO_STORE: tuple[tuple[str, str], ...] = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))


def session_claims(claims: Mapping[str, Any] | None) -> tuple[dict[str, Any], str]:
    """The claims to issue a browser session with, and the CSRF token bound to it.

    The ``csrf`` claim is session-bound (the token service copies it into
    every refresh), so the double-submit token stays valid for the session's
    life. A caller-supplied ``csrf`` claim would silently weaken that binding,
    so it is refused.
    """
    if claims is not None and "csrf" in claims:
        raise InvalidArgument("the 'csrf' claim is set by the web layer; do not pass it")
    csrf = secrets.token_urlsafe(24)
    return {**(claims or {}), "csrf": csrf}, csrf


def issued_at(pair: TokenPair) -> float:
    """When the service made ``pair``, by the service's own clock (for cookie ``Max-Age``)."""
    return float(pair.access_expires_at - pair.expires_in)


def login_response_body(
    pair: TokenPair, csrf_token: str | None, include_refresh_token: bool
) -> dict[str, Any]:
    """The JSON body of a login or refresh: RFC 6749 §5.1 fields plus ``csrf_token``.

    The refresh token is left out by default: browsers get it in an
    ``HttpOnly`` cookie that scripts cannot read.
    """
    body = pair.to_response(include_refresh_token=include_refresh_token)
    if csrf_token is not None:
        body["csrf_token"] = csrf_token
    return body


def token_response(
    settings: WebSettings,
    pair: TokenPair,
    csrf_token: str | None,
    *,
    include_refresh_token: bool,
    set_cookies: bool,
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Body and headers (``Set-Cookie`` included) of a successful login or refresh."""
    headers = list(NO_STORE)
    if set_cookies:
        headers.extend(
            ("Set-Cookie", value)
            for value in session_cookies(settings, pair, csrf_token, issued_at(pair))
        )
    return login_response_body(pair, csrf_token, include_refresh_token), headers


def logout_headers(settings: WebSettings) -> list[tuple[str, str]]:
    """Headers of a logout answer: every token cookie deleted, nothing cached."""
    return [*NO_STORE, *(("Set-Cookie", value) for value in clear_cookies(settings))]


def refresh_token_from(
    info: RequestInfo, settings: WebSettings, body: object
) -> tuple[str, Literal["cookie", "body"]]:
    """The refresh token a request presents: its refresh cookie, or ``refresh_token`` in the body.

    ``body`` is the parsed JSON body (``None`` when there is none). Both at
    once is ambiguous and refused; neither is a 401 naming the cookie.
    """
    cookie = info.cookies.get(settings.cookie_name(settings.refresh_cookie)) or None
    from_body: str | None = None
    if body is not None:
        if not isinstance(body, Mapping):
            raise invalid_request("the request body must be a JSON object")
        value = body.get("refresh_token")
        if value is not None and (not isinstance(value, str) or not value):
            raise invalid_request("refresh_token must be a non-empty string")
        from_body = value
    if cookie is not None and from_body is not None:
        raise invalid_request("send the refresh token in its cookie or in the body, not both")
    if cookie is not None:
        return cookie, "cookie"
    if from_body is not None:
        return from_body, "body"
    raise failure_for_cookie_refresh(settings)


def cookie_refresh_csrf(info: RequestInfo, settings: WebSettings) -> str:
    """The CSRF proof a cookie-borne refresh must carry (checked by the service against the token).

    The service skips the check when given no CSRF token, so a missing
    header must be refused here, before the service is called.
    """
    check_origin(info, settings)
    if info.csrf_header is None:
        raise csrf_failure(
            f"missing {settings.csrf_header} header: a refresh by cookie must send the "
            f"session's CSRF token (the {settings.cookie_name(settings.csrf_cookie)} cookie, "
            "or csrf_token from the login response) in that header"
        )
    return info.csrf_header


def service_failure(exc: JWTWardError, settings: WebSettings) -> AuthFailure:
    """The answer to a token-service refusal, in the configured realm.

    A CSRF mismatch found by the service is a 403 naming the header, like
    the one the transport raises itself.
    """
    if isinstance(exc, CSRFMismatch):
        failure = csrf_failure(
            f"the {settings.csrf_header} header does not match this session's CSRF token"
        )
    else:
        failure = failure_for(exc)
    return failure.with_realm(settings.realm)


def scope_failure(claims: AccessClaims, required_scopes: Iterable[str]) -> AuthFailure | None:
    """403 ``insufficient_scope`` naming every required scope, or ``None`` if all are granted."""
    required = list(dict.fromkeys(required_scopes))
    if claims.has_scopes(*required):
        return None
    return insufficient_scope(required)


def role_failure(
    claims: AccessClaims, required_roles: Iterable[str], claim: str = "roles"
) -> AuthFailure | None:
    """403 when the token lacks any of ``required_roles`` (all are needed), else ``None``.

    Roles are application data, not OAuth scopes, so the challenge carries
    no ``scope`` attribute; the error code stays the RFC 6750 one, which
    clients already understand as "authenticated, but not allowed".
    """
    required = frozenset(required_roles)
    if required <= claims.roles(claim):
        return None
    return AuthFailure(403, "insufficient_scope", "the token does not carry the required role")


def optional_refresh_token(
    info: RequestInfo, settings: WebSettings, body: object
) -> tuple[str | None, str | None]:
    """The refresh token a logout presents, if any (none is fine for a logout)."""
    if body is not None and not isinstance(body, Mapping):
        raise invalid_request("the request body must be a JSON object")
    has_cookie = bool(info.cookies.get(settings.cookie_name(settings.refresh_cookie)))
    has_body = isinstance(body, Mapping) and body.get("refresh_token") is not None
    if not has_cookie and not has_body:
        return None, None
    return refresh_token_from(info, settings, body)


# A refresh or logout body holds one token: anything larger is not one.
MAX_TOKEN_BODY = 32 * 1024


def parse_json_body(data: bytes | bytearray) -> object:
    """A request body already read within its bound: ``None`` when empty, 400 when not JSON."""
    if not data.strip():
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise invalid_request("the request body must be a JSON object") from None
