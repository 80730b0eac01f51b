"""A Flask API protected by jwtward, in a handful of lines.

Run it as is::

    flask --app examples/flask_app.py run

then, from another shell::

    curl -s -X POST localhost:5000/auth/login -H 'Content-Type: application/json' \\
         -d '{"username": "alice"}'                      # -> {"access_token": ..., ...}
    curl -s localhost:5000/me -H "Authorization: Bearer $TOKEN"
    curl -s localhost:5000/orders -H "Authorization: Bearer $TOKEN"   # alice has orders:read

The login route is a demo: it accepts any user name without a password and
grants ``orders:read`` to ``alice`` only, so the scoped route can be seen
refusing everyone else (403 ``insufficient_scope``). A real application
checks the user's credentials before calling ``auth.login_response``.

Keys and sessions live in memory (restarting logs everybody out); use
``SQLiteTokenStore`` and a ``KeyRing`` with a persistent key store to keep
them. ``JWT_INSECURE_DEVELOPMENT_COOKIES`` lets the refresh cookie work over
the plain HTTP of the development server; never set it in production.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request

from jwtward import KeyRing
from jwtward.tokens import MemoryTokenStore, TokenService
from jwtward.web.flask import FlaskAuth

app = Flask(__name__)
app.config["JWT_REALM"] = "demo"
app.config["JWT_INSECURE_DEVELOPMENT_COOKIES"] = True  # development server: plain HTTP

service = TokenService(
    KeyRing.generate("ES256"),
    issuer="http://localhost:5000",
    audience="demo-api",
    store=MemoryTokenStore(),
)
auth = FlaskAuth(service, app=app)
app.register_blueprint(auth.blueprint())  # POST /auth/refresh and /auth/logout


@app.post("/auth/login")
def login() -> Any:
    body = request.get_json(silent=True) or {}
    username = body.get("username")
    if not isinstance(username, str) or not username.isalnum() or len(username) > 64:
        error = {"error": "invalid_request", "error_description": "a short alphanumeric username"}
        return error, 400
    scope = ["orders:read"] if username == "alice" else []
    return auth.login_response(username, scope=scope)


@app.get("/me")
@auth.required
def me() -> Any:
    claims = auth.current_claims
    return {"user": claims.subject if claims else None}


@app.get("/orders")
@auth.required(scopes=["orders:read"])
def orders() -> Any:
    return {"orders": [{"id": 1, "item": "tea"}]}
