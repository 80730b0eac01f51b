"""Login rate limits of the token server, through the app in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from jwtward.server.app import create_app
from jwtward.server.config import load_config
from jwtward.server.passwords import PasswordHasher
from jwtward.server.runtime import open_backends

FAST = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


@pytest_asyncio.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    backends = open_backends(load_config(data_dir=tmp_path / "data"))
    backends.users.add("alice", FAST.hash("right-password"), now=0.0)
    app = create_app(backends, hasher=FAST)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    backends.close()


async def login(client: httpx.AsyncClient, password: str) -> int:
    response = await client.post(
        "/auth/login", json={"username": "alice", "password": password}
    )
    return response.status_code


@pytest.mark.asyncio
async def test_successful_logins_never_lock_the_address(client: httpx.AsyncClient) -> None:
    statuses = [await login(client, "right-password") for _ in range(25)]
    assert statuses == [200] * 25


@pytest.mark.asyncio
async def test_parallel_guesses_get_exactly_the_limit(client: httpx.AsyncClient) -> None:
    statuses = await asyncio.gather(*(login(client, f"guess-{i}") for i in range(12)))
    assert sorted(statuses) == [401] * 5 + [429] * 7
    # Locked: even the right password waits for the window.
    assert await login(client, "right-password") == 429


@pytest.mark.asyncio
async def test_a_login_forgives_the_username_failures(client: httpx.AsyncClient) -> None:
    assert [await login(client, "wrong") for _ in range(4)] == [401] * 4
    assert await login(client, "right-password") == 200
    assert [await login(client, "wrong") for _ in range(5)] == [401] * 5
    assert await login(client, "wrong") == 429


@pytest.mark.asyncio
async def test_login_refuses_foreign_origins_and_text_plain(client: httpx.AsyncClient) -> None:
    body = '{"username": "alice", "password": "right-password"}'
    plain = await client.post("/auth/login", content=body, headers={"content-type": "text/plain"})
    assert plain.status_code == 400
    foreign = await client.post(
        "/auth/login", content=body,
        headers={"content-type": "application/json", "origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    same = await client.post(
        "/auth/login", content=body,
        headers={"content-type": "application/json", "origin": "http://testserver"},
    )
    assert same.status_code == 200
