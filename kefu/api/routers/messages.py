"""``POST /v1/conversations/{id}/messages``: JSON, or Server-Sent Events with ``Accept: text/event-stream``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from kefu.api.deps import ConversationId, RuntimeDep, require_api_key
from kefu.api.schemas import ERRORS, STREAMED, MessageIn, TurnOut
from kefu.api.turns import inbound, open_stream, sse_turn

router = APIRouter(prefix="/v1/conversations", tags=["messages"], dependencies=[Depends(require_api_key)])


@router.post("/{conversation_id}/messages", response_model=TurnOut, responses={**ERRORS, 200: STREAMED})
async def post_message(conversation_id: ConversationId, body: MessageIn, request: Request, runtime: RuntimeDep) -> Any:
    """Send one customer message and get the bot's reply. A repeated ``message_id`` returns the first reply."""
    message = inbound(body, conversation_id, runtime.settings)
    if "text/event-stream" in request.headers.get("accept", ""):
        pieces = await open_stream(runtime.pipeline, message, runtime.inflight)
        return StreamingResponse(
            sse_turn(pieces), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )
    result = await runtime.pipeline.handle(message)
    return JSONResponse(result.to_dict())
