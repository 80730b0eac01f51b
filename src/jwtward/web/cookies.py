"""``Set-Cookie`` values for the token cookies, built the same way for every framework.

The refresh cookie: ``__Secure-`` prefix, ``HttpOnly``, ``Secure``,
``SameSite=Strict``, ``Path`` the refresh route only, ``Max-Age`` the refresh
token's remaining lifetime. The CSRF cookie has the same attributes except
``HttpOnly`` (scripts read it to send the header) and ``Path=/``. The
optional access cookie is ``HttpOnly`` with ``Max-Age`` the access token's
lifetime. Clearing sends the same name, path and attributes with ``Max-Age=0``.
"""

from __future__ import annotations

from jwtward.tokens.claims import TokenPair
from jwtward.web.settings import WebSettings

__all__ = ["clear_cookies", "session_cookies"]


def _cookie(
    settings: WebSettings,
    name: str,
    value: str,
    *,
    path: str,
    max_age: int,
    http_only: bool = True,
) -> str:
    parts = [f"{settings.cookie_name(name)}={value}", f"Path={path}", f"Max-Age={max(0, max_age)}"]
    if settings.cookie_domain is not None:
        parts.append(f"Domain={settings.cookie_domain}")
    if not settings.insecure_development_cookies:
        parts.append("Secure")
    if http_only:
        parts.append("HttpOnly")
    parts.append("SameSite=Strict")
    return "; ".join(parts)


def session_cookies(
    settings: WebSettings, pair: TokenPair, csrf_token: str | None, now: float
) -> list[str]:
    """``Set-Cookie`` values for a new pair: refresh (and CSRF, access if enabled)."""
    refresh_age = int(pair.refresh_expires_at - now)
    cookies = [
        _cookie(settings, settings.refresh_cookie, pair.refresh_token,
                path=settings.refresh_path, max_age=refresh_age),
    ]
    if csrf_token is not None:
        cookies.append(
            _cookie(settings, settings.csrf_cookie, csrf_token, path="/",
                    max_age=refresh_age, http_only=False)
        )
    if settings.access_cookie is not None:
        cookies.append(
            _cookie(settings, settings.access_cookie, pair.access_token,
                    path=settings.access_cookie_path,
                    max_age=int(pair.access_expires_at - now))
        )
    return cookies


def clear_cookies(settings: WebSettings) -> list[str]:
    """``Set-Cookie`` values that delete every token cookie (same name, path and attributes)."""
    cookies = [
        _cookie(settings, settings.refresh_cookie, "", path=settings.refresh_path, max_age=0),
        _cookie(settings, settings.csrf_cookie, "", path="/", max_age=0, http_only=False),
    ]
    if settings.access_cookie is not None:
        cookies.append(
            _cookie(settings, settings.access_cookie, "", path=settings.access_cookie_path,
                    max_age=0)
        )
    return cookies
