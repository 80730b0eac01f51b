"""The token server's configuration: ``JWTWARD_*`` environment variables and CLI flags.

One table (README, "Token server") documents every setting. Values are
checked once at start; an invalid one stops the start with one message that
names the setting (:class:`ConfigError`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jwtward.errors import JWTWardError
from jwtward.jose.algorithms import ALGORITHMS

__all__ = ["ConfigError", "ServerConfig", "load_config"]

StoreKind = Literal["sqlite", "redis", "postgresql"]


class ConfigError(JWTWardError):
    """The configuration cannot work; the message names the setting."""

    status_code = 500


class ServerConfig(BaseSettings):
    """Every setting of ``jwtward serve`` (env ``JWTWARD_<NAME>``, or the CLI flag)."""

    model_config = SettingsConfigDict(env_prefix="JWTWARD_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Path("jwtward-data")
    store: str | None = Field(default=None, repr=False)  # may hold a password
    namespace: str = Field(default="jwtward", pattern=r"^[a-z_][a-z0-9_]{0,40}$")
    issuer: str | None = None
    audience: str = "jwtward"
    algorithm: str = "ES256"
    access_lifetime: int = Field(default=900, ge=30, le=3600)
    refresh_lifetime: int = Field(default=14 * 86400, ge=60)
    session_lifetime: int = Field(default=30 * 86400, ge=60)
    reuse_grace: int = Field(default=0, ge=0, le=300)
    key_rotation_days: int = Field(default=90, ge=2, le=3650)
    master_key: str | None = Field(default=None, repr=False)
    key_passphrase: str | None = Field(default=None, repr=False)
    cookie_secure: bool = True
    cookie_domain: str | None = None
    refresh_cookie: str = "jwtward-refresh"
    trusted_origins: list[str] = Field(default_factory=list)
    login_user_limit: int = Field(default=5, ge=1)
    login_address_limit: int = Field(default=20, ge=1)
    login_window: int = Field(default=300, ge=1)
    clients: dict[str, str] = Field(default_factory=dict, repr=False)
    forwarded_allow_ips: str = ""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("algorithm")
    @classmethod
    def _signature_alg(cls, value: str) -> str:
        spec = ALGORITHMS.get(value)
        if spec is None or not spec.is_signature or value.startswith("HS"):
            raise ValueError("must be an asymmetric signature algorithm such as ES256 or RS256")
        return value

    @field_validator("store")
    @classmethod
    def _store_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme = urlsplit(value).scheme
        if scheme not in ("sqlite", "redis", "rediss", "postgresql", "postgres"):
            raise ValueError("must be sqlite:///path, redis://host:port/db or postgresql://...")
        return value

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("clients", mode="before")
    @classmethod
    def _clients(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and len(v) >= 16 for k, v in value.items()
        ):
            raise ValueError('must be a JSON object {"client-id": "secret of 16+ characters"}')
        return dict(value)

    @model_validator(mode="after")
    def _lifetimes(self) -> ServerConfig:
        if self.refresh_lifetime > self.session_lifetime:
            raise ValueError("JWTWARD_REFRESH_LIFETIME cannot exceed JWTWARD_SESSION_LIFETIME")
        if self.master_key is not None and self.key_passphrase is not None:
            raise ValueError("set JWTWARD_MASTER_KEY or JWTWARD_KEY_PASSPHRASE, not both")
        return self

    @property
    def store_kind(self) -> StoreKind:
        if self.store is None or self.store.startswith("sqlite"):
            return "sqlite"
        if self.store.startswith("redis"):
            return "redis"
        return "postgresql"

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file of tokens, users and keys (``sqlite:///path`` or the data dir's)."""
        if self.store is not None and self.store.startswith("sqlite"):
            # sqlite:///relative/path and sqlite:////absolute/path, as is usual.
            path = urlsplit(self.store).path[1:]
            if path:
                return Path(path)
        return self.data_dir / "jwtward.sqlite3"

    @property
    def public_issuer(self) -> str:
        return self.issuer or f"http://{self.host}:{self.port}"


def load_config(**overrides: Any) -> ServerConfig:
    """The configuration from the environment, with CLI ``overrides`` on top.

    Raises :class:`ConfigError` naming the first invalid setting.
    """
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return ServerConfig(**given)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = error["loc"][0] if error["loc"] else "configuration"
        setting = f"JWTWARD_{str(where).upper()}" if error["loc"] else "configuration"
        raise ConfigError(f"invalid setting {setting}: {error['msg']}") from None
    except (ValueError, json.JSONDecodeError) as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None


def environment_summary(config: ServerConfig) -> Mapping[str, str]:
    """The effective settings worth printing at start (never a secret)."""
    return {
        "data_dir": str(config.data_dir.resolve()),
        "store": config.store_kind if config.store is None else _redacted(config.store),
        "issuer": config.public_issuer,
        "algorithm": config.algorithm,
        "pid": str(os.getpid()),
    }


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
