"""A floor server (kefu.loadtest.floor) in a thread of its own, for tests that run the CLI in a subprocess."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from kefu.loadtest.floor import FloorServer


@pytest.fixture
def floor_url() -> Iterator[str]:
    loop = asyncio.new_event_loop()
    server = FloorServer(delay_s=0.002)
    port = loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
