"""A trivial HTTP/1.1 server answering every request with the same small JSON body, optionally after a
delay: the floor against which the load generator's own ceiling is measured, and a server that stalls on
purpose for testing the open loop. It records when each request arrived, its request line and its body."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

BODY = b'{"reply":{"text":"ok","citations":[],"quick_replies":[]},"owner":"bot","handoff":false}'


@dataclass
class FloorServer:
    """``delay_s``: how long each answer waits (concurrently, as a stalled backend would)."""

    delay_s: float = 0.0
    status: int = 200
    arrivals: list[float] = field(default_factory=list)  # loop.time() of each request head
    requests: list[tuple[str, bytes]] = field(default_factory=list)  # (request line, body), in arrival order
    _server: asyncio.Server | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        reason = "OK" if self.status == 200 else "Error"
        head = (
            f"HTTP/1.1 {self.status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(BODY)}\r\n\r\n"
        ).encode()
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                self.arrivals.append(loop.time())
                length = 0
                for line in raw.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                self.requests.append((raw.split(b"\r\n", 1)[0].decode("latin-1"), body))
                if self.delay_s > 0:
                    await asyncio.sleep(self.delay_s)
                writer.write(head + BODY)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass  # the client closed its connection
        finally:
            writer.close()


async def serve_forever(port: int, delay_s: float = 0.0) -> None:
    """Run a floor server on 127.0.0.1:``port`` until cancelled."""
    server = FloorServer(delay_s)
    await server.start(port=port)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
