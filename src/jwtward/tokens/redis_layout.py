"""What the Redis token stores keep in Redis: the key layout, the record encoding, the scripts.

Layout, under a configurable prefix (default ``jwtward:``)::

    <prefix>rt:<token hash>   hash   one refresh record
    <prefix>fam:<family id>   hash   one session
    <prefix>jti:<jti>         string a revoked access token (value: its exp)
    <prefix>cut:<subject>     hash   the subject cutoff (cutoff, keep_until)
    <prefix>sub:<subject>     zset   the subject's family ids, scored by created_at

Every key expires with what it describes (``PEXPIREAT`` at the POSIX time
the record names): a refresh record at its ``expires_at``, a session at its
``expires_at``, a revoked jti at the token's ``exp``, a cutoff at its
``keep_until``, a subject index when the last of its sessions ends. Redis
itself drops what can no longer matter, so the stores' ``purge_expired`` only
tidies the subject indexes (see there).

Every write that reads first is one of the Lua scripts in :data:`SCRIPTS`,
so it is atomic against every other client: above all the compare-and-swap
of ``rotate`` (invariant 9). Two scripts (``rotate`` and ``load_refresh``)
find the family key from the record they read, so the layout is for a single
Redis server or a Sentinel-managed one, not Redis Cluster.

The stores themselves (:mod:`jwtward.tokens.redis_store`) only decide what
to ask of Redis and run it; everything about how a record looks in Redis is
here, once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from jwtward.codecs import dumps, loads_object
from jwtward.errors import DecodeError, InvalidArgument, StoreUnavailable
from jwtward.tokens.records import FamilyRecord, RefreshRecord

__all__ = [
    "SCRIPTS",
    "Keys",
    "corrupt",
    "decode_cutoff",
    "decode_family",
    "decode_refresh",
    "encode_family",
    "encode_refresh",
    "encode_time",
    "expiry_ms",
    "flat",
]

# Expiry times beyond this (about 285,000 years) are clamped: Redis refuses
# times that overflow its millisecond clock, and such an entry never expires anyway.
_MAX_EXPIRY_MS = 2**53

# Claims are bounded by the token size long before this; the bound only
# keeps a corrupt entry from costing more than a bad read.
_MAX_JSON = 1 << 20

# -- Lua scripts ----------------------------------------------------------------------------

# Replace a hash with the fields in ARGV[from .. from + count - 1] and expire it.
_LUA_WRITE_HASH = """
local function write_hash(key, from, count, expiry_ms)
  redis.call('DEL', key)
  redis.call('HSET', key, unpack(ARGV, from, from + count - 1))
  redis.call('PEXPIREAT', key, expiry_ms)
end
"""

# KEYS: family, first refresh record, subject index.
# ARGV: family id, created_at, family expiry ms, record expiry ms,
#       n family fields, m record fields, the n family fields, the m record fields.
# The index expires with the last of its sessions: its expiry only moves later.
# A session that has already ended is not indexed (its hash is deleted at once).
_LUA_CREATE = _LUA_WRITE_HASH + """
local family_ms = tonumber(ARGV[3])
local n, m = tonumber(ARGV[5]), tonumber(ARGV[6])
write_hash(KEYS[1], 7, n, ARGV[3])
write_hash(KEYS[2], 7 + n, m, ARGV[4])
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if family_ms > now_ms then
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
  local ttl = redis.call('PTTL', KEYS[3])
  if ttl < 0 or now_ms + ttl < family_ms then
    redis.call('PEXPIREAT', KEYS[3], ARGV[3])
  end
end
return 1
"""

# KEYS: the record to use up, its successor.
# ARGV: used_at, has sealed successor ('1'/'0'), sealed successor, family key prefix,
#       successor expiry ms, m successor fields, the m successor fields.
# Returns 1 only when the record exists, is unused and its family exists unrevoked.
_LUA_ROTATE = _LUA_WRITE_HASH + """
local family_id = redis.call('HGET', KEYS[1], 'family_id')
if not family_id then return 0 end
if redis.call('HEXISTS', KEYS[1], 'used_at') == 1 then return 0 end
local family = ARGV[4] .. family_id
if redis.call('EXISTS', family) == 0 then return 0 end
if redis.call('HEXISTS', family, 'revoked_at') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'used_at', ARGV[1])
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'successor', ARGV[3])
else
  redis.call('HDEL', KEYS[1], 'successor')
end
write_hash(KEYS[2], 7, tonumber(ARGV[6]), ARGV[5])
redis.call('HSET', family, 'last_used_at', ARGV[1])
return 1
"""

# KEYS: the record. ARGV: family key prefix, cutoff key prefix.
# Returns {record fields, family fields, cutoff or nil}: one consistent read.
_LUA_LOAD_REFRESH = """
local record = redis.call('HGETALL', KEYS[1])
if #record == 0 then return {} end
local family_id = redis.call('HGET', KEYS[1], 'family_id')
local family = redis.call('HGETALL', ARGV[1] .. family_id)
local cutoff = false
if #family > 0 then
  local subject = redis.call('HGET', ARGV[1] .. family_id, 'subject')
  if subject then cutoff = redis.call('HGET', ARGV[2] .. subject, 'cutoff') end
end
return {record, family, cutoff}
"""

# KEYS: family. ARGV: revoked_at. The first revocation time is kept; an
# unknown (or expired) family is not created.
_LUA_REVOKE_FAMILY = """
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('HEXISTS', KEYS[1], 'revoked_at') == 0 then
  redis.call('HSET', KEYS[1], 'revoked_at', ARGV[1])
end
return 0
"""

# KEYS: revoked jti. ARGV: exp, exp ms. The latest expiry is kept.
_LUA_REVOKE_ACCESS = """
local old = redis.call('GET', KEYS[1])
if old and tonumber(old) >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
"""

# KEYS: cutoff hash. ARGV: cutoff, keep_until, keep_until ms. Each of the
# two times keeps its maximum; the expiry follows keep_until.
_LUA_REVOKE_SUBJECT = """
local old = redis.call('HMGET', KEYS[1], 'cutoff', 'keep_until')
local cutoff, keep, keep_ms = ARGV[1], ARGV[2], ARGV[3]
if old[1] and tonumber(old[1]) > tonumber(cutoff) then cutoff = old[1] end
local keep_old = old[2] and tonumber(old[2]) > tonumber(keep)
if keep_old then keep = old[2] end
redis.call('HSET', KEYS[1], 'cutoff', cutoff, 'keep_until', keep)
if not keep_old then redis.call('PEXPIREAT', KEYS[1], keep_ms) end
return 0
"""

SCRIPTS: Mapping[str, str] = {
    "create": _LUA_CREATE,
    "rotate": _LUA_ROTATE,
    "load_refresh": _LUA_LOAD_REFRESH,
    "revoke_family": _LUA_REVOKE_FAMILY,
    "revoke_access": _LUA_REVOKE_ACCESS,
    "revoke_subject": _LUA_REVOKE_SUBJECT,
}

# -- key layout and encoding ----------------------------------------------------------------


class Keys:
    """The key names under one prefix."""

    __slots__ = ("cutoff_prefix", "family_prefix", "prefix")

    def __init__(self, prefix: str) -> None:
        if not isinstance(prefix, str):
            raise InvalidArgument("the key prefix must be a string")
        self.prefix = prefix
        self.family_prefix = prefix + "fam:"
        self.cutoff_prefix = prefix + "cut:"

    def refresh(self, token_hash: str) -> str:
        return f"{self.prefix}rt:{token_hash}"

    def family(self, family_id: str) -> str:
        return self.family_prefix + family_id

    def jti(self, jti: str) -> str:
        return f"{self.prefix}jti:{jti}"

    def cutoff(self, subject: str) -> str:
        return self.cutoff_prefix + subject

    def index(self, subject: str) -> str:
        return f"{self.prefix}sub:{subject}"

    def index_pattern(self) -> str:
        """A SCAN pattern for every subject index (the prefix taken literally)."""
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix)
        return escaped + "sub:*"


def encode_time(value: float) -> str:
    """A time as text that converts back to exactly the same float (in Python and in Lua)."""
    return repr(float(value))


def expiry_ms(value: float) -> int:
    """The PEXPIREAT argument for a POSIX time: rounded up, clamped to what Redis accepts."""
    if math.isnan(value):
        raise InvalidArgument("an expiry time is not a number")
    if value * 1000 >= _MAX_EXPIRY_MS:
        return _MAX_EXPIRY_MS
    return max(1, math.ceil(value * 1000))


def flat(fields: Mapping[str, str | bytes]) -> tuple[str | bytes, ...]:
    return tuple(item for pair in fields.items() for item in pair)


def encode_family(family: FamilyRecord) -> dict[str, str | bytes]:
    fields: dict[str, str | bytes] = {
        "family_id": family.family_id,
        "subject": family.subject,
        "created_at": encode_time(family.created_at),
        "expires_at": encode_time(family.expires_at),
        "last_used_at": encode_time(family.last_used_at),
        "claims": dumps(family.claims),
        "metadata": dumps(family.metadata),
    }
    if family.revoked_at is not None:
        fields["revoked_at"] = encode_time(family.revoked_at)
    if family.client_id is not None:
        fields["client_id"] = family.client_id
    if family.scope is not None:
        fields["scope"] = family.scope
    return fields


def encode_refresh(record: RefreshRecord) -> dict[str, str | bytes]:
    fields: dict[str, str | bytes] = {
        "family_id": record.family_id,
        "issued_at": encode_time(record.issued_at),
        "expires_at": encode_time(record.expires_at),
    }
    if record.used_at is not None:
        fields["used_at"] = encode_time(record.used_at)
    if record.successor is not None:
        fields["successor"] = bytes(record.successor)
    return fields


def corrupt() -> StoreUnavailable:
    return StoreUnavailable("the token store holds an unreadable entry")


def _as_dict(reply: Any) -> dict[bytes, bytes]:
    """A hash reply (a dict from a pipeline, a flat list from a script) as a dict."""
    if isinstance(reply, dict):
        return reply
    if isinstance(reply, list) and len(reply) % 2 == 0:
        return dict(zip(reply[::2], reply[1::2], strict=True))
    raise corrupt()


def _text(fields: Mapping[bytes, bytes], name: bytes) -> str:
    return fields[name].decode("utf-8")


def _opt_text(fields: Mapping[bytes, bytes], name: bytes) -> str | None:
    value = fields.get(name)
    return None if value is None else value.decode("utf-8")


def _opt_time(value: bytes | None) -> float | None:
    return None if value is None else _parse_time(value)


def _parse_time(value: bytes) -> float:
    number = float(value)
    if math.isnan(number):
        raise ValueError("not a time")
    return number


def decode_family(reply: Any) -> FamilyRecord | None:
    """The session in a hash reply; None for an empty (missing or expired) hash."""
    fields = _as_dict(reply)
    if not fields:
        return None
    try:
        metadata = loads_object(fields[b"metadata"], max_size=_MAX_JSON)
        if not all(isinstance(v, str) for v in metadata.values()):
            raise ValueError("metadata values must be strings")
        return FamilyRecord(
            family_id=_text(fields, b"family_id"),
            subject=_text(fields, b"subject"),
            created_at=_parse_time(fields[b"created_at"]),
            expires_at=_parse_time(fields[b"expires_at"]),
            last_used_at=_parse_time(fields[b"last_used_at"]),
            revoked_at=_opt_time(fields.get(b"revoked_at")),
            client_id=_opt_text(fields, b"client_id"),
            scope=_opt_text(fields, b"scope"),
            claims=loads_object(fields[b"claims"], max_size=_MAX_JSON),
            metadata=metadata,
        )
    except (KeyError, ValueError, DecodeError):
        raise corrupt() from None


def decode_refresh(token_hash: str, reply: Any) -> RefreshRecord | None:
    """The refresh record in a hash reply; None for an empty (missing or expired) hash."""
    fields = _as_dict(reply)
    if not fields:
        return None
    try:
        return RefreshRecord(
            token_hash=token_hash,
            family_id=_text(fields, b"family_id"),
            issued_at=_parse_time(fields[b"issued_at"]),
            expires_at=_parse_time(fields[b"expires_at"]),
            used_at=_opt_time(fields.get(b"used_at")),
            successor=fields.get(b"successor"),
        )
    except (KeyError, ValueError):
        raise corrupt() from None


def decode_cutoff(reply: Any) -> float | None:
    if reply is None:
        return None
    try:
        return _parse_time(reply)
    except (TypeError, ValueError):
        raise corrupt() from None
