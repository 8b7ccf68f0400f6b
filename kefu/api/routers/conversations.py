"""Transcripts and feedback."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from kefu.api.deps import ConversationId, RuntimeDep, require_api_key
from kefu.api.errors import ApiError
from kefu.api.schemas import ERRORS, ConversationOut, FeedbackIn, FeedbackOut, TranscriptLine
from kefu.runtime import Runtime

router = APIRouter(prefix="/v1/conversations", tags=["conversations"], dependencies=[Depends(require_api_key)])


@router.get("/{conversation_id}", response_model=ConversationOut, responses=ERRORS)
async def get_conversation(conversation_id: ConversationId, runtime: RuntimeDep) -> ConversationOut:
    snapshot = await runtime.store.load(conversation_id)
    messages = await runtime.store.transcript(conversation_id)
    if snapshot is None or messages is None:
        raise ApiError(404, "conversation_not_found", f"no conversation {conversation_id!r}")
    state = {"agent": "handoff", "closed": "closed"}.get(snapshot.owner, snapshot.dialogue.name)
    return ConversationOut(
        conversation_id=conversation_id,
        state=state,
        owner=snapshot.owner,
        messages=[TranscriptLine(role=m.role, text=m.text, ts=m.ts.isoformat()) for m in messages],
    )


@router.post("/{conversation_id}/feedback", response_model=FeedbackOut, responses=ERRORS)
async def post_feedback(conversation_id: ConversationId, body: FeedbackIn, runtime: RuntimeDep) -> FeedbackOut:
    """Rate the conversation (1..5) with an optional comment."""
    async with runtime.pipeline.locks.hold(conversation_id):  # never between a turn's load and its commit
        stored = await runtime.store.add_feedback(conversation_id, body.rating, body.comment)
    if not stored:
        raise ApiError(404, "conversation_not_found", f"no conversation {conversation_id!r}")
    runtime.metrics.csat(body.rating, await _variant(runtime, conversation_id))
    return FeedbackOut(conversation_id=conversation_id, rating=body.rating, stored=True)


async def _variant(runtime: Runtime, conversation_id: str) -> str | None:
    """The model A/B arm the customer is on (stable, canary, local), for CSAT per variant."""
    if runtime.gateway is None or not runtime.settings.llm_answers:
        return None
    snapshot = await runtime.store.load(conversation_id)
    if snapshot is None:
        return None
    customer_key = snapshot.user_id or f"conversation:{conversation_id}"  # as InboundMessage.customer_key
    route = runtime.gateway.assignment(customer_key, snapshot.locale or runtime.settings.default_locale)
    return None if route is None else route.variant
