"""JSON Web Tokens (RFC 7519): claims signed as a compact JWS, checked by a Policy.

``encode`` adds ``iat``, ``exp`` and a random ``jti`` unless given and puts
``typ`` (and ``kid``) in the protected header. ``decode`` verifies the
signature and applies the whole :class:`~jwtward.policy.Policy` in one call:
there is no way to check the signature without the claims or the claims
without the signature.

Confidential claims travel as a nested JWT (RFC 7519 §5.2): ``encode(...,
encrypt_to=key)`` signs, then encrypts the JWS with ``cty: "JWT"``;
``decode(..., decrypt_with=keys)`` decrypts, then requires a signed JWT
inside. An encrypted token is never accepted in place of a signed one: there
are no "encrypted but unsigned" tokens, and where ``decrypt_with`` is given a
plain JWS is refused.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, NamedTuple

from jwtward import jwe, jws
from jwtward.codecs import DEFAULT_MAX_DEPTH, dumps, is_numeric_date, loads_object
from jwtward.errors import (
    DecodeError,
    ExpiredToken,
    InvalidArgument,
    InvalidClaim,
    InvalidHeader,
    InvalidType,
    MalformedToken,
    MissingClaim,
    NotYetValid,
)
from jwtward.jose.keys import Key
from jwtward.jose.keyset import KeySet, KeySource
from jwtward.policy import Policy, normalize_typ

__all__ = ["DEFAULT_LIFETIME", "Policy", "VerifiedJWT", "decode", "decode_verified", "encode"]

DEFAULT_LIFETIME = timedelta(minutes=15)
_DEFAULT_POLICY = Policy()
_ZERO = timedelta(0)
_NUMERIC_DATES = ("exp", "nbf", "iat")
_STRINGS = ("iss", "sub", "jti")


# -- encoding ---------------------------------------------------------------------


def _check_registered(claims: Mapping[str, Any]) -> None:
    """Registered claims of the wrong type are the caller's mistake."""
    for name in _NUMERIC_DATES:
        if name in claims and not is_numeric_date(claims[name]):
            raise InvalidArgument(f"claim {name!r} must be a NumericDate (int or float seconds)")
    for name in _STRINGS:
        if name in claims and not isinstance(claims[name], str):
            raise InvalidArgument(f"claim {name!r} must be a string")
    if "aud" in claims and not _is_audience(claims["aud"]):
        raise InvalidArgument("claim 'aud' must be a string or a non-empty list of strings")


def _is_audience(value: object) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _read_clock(clock: Callable[[], float]) -> float:
    if not callable(clock):
        raise InvalidArgument("clock must be a callable returning POSIX seconds")
    now = clock()
    if not is_numeric_date(now):
        raise InvalidArgument("clock must return finite POSIX seconds")
    return now


def encode(
    claims: Mapping[str, Any],
    key: Key,
    *,
    typ: str = "JWT",
    lifetime: timedelta = DEFAULT_LIFETIME,
    headers: Mapping[str, Any] | None = None,
    clock: Callable[[], float] = time.time,
    encrypt_to: Key | None = None,
    enc: str | None = None,
) -> str:
    """Sign ``claims`` as a JWT with ``key``; with ``encrypt_to``, encrypt it too.

    ``iat`` (now), ``exp`` (``iat + lifetime``) and ``jti`` (128 random bits)
    are added unless ``claims`` has them. ``typ`` goes in the protected header.
    With ``encrypt_to`` (an encryption key), the signed JWT is encrypted to it
    as a nested JWT: ``cty: "JWT"`` and the same ``typ`` in the JWE header,
    content encryption ``enc`` (default A256GCM).
    """
    if encrypt_to is None and enc is not None:
        raise InvalidArgument("enc applies only with encrypt_to")
    if encrypt_to is not None and not isinstance(encrypt_to, Key):
        raise InvalidArgument(f"encrypt_to must be a Key, got {type(encrypt_to).__name__}")
    if type(claims) is not dict and not isinstance(claims, Mapping):
        raise InvalidArgument(f"claims must be a mapping, got {type(claims).__name__}")
    if type(lifetime) is not timedelta or lifetime <= _ZERO:
        raise InvalidArgument("lifetime must be a positive timedelta")
    if type(typ) is not str or not typ:
        raise InvalidArgument("typ must be a non-empty string")
    if headers is not None:
        if not isinstance(headers, Mapping):
            raise InvalidArgument(f"headers must be a mapping, got {type(headers).__name__}")
        if "typ" in headers and headers["typ"] != typ:
            raise InvalidArgument("give the type with typ=, not in headers")
    body = dict(claims)
    if "iat" not in body or "exp" not in body:
        now = _read_clock(clock)
        body.setdefault("iat", int(now))
        if "exp" not in body:
            start = body["iat"] if is_numeric_date(body["iat"]) else now
            body["exp"] = int(start + lifetime.total_seconds())
    if "jti" not in body:
        body["jti"] = secrets.token_urlsafe(16)
    _check_registered(body)
    try:
        payload = dumps(body)
    except DecodeError as exc:
        raise InvalidArgument(f"claims: {exc}") from None
    header = {"typ": typ} if headers is None else {**headers, "typ": typ}
    signed = jws.sign(payload, key, headers=header)
    if encrypt_to is None:
        return signed
    return jwe.encrypt(
        signed.encode("ascii"), encrypt_to, enc=enc, headers={"cty": "JWT", "typ": typ}
    )


# -- decoding -------------------------------------------------------------------


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    if name not in claims:
        return None
    value = claims[name]
    if not is_numeric_date(value):
        raise InvalidClaim(name, f"claim {name!r} is not a NumericDate")
    return value  # type: ignore[no-any-return]


def _check_type(header: Mapping[str, Any], policy: Policy) -> None:
    if policy.normalized_typ is None:
        return
    typ = header.get("typ")
    if typ is None:
        raise InvalidType(f"the token has no typ; {policy.typ!r} is required")
    if not isinstance(typ, str) or normalize_typ(typ) != policy.normalized_typ:
        raise InvalidType(f"the token's typ is not {policy.typ!r}")


def _check_claims(claims: Mapping[str, Any], policy: Policy) -> None:
    for name in policy.required:
        if name not in claims:
            raise MissingClaim(name, f"required claim {name!r} is missing")
    now = policy.now()
    leeway = policy.leeway_seconds
    exp = _numeric_date(claims, "exp")
    nbf = _numeric_date(claims, "nbf")
    iat = _numeric_date(claims, "iat")
    if exp is not None and now >= exp + leeway:
        raise ExpiredToken("exp", "the token has expired")
    if nbf is not None and now < nbf - leeway:
        raise NotYetValid("nbf", "the token is not valid yet")
    if iat is not None and iat > now + leeway:
        raise InvalidClaim("iat", "the token was issued in the future")
    limit = policy.max_lifetime_seconds
    if limit is not None and exp is not None and iat is not None and exp - iat > limit:
        raise InvalidClaim("exp", "the token's lifetime exceeds the policy's maximum")
    for name in _STRINGS:
        if name in claims and not isinstance(claims[name], str):
            raise InvalidClaim(name, f"claim {name!r} is not a string")
    issuers = policy.issuers
    if issuers is not None:
        if "iss" not in claims:
            raise MissingClaim("iss", "required claim 'iss' is missing")
        if claims["iss"] not in issuers:
            raise InvalidClaim("iss", "the token's issuer is not accepted")
    _check_audience(claims, policy)


def _check_audience(claims: Mapping[str, Any], policy: Policy) -> None:
    audiences = policy.audiences
    if "aud" not in claims:
        if audiences is not None:
            raise MissingClaim("aud", "required claim 'aud' is missing")
        return
    aud = claims["aud"]
    if not _is_audience(aud):
        raise InvalidClaim("aud", "claim 'aud' is not a string or a list of strings")
    if audiences is None:
        # RFC 7519 §4.1.3: a token meant for named audiences is refused by a
        # verifier that does not identify itself as one of them.
        raise InvalidClaim("aud", "the token names an audience and the policy configures none")
    if isinstance(aud, str):
        if aud not in audiences:
            raise InvalidClaim("aud", "the token is not meant for this audience")
    elif audiences.isdisjoint(aud):
        raise InvalidClaim("aud", "the token is not meant for this audience")


class VerifiedJWT(NamedTuple):
    """A verified JWT: the signed token's header, its claims, and the key that verified it."""

    header: Mapping[str, Any]
    claims: dict[str, Any]
    key: Key
    payload: bytes


def decode(
    token: str | bytes,
    keys: Key | KeySet | KeySource,
    policy: Policy | None = None,
    *,
    max_length: int = jws.DEFAULT_MAX_TOKEN_LENGTH,
    decrypt_with: Key | KeySet | KeySource | None = None,
) -> dict[str, Any]:
    """Verify a JWT and apply ``policy`` (default: ``Policy()``); return its claims.

    With ``decrypt_with``, the token must be a nested JWT: a JWE (decrypted
    with those keys) whose content is a JWT signed by one of ``keys``. The
    policy's ``typ`` applies to the signed JWT, and to the JWE header too
    when that carries a ``typ``.

    Raises an :class:`~jwtward.errors.InvalidToken` subclass for any token that
    must not be accepted: bad signature, wrong type, expired, not yet valid,
    wrong issuer or audience, a missing or mistyped claim.
    """
    return decode_verified(
        token, keys, policy, max_length=max_length, decrypt_with=decrypt_with
    ).claims


def decode_verified(
    token: str | bytes,
    keys: Key | KeySet | KeySource,
    policy: Policy | None = None,
    *,
    max_length: int = jws.DEFAULT_MAX_TOKEN_LENGTH,
    decrypt_with: Key | KeySet | KeySource | None = None,
) -> VerifiedJWT:
    """As :func:`decode`, also returning the signed header and the verifying key."""
    if policy is None:
        policy = _DEFAULT_POLICY
    elif not isinstance(policy, Policy):
        raise InvalidArgument(f"policy must be a Policy, got {type(policy).__name__}")
    if decrypt_with is not None:
        token = _open_envelope(token, decrypt_with, policy, max_length)
    verified = jws.decode(token, keys, max_length=max_length)
    _check_type(verified.header, policy)
    try:
        claims = loads_object(verified.payload, max_size=max_length, max_depth=DEFAULT_MAX_DEPTH)
    except DecodeError as exc:
        raise MalformedToken(f"claims: {exc}") from None
    _check_claims(claims, policy)
    return VerifiedJWT(verified.header, claims, verified.key, verified.payload)


def _open_envelope(
    token: str | bytes,
    decrypt_with: Key | KeySet | KeySource,
    policy: Policy,
    max_length: int,
) -> bytes:
    """The signed JWT inside a nested JWT; anything else inside is refused."""
    decrypted = jwe.decode(token, decrypt_with, max_length=max_length)
    cty = decrypted.header.get("cty")
    # RFC 7519 §5.2: cty "JWT" (compared without case, as media types are).
    if not isinstance(cty, str) or cty.upper() != "JWT":
        raise InvalidHeader("an encrypted token must carry a signed JWT (cty 'JWT')")
    if "typ" in decrypted.header:
        _check_type(decrypted.header, policy)
    if decrypted.plaintext.count(b".") != 2:
        raise MalformedToken("the encrypted token does not hold a signed JWT")
    return decrypted.plaintext
