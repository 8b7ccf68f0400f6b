"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for load generation.

It speaks exactly what a load test needs (a request with a body, a response with ``Content-Length`` or
chunked transfer encoding) and costs far less CPU per request than a general client, so one process can
offer hundreds of requests per second while sharing a small machine with the server under test. Every
failure is a :class:`TransportError` of one kind: ``timeout``, ``connection`` or ``protocol``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

READ_LIMIT = 2**20  # the longest header block or chunk-size line accepted


class TransportError(Exception):
    """The request got no usable HTTP answer; ``kind`` is timeout, connection or protocol."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


def parse_response_head(raw: bytes) -> tuple[int, int | None, bool, bool]:
    """(status, content length or None, chunked, server closes) from a response head; ValueError if unusable."""
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ValueError(f"bad status line {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip().lower()
    chunked = "chunked" in headers.get("transfer-encoding", "")
    length = None if chunked or "content-length" not in headers else int(headers["content-length"])
    close = headers.get("connection") == "close" or parts[0] == "HTTP/1.0"
    if length is None and not chunked and not close:
        raise ValueError("response without Content-Length or chunked encoding on a kept-alive connection")
    return int(parts[1]), length, chunked, close


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, then the blank line
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _closed_before_reading(exc: BaseException) -> bool:
    """The peer had closed the connection: EOF before any byte of an answer, or a reset / broken pipe."""
    if isinstance(exc, asyncio.IncompleteReadError):
        return not exc.partial
    return isinstance(exc, ConnectionResetError | BrokenPipeError)


class HttpConnection:
    """One keep-alive connection to ``host:port``, opened on first use and again after a failure."""

    def __init__(
        self, host: str, port: int, *, timeout_s: float = 30.0, headers: Mapping[str, str] | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._head_prefix = f"Host: {host}:{port}\r\n{extra}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """Send one request and read its whole answer: (status, body)."""
        head = f"{method} {path} HTTP/1.1\r\n{self._head_prefix}"
        if body or method in ("POST", "PUT", "PATCH"):
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        payload = (head + "\r\n").encode("latin-1") + body
        try:
            async with asyncio.timeout(self.timeout_s):
                reused = self._writer is not None
                try:
                    status, content, close = await self._exchange(payload)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    if not (reused and _closed_before_reading(exc)):
                        raise
                    # The server had closed a connection it kept idle (its keep-alive timeout), so it most
                    # likely never read this request: send it again once on a new connection (as HTTP clients
                    # do; kefu's turns carry an idempotency key, so a repeat is answered only once).
                    self._drop()
                    status, content, close = await self._exchange(payload)
        except TimeoutError as exc:
            await self.aclose()
            raise TransportError("timeout", f"no answer within {self.timeout_s:g} s") from exc
        except (OSError, asyncio.IncompleteReadError) as exc:
            await self.aclose()
            raise TransportError("connection", f"{type(exc).__name__}: {exc}") from exc
        except (ValueError, asyncio.LimitOverrunError) as exc:
            await self.aclose()
            raise TransportError("protocol", f"{type(exc).__name__}: {exc}") from exc
        except asyncio.CancelledError:
            self._drop()  # cut mid-answer: the rest of that answer must not be read as the next one's
            raise
        if close:
            await self.aclose()
        return status, content

    async def _exchange(self, payload: bytes) -> tuple[int, bytes, bool]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=READ_LIMIT)
        reader = self._reader
        self._writer.write(payload)
        status, length, chunked, close = parse_response_head(await reader.readuntil(b"\r\n\r\n"))
        if chunked:
            content = await _read_chunked(reader)
        elif length is not None:
            content = await reader.readexactly(length)
        else:
            content = await reader.read()
        return status, content, close

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        return await self.request("POST", path, body)

    def _drop(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()

    async def aclose(self) -> None:
        writer = self._writer
        self._drop()
        if writer is not None:
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class ConnectionPool:
    """Up to ``size`` connections; a request takes an idle one (most recently used first) or opens a new
    one, and waits for one to come free when all ``size`` are busy."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        size: int,
        timeout_s: float = 30.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one connection")
        self.host, self.port, self.size = host, port, size
        self._timeout_s = timeout_s
        self._headers = dict(headers or {})
        self._idle: list[HttpConnection] = []
        self._all: list[HttpConnection] = []
        self._slots = asyncio.Semaphore(size)

    @property
    def opened(self) -> int:
        return len(self._all)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        async with self._slots:
            if self._idle:
                connection = self._idle.pop()
            else:
                connection = HttpConnection(self.host, self.port, timeout_s=self._timeout_s, headers=self._headers)
                self._all.append(connection)
            try:
                return await connection.request(method, path, body)
            finally:
                self._idle.append(connection)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        return await self.request("POST", path, body)

    async def aclose(self) -> None:
        connections, self._all, self._idle = self._all, [], []
        await asyncio.gather(*(c.aclose() for c in connections), return_exceptions=True)
