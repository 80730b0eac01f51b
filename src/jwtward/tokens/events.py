"""Auth events as structured log lines: one JSON object per event, on ``jwtward.audit``.

Fields name users and sessions, never a token, a token id of a refresh token,
a password or a key. Applications route the ``jwtward.audit`` logger where
their audit trail lives.
"""

from __future__ import annotations

import json
import logging
from typing import Any

__all__ = ["emit"]

audit_log = logging.getLogger("jwtward.audit")


def emit(event: str, **fields: Any) -> None:
    """Log one auth event (sorted keys, so lines diff and grep well)."""
    if audit_log.isEnabledFor(logging.INFO):
        audit_log.info(json.dumps({"event": event, **fields}, sort_keys=True, default=str))
