"""``KeySet``: keys looked up by ``kid``, and JWK Sets (RFC 7517 §5) in and out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from jwtward.codecs import loads_object
from jwtward.errors import (
    DecodeError,
    InvalidArgument,
    InvalidKey,
    KeyNotFound,
    UnsupportedAlgorithm,
)
from jwtward.jose.algorithms import ALGORITHMS, algorithm
from jwtward.jose.keys import Key, MissingAlgorithm, keys_of

__all__ = ["KeySet", "KeySource", "select_key"]

MAX_JWKS_KEYS = 100


class KeySet:
    """An immutable set of keys with unique ``kid`` values.

    Verification finds a key by the token's ``kid`` (invariant 3: an opaque
    string looked up in this mapping, never a path or URL). Duplicate kids
    are refused, since they would make that lookup ambiguous.
    """

    __slots__ = ("_by_kid", "_keys", "_skipped")

    def __init__(self, keys: Iterable[Key] = ()) -> None:
        self._keys = tuple(keys_of(keys))
        self._by_kid: dict[str, Key] = {}
        for key in self._keys:
            if key.kid in self._by_kid:
                raise InvalidKey(f"duplicate kid {key.kid!r:.80} in key set")
            self._by_kid[key.kid] = key
        self._skipped: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def from_jwks(
        cls,
        doc: Mapping[str, Any] | str | bytes,
        *,
        public_only: bool = False,
        ignore_unsupported: bool = False,
        default_alg: str | None = None,
    ) -> KeySet:
        """A key set from a JWK Set document (object or JSON text).

        Any invalid or weak key refuses the whole set. With
        ``ignore_unsupported``, keys whose kty, curve or alg jwtward does not
        offer are left out instead (RFC 7517 §5 allows that); they are listed in
        :attr:`skipped`, as are keys without ``alg`` whose algorithm cannot
        be inferred. ``default_alg`` binds the keys that carry no ``alg`` and
        whose key type suits it (many issuers publish RSA keys without
        ``alg``: pass ``default_alg="RS256"``). ``public_only`` refuses private
        members (see :meth:`Key.from_jwk`).
        """
        if isinstance(doc, str | bytes):
            try:
                doc = loads_object(doc, max_size=1 << 22)
            except DecodeError as exc:
                raise InvalidKey(f"JWK Set is not a JSON object: {exc}") from None
        if not isinstance(doc, Mapping) or not isinstance(doc.get("keys"), list):
            raise InvalidKey("a JWK Set is an object with a 'keys' array")
        entries = doc["keys"]
        if len(entries) > MAX_JWKS_KEYS:
            raise InvalidKey(f"a JWK Set may hold at most {MAX_JWKS_KEYS} keys")
        if default_alg is not None:
            algorithm(default_alg)  # refuse an unknown default before any work
        # Duplicate kids refuse the set: find them before building any key,
        # which for private RSA keys is the expensive part.
        kids = [entry.get("kid") for entry in entries if isinstance(entry, Mapping)]
        named = [kid for kid in kids if isinstance(kid, str)]
        if len(set(named)) != len(named):
            raise InvalidKey("duplicate kid in the JWK Set")
        keys: list[Key] = []
        skipped: list[Mapping[str, Any]] = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, Mapping):
                raise InvalidKey(f"key {index} of the JWK Set is not a JSON object")
            entry_alg = default_alg
            if entry_alg is not None and ("alg" in entry or not _fits(entry_alg, entry)):
                entry_alg = None
            try:
                keys.append(Key.from_jwk(entry, alg=entry_alg, public_only=public_only))
            except (UnsupportedAlgorithm, MissingAlgorithm) as exc:
                if not ignore_unsupported:
                    raise type(exc)(f"key {index} of the JWK Set: {exc}") from None
                skipped.append(entry)
            except InvalidKey as exc:
                raise type(exc)(f"key {index} of the JWK Set: {exc}") from None
        keyset = cls(keys)
        keyset._skipped = tuple(skipped)
        return keyset

    def to_jwks(self, *, private: bool = False) -> dict[str, list[dict[str, Any]]]:
        """The JWK Set; without ``private``, public keys only (secrets left out)."""
        if private:
            return {"keys": [key.to_jwk(private=True) for key in self._keys]}
        return {"keys": [key.to_jwk() for key in self._keys if key.kty != "oct"]}

    @property
    def skipped(self) -> tuple[Mapping[str, Any], ...]:
        """JWK entries left out by ``from_jwks(..., ignore_unsupported=True)``."""
        return self._skipped

    def get(self, kid: str) -> Key | None:
        return self._by_kid.get(kid) if isinstance(kid, str) else None

    def select(self, kid: str | None) -> Key:
        """The key for a token's ``kid``; without one, the only key of the set."""
        if kid is not None:
            found = self._by_kid.get(kid)
            if found is None:
                raise KeyNotFound("no key in the key set has the token's kid")
            return found
        if len(self._keys) == 1:
            return self._keys[0]
        raise KeyNotFound(f"the token has no kid and the key set holds {len(self._keys)} keys")

    def __getitem__(self, kid: str) -> Key:
        key = self.get(kid)
        if key is None:
            raise KeyNotFound("no key with this kid")
        return key

    def __contains__(self, kid: object) -> bool:
        return isinstance(kid, str) and kid in self._by_kid

    def __iter__(self) -> Iterator[Key]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeySet({list(self._keys)!r})"


def _fits(alg: str, entry: Mapping[str, Any]) -> bool:
    """Does ``default_alg`` suit this entry: key type, use and curve?"""
    spec = ALGORITHMS.get(alg)
    if spec is None or entry.get("kty") not in spec.ktys:
        return False
    if entry.get("use") not in (None, spec.use):
        return False
    return not spec.curves or entry.get("crv") in spec.curves


@runtime_checkable
class KeySource(Protocol):
    """Anything that picks the verification key for a token's ``kid``.

    :class:`KeySet` is one; a key ring or a remote JWKS client (which may
    refetch on an unknown ``kid``) are others. ``select`` raises
    :class:`~jwtward.errors.KeyNotFound` when no key fits.
    """

    def select(self, kid: str | None) -> Key: ...


def select_key(keys: Key | KeySource, kid: str | None) -> Key:
    """The key a token names by ``kid``, or the only key when it names none."""
    if isinstance(keys, Key):
        if kid is not None and kid != keys.kid:
            raise KeyNotFound("the token's kid does not match the key")
        return keys
    if isinstance(keys, KeySet):
        return keys.select(kid)
    # A plain attribute check: isinstance against a runtime Protocol costs
    # microseconds on every token.
    if not callable(getattr(type(keys), "select", None)):
        raise InvalidArgument(f"expected a Key, KeySet or KeySource, got {type(keys).__name__}")
    key = keys.select(kid)
    if not isinstance(key, Key):
        raise InvalidArgument(f"{type(keys).__name__}.select returned no Key")
    return key
