"""``POST /channels/voice``: one utterance of a phone call, transcribed by the call centre's ASR.

Body ``{"call_id", "utterance_id", "transcript", "confidence"?, "caller"?, "locale"?, "event"?}``; the answer
is ``{"text", "handoff", "transfer", "end_call", "reason", ...}``: ``text`` is what text-to-speech should say
(short, no links or marks, numbers readable, options spoken), ``transfer`` asks the call centre to put the
caller through to a person, ``end_call`` to hang up after saying ``text``. The call is the conversation
``call:<call_id>``, each utterance a message (``utterance_id`` is the idempotency key: a retried utterance
replays the first answer). Below ``KEFU_VOICE_MIN_CONFIDENCE``, or with nothing transcribed, the caller is
asked to repeat and no turn runs; ``"event": "hangup"`` ends the call without a turn.
Authentication: the same as ``/v1`` (``Authorization: Bearer <key>`` once API keys exist).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator

from kefu.api.deps import RuntimeDep, require_api_key
from kefu.api.schemas import ERRORS, ID_PATTERN, IntentOut, MessageIn, base_language
from kefu.api.turns import inbound
from kefu.channels.voice import CHANNEL, CONVERSATION_PREFIX, NO_INPUT, REPEAT, TRANSFER, language_of, spoken
from kefu.core.types import Locale

router = APIRouter(prefix="/channels", tags=["channels"], dependencies=[Depends(require_api_key)])


class VoiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    call_id: str = Field(pattern=r"^[A-Za-z0-9._:-]{1,120}$", description="The call, 1-120 characters [A-Za-z0-9._:-]")
    utterance_id: str = Field(pattern=ID_PATTERN, description="The utterance within the call (idempotency key)")
    transcript: str = Field("", description="What the ASR heard; empty when the caller said nothing")
    confidence: float | None = Field(None, ge=0.0, le=1.0, description="The ASR's confidence, 0..1")
    caller: str | None = Field(None, max_length=64, description="The caller's number or customer id (the user id)")
    locale: Literal["zh", "en"] | None = None
    event: Literal["utterance", "hangup"] = "utterance"

    @field_validator("locale", mode="before")
    @classmethod
    def _base_language(cls, value: Any) -> Any:
        return base_language(value)


class VoiceOut(BaseModel):
    conversation_id: str
    message_id: str
    text: str = Field(description="What text-to-speech should say")
    reply_text: str = Field(description="The reply as a chat would show it (empty when no turn ran)")
    handoff: bool
    transfer: bool = Field(description="Put the caller through to a person")
    end_call: bool = Field(description="Hang up after saying text")
    reason: Literal["reply", "low_confidence", "no_input", "agent", "hangup"]
    owner: Literal["bot", "agent", "closed"] | None
    state: str | None
    intent: IntentOut | None


def _answer(body: VoiceIn, text: str, reason: str, **turn: Any) -> dict[str, Any]:
    return {
        "conversation_id": CONVERSATION_PREFIX + body.call_id,
        "message_id": body.utterance_id,
        "text": text,
        "reply_text": turn.get("reply_text", ""),
        "handoff": turn.get("handoff", False),
        "transfer": turn.get("transfer", False),
        "end_call": turn.get("end_call", False),
        "reason": reason,
        "owner": turn.get("owner"),
        "state": turn.get("state"),
        "intent": turn.get("intent"),
    }


@router.post("/voice", response_model=VoiceOut, responses=ERRORS)
async def post_voice(body: VoiceIn, runtime: RuntimeDep) -> dict[str, Any]:
    """One caller utterance in, the reply for text-to-speech out."""
    settings = runtime.settings
    heard: Locale = body.locale or language_of(body.transcript, settings.default_locale)
    if body.event == "hangup":
        return _answer(body, "", "hangup", end_call=True)
    if not body.transcript.strip():
        return _answer(body, NO_INPUT[heard], "no_input")
    if body.confidence is not None and body.confidence < settings.voice_min_confidence:
        return _answer(body, REPEAT[heard], "low_confidence")
    said = MessageIn(
        text=body.transcript, user_id=body.caller, channel=CHANNEL, message_id=body.utterance_id, locale=body.locale
    )
    message = inbound(said, CONVERSATION_PREFIX + body.call_id, settings)
    result = await runtime.pipeline.handle(message)
    reply = result.reply
    # The caller's language (the reply follows it), else the reply's own (a transcript of digits only).
    locale: Locale = body.locale or language_of(body.transcript, language_of(reply.text, heard))
    transfer = result.owner == "agent"
    turn = {
        "reply_text": reply.text,
        "handoff": result.handoff,
        "transfer": transfer,
        "end_call": result.owner == "closed",
        "owner": result.owner,
        "state": result.state,
        "intent": {"name": result.intent.name, "confidence": round(result.intent.confidence, 4)},
    }
    if not reply.text.strip():  # a person owns the conversation and the bot stays silent: put them through
        return _answer(body, TRANSFER[locale], "agent", **turn)
    text = spoken(reply.text, reply.quick_replies, locale, settings.voice_max_chars)
    return _answer(body, text, "reply", **turn)
