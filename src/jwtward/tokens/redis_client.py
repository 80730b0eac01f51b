"""How jwtward makes and accepts Redis clients (the token stores and the rate limiter).

A client made from a URL gives up quickly and never retries on its own; a
client given by the caller must not decode responses. Both rules are the
same for every Redis-backed component, so they live here once.
"""

from __future__ import annotations

from typing import Any

from jwtward.errors import InvalidArgument

__all__ = ["DEFAULT_TIMEOUT", "check_client", "url_options"]

# A store built from a URL gives up quickly: a dead server must turn into a
# 503 within a request's time, not hang it (invariant 11). No automatic
# retry either: a write whose reply was lost may have been applied, and
# running ``rotate`` twice would make the legitimate client look like a thief.
DEFAULT_TIMEOUT = 2.0


def url_options(options: dict[str, Any], retry: Any) -> dict[str, Any]:
    """The connection options for a store built from a URL: short timeouts unless overridden."""
    options.setdefault("socket_timeout", DEFAULT_TIMEOUT)
    options.setdefault("socket_connect_timeout", DEFAULT_TIMEOUT)
    options.setdefault("retry", retry)
    if options.get("decode_responses"):
        raise InvalidArgument("the Redis client must not decode responses")
    return options


def check_client(client: Any) -> None:
    """Refuse a caller's client that decodes responses (the stores read bytes)."""
    if client.get_connection_kwargs().get("decode_responses"):
        # Sealed successors are bytes: a decoding client would corrupt or refuse them.
        raise InvalidArgument("the Redis client must not decode responses (decode_responses=False)")
