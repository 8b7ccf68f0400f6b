"""Real HTTP servers on 127.0.0.1 that misbehave the ways model servers do: garbage in the stream, a
connection cut half-way, an error status, a hang. Each route answers ``/models`` like a healthy server."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from kefu.llm.local import free_port


def _chunk(text: str) -> str:
    return (
        "data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}) + "\n\n"
    )


async def models(request: Request) -> Response:
    return JSONResponse({"object": "list", "data": [{"id": "bad-model"}]})


async def completions(request: Request) -> Response:
    kind = request.path_params["kind"]
    if kind == "garbage":
        return StreamingResponse(iter(["data: {this is not json\n\n"]), media_type="text/event-stream")
    if kind == "error":
        return JSONResponse({"error": {"message": "model overloaded"}}, status_code=503)
    if kind == "notfound":
        return JSONResponse({"error": {"message": "The model `x` does not exist."}}, status_code=404)
    if kind == "tools":  # a tool call streamed in pieces: name alone first (OpenAI), then repeated (llama.cpp)
        pieces = [{"id": "call_a", "function": {"name": "lookup_order"}}]
        pieces += [{"function": {"name": "lookup_order", "arguments": a}} for a in ('{"order_', 'id": "100001"}')]
        chunks = [
            "data: " + json.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, **p}]}}]}) + "\n\n"
            for p in pieces
        ]
        done = json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
        return StreamingResponse(
            iter([*chunks, f"data: {done}\n\n", "data: [DONE]\n\n"]), media_type="text/event-stream"
        )
    if kind == "hang":
        await asyncio.sleep(60)
        return Response(status_code=204)

    async def cut() -> AsyncIterator[str]:
        yield _chunk("Returns are accepted within 7 days [1]. ")
        yield _chunk("Refunds take")
        await asyncio.sleep(0.05)
        raise ConnectionResetError("the model server died")  # uvicorn drops the connection mid-stream

    return StreamingResponse(cut(), media_type="text/event-stream")


@contextmanager
def misbehaving_server() -> Iterator[str]:
    """Yields the root URL; ``{root}/{kind}/v1`` is an OpenAI-style base URL for each kind of failure."""
    app = Starlette(
        routes=[
            Route("/{kind}/v1/models", models),
            Route("/{kind}/v1/chat/completions", completions, methods=["POST"]),
        ]
    )
    with serving(app) as root:
        yield root


@contextmanager
def serving(app: Starlette) -> Iterator[str]:
    """Runs ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yields its root URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)
