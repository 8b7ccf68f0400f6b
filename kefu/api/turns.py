"""From a validated request to a turn: one way for HTTP, SSE, WebSocket and the OpenAI facade."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from kefu.api.errors import ApiError
from kefu.api.schemas import MessageIn
from kefu.config import Settings
from kefu.core.pipeline import Pipeline
from kefu.core.types import InboundMessage, TurnResult

Piece = tuple[str, Any]  # ("delta", text) while the reply is written, then ("reply", TurnResult)

_CHUNK = re.compile(r"[^。！？!?.\n]*[。！？!?.\n]+\s*|[^。！？!?.\n]+$")


def inbound(body: MessageIn, conversation_id: str, settings: Settings) -> InboundMessage:
    text = body.text
    if not text.strip():
        raise ApiError(422, "empty_text", "text must not be empty")
    if len(text) > settings.max_text_chars:
        raise ApiError(422, "text_too_long", f"text has {len(text)} characters; the limit is {settings.max_text_chars}")
    if "\x00" in text:
        raise ApiError(422, "invalid_text", "text must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ApiError(422, "invalid_text", "text is not valid Unicode (unpaired surrogate)") from exc
    return InboundMessage(
        conversation_id=conversation_id,
        message_id=body.message_id or uuid.uuid4().hex,
        text=text,
        received_at=datetime.now(UTC),
        user_id=body.user_id,
        channel=body.channel,
        locale=body.locale,
    )


def reply_chunks(text: str) -> list[str]:
    """Sentence-sized pieces of a finished reply, for clients that render a stream."""
    return [m.group(0) for m in _CHUNK.finditer(text) if m.group(0)] or ([text] if text else [])


def sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def open_stream(
    pipeline: Pipeline, message: InboundMessage, inflight: set[asyncio.Task[Any]]
) -> AsyncIterator[Piece]:
    """Start the turn and wait for its first text. A turn that fails before any text raises here, so the
    caller still answers with a 4xx; after that the pieces stream. A client that goes away does not stop
    the turn: it finishes and is stored (``inflight`` holds it until then)."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    async def sink(text: str) -> None:
        await queue.put(text)

    task = asyncio.create_task(pipeline.handle(message, sink))
    inflight.add(task)
    task.add_done_callback(inflight.discard)
    task.add_done_callback(lambda _t: queue.put_nowait(None))
    first = await queue.get()
    if first is None:
        result = task.result()  # raises the turn's error while a status code can still say it
        return _finished(result, "")
    return _live(first, queue, task)


async def _live(first: str, queue: asyncio.Queue[str | None], task: asyncio.Task[TurnResult]) -> AsyncIterator[Piece]:
    shown = first
    yield ("delta", first)
    while (text := await queue.get()) is not None:
        shown += text
        yield ("delta", text)
    async for piece in _finished(task.result(), shown):
        yield piece


async def _finished(result: TurnResult, shown: str) -> AsyncIterator[Piece]:
    text = result.reply.text
    if text.startswith(shown):  # the rest of the reply (all of it when no model wrote it)
        for piece in reply_chunks(text[len(shown) :]):
            yield ("delta", piece)
    yield ("reply", result)


async def sse_turn(pieces: AsyncIterator[Piece]) -> AsyncIterator[str]:
    async for kind, value in pieces:
        yield sse("delta", {"text": value}) if kind == "delta" else sse("reply", value.to_dict())
