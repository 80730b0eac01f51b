"""``Policy``: what a verifier requires of a token's claims (invariant 6).

A policy is made once, checked once (a leeway above five minutes or a
``require`` that is not a list of names is refused at construction), and then
applied by :func:`jwtward.jwt.decode` to every token. Time comes from
``clock`` so that every rule can be tested at its exact boundary.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import timedelta

from jwtward.errors import InvalidArgument

__all__ = ["MAX_LEEWAY", "Policy", "normalize_typ"]

MAX_LEEWAY = timedelta(minutes=5)


def normalize_typ(typ: str) -> str | None:
    """RFC 7515 §4.1.9: compare media types case-insensitively, with
    ``application/`` implied when the value holds no ``/``. Media types are
    ASCII (RFC 2045): anything else is None, which matches nothing (Unicode
    case folding would let the Kelvin sign pass for a ``k``)."""
    if not typ.isascii():
        return None
    lowered = typ.lower()
    return lowered if "/" in lowered else "application/" + lowered


def _names(value: str | Collection[str] | None, what: str) -> frozenset[str] | None:
    if value is None:
        return None
    refusal = f"{what} must be a non-empty string or collection of strings"
    if isinstance(value, str):
        values: list[object] = [value]
    elif isinstance(value, Collection):
        values = list(value)
    else:
        raise InvalidArgument(refusal)
    if not values or not all(isinstance(name, str) and name for name in values):
        raise InvalidArgument(refusal)
    return frozenset(values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Policy:
    """The claims rules a verifier applies, all of them, on every token.

    ``issuer`` and ``audience`` take one string or a collection of accepted
    values. ``require`` names claims that must be present in addition to
    ``exp``, which is always required unless ``allow_missing_exp=True``.
    ``typ`` is the one ``typ`` header accepted (for example
    ``"at+jwt"``); ``None`` accepts any. ``max_lifetime`` bounds
    ``exp - iat`` and then requires both. ``leeway`` (at most 5 minutes)
    absorbs clock skew on ``exp``, ``nbf`` and ``iat``.
    """

    issuer: str | Collection[str] | None = None
    audience: str | Collection[str] | None = None
    leeway: timedelta = timedelta(seconds=30)
    require: Collection[str] = ("exp",)
    allow_missing_exp: bool = False
    typ: str | None = None
    max_lifetime: timedelta | None = None
    clock: Callable[[], float] = time.time
    # Derived once, in __post_init__, for the hot path.
    issuers: frozenset[str] | None = field(init=False, repr=False, compare=False)
    audiences: frozenset[str] | None = field(init=False, repr=False, compare=False)
    required: tuple[str, ...] = field(init=False, repr=False, compare=False)
    leeway_seconds: float = field(init=False, repr=False, compare=False)
    max_lifetime_seconds: float | None = field(init=False, repr=False, compare=False)
    normalized_typ: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.leeway, timedelta) or not (
            timedelta(0) <= self.leeway <= MAX_LEEWAY
        ):
            raise InvalidArgument("leeway must be a timedelta from 0 to 5 minutes")
        if (
            isinstance(self.require, str)
            or not isinstance(self.require, Collection)
            or not all(isinstance(name, str) and name for name in self.require)
        ):
            raise InvalidArgument("require must be a collection of claim names")
        if self.typ is not None and (
            not isinstance(self.typ, str) or not self.typ or not self.typ.isascii()
        ):
            raise InvalidArgument("typ must be a non-empty ASCII media type")
        if self.max_lifetime is not None and (
            not isinstance(self.max_lifetime, timedelta) or self.max_lifetime <= timedelta(0)
        ):
            raise InvalidArgument("max_lifetime must be a positive timedelta")
        if not callable(self.clock):
            raise InvalidArgument("clock must be a callable returning POSIX seconds")
        if type(self.allow_missing_exp) is not bool:
            raise InvalidArgument("allow_missing_exp must be a bool")
        # exp stays required whatever else is named: a token without exp never
        # expires, so dropping it takes an explicit, loudly named switch.
        names = self.require if self.allow_missing_exp else ("exp", *self.require)
        required = tuple(dict.fromkeys(names))
        if self.max_lifetime is not None:
            required += tuple(name for name in ("iat", "exp") if name not in required)
        setter = object.__setattr__
        setter(self, "issuers", _names(self.issuer, "issuer"))
        setter(self, "audiences", _names(self.audience, "audience"))
        setter(self, "required", required)
        setter(self, "leeway_seconds", self.leeway.total_seconds())
        setter(
            self,
            "max_lifetime_seconds",
            None if self.max_lifetime is None else self.max_lifetime.total_seconds(),
        )
        setter(self, "normalized_typ", None if self.typ is None else normalize_typ(self.typ))

    def now(self) -> float:
        """The policy clock's reading, checked to be a finite number."""
        value = self.clock()
        if type(value) not in (int, float) or not math.isfinite(value) or abs(value) > 2**53:
            raise InvalidArgument("the policy clock must return finite POSIX seconds")
        return value
