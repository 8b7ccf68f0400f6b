"""``/v1/ws/{conversation_id}``: send ``{"text", "message_id"?, "user_id"?, "locale"?, "stream"?}``, receive turns.

Each reply is the same JSON as the HTTP contract; a bad message gets ``{"error": {...}}`` and the socket
stays open. With ``"stream": true`` the reply's text comes first as ``{"delta": text}`` frames while a model
writes it, then the whole turn. With API keys configured, pass the key as ``?api_key=`` or an
``Authorization`` header. A turn over a rate limit gets a ``rate_limited`` error frame with ``retry_after``.

While the socket is open, what is said in the conversation outside its own turns is pushed as it happens
(the conversation's topic on ``runtime.hub``): ``{"event": "message", "role": "agent" | "bot" | "system",
"text", "message_id", "in_reply_to", "owner", "ts", ...}`` and ``{"event": "owner", "owner": "bot" | "agent"
| "closed", ...}``. A bot message answering a message this socket sent is not pushed again (its turn came
back inline); other events on the topic (agents' internal notes, queue changes) never reach the customer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from kefu.access.principals import Principal
from kefu.api.deps import client_of, socket_error, socket_turn_allowed, valid_id
from kefu.api.errors import ApiError, error_body
from kefu.api.schemas import MessageIn
from kefu.api.turns import inbound, open_stream
from kefu.channels.base import conversation_topic
from kefu.core.types import MessageIdConflict
from kefu.runtime import Runtime

log = logging.getLogger(__name__)
router = APIRouter(tags=["messages"])

Send = Callable[[dict[str, Any]], Awaitable[None]]
PUSHED_EVENTS = frozenset({"message", "owner"})
PUSHED_ROLES = frozenset({"bot", "agent", "system"})
REMEMBERED_OWN_MESSAGES = 1024  # message ids whose bot replies this socket already got inline


class OwnMessages:
    """The last message ids this socket sent, oldest forgotten first (bounded for long-lived sockets)."""

    def __init__(self, capacity: int = REMEMBERED_OWN_MESSAGES) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, message_id: str) -> None:
        self._ids[message_id] = None
        self._ids.move_to_end(message_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._ids


def customer_frame(event: dict[str, Any], own: OwnMessages) -> dict[str, Any] | None:
    """The frame a hub event becomes on a customer's socket, or None when the customer must not get it."""
    kind = event.get("event")
    if kind not in PUSHED_EVENTS:
        return None
    if kind == "message":
        role = event.get("role", "bot")
        if role not in PUSHED_ROLES:
            return None
        if role == "bot" and event.get("in_reply_to") in own:
            return None
    return event


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
    own = OwnMessages()
    writing = asyncio.Lock()  # turns and pushes are written by two tasks; one frame at a time

    async def send(frame: dict[str, Any]) -> None:
        async with writing:
            await websocket.send_json(frame)

    # Subscribed before the socket opens, so nothing said after the client sees it open is missed.
    async with runtime.hub.subscribe(conversation_topic(conversation_id)) as events:
        await websocket.accept()
        pusher = asyncio.create_task(_push(events, send, own, conversation_id))
        try:
            await _answer_turns(websocket, runtime, principal, conversation_id, send, own)
        except WebSocketDisconnect:
            return
        finally:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher


async def _push(events: AsyncIterator[dict[str, Any]], send: Send, own: OwnMessages, conversation_id: str) -> None:
    """Forwards the conversation's live events until the socket ends (this task is cancelled then)."""
    async for event in events:
        frame = customer_frame(event, own)
        if frame is None:
            continue
        try:
            await send(frame)
        except (WebSocketDisconnect, RuntimeError, OSError):  # the customer left; the reader ends the socket
            log.debug("push to a closed socket dropped", extra={"conversation_id": conversation_id})
            return


async def _answer_turns(
    websocket: WebSocket, runtime: Runtime, principal: Principal, conversation_id: str, send: Send, own: OwnMessages
) -> None:
    while True:
        raw = await websocket.receive_text()
        if len(raw.encode("utf-8", "surrogatepass")) > runtime.settings.max_body_bytes:
            await send(error_body("payload_too_large", "message is too large"))
            continue
        try:
            payload = json.loads(raw)
            stream = payload.pop("stream", False) if isinstance(payload, dict) else False
            if not isinstance(stream, bool):
                await send(error_body("invalid_request", "stream: must be true or false"))
                continue
            body = MessageIn.model_validate(payload)
            message = inbound(body, conversation_id, runtime.settings)
            await socket_turn_allowed(websocket, principal, message.user_id or conversation_id)
            own.add(message.message_id)
            if stream:
                pieces = await open_stream(runtime.pipeline, message, runtime.inflight)
                async for kind, value in pieces:
                    await send({"delta": value} if kind == "delta" else value.to_dict())
                continue
            result = await runtime.pipeline.handle(message)
        except json.JSONDecodeError as exc:
            await send(error_body("invalid_json", f"message is not valid JSON: {exc.msg}"))
            continue
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "message"
            await send(error_body("invalid_request", f"{field}: {first['msg']}"))
            continue
        except ApiError as exc:
            await send(socket_error(exc))
            continue
        except MessageIdConflict as exc:
            await send(error_body("message_id_conflict", str(exc)))
            continue
        await send(result.to_dict())
