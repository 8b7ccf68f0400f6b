"""From a validated request to a turn: one way for HTTP, SSE, WebSocket and the OpenAI facade."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from kefu.api.errors import ApiError
from kefu.api.schemas import MessageIn
from kefu.config import Settings
from kefu.core.types import InboundMessage, TurnResult

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


async def sse_turn(result: TurnResult) -> AsyncIterator[str]:
    for piece in reply_chunks(result.reply.text):
        yield sse("delta", {"text": piece})
    yield sse("reply", result.to_dict())
