"""RFC 6750 §3 answers: which status, which ``WWW-Authenticate``, which JSON body.

Every framework integration turns a refusal into an :class:`AuthFailure`
and renders it the same way, so Flask and FastAPI answer byte for byte alike:

- no credentials: 401, ``WWW-Authenticate: Bearer realm="..."``, no error code;
- a bad, expired or revoked token: 401 ``error="invalid_token"``;
- a malformed request (two tokens, a broken header): 400 ``invalid_request``;
- a valid token without the scope: 403 ``insufficient_scope`` with ``scope``;
- a missing or wrong CSRF token: 403 with a message naming what was expected;
- the store or key source cannot answer: 503 with ``Retry-After``.

Descriptions are short and fixed; the detail of a refusal goes to the log
(invariant 12), and no token is ever echoed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from jwtward.errors import (
    CSRFMismatch,
    ExpiredToken,
    InvalidToken,
    JWTWardError,
    KeySourceUnavailable,
    RevokedToken,
    StoreUnavailable,
)

__all__ = ["AuthFailure", "failure_for", "insufficient_scope", "invalid_request", "missing"]

logger = logging.getLogger("jwtward.web")


@dataclass(eq=False)
class AuthFailure(Exception):
    """A refused request: everything needed to answer it (raise it, or render it).

    Not frozen: frameworks set ``__traceback__`` on exceptions they handle.
    """

    status: int
    error: str | None = None
    description: str | None = None
    scope: str | None = None
    retry_after: int | None = None
    realm: str = "api"
    extra_headers: tuple[tuple[str, str], ...] = field(default=())

    def with_realm(self, realm: str) -> AuthFailure:
        return AuthFailure(
            self.status, self.error, self.description, self.scope, self.retry_after, realm,
            self.extra_headers,
        )

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value (RFC 6750 §3; values are fixed ASCII, quoted)."""
        parts = [f'realm="{self.realm}"']
        if self.error is not None:
            parts.append(f'error="{self.error}"')
        if self.description is not None:
            parts.append(f'error_description="{self.description}"')
        if self.scope is not None:
            parts.append(f'scope="{self.scope}"')
        return "Bearer " + ", ".join(parts)

    def headers(self) -> list[tuple[str, str]]:
        headers = [("Cache-Control", "no-store")]
        if self.status in (401, 403) and self.error != "csrf_failed":
            headers.append(("WWW-Authenticate", self.challenge()))
        if self.retry_after is not None:
            headers.append(("Retry-After", str(self.retry_after)))
        headers.extend(self.extra_headers)
        return headers

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error or "unauthorized"}
        if self.description is not None:
            body["error_description"] = self.description
        if self.scope is not None:
            body["scope"] = self.scope
        return body


def missing() -> AuthFailure:
    """No credentials at all: RFC 6750 §3.1 says no error code then."""
    return AuthFailure(401, description=None)


def invalid_request(description: str) -> AuthFailure:
    return AuthFailure(400, "invalid_request", description)


def insufficient_scope(required: Iterable[str]) -> AuthFailure:
    scope = " ".join(required)
    return AuthFailure(
        403, "insufficient_scope", "the token does not grant the required scope", scope
    )


def csrf_failure(description: str) -> AuthFailure:
    return AuthFailure(403, "csrf_failed", description)


def failure_for(exc: JWTWardError) -> AuthFailure:
    """The answer to a refusal raised by the token service (detail logged, not sent)."""
    logger.info("token refused: %s: %s", type(exc).__name__, exc)
    if isinstance(exc, CSRFMismatch):
        return csrf_failure(str(exc))
    if isinstance(exc, StoreUnavailable | KeySourceUnavailable):
        retry = getattr(exc, "retry_after", 1)
        return AuthFailure(
            503, "temporarily_unavailable", "try again shortly",
            retry_after=retry if isinstance(retry, int) else 1,
        )
    if isinstance(exc, ExpiredToken):
        return AuthFailure(401, "invalid_token", "the token has expired")
    if isinstance(exc, RevokedToken):
        return AuthFailure(401, "invalid_token", "the token has been revoked")
    if isinstance(exc, InvalidToken):
        return AuthFailure(401, "invalid_token", "the token is not valid")
    # Configuration or programming errors on the server's side.
    logger.error("token check failed on the server's side: %s", type(exc).__name__)
    return AuthFailure(500, "server_error", "the server could not check the token")
