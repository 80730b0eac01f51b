"""Inputs and checks shared by the benchmarks against peers.

The same payload, the same key handed to every library as JWKs, and the same
forgery: so that when two benchmarks are compared, they were fed alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jwtward import Key

__all__ = ["CLAIMS_JSON", "KID", "KeyPair", "key_pair", "tampered"]

KID = "bench-key-2026"

# A typical access token's claims: compact JSON of about 200 bytes.
CLAIMS_JSON = json.dumps(
    {
        "iss": "https://auth.example.com",
        "sub": "user-1234567890",
        "aud": "https://api.example.com",
        "iat": 1767225600,
        "nbf": 1767225600,
        "exp": 1767226500,
        "jti": "5b3f1c2e8d4a4f6b9c1d2e7a",
        "scope": "openid profile email",
    },
    separators=(",", ":"),
).encode()


@dataclass(frozen=True)
class KeyPair:
    """The key of one case: jwtward's own, and JWKs every peer loads into its key object.

    ``public`` is the key that signs' or decrypts' counterpart (for a secret
    key, the key itself).
    """

    private: Key
    public: Key
    private_jwk: dict[str, Any]
    public_jwk: dict[str, Any]


def key_pair(alg: str, crv: str | None = None, enc: str | None = None) -> KeyPair:
    """A fresh key of ``alg`` under ``KID``, with the JWKs the peers load.

    A ``dir`` key's JWK names the enc it is bound to; the peers take the alg
    and enc from the header they are given, so they get the JWK without it.
    """
    private = Key.generate(alg, kid=KID, crv=crv, enc=enc)
    private_jwk = private.to_jwk(private=True)
    private_jwk.pop("enc", None)
    if private_jwk["kty"] == "oct":
        return KeyPair(private, private, private_jwk, private_jwk)
    return KeyPair(private, private.public_key(), private_jwk, private.to_jwk())


def tampered(token: str) -> str:
    """The token with one character of its last segment (signature or tag) changed in the middle.

    The middle character carries real signature or tag bits, unlike the last
    one, whose low bits may be padding.
    """
    head, _, last = token.rpartition(".")
    middle = len(last) // 2
    swapped = "B" if last[middle] == "A" else "A"
    return f"{head}.{last[:middle]}{swapped}{last[middle + 1 :]}"
