"""Where a request's token comes from, and whether a cookie-borne request may act.

Framework-neutral: each integration fills a :class:`RequestInfo` from its
own request object and calls :func:`extract_credentials` and
:func:`check_csrf`, which raise :class:`~jwtward.web.challenges.AuthFailure`.

Bearer tokens (RFC 6750 §2.1): one ``Authorization`` header, the scheme
compared without case, exactly one token of the ``b64token`` syntax. Tokens
in the query string are refused (they end up in logs and ``Referer``
headers); a token in the header *and* in a cookie is ``invalid_request``.

CSRF: a cookie is sent by the browser whoever wrote the page, so every
unsafe request (POST, PUT, PATCH, DELETE) authenticated by a cookie must
show, in a header, the CSRF token bound to its session (the token's
``csrf`` claim, compared in constant time), and must not come from a
foreign origin (``Origin`` / ``Sec-Fetch-Site``). Requests with a Bearer
header need neither: a foreign page cannot set that header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from jwtward.tokens.lifecycle import csrf_matches
from jwtward.web.challenges import AuthFailure, csrf_failure, invalid_request
from jwtward.web.settings import WebSettings

__all__ = [
    "SAFE_METHODS",
    "Credentials",
    "RequestInfo",
    "bearer_token",
    "check_csrf",
    "extract_credentials",
]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")  # RFC 6750 §2.1
_MAX_TOKEN = 16384


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the transports need to know of a request, whatever the framework."""

    method: str
    authorization: Sequence[str] = ()
    cookies: Mapping[str, str] = field(default_factory=dict)
    query_token: bool = False
    origin: str | None = None
    sec_fetch_site: str | None = None
    own_origin: str | None = None
    csrf_header: str | None = None


@dataclass(frozen=True, slots=True)
class Credentials:
    """A token and how it came: ``header`` (Bearer) or ``cookie``."""

    token: str
    via: Literal["header", "cookie"]


def bearer_token(values: Sequence[str]) -> str | None:
    """The token of the request's ``Authorization`` header values (RFC 6750 §2.1).

    ``None`` without a Bearer header (none at all, or another scheme); an
    :class:`AuthFailure` ``invalid_request`` for several headers or a
    malformed one.
    """
    if not values:
        return None
    if len(values) > 1:
        raise invalid_request("send exactly one Authorization header")
    scheme, _, rest = values[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        return None  # another scheme: no Bearer credentials (RFC 6750 §3.1)
    token = rest.strip(" ")
    if not token or " " in token or len(token) > _MAX_TOKEN or not _B64TOKEN.match(token):
        raise invalid_request("the Authorization header must be 'Bearer <token>'")
    return token


def extract_credentials(info: RequestInfo, settings: WebSettings) -> Credentials | None:
    """The request's token, ``None`` when it carries none."""
    if info.query_token:
        raise invalid_request("tokens are not accepted in the URL; use the Authorization header")
    from_header = bearer_token(info.authorization)
    from_cookie = None
    if settings.access_cookie is not None:
        from_cookie = info.cookies.get(settings.cookie_name(settings.access_cookie)) or None
    if from_header is not None and from_cookie is not None:
        raise invalid_request("send the token in the Authorization header or a cookie, not both")
    if from_header is not None:
        return Credentials(from_header, "header")
    if from_cookie is not None:
        if len(from_cookie) > _MAX_TOKEN:
            raise invalid_request("the token cookie is too large")
        return Credentials(from_cookie, "cookie")
    return None


def check_csrf(
    info: RequestInfo, claims: Mapping[str, Any], settings: WebSettings
) -> None:
    """Refuse a cookie-authenticated unsafe request that does not prove its origin."""
    if info.method.upper() in SAFE_METHODS:
        return
    check_origin(info, settings)
    if info.csrf_header is None:
        raise csrf_failure(
            f"missing {settings.csrf_header} header: a request authenticated by cookie must "
            f"send the session's CSRF token (the {settings.cookie_name(settings.csrf_cookie)} "
            "cookie, or csrf_token from the login response) in that header"
        )
    if not csrf_matches(claims, info.csrf_header):
        raise csrf_failure(
            f"the {settings.csrf_header} header does not match this session's CSRF token"
        )


def check_origin(info: RequestInfo, settings: WebSettings) -> None:
    """``Sec-Fetch-Site`` must say same-origin; ``Origin``, when sent, must be trusted."""
    site = (info.sec_fetch_site or "").lower()
    trusted = bool(info.origin and info.origin in settings.trusted_origins)
    if site and site not in ("same-origin", "none") and not trusted:
        raise csrf_failure(
                "cross-site request refused: a cookie-authenticated request must come from "
                "the application's own origin"
            )
    origin = info.origin
    if origin is not None and origin != "null":
        if origin != info.own_origin and origin not in settings.trusted_origins:
            raise csrf_failure(
                f"Origin {origin[:80]!r} is not this application's origin nor a trusted one"
            )
    elif origin == "null":
        raise csrf_failure("requests from an opaque origin (Origin: null) are refused")


def failure_for_cookie_refresh(settings: WebSettings) -> AuthFailure:
    """The answer when a refresh arrives without its cookie."""
    return AuthFailure(
        401,
        "invalid_token",
        f"no refresh token: the {settings.cookie_name(settings.refresh_cookie)} cookie is missing",
    )
