"""The server's moving parts, built from its configuration: stores, key ring, services.

Shared by ``jwtward serve`` and the command line, so both always open the
same stores the same way:

- ``sqlite`` (default): one SQLite file in the data directory holds keys,
  users, sessions, revocations and rate limits;
- ``redis://``: sessions, revocations and rate limits in Redis (shared by
  every server), keys and users in the data directory's SQLite file;
- ``postgresql://``: everything in PostgreSQL (schema ``namespace``), so
  several servers on several machines share keys, users and sessions.

Private keys are sealed at rest (invariant 10) under ``JWTWARD_MASTER_KEY``
or ``JWTWARD_KEY_PASSPHRASE``; with neither, a random master key is made once
in the data directory (``master.key``, mode 0600) and a warning says to move
it out of there for production.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from jwtward.errors import JWTWardError
from jwtward.keys import KeyRing, RotationPolicy, SQLiteKeyStore
from jwtward.keys.records import KeyStore
from jwtward.server.config import ConfigError, ServerConfig
from jwtward.server.ratelimit import (
    PostgresRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    SQLiteRateLimiter,
)
from jwtward.server.users import PostgresUserStore, SQLiteUserStore, UserStore
from jwtward.tokens import AsyncTokenService, SQLiteTokenStore, ThreadedStore, TokenService
from jwtward.tokens.async_service import AsyncSubjectLoader
from jwtward.tokens.records import AsyncTokenStore, TokenStore

__all__ = ["Backends", "open_backends"]

logger = logging.getLogger("jwtward.server")

MASTER_KEY_FILE = "master.key"


@dataclass
class Backends:
    """Everything the server and the CLI use, opened once."""

    config: ServerConfig
    key_store: KeyStore
    token_store: TokenStore
    users: UserStore
    limiter: RateLimiter
    _async_token_store: AsyncTokenStore | None = field(default=None, repr=False)
    _ring: KeyRing | None = field(default=None, repr=False)

    def ring(self) -> KeyRing:
        """The key ring (made on first use: the first start generates the signing key)."""
        if self._ring is None:
            days = self.config.key_rotation_days
            policy = RotationPolicy(
                rotate_every=timedelta(days=days),
                publish_ahead=timedelta(days=max(1, days // 30)),
                max_token_lifetime=timedelta(seconds=self.config.access_lifetime),
            )
            self._ring = KeyRing.generate(
                self.config.algorithm, store=self.key_store, policy=policy
            )
        return self._ring

    def service_options(self) -> dict[str, Any]:
        config = self.config
        return {
            "issuer": config.public_issuer,
            "audience": config.audience,
            "access_lifetime": timedelta(seconds=config.access_lifetime),
            "refresh_lifetime": timedelta(seconds=config.refresh_lifetime),
            "session_lifetime": timedelta(seconds=config.session_lifetime),
            "reuse_grace": timedelta(seconds=config.reuse_grace),
        }

    def token_service(self) -> TokenService:
        return TokenService(self.ring(), store=self.token_store, **self.service_options())

    def async_token_service(
        self, *, load_subject: AsyncSubjectLoader | None = None
    ) -> AsyncTokenService:
        return AsyncTokenService(
            self.ring(),
            store=self.async_token_store(),
            load_subject=load_subject,
            **self.service_options(),
        )

    def async_token_store(self) -> AsyncTokenStore:
        if self._async_token_store is None:
            self._async_token_store = _open_async_token_store(self.config, self.token_store)
        return self._async_token_store

    def close(self) -> None:
        for closeable in (self.token_store, self.users, self.limiter):
            with contextlib.suppress(JWTWardError, OSError):
                closeable.close()
        close_keys = getattr(self.key_store, "close", None)
        if callable(close_keys):
            with contextlib.suppress(JWTWardError, OSError):
                close_keys()


def key_protection(config: ServerConfig) -> dict[str, Any]:
    """The sealing secret of the key store: configured, or a key file made once."""
    if config.key_passphrase is not None:
        return {"passphrase": config.key_passphrase}
    if config.master_key is not None:
        return {"master_key": _decode_master_key(config.master_key, "JWTWARD_MASTER_KEY")}
    path = config.data_dir / MASTER_KEY_FILE
    if not path.exists():
        _write_master_key(path)
        logger.warning(
            "made a master key for the sealed signing keys at %s; for production set "
            "JWTWARD_MASTER_KEY from a secret store instead of keeping it beside the keys",
            path,
        )
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"{path} is readable by other users; chmod 600 it")
    return {"master_key": _decode_master_key(path.read_text().strip(), str(path))}


def _write_master_key(path: Path) -> None:
    """Make the key file whole or not at all, even with several processes starting at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("="))
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: use that
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _decode_master_key(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise ConfigError(f"invalid setting {where}: not base64url") from None
    if len(key) != 32:
        raise ConfigError(f"invalid setting {where}: a master key has 32 bytes")
    return key


def open_backends(config: ServerConfig) -> Backends:
    """Open (and create on first use) every store the configuration names."""
    kind = config.store_kind
    if kind != "postgresql":
        sqlite_path = config.sqlite_path
        sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    protection = key_protection(config)
    if kind == "postgresql":
        from jwtward.keys.postgres_store import PostgresKeyStore  # noqa: PLC0415
        from jwtward.tokens.postgres_store import PostgresTokenStore  # noqa: PLC0415

        dsn, schema = config.store, config.namespace
        assert dsn is not None  # noqa: S101 - store_kind says so
        return Backends(
            config,
            key_store=PostgresKeyStore(dsn, schema=schema, **protection),
            token_store=PostgresTokenStore(dsn, schema=schema),
            users=PostgresUserStore(dsn, schema=schema),
            limiter=PostgresRateLimiter(dsn, schema=schema),
        )
    key_store = SQLiteKeyStore(sqlite_path, **protection)
    users = SQLiteUserStore(sqlite_path)
    if kind == "redis":
        from jwtward.tokens.redis_store import RedisTokenStore  # noqa: PLC0415

        assert config.store is not None  # noqa: S101 - store_kind says so
        prefix = config.namespace + ":"
        return Backends(
            config,
            key_store=key_store,
            token_store=RedisTokenStore.from_url(config.store, prefix=prefix),
            users=users,
            limiter=RedisRateLimiter(config.store, prefix=prefix),
        )
    return Backends(
        config,
        key_store=key_store,
        token_store=SQLiteTokenStore(sqlite_path),
        users=users,
        limiter=SQLiteRateLimiter(sqlite_path),
    )


def _open_async_token_store(config: ServerConfig, sync_store: TokenStore) -> AsyncTokenStore:
    kind = config.store_kind
    if kind == "redis":
        from jwtward.tokens.redis_store import AsyncRedisTokenStore  # noqa: PLC0415

        assert config.store is not None  # noqa: S101
        return AsyncRedisTokenStore.from_url(config.store, prefix=config.namespace + ":")
    if kind == "postgresql":
        from jwtward.tokens.postgres_store import AsyncPostgresTokenStore  # noqa: PLC0415

        return AsyncPostgresTokenStore(config.store, schema=config.namespace)
    return ThreadedStore(sync_store)


def data_dir_note(config: ServerConfig) -> Path:
    return config.data_dir.resolve()
