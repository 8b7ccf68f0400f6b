"""OpenAI-compatible ``POST /v1/chat/completions`` (model ``kefu``; the conversation id is ``user``).

The last user message is the customer's turn. Its message id is derived from the conversation and the
message's position, so a client that retries the same request is answered once.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, StreamingResponse

from kefu.api.deps import RuntimeDep, require_api_key, valid_id
from kefu.api.errors import ApiError
from kefu.api.schemas import ERRORS, STREAMED, ChatCompletionRequest, MessageIn
from kefu.api.turns import Piece, inbound, open_stream

router = APIRouter(prefix="/v1", tags=["openai"], dependencies=[Depends(require_api_key)])
MODEL_NAME = "kefu"


def _text_of(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if part.get("type") == "text")
    return ""


@router.post("/chat/completions", responses={**ERRORS, 200: STREAMED})
async def chat_completions(body: ChatCompletionRequest, runtime: RuntimeDep) -> Any:
    if body.model != MODEL_NAME:
        raise ApiError(404, "model_not_found", f"unknown model {body.model!r}; this endpoint serves {MODEL_NAME!r}")
    positions = [i for i, m in enumerate(body.messages) if m.role == "user"]
    if not positions:
        raise ApiError(422, "invalid_request", "messages must contain at least one user message")
    last = positions[-1]
    text = _text_of(body.messages[last].content)
    conversation_id = body.user or f"oa-{uuid.uuid4().hex}"
    if not valid_id(conversation_id):
        raise ApiError(
            400,
            "invalid_conversation_id",
            "user (the conversation id) must be 1-128 characters of [A-Za-z0-9._:-]",
        )
    message_id = "oa-" + hashlib.sha256(f"{last}\x1f{text}".encode()).hexdigest()[:32]
    message = inbound(MessageIn(text=text, message_id=message_id, channel="openai"), conversation_id, runtime.settings)
    completion_id = f"chatcmpl-{message_id[3:]}"
    created = int(time.time())
    if body.stream:
        pieces = await open_stream(runtime.pipeline, message, runtime.inflight)
        return StreamingResponse(_stream(pieces, completion_id, created), media_type="text/event-stream")
    result = await runtime.pipeline.handle(message)
    return JSONResponse(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": MODEL_NAME,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": result.reply.text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "kefu": result.to_dict(),
        }
    )


async def _stream(pieces: AsyncIterator[Piece], completion_id: str, created: int) -> AsyncIterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        payload = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL_NAME,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    async for kind, value in pieces:
        if kind == "delta":
            yield chunk({"content": value})
    yield chunk({}, "stop")
    yield "data: [DONE]\n\n"
