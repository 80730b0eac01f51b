"""jwtward: secure-by-default JSON Web Tokens for Python.

The safe way is the short way: keys carry their algorithm, decoding is strict,
and every refusal is a typed :class:`JWTWardError`.
"""

from jwtward import errors, jwe, jws, jwt
from jwtward.errors import JWTWardError
from jwtward.jose.keys import Key
from jwtward.jose.keyset import KeySet, KeySource
from jwtward.keys import KeyRing, RotationPolicy
from jwtward.policy import Policy

__all__ = [
    "JWTWardError",
    "Key",
    "KeyRing",
    "KeySet",
    "KeySource",
    "Policy",
    "RotationPolicy",
    "errors",
    "jwe",
    "jws",
    "jwt",
]

__version__ = "0.1.0"
