"""``/v1/ws/{conversation_id}``: send ``{"text", "message_id"?, "user_id"?, "locale"?, "stream"?}``, receive turns.

Each reply is the same JSON as the HTTP contract; a bad message gets ``{"error": {...}}`` and the socket
stays open. With ``"stream": true`` the reply's text comes first as ``{"delta": text}`` frames while a model
writes it, then the whole turn. With API keys configured, pass the key as ``?api_key=`` or an
``Authorization`` header. A turn over a rate limit gets a ``rate_limited`` error frame with ``retry_after``.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from kefu.api.deps import client_of, socket_error, socket_turn_allowed, valid_id
from kefu.api.errors import ApiError, error_body
from kefu.api.schemas import MessageIn
from kefu.api.turns import inbound, open_stream
from kefu.core.types import MessageIdConflict
from kefu.runtime import Runtime

router = APIRouter(tags=["messages"])


@router.websocket("/v1/ws/{conversation_id}")
async def chat_socket(websocket: WebSocket, conversation_id: str) -> None:
    runtime: Runtime = websocket.app.state.runtime
    try:
        principal = await client_of(websocket)
    except ApiError as exc:
        await websocket.close(code=4000 + exc.status, reason=exc.message)
        return
    if not valid_id(conversation_id):
        await websocket.close(code=4400, reason="conversation_id must be 1-128 characters of [A-Za-z0-9._:-]")
        return
    await websocket.accept()
    try:
        while True:
            raw = await websocket.receive_text()
            if len(raw.encode("utf-8", "surrogatepass")) > runtime.settings.max_body_bytes:
                await websocket.send_json(error_body("payload_too_large", "message is too large"))
                continue
            try:
                payload = json.loads(raw)
                stream = payload.pop("stream", False) if isinstance(payload, dict) else False
                if not isinstance(stream, bool):
                    await websocket.send_json(error_body("invalid_request", "stream: must be true or false"))
                    continue
                body = MessageIn.model_validate(payload)
                message = inbound(body, conversation_id, runtime.settings)
                await socket_turn_allowed(websocket, principal, message.user_id or conversation_id)
                if stream:
                    pieces = await open_stream(runtime.pipeline, message, runtime.inflight)
                    async for kind, value in pieces:
                        await websocket.send_json({"delta": value} if kind == "delta" else value.to_dict())
                    continue
                result = await runtime.pipeline.handle(message)
            except json.JSONDecodeError as exc:
                await websocket.send_json(error_body("invalid_json", f"message is not valid JSON: {exc.msg}"))
                continue
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(p) for p in first["loc"]) or "message"
                await websocket.send_json(error_body("invalid_request", f"{field}: {first['msg']}"))
                continue
            except ApiError as exc:
                await websocket.send_json(socket_error(exc))
                continue
            except MessageIdConflict as exc:
                await websocket.send_json(error_body("message_id_conflict", str(exc)))
                continue
            await websocket.send_json(result.to_dict())
    except WebSocketDisconnect:
        return
