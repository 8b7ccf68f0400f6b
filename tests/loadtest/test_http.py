"""The load generator's HTTP/1.1 client against real servers on 127.0.0.1 that answer in the ways servers do:
Content-Length, chunked, closing the connection, garbage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from kefu.loadtest.http import ConnectionPool, HttpConnection, TransportError, parse_response_head

Answer = Callable[[bytes], bytes]


@asynccontextmanager
async def raw_server(answer: Answer) -> AsyncIterator[tuple[int, list[int]]]:
    """A server writing ``answer(request head)`` for every request; yields (port, connections seen)."""
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), 0)  # fmt: skip
                await reader.readexactly(length)
                writer.write(answer(head))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], connections
    finally:
        server.close()


def fixed(text: bytes, extra: str = "") -> Answer:
    return lambda _head: f"HTTP/1.1 200 OK\r\ncontent-length: {len(text)}\r\n{extra}\r\n".encode() + text


async def test_keep_alive_reuses_one_connection() -> None:
    async with raw_server(fixed(b'{"ok":true}')) as (port, connections):
        client = HttpConnection("127.0.0.1", port)
        for _ in range(5):
            assert await client.post("/x", b"{}") == (200, b'{"ok":true}')
        await client.aclose()
    assert len(connections) == 1


async def test_chunked_answers_are_joined() -> None:
    def chunked(_head: bytes) -> bytes:
        head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        return head + b"4\r\n\xe4\xbd\xa0\xe5\r\n2\r\n\xa5\xbd\r\n0\r\n\r\n"  # "你好" cut inside a character

    async with raw_server(chunked) as (port, _):
        client = HttpConnection("127.0.0.1", port)
        status, body = await client.request("GET", "/")
        assert (status, body.decode()) == (200, "你好")
        assert (await client.request("GET", "/"))[1].decode() == "你好"  # the connection is still in step
        await client.aclose()


async def test_connection_close_opens_a_new_connection() -> None:
    async with raw_server(fixed(b"bye", "connection: close\r\n")) as (port, connections):
        client = HttpConnection("127.0.0.1", port)
        assert await client.post("/", b"") == (200, b"bye")
        assert await client.post("/", b"") == (200, b"bye")
        await client.aclose()
    assert len(connections) == 2


async def test_a_connection_the_server_closed_while_idle_is_replaced_once() -> None:
    answered: list[int] = []

    async def serve_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        answered.append(1)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")  # keep-alive promised...
        await writer.drain()
        writer.close()  # ...then closed, as a server does when its keep-alive timeout passes

    server = await asyncio.start_server(serve_once, "127.0.0.1", 0)
    client = HttpConnection("127.0.0.1", server.sockets[0].getsockname()[1])
    try:
        for _ in range(3):
            await asyncio.sleep(0.05)
            assert await client.request("GET", "/") == (200, b"ok")
    finally:
        await client.aclose()
        server.close()
    assert len(answered) == 3


async def test_a_new_connection_closed_without_an_answer_is_a_connection_error() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    try:
        with pytest.raises(TransportError) as caught:
            await HttpConnection("127.0.0.1", server.sockets[0].getsockname()[1]).request("GET", "/")
        assert caught.value.kind == "connection"
    finally:
        server.close()


async def test_garbage_is_a_protocol_error_and_silence_a_timeout() -> None:
    async with raw_server(lambda _h: b"SMTP ready\r\n\r\n") as (port, _):
        with pytest.raises(TransportError) as caught:
            await HttpConnection("127.0.0.1", port).post("/", b"{}")
        assert caught.value.kind == "protocol"
    async with raw_server(lambda _h: b"") as (port, _):
        with pytest.raises(TransportError) as caught:
            await HttpConnection("127.0.0.1", port, timeout_s=0.2).post("/", b"{}")
        assert caught.value.kind == "timeout"


async def test_the_pool_opens_no_more_than_its_size() -> None:
    async with raw_server(fixed(b"ok")) as (port, connections):
        pool = ConnectionPool("127.0.0.1", port, size=3)
        answers = await asyncio.gather(*(pool.post("/", b"{}") for _ in range(30)))
        await pool.aclose()
    assert answers == [(200, b"ok")] * 30
    assert pool.opened <= 3 and len(connections) <= 3


def test_response_heads() -> None:
    assert parse_response_head(b"HTTP/1.1 503 Busy\r\nContent-Length: 12\r\n\r\n") == (503, 12, False, False)
    assert parse_response_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") == (200, None, True, False)
    assert parse_response_head(b"HTTP/1.0 200 OK\r\n\r\n") == (200, None, False, True)
    with pytest.raises(ValueError, match="Content-Length or chunked"):
        parse_response_head(b"HTTP/1.1 200 OK\r\n\r\n")
