"""Request and response bodies of the HTTP contract (ARCHITECTURE.md)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"


def base_language(value: Any) -> Any:
    """A locale field's value: "zh-CN", "zh_Hans", "en-US" -> "zh" / "en"; anything else is left for the
    field's ``Literal`` to refuse."""
    if isinstance(value, str) and re.fullmatch(r"(?i)(zh|en)([-_][A-Za-z0-9]{2,8})*", value):
        return value[:2].lower()
    return value


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    text: str = Field(
        description="The customer's message: 1 to KEFU_MAX_TEXT_CHARS (default 4000) characters, not only spaces.",
        json_schema_extra={"minLength": 1, "maxLength": 4000, "pattern": r"^[^\x00]*\S[^\x00]*$"},
    )
    user_id: str | None = Field(None, max_length=256)
    channel: str = Field(
        "web", pattern=r"^[A-Za-z0-9_.-]{1,32}$", description="web, app, wechat, phone... (lower-cased)"
    )
    message_id: str | None = Field(None, pattern=ID_PATTERN, description="Idempotency key.")
    locale: Literal["zh", "en"] | None = Field(None, description="zh or en; regional forms such as zh-CN are accepted")

    @field_validator("channel")
    @classmethod
    def _lower_channel(cls, value: str) -> str:
        return value.lower()

    @field_validator("locale", mode="before")
    @classmethod
    def _base_language(cls, value: Any) -> Any:
        return base_language(value)


class CitationOut(BaseModel):
    id: str
    title: str


class ReplyOut(BaseModel):
    text: str
    citations: list[CitationOut]
    quick_replies: list[str]


class IntentOut(BaseModel):
    name: str
    confidence: float


class EntityOut(BaseModel):
    type: str
    value: str


class ModelOut(BaseModel):
    id: str
    version: str
    variant: str


class TurnOut(BaseModel):
    conversation_id: str
    message_id: str
    reply: ReplyOut
    intent: IntentOut
    entities: list[EntityOut]
    state: str
    handoff: bool
    owner: Literal["bot", "agent", "closed"]
    model: ModelOut | None


class TranscriptLine(BaseModel):
    role: Literal["user", "bot", "agent"]
    text: str
    ts: str


class ConversationOut(BaseModel):
    conversation_id: str
    state: str
    owner: Literal["bot", "agent", "closed"]
    messages: list[TranscriptLine]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: int = Field(ge=1, le=5)
    comment: str | None = Field(None, max_length=2000)

    @field_validator("rating", mode="before")
    @classmethod
    def _no_booleans(cls, value: Any) -> Any:
        if isinstance(value, bool):  # JSON true is not a rating of 1
            raise ValueError("must be an integer from 1 to 5, not a boolean")
        return value


class FeedbackOut(BaseModel):
    conversation_id: str
    rating: int
    stored: bool


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # OpenAI clients send many optional fields; they are ignored

    model: str = "kefu"
    messages: list[ChatMessage] = Field(
        min_length=1,
        description="The conversation so far; the last user message is the customer's turn.",
        json_schema_extra={
            "contains": {
                "type": "object",
                "properties": {"role": {"const": "user"}, "content": {"type": "string", "pattern": "\\S"}},
                "required": ["role", "content"],
            }
        },
    )
    stream: StrictBool = False
    user: str | None = Field(None, description="The conversation id.")


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in {
        400: "Malformed request (bad JSON, bad encoding, bad id)",
        401: "Missing or wrong API key",
        404: "Unknown conversation",
        409: "message_id reused for a different message",
        413: "Body too large",
        422: "Invalid fields",
    }.items()
}
STREAMED = {"description": "JSON, or Server-Sent Events when asked for", "content": {"text/event-stream": {}}}
