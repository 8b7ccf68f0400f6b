"""A real kefu server for the agent API tests: a runtime of the test's own on the test's database, served by
uvicorn on a free 127.0.0.1 port in the test's event loop, agents signed in through ``POST /auth/login``."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import delete

from kefu.access.passwords import hash_password
from kefu.api import create_app
from kefu.runtime import Runtime, build_runtime
from kefu.store.models import AgentPresenceRow
from tests.conftest import make_settings

CHANNEL_KEY = "channel-key-for-agent-tests"
PASSWORD = "客服的密码 agent-pass"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    runtime: Runtime
    app: FastAPI

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http") :]

    def customer(self) -> httpx.AsyncClient:
        """A channel (the web chat) calling /v1 with its key."""
        headers = {"Authorization": f"Bearer {CHANNEL_KEY}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)

    async def agent(self, name: str | None = None, role: str = "agent") -> tuple[httpx.AsyncClient, str]:
        """A new account signed in by password; the client carries its session token."""
        username = name or f"agent-{uuid.uuid4().hex[:8]}"
        await self.app.state.access.store.create_account(username, role, hash_password(PASSWORD))
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as anonymous:
            signed = await anonymous.post("/auth/login", json={"username": username, "password": PASSWORD})
        assert signed.status_code == 200, signed.text
        token = signed.json()["token"]
        client = httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        return client, token


@asynccontextmanager
async def serve(database_url: str, tmp_path: Path, **overrides: Any) -> AsyncIterator[Server]:
    settings = make_settings(tmp_path, database_url=database_url, api_keys=[CHANNEL_KEY], auth_cache_s=0.0, **overrides)
    runtime = await build_runtime(settings)
    async with runtime.engine.begin() as connection:  # the PostgreSQL database is shared by the session
        await connection.execute(delete(AgentPresenceRow))
    app = create_app(settings, runtime)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off"))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(400):
            if server.started:
                break
            await asyncio.sleep(0.025)
        assert server.started, "uvicorn did not start"
        yield Server(f"http://127.0.0.1:{port}", runtime, app)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        await app.state.access.close()
        await runtime.close()
