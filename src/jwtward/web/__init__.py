"""The web layer: RFC 6750 Bearer and cookie transports, CSRF, and framework integrations.

Framework-neutral pieces live here (:mod:`~jwtward.web.settings`,
:mod:`~jwtward.web.transport`, :mod:`~jwtward.web.challenges`,
:mod:`~jwtward.web.cookies`); the integrations import their framework and
are imported on demand: :mod:`jwtward.web.fastapi` and :mod:`jwtward.web.flask`.
"""

from jwtward.web.challenges import AuthFailure
from jwtward.web.settings import WebSettings
from jwtward.web.transport import Credentials, RequestInfo

__all__ = ["AuthFailure", "Credentials", "RequestInfo", "WebSettings"]
