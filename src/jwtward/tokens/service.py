"""``TokenService``: access/refresh pairs with rotation, reuse detection and revocation (sync).

A thin driver: every rule lives in :mod:`jwtward.tokens.flows` and
:mod:`jwtward.tokens.lifecycle`; this class answers the flows' store and
subject requests with plain calls. :class:`AsyncTokenService` is its asyncio
twin over the same flows.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

from jwtward.errors import InvalidArgument, JWTWardError, StoreUnavailable
from jwtward.tokens.claims import AccessClaims, TokenPair
from jwtward.tokens.flows import Flow, Lifecycle, SigningKeys, StoreCall
from jwtward.tokens.lifecycle import Settings
from jwtward.tokens.records import (
    AccessView,
    FamilyRecord,
    RefreshView,
    SubjectView,
    TokenStore,
)

__all__ = ["DEFAULT_STORE_PATH", "TokenService", "make_lifecycle"]

T = TypeVar("T")
StoreT = TypeVar("StoreT")
LoaderT = TypeVar("LoaderT")
logger = logging.getLogger("jwtward.tokens")

# Where the default SQLite store lives unless JWTWARD_DATA_DIR says otherwise.
DEFAULT_STORE_PATH = "jwtward-tokens.sqlite3"

SubjectLoader = Callable[[str], Mapping[str, Any] | None]


def make_lifecycle(
    keys: SigningKeys,
    *,
    issuer: str,
    audience: str | Collection[str],
    access_lifetime: timedelta,
    refresh_lifetime: timedelta,
    session_lifetime: timedelta,
    reuse_grace: timedelta,
    leeway: timedelta,
    allow_long_access_tokens: bool,
    clock: Callable[[], float],
    has_subject_loader: bool,
) -> Lifecycle:
    """The shared core of both services, from their keyword arguments."""
    audiences = (audience,) if isinstance(audience, str) else tuple(audience)
    settings = Settings(
        issuer=issuer,
        audience=audiences,
        access_lifetime=access_lifetime,
        refresh_lifetime=refresh_lifetime,
        session_lifetime=session_lifetime,
        reuse_grace=reuse_grace,
        leeway=leeway,
        allow_long_access_tokens=allow_long_access_tokens,
    )
    return Lifecycle(keys, settings, clock=clock, has_subject_loader=has_subject_loader)


def store_failure(method: str, exc: BaseException) -> StoreUnavailable:
    """The one error for a store that failed in a way its own code did not translate."""
    logger.error("token store call %s failed: %s: %s", method, type(exc).__name__, exc)
    return StoreUnavailable("the token store cannot answer right now")


# The answers the flows read attributes of: a store returning anything else is
# broken, and fails closed as unavailable rather than as an AttributeError (500).
_ANSWER_TYPES: dict[str, type | tuple[type, ...]] = {
    "access_view": AccessView,
    "load_refresh": (RefreshView, type(None)),
    "sessions": SubjectView,
}


def checked_answer(method: str, answer: Any) -> Any:
    """``answer`` when it has the type the protocol promises for ``method``."""
    expected = _ANSWER_TYPES.get(method)
    if expected is None or isinstance(answer, expected):
        return answer
    raise store_failure(method, TypeError(f"the store returned a {type(answer).__name__}"))


def _default_store() -> TokenStore:
    from jwtward.tokens.sqlite_store import SQLiteTokenStore  # noqa: PLC0415 - only when needed

    directory = os.environ.get("JWTWARD_DATA_DIR")
    path = Path(directory) / DEFAULT_STORE_PATH if directory else Path(DEFAULT_STORE_PATH)
    logger.info("token store: SQLite at %s", path.resolve())
    return SQLiteTokenStore(path)


class ServiceBase(Generic[StoreT, LoaderT]):
    """What both services share: building the lifecycle core, the store and the properties.

    Each service still spells out its own ``__init__`` signature (its public
    API, which differs in the store's type and default) and passes the
    options here, so the checks and their order live once.
    """

    _store: StoreT

    def _setup(self, keys: SigningKeys, load_subject: LoaderT | None, **options: Any) -> None:
        if load_subject is not None and not callable(load_subject):
            raise InvalidArgument("load_subject must be callable")
        self._core = make_lifecycle(keys, has_subject_loader=load_subject is not None, **options)
        self._load_subject = load_subject

    @property
    def store(self) -> StoreT:
        return self._store

    @property
    def keys(self) -> SigningKeys:
        return self._core.keys

    @property
    def settings(self) -> Settings:
        return self._core.settings


class TokenService(ServiceBase[TokenStore, SubjectLoader]):
    """Issue, verify, refresh and revoke tokens of one issuer for one API.

    ``keys`` is a :class:`~jwtward.KeyRing` (its active key signs, any
    published key verifies). ``store`` keeps sessions and revocations
    (default: SQLite in ``$JWTWARD_DATA_DIR`` or the working directory).
    ``load_subject(subject)`` is called at every refresh: it returns the
    claims the next access token carries, or ``None`` to end the session (a
    deleted or disabled user). ``reuse_grace`` (default off) lets a refresh
    token be presented again within that time of its rotation and get the
    same successor pair, for clients that refresh from two tabs at once.
    """

    def __init__(
        self,
        keys: SigningKeys,
        *,
        issuer: str,
        audience: str | Collection[str],
        store: TokenStore | None = None,
        access_lifetime: timedelta = timedelta(minutes=15),
        refresh_lifetime: timedelta = timedelta(days=14),
        session_lifetime: timedelta = timedelta(days=30),
        reuse_grace: timedelta = timedelta(0),
        leeway: timedelta = timedelta(seconds=30),
        allow_long_access_tokens: bool = False,
        load_subject: SubjectLoader | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._setup(
            keys,
            load_subject,
            issuer=issuer,
            audience=audience,
            access_lifetime=access_lifetime,
            refresh_lifetime=refresh_lifetime,
            session_lifetime=session_lifetime,
            reuse_grace=reuse_grace,
            leeway=leeway,
            allow_long_access_tokens=allow_long_access_tokens,
            clock=clock,
        )
        self._store = _default_store() if store is None else store

    def _run(self, flow: Flow[T]) -> T:
        answer: Any = None
        try:
            while True:
                step = flow.send(answer)
                if isinstance(step, StoreCall):
                    answer = self._call(step)
                else:
                    assert self._load_subject is not None  # noqa: S101 - flows ask only then
                    answer = self._load_subject(step.subject)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            flow.close()

    def _call(self, step: StoreCall) -> Any:
        try:
            answer = getattr(self._store, step.method)(*step.args)
        except JWTWardError:
            raise
        except Exception as exc:  # fail closed: a store failure is never a token decision
            raise store_failure(step.method, exc) from None
        return checked_answer(step.method, answer)

    def issue(
        self,
        subject: str,
        *,
        claims: Mapping[str, Any] | None = None,
        scope: str | list[str] | None = None,
        client_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> TokenPair:
        """Start a session for ``subject``: its first access and refresh tokens."""
        return self._run(
            self._core.issue(
                subject, claims=claims, scope=scope, client_id=client_id, metadata=metadata
            )
        )

    def verify(self, access_token: str | bytes) -> AccessClaims:
        """The claims of a valid, unrevoked access token; an InvalidToken subclass otherwise."""
        # Lifecycle.verify's three steps without the generator: the hot path.
        core = self._core
        claims = core.access_claims(access_token)
        return core.admit_access(claims, self._call(core.access_view_call(claims)))

    def refresh(self, refresh_token: str | bytes, *, csrf: str | None = None) -> TokenPair:
        """Rotate the refresh token: a new pair, the old token used up.

        Presenting a used token again revokes its whole session and raises
        :class:`~jwtward.errors.RefreshTokenReuse` (unless within ``reuse_grace``).
        ``csrf``: for a refresh token that came in a cookie, the CSRF token the
        request carried; it must match the session's (:class:`CSRFMismatch`).
        """
        return self._run(self._core.refresh(refresh_token, csrf=csrf))

    def revoke(self, token: str | bytes) -> None:
        """RFC 7009: revoke an access token, or a refresh token's session; ignore invalid ones."""
        self._run(self._core.revoke(token))

    def revoke_subject(self, subject: str) -> None:
        """Log ``subject`` out everywhere: every token issued until now is refused."""
        self._run(self._core.revoke_subject(subject))

    def sessions(self, subject: str) -> list[FamilyRecord]:
        """``subject``'s live sessions, newest first."""
        return self._run(self._core.sessions(subject))

    def revoke_session(self, subject: str, session_id: str) -> bool:
        """Revoke one of ``subject``'s sessions; False if there is no such live session."""
        return self._run(self._core.revoke_session(subject, session_id))

    def introspect(self, token: str | bytes) -> dict[str, Any]:
        """RFC 7662 introspection: ``{"active": False}`` for anything not valid now."""
        return self._run(self._core.introspect(token))

    def purge_expired(self) -> int:
        """Delete store entries that can no longer matter; how many were removed."""
        return self._run(self._core.purge())

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> TokenService:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
