"""The token service's memo of verified access tokens, and which tokens get in.

A client that keeps its access token for the token's lifetime sends the same
text on every request. Remembering that this exact text was signed by a key
of the ring and parses to these claims saves the signature check (tens of
microseconds) on every later request. The memo remembers only what cannot
change: revocation, expiry and the signing key's standing are checked by the
service on every hit.

Admission on the second sighting: a token enters the memo only when it was
already seen among roughly the last ``size`` distinct tokens. A token used
once (a client that fetches a fresh token per call) would only push out
useful entries and churn memory on every request. A memo of ``size``
entries could not have kept a token that did not come back within ``size``
other tokens anyway, so the rule costs one signature check per token (its
second use) and nothing else. Entries leave in the order they came in.

Sightings are kept as the token's ``hash()`` in two rotating sets of at most
``size`` each, written only after a successful verification (forged tokens
leave no trace): a collision only admits a token one sighting early; the
memo itself is keyed by the full text.

Only exact ``str`` tokens are remembered: a ``str`` subclass may redefine
equality (one that ignores case would find the entry of another token).
"""

from __future__ import annotations

import collections

__all__ = ["VerifiedTokenCache"]

# payload JSON, the verifying key's kid, exp: bytes, str and a number, none of
# them tracked by the garbage collector, so a busy memo costs no collections.
Entry = tuple[bytes, str, float]


class VerifiedTokenCache:
    """About ``size`` verified tokens, the oldest dropped first.

    Threads racing on a full memo may each add one before dropping one: the
    bound is ``size`` plus the number of racing threads, never growing.
    """

    __slots__ = ("_entries", "_previous", "_seen", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: collections.OrderedDict[str, Entry] = collections.OrderedDict()
        self._seen: set[int] = set()
        self._previous: set[int] = set()

    def get(self, token: object) -> Entry | None:
        """The entry of exactly this token text, if remembered."""
        if type(token) is not str:
            return None
        return self._entries.get(token)

    def discard(self, token: object) -> None:
        """Forget ``token`` (it expired, or its key is no longer trusted)."""
        if type(token) is str:
            self._entries.pop(token, None)

    def offer(self, token: object, entry: Entry) -> None:
        """Remember a token that just passed verification, if it was seen recently."""
        if type(token) is not str:
            return
        sighting = hash(token)  # already computed (and kept by the str) by get()
        if sighting not in self._seen and sighting not in self._previous:
            self._seen.add(sighting)
            if len(self._seen) >= self.size:
                self._previous, self._seen = self._seen, set()
            return
        entries = self._entries
        if len(entries) >= self.size:
            # Drop the oldest entry; another thread emptying the memo meanwhile
            # only costs a re-verify. (Not contextlib.suppress: the context
            # manager would cost every admission.)
            try:  # noqa: SIM105
                entries.popitem(last=False)
            except KeyError:
                pass
        entries[token] = entry

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, token: object) -> bool:
        return self.get(token) is not None

    def tokens(self) -> list[str]:
        """The remembered tokens, oldest first."""
        return list(self._entries)
