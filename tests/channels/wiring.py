"""Test wiring for the channel adapters: the session's runtime with channel settings switched on, the app
in-process, and real local HTTP servers (uvicorn on 127.0.0.1, free port, own thread) standing in for the
systems kefu calls out to (WeChat's API, a webhook receiver)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from kefu.api import create_app
from kefu.channels.adapters import build_channel_adapters
from kefu.channels.hub import InProcessHub
from kefu.runtime import Runtime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def channel_runtime(runtime: Runtime, **settings: Any) -> AsyncIterator[Runtime]:
    """The session's runtime (models, store, pipeline shared) with other settings and its own adapters,
    outbox and hub, closed at the end."""
    changed = runtime.settings.model_copy(update=settings)
    copy = dataclasses.replace(runtime, settings=changed, _closers=[], inflight=set(), hub=InProcessHub())
    copy.channels = build_channel_adapters(changed, copy.pipeline, copy.outbox)
    try:
        yield copy
    finally:
        await copy.channels.close()


@asynccontextmanager
async def app_client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime.settings, runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kefu", timeout=30) as client:
        yield client
    await app.state.access.close()


@contextmanager
def local_server(app: FastAPI) -> Any:
    """Serves ``app`` on 127.0.0.1 from a thread; yields its base URL and stops it on exit (within 10 s)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name=f"local-server-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"local server on port {port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


async def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Waits until ``check()`` holds (something another task or thread does), failing after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.02)
