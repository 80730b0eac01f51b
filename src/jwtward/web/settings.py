"""``WebSettings``: how tokens travel over HTTP, for every framework integration.

The defaults are the safe ones: the refresh token in an ``HttpOnly; Secure;
SameSite=Strict`` cookie with the ``__Secure-`` prefix, scoped to the
refresh path; the access token in the response body for the client to keep in
memory. Turning ``Secure`` off takes ``insecure_development_cookies=True``
and logs a warning every time settings are made with it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass, field

from jwtward.errors import InvalidArgument

__all__ = ["WebSettings"]

logger = logging.getLogger("jwtward.web")

_TOKEN_CHARS = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 token
_REALM_CHARS = re.compile(r"^[\x20-\x7e]*$")
_DOMAIN = re.compile(r"\.?[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?")


@dataclass(frozen=True, slots=True)
class WebSettings:
    """Transport, cookie and CSRF settings shared by the Flask and FastAPI integrations.

    - ``realm``: the ``WWW-Authenticate`` realm.
    - ``refresh_cookie`` / ``refresh_path``: the refresh token's cookie and
      the only path it is sent to. ``access_cookie`` (``None``: off) opts in
      to an access-token cookie for server-rendered apps.
    - ``cookie_domain``: ``None`` keeps cookies host-only (safest).
    - ``csrf_header``: where cookie-authenticated unsafe requests send the
      CSRF token; ``csrf_cookie`` is the readable cookie that hands it to
      scripts. ``trusted_origins``: origins (``https://app.example``) allowed
      in ``Origin`` besides the request's own host.
    - ``insecure_development_cookies``: drop ``Secure`` and the ``__Secure-``
      prefix, for plain-HTTP development only (a warning is logged).
    """

    realm: str = "api"
    refresh_cookie: str = "jwtward-refresh"
    refresh_path: str = "/auth/refresh"
    access_cookie: str | None = None
    access_cookie_path: str = "/"
    csrf_cookie: str = "jwtward-csrf"
    csrf_header: str = "X-CSRF-Token"
    cookie_domain: str | None = None
    trusted_origins: Collection[str] = field(default_factory=tuple)
    insecure_development_cookies: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.realm, str) or not _REALM_CHARS.fullmatch(self.realm) or (
            '"' in self.realm or "\\" in self.realm
        ):
            raise InvalidArgument("realm must be printable ASCII without quotes or backslashes")
        names = [self.refresh_cookie, self.csrf_cookie, self.csrf_header]
        if self.access_cookie is not None:
            names.append(self.access_cookie)
        for name in names:
            if not isinstance(name, str) or not _TOKEN_CHARS.fullmatch(name):
                raise InvalidArgument(f"{name!r:.40} is not a valid cookie or header name")
        for path in (self.refresh_path, self.access_cookie_path):
            if not isinstance(path, str) or not re.fullmatch(r"/[\x21-\x3a\x3c-\x7e]*", path):
                raise InvalidArgument("cookie paths must start with '/' and hold no ';'")
        if self.cookie_domain is not None and (
            not isinstance(self.cookie_domain, str)
            or not _DOMAIN.fullmatch(self.cookie_domain)
        ):
            raise InvalidArgument("cookie_domain must be a host name such as app.example")
        if isinstance(self.trusted_origins, str):
            raise InvalidArgument("trusted_origins must be a collection of origins")
        for origin in self.trusted_origins:
            if not isinstance(origin, str) or not re.fullmatch(r"https?://[^/\s]+", origin):
                raise InvalidArgument(f"{origin!r:.60} is not an origin like https://app.example")
        if type(self.insecure_development_cookies) is not bool:
            raise InvalidArgument("insecure_development_cookies must be a bool")
        if self.insecure_development_cookies:
            logger.warning(
                "jwtward: cookies are sent without Secure (insecure_development_cookies=True); "
                "never run this way outside local development"
            )

    def cookie_name(self, name: str) -> str:
        """The cookie's name on the wire: ``__Secure-`` prefixed unless in development mode."""
        return name if self.insecure_development_cookies else "__Secure-" + name
