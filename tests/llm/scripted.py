"""A real OpenAI-compatible server on 127.0.0.1 that answers with a scripted reply and records every request,
so a test can see exactly what kefu sent to a model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.llm.misbehaving import serving


@dataclass
class Script:
    reply: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)

    def sent_text(self) -> str:
        """Everything the model was sent, as one string."""
        return json.dumps(self.requests, ensure_ascii=False)


@contextmanager
def scripted_server(script: Script) -> Iterator[str]:
    """Yields an OpenAI-style base URL (``.../v1``) whose chat completions stream ``script.reply``."""

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "scripted"}]})

    async def completions(request: Request) -> Response:
        script.requests.append(await request.json())
        words = script.reply.split(" ")
        chunks = [
            {"choices": [{"index": 0, "delta": {"content": w + (" " if i < len(words) - 1 else "")}}]}
            for i, w in enumerate(words)
        ]
        chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        body = [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]
        return StreamingResponse(iter(body), media_type="text/event-stream")

    app = Starlette(routes=[Route("/v1/models", models), Route("/v1/chat/completions", completions, methods=["POST"])])
    with serving(app) as root:
        yield f"{root}/v1"
