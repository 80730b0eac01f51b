"""jwtward: secure-by-default JSON Web Tokens for Python.

The safe way is the short way: keys carry their algorithm, decoding is strict,
and every refusal is a typed :class:`JWTWardError`.
"""

from jwtward import errors, jws
from jwtward.errors import JWTWardError
from jwtward.jose.keys import Key
from jwtward.jose.keyset import KeySet

__all__ = ["JWTWardError", "Key", "KeySet", "errors", "jws"]

__version__ = "0.1.0"
