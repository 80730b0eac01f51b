"""A FastAPI app protected by jwtward: login, a protected route, a scoped route.

Run it as is::

    uvicorn examples.fastapi_app:app

then ``POST /login`` with ``{"username": "demo", "password": "demo"}`` and send
the ``access_token`` it returns as ``Authorization: Bearer <token>`` to
``/me`` or ``/orders``. The OpenAPI page (``/docs``) shows the bearer scheme
and each route's scopes. The refresh token arrives in a ``__Secure-`` cookie,
which browsers only keep over HTTPS; for plain-HTTP experiments set
``JWTWARD_DEV_COOKIES=1`` (never in production).

Tokens live in memory here; for sessions that survive a restart use
``SQLiteTokenStore("tokens.sqlite3")`` in place of ``MemoryTokenStore()``.
The demo user check stands in for a real password check (hash the
passwords, e.g. with Argon2).
"""

from __future__ import annotations

import hmac
import os
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Response, Security
from pydantic import BaseModel

from jwtward import KeyRing
from jwtward.tokens import AccessClaims, AsyncTokenService, MemoryTokenStore, ThreadedStore
from jwtward.web import WebSettings
from jwtward.web.fastapi import FastAPIAuth

service = AsyncTokenService(
    KeyRing.generate("ES256"),
    issuer="https://auth.example",
    audience="https://api.example",
    store=ThreadedStore(MemoryTokenStore()),
)
settings = WebSettings(
    realm="example", insecure_development_cookies=os.environ.get("JWTWARD_DEV_COOKIES") == "1"
)
auth = FastAPIAuth(service, settings)
get_current_user = auth.claims  # the whole "who is calling" dependency
CurrentUser = Annotated[AccessClaims, Depends(get_current_user)]

app = FastAPI(title="jwtward example")
auth.install(app)
app.include_router(auth.router())

DEMO_PASSWORD = "demo"  # noqa: S105 - the example's only account, for trying it out


class Login(BaseModel):
    username: str
    password: str


@app.post("/login")
async def login(form: Login) -> Response:
    """Check the demo account, then start a session (cookies + access token)."""
    if form.username != "demo" or not hmac.compare_digest(
        form.password.encode(), DEMO_PASSWORD.encode()
    ):
        raise HTTPException(401, "wrong username or password")
    return await auth.login_response(
        "demo", scope="orders:read", claims={"roles": ["customer"]}
    )


@app.get("/me")
async def me(user: CurrentUser) -> dict[str, object]:
    """Any valid access token."""
    return {"sub": user.subject, "scopes": sorted(user.scopes)}


@app.get("/orders")
async def orders(
    user: Annotated[AccessClaims, Security(get_current_user, scopes=["orders:read"])],
) -> dict[str, object]:
    """Needs the ``orders:read`` scope."""
    return {"sub": user.subject, "orders": []}


@app.post("/orders")
async def create_order(
    user: Annotated[AccessClaims, Security(get_current_user, scopes=["orders:write"])],
) -> dict[str, object]:
    """Needs ``orders:write``, which the demo account lacks: a 403 naming the scope."""
    return {"sub": user.subject, "created": True}
