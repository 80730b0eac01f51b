"""Strict encodings: base64url and JSON, with bounds, for every layer above."""

from jwtward.codecs.base64url import b64decode, b64encode
from jwtward.codecs.strict_json import (
    dumps,
    is_numeric_date,
    loads_object,
)

__all__ = ["b64decode", "b64encode", "dumps", "is_numeric_date", "loads_object"]
