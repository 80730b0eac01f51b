"""Password hashing for the token server's users: argon2id, and nothing that leaks.

Passwords are hashed with argon2id (RFC 9106), memory-hard so that a stolen
user table is expensive to attack on GPUs. The defaults are RFC 9106's
second recommended profile (the one for memory-constrained hosts:
``t=3, m=64 MiB, p=4``); hashes made with other parameters still verify
and are reported as needing a rehash, so changing the parameters upgrades
every user at their next login.

:meth:`PasswordHasher.verify` is built for the login path:

* it never raises for a wrong password or a malformed stored hash: a login
  has two outcomes, and the caller cannot forget an exception branch;
* an unknown user (``stored_hash=None``) and a stored hash that does not
  parse are verified against a dummy hash made with the same parameters, so
  they take as long as a known user: response times do not tell an attacker
  which usernames exist;
* a password is 1 to :data:`MAX_PASSWORD_LENGTH` characters: the bound keeps
  one request from buying unbounded hashing work with a huge body.

Passwords are normalized to Unicode NFC before hashing (RFC 8265, the
OpaqueString profile), so the same password typed on systems that compose
accented letters differently gives the same hash.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import unicodedata
from dataclasses import dataclass
from typing import Final

import argon2
from argon2.exceptions import (
    HashingError,
    InvalidHashError,
    VerificationError,
    VerifyMismatchError,
)

from jwtward.errors import InvalidArgument, JWTWardError

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "PasswordHasher",
    "PasswordHashingError",
    "Verification",
]

MAX_PASSWORD_LENGTH: Final = 1024
"""The longest password accepted, in characters (before normalization)."""

# An argon2 encoded hash is about 100 characters; anything much longer was
# not written by this module and is not worth parsing.
_MAX_STORED_HASH_LENGTH: Final = 512

# Bounds on the parameters: argon2 itself needs m >= 8 * p KiB; the upper
# bounds refuse values that are surely typos (4 GiB of memory per hash).
_MAX_TIME_COST: Final = 1 << 10
_MAX_MEMORY_COST: Final = 1 << 22  # KiB
_MAX_PARALLELISM: Final = 1 << 8

_DEFAULTS: Final = argon2.profiles.RFC_9106_LOW_MEMORY


class PasswordHashingError(JWTWardError):
    """A password could not be hashed (the host could not give argon2 its memory)."""


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of a password check.

    ``needs_rehash`` is only ever true with ``ok``: the password was right,
    but its stored hash was made with other parameters than the hasher's,
    so the caller should store ``hasher.hash(password)`` in its place.
    """

    ok: bool
    needs_rehash: bool = False


_FAILED: Final = Verification(ok=False, needs_rehash=False)


def _positive_int(name: str, value: object, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidArgument(f"{name} must be an integer from 1 to {maximum}")
    return value


class PasswordHasher:
    """Hashes and verifies passwords with argon2id.

    ``time_cost`` (passes), ``memory_cost`` (KiB) and ``parallelism`` (lanes)
    default to RFC 9106's low-memory profile. Verification accepts any
    argon2 hash; one made with other parameters verifies with
    ``needs_rehash=True``.
    """

    def __init__(
        self,
        *,
        time_cost: int = _DEFAULTS.time_cost,
        memory_cost: int = _DEFAULTS.memory_cost,
        parallelism: int = _DEFAULTS.parallelism,
    ) -> None:
        self.time_cost = _positive_int("time_cost", time_cost, _MAX_TIME_COST)
        self.memory_cost = _positive_int("memory_cost", memory_cost, _MAX_MEMORY_COST)
        self.parallelism = _positive_int("parallelism", parallelism, _MAX_PARALLELISM)
        if self.memory_cost < 8 * self.parallelism:
            raise InvalidArgument("memory_cost must be at least 8 KiB per lane of parallelism")
        self._argon2 = argon2.PasswordHasher(
            time_cost=self.time_cost,
            memory_cost=self.memory_cost,
            parallelism=self.parallelism,
            hash_len=_DEFAULTS.hash_len,
            salt_len=_DEFAULTS.salt_len,
            type=argon2.Type.ID,
        )
        self._dummy: str | None = None
        self._dummy_lock = threading.Lock()

    def hash(self, password: str) -> str:
        """The encoded argon2id hash of ``password`` (a fresh random salt each time).

        Raises InvalidArgument for a password that is not a str of 1 to
        :data:`MAX_PASSWORD_LENGTH` characters (or holds a lone surrogate).
        """
        text = _prepare(password)
        if text is None:
            raise InvalidArgument(
                f"a password must be 1 to {MAX_PASSWORD_LENGTH} characters of valid text"
            )
        return self._hash(text)

    def verify(self, stored_hash: str | None, password: str) -> Verification:
        """Check ``password`` against ``stored_hash`` (``None``: the user does not exist).

        Never raises for a wrong or out-of-bounds password nor for a
        malformed stored hash; those give ``ok=False``. Unknown users and
        unparsable hashes cost one argon2 verification, as known users do.
        """
        if not isinstance(password, str):
            raise InvalidArgument("a password must be a str")
        if stored_hash is not None and not isinstance(stored_hash, str):
            raise InvalidArgument("a stored password hash must be a str or None")
        text = _prepare(password)
        if text is None:
            # Refused before any hashing, whether the user exists or not:
            # the answer depends on the password alone, never on the user.
            return _FAILED
        if stored_hash is None or not _plausible(stored_hash):
            # Nothing to verify against: do the work anyway.
            self._burn(text)
            return _FAILED
        try:
            self._argon2.verify(stored_hash, text)
        except InvalidHashError:  # parsed by _plausible, refused by argon2 itself
            self._burn(text)
            return _FAILED
        except VerificationError:  # includes VerifyMismatchError
            return _FAILED
        try:
            needs_rehash = self._argon2.check_needs_rehash(stored_hash)
        except InvalidHashError:  # pragma: no cover - it just verified, so it parses
            needs_rehash = True
        return Verification(ok=True, needs_rehash=needs_rehash)

    def _burn(self, text: str) -> None:
        """Spend one verification's time against the dummy hash; the result is ignored."""
        with contextlib.suppress(VerifyMismatchError):
            self._argon2.verify(self._dummy_hash(), text)

    def _dummy_hash(self) -> str:
        """A hash of a random password nobody knows, made once with this hasher's parameters."""
        dummy = self._dummy
        if dummy is None:
            with self._dummy_lock:
                dummy = self._dummy
                if dummy is None:
                    dummy = self._dummy = self._hash(secrets.token_urlsafe(32))
        return dummy

    def _hash(self, text: str) -> str:
        try:
            return self._argon2.hash(text)
        except HashingError:
            raise PasswordHashingError("the password could not be hashed") from None

    def __repr__(self) -> str:
        return (
            f"PasswordHasher(time_cost={self.time_cost}, memory_cost={self.memory_cost}, "
            f"parallelism={self.parallelism})"
        )


def _plausible(stored_hash: str) -> bool:
    """Whether a stored hash parses, with parameters within this module's bounds.

    Stored hashes come from the user store, but a corrupt or tampered row must
    not make a login allocate gigabytes or run for minutes.
    """
    if len(stored_hash) > _MAX_STORED_HASH_LENGTH:
        return False
    try:
        params = argon2.extract_parameters(stored_hash)
    except InvalidHashError:
        return False
    return (
        params.time_cost <= _MAX_TIME_COST
        and params.memory_cost <= _MAX_MEMORY_COST
        and params.parallelism <= _MAX_PARALLELISM
    )


def _prepare(password: object) -> str | None:
    """The NFC form of a password within bounds, or None for one that can never be valid."""
    if not isinstance(password, str):
        raise InvalidArgument("a password must be a str")
    if not 1 <= len(password) <= MAX_PASSWORD_LENGTH:
        return None
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: argon2 could not encode it either
        return None
    return unicodedata.normalize("NFC", password)
