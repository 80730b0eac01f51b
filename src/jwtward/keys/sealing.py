"""Private key material at rest: sealed with AES-256-GCM, or plaintext on request.

Every key store keeps the same thing per key: its schedule in the clear, the
public JWK in the clear (it is published anyway) and the private JWK sealed.
This module owns both the sealing and that storable form of a
:class:`~jwtward.keys.records.KeyRecord`, so the file and SQLite stores
cannot drift apart in how they protect a key.

The sealing key comes from one of:

* a passphrase, stretched with scrypt under a random per-store salt; the
  scrypt parameters are stored with the salt, so a store stays readable when
  the defaults are raised, and the next save re-seals it under the stronger
  parameters the process is configured with;
* a 32-byte master key, given directly or as base64url in the environment
  variable ``JWTWARD_MASTER_KEY``.

The associated data of each sealed key names the key store (a random id made
with the store) and the key's ``kid``, so a sealed private key cannot be moved
to another record or another store without failing authentication. A check
value sealed at creation tells a wrong passphrase apart from a missing key.

With no secret configured, private keys are written in plaintext only when the
caller passes ``allow_plaintext=True``, and a loud warning (``warnings`` and
``logging``) says so; the stores still write their files with mode 0600.

A wrong passphrase or master key raises :class:`UnsealError`, a
:class:`~jwtward.keys.records.StoreError`: the store cannot be read with this
configuration, so, like an unreachable store, no key decision may be made
from it. Unlike most store errors, retrying does not help: the configuration
must be fixed.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from jwtward.codecs import b64decode, b64encode, dumps, is_numeric_date, loads_object
from jwtward.errors import DecodeError, InvalidArgument, JWTWardError
from jwtward.jose.keys import Key
from jwtward.keys.records import KeyRecord, KeyState, StoreError

__all__ = [
    "MASTER_KEY_ENV",
    "PlaintextKeyWarning",
    "Protection",
    "ScryptParams",
    "Sealer",
    "UnsealError",
    "check_save_arguments",
    "resolve_protection",
]

logger = logging.getLogger("jwtward.keys")

MASTER_KEY_ENV: Final = "JWTWARD_MASTER_KEY"

_KEY_SIZE: Final = 32  # AES-256
_NONCE_SIZE: Final = 12
_SALT_SIZE: Final = 16
_MIN_SCRYPT_N: Final = 1 << 14
_MAX_SCRYPT_MEMORY: Final = 1 << 30  # 128 * n * r bytes: refuse more than 1 GiB
_CHECK_PLAINTEXT: Final = b"jwtward key store"
_MAX_JWK_SIZE: Final = 1 << 16

_METHOD_SCRYPT: Final = "scrypt"
_METHOD_MASTER_KEY: Final = "master-key"
_METHOD_NONE: Final = "none"


class UnsealError(StoreError):
    """Sealed key material cannot be opened: wrong passphrase or master key,
    or the sealed bytes were altered or moved to another record or store.

    A store error because no key decision can be made from such a store;
    retrying does not help, the passphrase or master key must be fixed.
    """


class PlaintextKeyWarning(UserWarning):
    """Private keys are being stored without encryption (``allow_plaintext=True``)."""


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """Cost of stretching a passphrase: ``n`` (CPU/memory, a power of two), ``r``, ``p``.

    The default (n=2**17, r=8, p=1: 128 MiB, about half a second) follows
    the OWASP password storage guidance; a store re-seals itself when a
    process configured with higher values saves it.
    """

    n: int = 1 << 17
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        for name in ("n", "r", "p"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise InvalidArgument(f"scrypt {name} must be a positive int")
        if self.n < _MIN_SCRYPT_N or self.n & (self.n - 1):
            raise InvalidArgument(f"scrypt n must be a power of two, at least {_MIN_SCRYPT_N}")
        if 128 * self.n * self.r > _MAX_SCRYPT_MEMORY or self.p > 16:
            raise InvalidArgument("scrypt parameters ask for more than 1 GiB or 16 lanes")

    def at_least(self, other: ScryptParams) -> bool:
        """True when every parameter is as strong as ``other``'s."""
        return self.n >= other.n and self.r >= other.r and self.p >= other.p


def _aad(purpose: str, store_id: str, kid: str) -> bytes:
    # A JSON array is unambiguous whatever the strings contain.
    return dumps({"aad": [purpose, store_id, kid]})


class Sealer:
    """An opened store header: seals and opens the records of one store."""

    __slots__ = ("_aead", "_header", "_store_id")

    def __init__(self, header: Mapping[str, Any], store_id: str, aead: AESGCM | None) -> None:
        self._header = dict(header)
        self._store_id = store_id
        self._aead = aead

    @property
    def header(self) -> dict[str, Any]:
        """The header to store with the records (method, salt, parameters, check)."""
        return dict(self._header)

    @property
    def encrypted(self) -> bool:
        return self._aead is not None

    def _seal(self, aead: AESGCM, purpose: str, kid: str, plaintext: bytes) -> str:
        nonce = os.urandom(_NONCE_SIZE)
        sealed = aead.encrypt(nonce, plaintext, _aad(purpose, self._store_id, kid))
        return b64encode(nonce + sealed)

    def _open(self, aead: AESGCM, purpose: str, kid: str, text: object) -> bytes:
        if not isinstance(text, str):
            raise StoreError("key store holds a sealed value that is not a string")
        try:
            raw = b64decode(text)
        except DecodeError:
            raise StoreError("key store holds a sealed value that is not base64url") from None
        if len(raw) < _NONCE_SIZE + 16:
            raise StoreError("key store holds a truncated sealed value")
        try:
            return aead.decrypt(
                raw[:_NONCE_SIZE], raw[_NONCE_SIZE:], _aad(purpose, self._store_id, kid)
            )
        except InvalidTag:
            if purpose == "check":
                raise UnsealError(
                    "the passphrase or master key does not open this key store"
                ) from None
            raise UnsealError(
                f"sealed private key {kid!r} fails authentication: altered or moved"
            ) from None

    def verify_check(self) -> None:
        """Raise :class:`UnsealError` unless this secret opens the store's check value."""
        if self._aead is not None:
            self._open(self._aead, "check", "", self._header.get("check"))

    # -- records ----------------------------------------------------------------

    def seal_record(self, record: KeyRecord) -> dict[str, Any]:
        """The storable form of ``record``: schedule and public JWK clear, private part sealed."""
        key = record.key
        public = None if key.kty == "oct" else key.public_key().to_jwk()
        sealed = private = None
        if key.is_private:
            private_jwk = key.to_jwk(private=True)
            if self._aead is not None:
                sealed = self._seal(self._aead, "key", key.kid, dumps(private_jwk))
            else:
                private = private_jwk
        return {
            "kid": key.kid,
            "state": record.state.value,
            "created_at": record.created_at,
            "activates_at": record.activates_at,
            "retires_at": record.retires_at,
            "expires_at": record.expires_at,
            "revoked_at": record.revoked_at,
            "public": public,
            "sealed": sealed,
            "private": private,
        }

    def open_record(self, stored: Mapping[str, Any]) -> KeyRecord:
        """The record back from its storable form; :class:`StoreError` if it is malformed."""
        kid, state, (created_at, activates_at, retires_at, expires_at, revoked_at) = _schedule(
            stored
        )
        jwk = self._jwk_of(stored, kid)
        try:
            key = Key.from_jwk(jwk)
        except JWTWardError as exc:
            raise StoreError(f"key store record {kid!r} holds an invalid key: {exc}") from None
        public = stored.get("public")
        if public is not None and (
            key.kty == "oct"
            or not isinstance(public, Mapping)
            or key.public_key().to_jwk() != public
        ):
            raise StoreError(f"key store record {kid!r}: public and private parts disagree")
        return KeyRecord(
            key=key,
            state=state,
            created_at=created_at,
            activates_at=activates_at,
            retires_at=retires_at,
            expires_at=expires_at,
            revoked_at=revoked_at,
        )

    def check_record(self, stored: Mapping[str, Any]) -> None:
        """Raise :class:`StoreError` unless ``stored`` is well formed and its sealed
        part opens under this store's key.

        The cheap part of :meth:`open_record`: it does not rebuild the key
        (which for RSA means a costly consistency check), so a writer can
        make sure it replaces an intact store without paying for a full load.
        """
        kid, _, _ = _schedule(stored)
        self._jwk_of(stored, kid)

    def _jwk_of(self, stored: Mapping[str, Any], kid: str) -> Mapping[str, Any]:
        """The JWK a record holds: unsealed, plaintext, or (public-only keys) public."""
        public, sealed, private = stored.get("public"), stored.get("sealed"), stored.get("private")
        if sealed is not None:
            if self._aead is None:
                raise StoreError(f"record {kid!r} is sealed but the store header says plaintext")
            opened = self._open(self._aead, "key", kid, sealed)
            try:
                jwk: Any = loads_object(opened, max_size=_MAX_JWK_SIZE)
            except DecodeError:
                raise StoreError(f"sealed private key {kid!r} is not a JWK") from None
        elif private is not None:
            if self._aead is not None:
                raise StoreError(f"record {kid!r} holds a plaintext key in an encrypted store")
            jwk = private
        else:
            jwk = public
        if not isinstance(jwk, Mapping) or jwk.get("kid") != kid:
            raise StoreError(f"key store record {kid!r} does not hold a JWK with its kid")
        return jwk


_Times = tuple[float, float, float | None, float | None, float | None]


def _schedule(stored: Mapping[str, Any]) -> tuple[str, KeyState, _Times]:
    """The kid, state and times (in :class:`KeyRecord` order) of a stored record, checked."""
    kid = stored.get("kid")
    if not isinstance(kid, str):
        raise StoreError("key store holds a record without a kid")
    try:
        state = KeyState(stored.get("state"))
    except ValueError:
        raise StoreError(f"key store record {kid!r} has an unknown state") from None
    created_at, activates_at = _time(stored, "created_at", kid), _time(stored, "activates_at", kid)
    if created_at is None or activates_at is None:
        raise StoreError(f"key store record {kid!r} lacks created_at or activates_at")
    times: _Times = (
        created_at,
        activates_at,
        _time(stored, "retires_at", kid),
        _time(stored, "expires_at", kid),
        _time(stored, "revoked_at", kid),
    )
    return kid, state, times


def _time(stored: Mapping[str, Any], name: str, kid: str) -> float | None:
    value = stored.get(name)
    if value is None:
        return None
    if not is_numeric_date(value) or not math.isfinite(value):
        raise StoreError(f"key store record {kid!r} has an invalid {name}")
    return float(value)


class Protection:
    """How a store protects private keys: the secret it is configured with.

    Made with :meth:`passphrase`, :meth:`master_key`, :meth:`from_environment`
    or :meth:`plaintext` (or by :func:`resolve_protection` from store
    arguments). It creates the header of a new store and opens the header of
    an existing one, caching each derived key so scrypt runs once per salt.
    """

    __slots__ = ("_derived", "_method", "_scrypt", "_secret")

    def __init__(self, method: str, secret: bytes, scrypt: ScryptParams | None) -> None:
        self._method = method
        self._secret = secret
        self._scrypt = scrypt
        self._derived: dict[tuple[bytes, int, int, int], AESGCM] = {}

    @classmethod
    def passphrase(
        cls, passphrase: str | bytes, *, scrypt: ScryptParams | None = None
    ) -> Protection:
        """Seal under a key stretched from ``passphrase`` (UTF-8 when text)."""
        if isinstance(passphrase, str):
            secret = passphrase.encode("utf-8", "surrogatepass")
        elif isinstance(passphrase, bytes):
            secret = passphrase
        else:
            raise InvalidArgument("a passphrase must be str or bytes")
        if not secret:
            raise InvalidArgument("the passphrase is empty")
        return cls(_METHOD_SCRYPT, secret, scrypt or ScryptParams())

    @classmethod
    def master_key(cls, key: bytes) -> Protection:
        """Seal directly under a 32-byte master key (random, not a password)."""
        if not isinstance(key, bytes) or len(key) != _KEY_SIZE:
            raise InvalidArgument(f"a master key must be exactly {_KEY_SIZE} bytes")
        return cls(_METHOD_MASTER_KEY, key, None)

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, *, name: str = MASTER_KEY_ENV
    ) -> Protection | None:
        """The master key in ``environ[name]`` (base64url of 32 bytes), or ``None`` if unset."""
        text = (os.environ if environ is None else environ).get(name)
        if not text:
            return None
        try:
            key = b64decode(text.strip())
        except DecodeError:
            raise InvalidArgument(f"{name} is not unpadded base64url") from None
        if len(key) != _KEY_SIZE:
            raise InvalidArgument(f"{name} must hold exactly {_KEY_SIZE} bytes (base64url)")
        return cls.master_key(key)

    @classmethod
    def plaintext(cls, *, stacklevel: int = 2) -> Protection:
        """Store private keys unencrypted, loudly: only for development.

        ``stacklevel`` points the warning at the caller's code (as in
        :func:`warnings.warn`).
        """
        message = (
            "jwtward key store: no passphrase or master key configured; private keys "
            f"are stored UNENCRYPTED (file mode 0600). Set {MASTER_KEY_ENV} or pass a "
            "passphrase in production."
        )
        warnings.warn(message, PlaintextKeyWarning, stacklevel=stacklevel)
        logger.warning(message)
        return cls(_METHOD_NONE, b"", None)

    @property
    def method(self) -> str:
        """``scrypt``, ``master-key`` or ``none``."""
        return self._method

    def new_sealer(self, store_id: str | None = None) -> Sealer:
        """A header for a store (new, or re-sealed keeping its ``store_id``)."""
        store_id = store_id or b64encode(secrets.token_bytes(16))
        header: dict[str, Any] = {"method": self._method, "store": store_id}
        if self._method == _METHOD_NONE:
            return Sealer(header, store_id, None)
        if self._scrypt is not None:
            salt = os.urandom(_SALT_SIZE)
            params = self._scrypt
            header |= {"salt": b64encode(salt), "n": params.n, "r": params.r, "p": params.p}
            aead = self._derive(salt, params)
        else:
            aead = AESGCM(self._secret)
        sealer = Sealer(header, store_id, aead)
        header["check"] = sealer._seal(aead, "check", "", _CHECK_PLAINTEXT)
        return Sealer(header, store_id, aead)

    def open(self, header: object) -> Sealer:
        """The sealer of a stored header; :class:`UnsealError` for a wrong secret."""
        if not isinstance(header, Mapping):
            raise StoreError("key store header is missing or not an object")
        method, store_id = header.get("method"), header.get("store")
        if not isinstance(store_id, str) or not store_id:
            raise StoreError("key store header has no store id")
        if method not in (_METHOD_SCRYPT, _METHOD_MASTER_KEY, _METHOD_NONE):
            raise StoreError("key store header names an unknown protection method")
        if method != self._method:
            raise UnsealError(
                f"key store is protected with {method!r} but this process is "
                f"configured with {self._method!r}"
            )
        if method == _METHOD_NONE:
            return Sealer(header, store_id, None)
        if method == _METHOD_SCRYPT:
            salt, params = _stored_scrypt(header)
            aead = self._derive(salt, params)
        else:
            aead = AESGCM(self._secret)
        sealer = Sealer(header, store_id, aead)
        sealer.verify_check()
        return sealer

    def wants_reseal(self, header: Mapping[str, Any]) -> bool:
        """True when the stored scrypt parameters are weaker than the configured ones."""
        if self._scrypt is None or header.get("method") != _METHOD_SCRYPT:
            return False
        return not _stored_scrypt(header)[1].at_least(self._scrypt)

    def next_sealer(self, existing: Sealer | None, stored: Sequence[Mapping[str, Any]]) -> Sealer:
        """The sealer a save writes with: a fresh one for a new store (``existing``
        is None); else ``existing``, re-sealed under stronger parameters if configured.

        Every stored record must be intact and open under our secret first:
        a store that no one can load is left for its operator, never silently
        overwritten.
        """
        if existing is None:
            return self.new_sealer()
        for record in stored:
            existing.check_record(record)
        header = existing.header
        if self.wants_reseal(header):
            return self.new_sealer(header["store"])
        return existing

    def _derive(self, salt: bytes, params: ScryptParams) -> AESGCM:
        cache_key = (salt, params.n, params.r, params.p)
        aead = self._derived.get(cache_key)
        if aead is None:
            kdf = Scrypt(salt=salt, length=_KEY_SIZE, n=params.n, r=params.r, p=params.p)
            aead = AESGCM(kdf.derive(self._secret))
            self._derived[cache_key] = aead
        return aead

    def __repr__(self) -> str:
        return f"Protection(method={self._method!r})"


def _stored_scrypt(header: Mapping[str, Any]) -> tuple[bytes, ScryptParams]:
    try:
        salt = b64decode(header.get("salt", ""))
        params = ScryptParams(n=header.get("n"), r=header.get("r"), p=header.get("p"))  # type: ignore[arg-type]
    except (DecodeError, InvalidArgument):
        raise StoreError("key store header has invalid scrypt parameters") from None
    if len(salt) < _SALT_SIZE:
        raise StoreError("key store header has a short scrypt salt")
    return salt, params


def resolve_protection(
    *,
    passphrase: str | bytes | None = None,
    master_key: bytes | None = None,
    allow_plaintext: bool = False,
    scrypt: ScryptParams | None = None,
    environ: Mapping[str, str] | None = None,
    stacklevel: int = 2,
) -> Protection:
    """The protection a store's arguments ask for.

    An explicit passphrase or master key first, then ``JWTWARD_MASTER_KEY``
    from the environment, then plaintext if (and only if) ``allow_plaintext``;
    otherwise :class:`~jwtward.errors.InvalidArgument`.
    """
    if passphrase is not None and master_key is not None:
        raise InvalidArgument("give a passphrase or a master key, not both")
    if scrypt is not None and passphrase is None:
        raise InvalidArgument("scrypt parameters apply to a passphrase only")
    if passphrase is not None:
        return Protection.passphrase(passphrase, scrypt=scrypt)
    if master_key is not None:
        return Protection.master_key(master_key)
    from_env = Protection.from_environment(environ)
    if from_env is not None:
        return from_env
    if allow_plaintext is True:
        return Protection.plaintext(stacklevel=stacklevel + 1)
    raise InvalidArgument(
        "no passphrase or master key for the key store: pass passphrase= or master_key=, "
        f"set {MASTER_KEY_ENV}, or pass allow_plaintext=True to store private keys unencrypted"
    )


def check_save_arguments(expected_version: int, records: Sequence[KeyRecord]) -> None:
    """Refuse what no store may write: a bad version, non-records, two records with one kid."""
    if type(expected_version) is not int or expected_version < 0:
        raise InvalidArgument("expected_version must be a non-negative int")
    if isinstance(records, str | bytes) or not isinstance(records, Sequence):
        raise InvalidArgument("records must be a sequence of KeyRecord")
    kids: set[str] = set()
    for record in records:
        if not isinstance(record, KeyRecord):
            raise InvalidArgument("records must be a sequence of KeyRecord")
        if record.key.kid in kids:
            raise InvalidArgument(f"two records share the kid {record.key.kid!r}")
        kids.add(record.key.kid)
