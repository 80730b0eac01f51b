"""``AccessClaims`` and ``TokenPair``: what the token service hands back.

``AccessClaims`` is a read-only mapping of a verified access token's claims
with typed accessors for what every resource server asks (subject, scopes,
session, roles), so application code never re-parses the ``scope`` string.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["AccessClaims", "TokenPair"]

_NO_SCOPES: frozenset[str] = frozenset()


class AccessClaims(Mapping[str, Any]):
    """The claims of a verified, unrevoked access token (read-only)."""

    __slots__ = ("_claims", "_scopes")

    def __init__(self, claims: Mapping[str, Any]) -> None:
        self._set(dict(claims))

    @classmethod
    def _adopt(cls, claims: dict[str, Any]) -> AccessClaims:
        """Wrap a dict nothing else holds or will change (claims just parsed), uncopied.

        Private: a caller keeping the dict could change the claims after the
        scopes were read from them.
        """
        adopted = cls.__new__(cls)
        adopted._set(claims)
        return adopted

    def _set(self, claims: dict[str, Any]) -> None:
        self._claims = claims
        scope = claims.get("scope")
        self._scopes = frozenset(scope.split()) if isinstance(scope, str) else _NO_SCOPES

    def __getitem__(self, name: str) -> Any:
        return self._claims[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._claims)

    def __len__(self) -> int:
        return len(self._claims)

    @property
    def subject(self) -> str:
        return str(self._claims["sub"])

    @property
    def session_id(self) -> str | None:
        sid = self._claims.get("sid")
        return sid if isinstance(sid, str) else None

    @property
    def jti(self) -> str:
        return str(self._claims["jti"])

    @property
    def expires_at(self) -> int:
        return int(self._claims["exp"])

    @property
    def client_id(self) -> str | None:
        value = self._claims.get("client_id")
        return value if isinstance(value, str) else None

    @property
    def scopes(self) -> frozenset[str]:
        """The ``scope`` claim as a set of scope tokens (RFC 9068 §2.2.3)."""
        return self._scopes

    def has_scopes(self, *required: str) -> bool:
        """True if every scope in ``required`` was granted."""
        return self._scopes.issuperset(required)

    def roles(self, claim: str = "roles") -> frozenset[str]:
        """The roles in ``claim`` (a list of strings or one space-separated string)."""
        value = self._claims.get(claim)
        if isinstance(value, str):
            return frozenset(value.split())
        if isinstance(value, list):
            return frozenset(item for item in value if isinstance(item, str))
        return frozenset()

    def to_dict(self) -> dict[str, Any]:
        return dict(self._claims)

    def __repr__(self) -> str:
        return f"AccessClaims(sub={self._claims.get('sub')!r}, scope={sorted(self._scopes)!r})"


@dataclass(frozen=True, slots=True)
class TokenPair:
    """An access token and its refresh token, as issued together.

    ``expires_in`` is the access token's lifetime in seconds (RFC 6749
    §5.1); the two ``*_expires_at`` are POSIX seconds. Keep the refresh
    token secret: it is the session.
    """

    access_token: str
    refresh_token: str
    expires_in: int
    access_expires_at: int
    refresh_expires_at: int
    session_id: str
    scope: str | None = None
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6750 token type, not a secret

    def to_response(self, *, include_refresh_token: bool = True) -> dict[str, Any]:
        """The RFC 6749 §5.1 token response body."""
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }
        if include_refresh_token:
            body["refresh_token"] = self.refresh_token
        if self.scope:
            body["scope"] = self.scope
        return body

    def __repr__(self) -> str:  # never print the tokens themselves
        return (
            f"TokenPair(session_id={self.session_id!r}, expires_in={self.expires_in}, "
            f"scope={self.scope!r})"
        )
