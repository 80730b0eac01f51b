"""Strict encodings: base64url and JSON, with bounds, for every layer above."""

from jwtward.codecs.base64url import b64decode, b64encode
from jwtward.codecs.strict_json import (
    DEFAULT_MAX_DEPTH,
    dumps,
    is_numeric_date,
    loads_object,
)

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "b64decode",
    "b64encode",
    "dumps",
    "is_numeric_date",
    "loads_object",
]
