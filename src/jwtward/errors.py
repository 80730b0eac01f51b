"""The one error tree of jwtward.

Every failure caused by bad input (a token, a key, a JWK Set, a configuration
value) is raised as a subclass of :class:`JWTWardError`; nothing from the
standard library or from pyca/cryptography escapes the public API. Token errors
know their RFC 6750 error code and HTTP status, so the web layer can answer a
client without a mapping table of its own.
"""

from __future__ import annotations

__all__ = [
    "AlgorithmMismatch",
    "CSRFMismatch",
    "ClaimError",
    "DecodeError",
    "DecryptionFailed",
    "ExpiredToken",
    "InvalidArgument",
    "InvalidClaim",
    "InvalidHeader",
    "InvalidKey",
    "InvalidSignature",
    "InvalidToken",
    "InvalidType",
    "JWTWardError",
    "KeyNotFound",
    "KeySourceUnavailable",
    "KeyUsageError",
    "MalformedToken",
    "MissingClaim",
    "NotYetValid",
    "RefreshTokenReuse",
    "RevokedToken",
    "StoreUnavailable",
    "SubjectDisabled",
    "TokenTooLarge",
    "UnsupportedAlgorithm",
]


class JWTWardError(Exception):
    """Base of every error jwtward raises for bad input, bad tokens or bad keys.

    ``error`` is the RFC 6750 error code a resource server would answer with
    (``None`` where the fault is the server's own configuration, not the
    client's request) and ``status_code`` the matching HTTP status.
    """

    error: str | None = None
    status_code: int = 500


# -- the caller's own mistakes: the server's fault, never the client's ---------


class InvalidArgument(JWTWardError, TypeError, ValueError):
    """An argument of the wrong type or value passed by the calling code.

    A programming or configuration error (a str payload, a header jwtward
    would refuse, a negative size), never a client's bad token. It is also a
    ``TypeError``/``ValueError`` so code written for either keeps working.
    """


# -- keys and configuration: the server's fault, never the client's -----------


class InvalidKey(JWTWardError):
    """A key was refused: malformed, too weak, or inconsistent with its alg."""


class UnsupportedAlgorithm(InvalidKey):
    """An algorithm that jwtward does not offer (on purpose or not yet)."""


class KeyUsageError(InvalidKey):
    """A key was used for an operation its ``use`` or ``key_ops`` forbids."""


# -- encodings ---------------------------------------------------------------


class DecodeError(JWTWardError):
    """Bytes that are not strict base64url or strict JSON.

    Raised by the codecs; the layers above re-raise it as the error that fits
    the context (a malformed token, an invalid key).
    """


# -- tokens: the client's fault (RFC 6750 ``invalid_token``, HTTP 401) -------


class InvalidToken(JWTWardError):
    """A token that must not be accepted."""

    error = "invalid_token"
    status_code = 401


class MalformedToken(InvalidToken):
    """A token that does not parse as strict compact serialization."""


class TokenTooLarge(MalformedToken):
    """A token longer than the configured bound, refused before any parsing."""


class InvalidHeader(InvalidToken):
    """A protected header that jwtward refuses (``none``, ``jku``, ``crit``, ...)."""


class KeyNotFound(InvalidToken):
    """No key in the key set matches the token's ``kid``."""


class AlgorithmMismatch(InvalidToken):
    """The token's ``alg`` is not the algorithm its key was made for."""


class InvalidSignature(InvalidToken):
    """The signature does not verify."""


# -- claims (RFC 7519), also ``invalid_token`` ----------------------------------


class InvalidType(InvalidToken):
    """The ``typ`` header is not the type this verifier accepts (RFC 8725 §3.11)."""


class ClaimError(InvalidToken):
    """A claim failed a check; ``claim`` names it (never its value)."""

    def __init__(self, claim: str, message: str) -> None:
        super().__init__(message)
        self.claim = claim


class MissingClaim(ClaimError):
    """A required claim is absent."""


class InvalidClaim(ClaimError):
    """A claim has the wrong type or a value the policy refuses."""


class ExpiredToken(ClaimError):
    """``exp`` has passed (beyond the leeway)."""


class NotYetValid(ClaimError):
    """``nbf`` is still in the future (beyond the leeway)."""


# -- key sources: the server's side, retryable ------------------------------------


class KeySourceUnavailable(JWTWardError):
    """The verification keys cannot be had right now (a JWKS endpoint down or broken).

    Retryable and never a decision about the token: a resource server answers
    503, so a client retries instead of discarding a token that may be valid.
    """

    status_code = 503


class StoreUnavailable(JWTWardError):
    """A token or key store cannot answer (down, unreachable, locked, corrupt, full disk).

    Retryable and never a decision about the token (invariant 11, fail
    closed): the token is not accepted, and a server answers 503 with
    ``Retry-After`` so the client tries again instead of logging the user out.
    """

    status_code = 503
    retry_after = 1


# -- the token lifecycle: revocation and refresh, ``invalid_token`` ----------------


class RevokedToken(InvalidToken):
    """The token was valid but has been revoked (itself, its session, or its subject)."""


class RefreshTokenReuse(RevokedToken):
    """A refresh token was presented again after it had been rotated.

    Its whole family (every refresh token of the same login and the access
    tokens issued with them) has been revoked: either the user or an
    attacker holds a stolen copy, and nobody can tell which (RFC 9700 §4.14.2).
    """


class SubjectDisabled(RevokedToken):
    """The token's subject may no longer get tokens (deleted or disabled); the session ends."""


class CSRFMismatch(JWTWardError):
    """A cookie-authenticated request did not prove it came from the application's pages.

    403: the token itself may be fine; the request carrying it is refused.
    """

    error = "csrf_failed"
    status_code = 403


# -- encrypted tokens (JWE), also ``invalid_token`` ----------------------------


class DecryptionFailed(InvalidToken):
    """An encrypted token's content could not be decrypted and authenticated.

    One type and one message for every cause (wrong key or CEK length, wrong
    IV or tag length, a tag that does not verify, bad padding, garbage input):
    telling them apart would hand an attacker a padding or MAC oracle.
    """
