"""``/agent``: the agents' API behind the console (docs/handoff.md). Every route needs the agent role: a
session from ``POST /auth/login`` (header or the console's cookie) or an API key with the agent role.

Refusals: 404 unknown conversation, 403 ``not_owner`` (not claimed by the caller), 409 ``already_claimed``
/ ``conversation_closed`` / ``not_waiting`` / ``message_id_conflict``, 422 for empty or oversized text
and for a resolution outside the fixed set (the message lists the valid codes).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from kefu.access.principals import Principal
from kefu.api.deps import ConversationId, RuntimeDep, require_role
from kefu.api.errors import ApiError
from kefu.api.schemas import ERRORS, ID_PATTERN
from kefu.config import Settings
from kefu.core.types import Locale
from kefu.handoff.domain import RESOLUTIONS, Agent, HandoffError, clean_text
from kefu.handoff.service import HandoffService
from kefu.runtime import Runtime

router = APIRouter(prefix="/agent", tags=["agent"], dependencies=[Depends(require_role("agent"))])
AGENT_ERRORS = {**ERRORS, 403: {"description": "Not the agent role, or the conversation is not yours"}}
# The Chinese half of each refusal (the console shows its own words; API clients read both).
_ZH = {
    "conversation_not_found": "会话不存在",
    "conversation_closed": "会话已结束",
    "not_waiting": "该会话没有在等待人工客服",
    "already_claimed": "该会话已被其他客服认领",
    "not_owner": "请先认领该会话",
    "message_id_conflict": "message_id 已用于另一条消息",
    "unknown_resolution": "未知的结案代码",
    "empty_text": "内容不能为空",
    "text_too_long": "内容过长",
    "invalid_text": "内容无效",
}


class TextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="1 to KEFU_MAX_TEXT_CHARS characters, not only spaces")


class AgentMessageIn(TextIn):
    message_id: str | None = Field(
        None, pattern=ID_PATTERN, description="Idempotency key: a retry sends nothing twice."
    )


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: str = Field(description="One of: " + ", ".join(RESOLUTIONS))


def caller(request: Request) -> Agent:
    principal: Principal = request.state.principal  # set by require_role
    return Agent.of(principal.kind, principal.name)


CallerDep = Annotated[Agent, Depends(caller)]


def desk(runtime: Runtime) -> HandoffService:
    if runtime.handoff is None:
        raise ApiError(503, "handoff_unavailable", "handover is not set up on this server / 人工转接未启用")
    return runtime.handoff


def refused(exc: HandoffError) -> ApiError:
    zh = _ZH.get(exc.code)
    return ApiError(exc.status, exc.code, f"{exc.message} / {zh}" if zh else exc.message)


def checked_text(text: str, settings: Settings) -> str:
    """The same checks as a customer's message (kefu.api.turns.inbound), with the same codes."""
    if not text.strip():
        raise ApiError(422, "empty_text", "text must not be empty / 内容不能为空")
    if len(text) > settings.max_text_chars:
        message = f"text has {len(text)} characters; the limit is {settings.max_text_chars}"
        raise ApiError(422, "text_too_long", f"{message} / 内容过长")
    if "\x00" in text:
        raise ApiError(422, "invalid_text", "text must not contain NUL characters / 内容无效")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ApiError(422, "invalid_text", "text is not valid Unicode / 内容无效") from exc
    return clean_text(text)


@router.get("/queue", responses=AGENT_ERRORS)
async def queue(runtime: RuntimeDep) -> dict[str, Any]:
    """Conversations waiting for an agent (oldest first), those being handled, and the agents online."""
    return await desk(runtime).queue()


@router.post("/presence", responses=AGENT_ERRORS)
async def heartbeat(runtime: RuntimeDep, agent: CallerDep) -> dict[str, Any]:
    """The console's heartbeat: the caller counts as online for KEFU_AGENT_ONLINE_S seconds."""
    service = desk(runtime)
    await service.seen(agent)
    return {"agent": {"id": agent.id, "name": agent.name}, "online_agents": await service.online_agents()}


@router.delete("/presence", status_code=204)
async def sign_off(runtime: RuntimeDep, agent: CallerDep) -> None:
    """The caller goes offline now (handovers meanwhile open tickets if nobody else is online)."""
    await desk(runtime).gone(agent)


@router.get("/conversations/{conversation_id}", responses=AGENT_ERRORS)
async def conversation(conversation_id: ConversationId, runtime: RuntimeDep) -> dict[str, Any]:
    """Transcript (who said what), internal notes, the handover, tickets, and the orders the conversation named."""
    try:
        return await desk(runtime).view(conversation_id)
    except HandoffError as exc:
        raise refused(exc) from exc


@router.post("/conversations/{conversation_id}/claim", responses=AGENT_ERRORS)
async def claim(conversation_id: ConversationId, runtime: RuntimeDep, agent: CallerDep) -> dict[str, Any]:
    """Take a waiting conversation. Claiming one you already hold is a no-op; another agent's is a 409."""
    service = desk(runtime)
    try:
        entry = await service.claim(conversation_id, agent)
    except HandoffError as exc:
        raise refused(exc) from exc
    return {"conversation_id": conversation_id, "owner": "agent", "handoff": entry.to_dict(service.clock())}


@router.post("/conversations/{conversation_id}/messages", status_code=201, responses=AGENT_ERRORS)
async def send(
    conversation_id: ConversationId, body: AgentMessageIn, runtime: RuntimeDep, agent: CallerDep, response: Response
) -> dict[str, Any]:
    """Say something to the customer (stored, shown in the widget, delivered to their channel). The same
    ``message_id`` again answers 200 with the stored message and sends nothing."""
    text = checked_text(body.text, runtime.settings)
    message_id = body.message_id or _new_id()
    try:
        reply = await desk(runtime).send(conversation_id, agent, message_id, text)
    except HandoffError as exc:
        raise refused(exc) from exc
    if reply.replayed:
        response.status_code = 200
    return reply.to_dict()


@router.post("/conversations/{conversation_id}/notes", status_code=201, responses=AGENT_ERRORS)
async def note(conversation_id: ConversationId, body: TextIn, runtime: RuntimeDep, agent: CallerDep) -> dict[str, Any]:
    """An internal note: colleagues see it, the customer never does (it is not in the transcript)."""
    text = checked_text(body.text, runtime.settings)
    try:
        stored = await desk(runtime).note(conversation_id, agent, text)
    except HandoffError as exc:
        raise refused(exc) from exc
    return {"conversation_id": conversation_id, **stored.to_dict()}


@router.post("/conversations/{conversation_id}/return", responses=AGENT_ERRORS)
async def give_back(conversation_id: ConversationId, runtime: RuntimeDep, agent: CallerDep) -> dict[str, Any]:
    """Hand the conversation back to the bot: it answers the customer's next message."""
    service = desk(runtime)
    try:
        entry = await service.give_back(conversation_id, agent)
    except HandoffError as exc:
        raise refused(exc) from exc
    return {"conversation_id": conversation_id, "owner": "bot", "handoff": entry.to_dict(service.clock())}


@router.post("/conversations/{conversation_id}/close", responses=AGENT_ERRORS)
async def close(
    conversation_id: ConversationId, body: CloseIn, runtime: RuntimeDep, agent: CallerDep
) -> dict[str, Any]:
    """Close the conversation with a resolution code (its open ticket closes too)."""
    service = desk(runtime)
    try:
        entry = await service.close_conversation(conversation_id, agent, body.resolution)
    except HandoffError as exc:
        raise refused(exc) from exc
    return {"conversation_id": conversation_id, "owner": "closed", "handoff": entry.to_dict(service.clock())}


@router.get("/canned", responses=AGENT_ERRORS)
async def canned(
    runtime: RuntimeDep, locale: Annotated[Literal["zh", "en"] | None, Query(description="zh or en")] = None
) -> dict[str, Any]:
    """The pack's canned replies in one language (default: the server's)."""
    language: Locale = locale or runtime.settings.default_locale
    return {"locale": language, "replies": desk(runtime).canned(language)}


@router.get("/resolutions", responses=AGENT_ERRORS)
async def resolutions() -> dict[str, Any]:
    """The resolution codes a conversation can be closed with, with their labels."""
    return {"resolutions": [{"code": code, "label": labels} for code, labels in RESOLUTIONS.items()]}


@router.get("/tickets", responses=AGENT_ERRORS)
async def tickets(
    runtime: RuntimeDep, status: Annotated[Literal["open", "closed", "all"], Query()] = "open"
) -> dict[str, Any]:
    """Tickets opened when nobody was online, newest first, with the customer's contact details."""
    found = await desk(runtime).tickets(None if status == "all" else status)
    return {"status": status, "tickets": [t.to_dict() for t in found]}


def _new_id() -> str:
    return f"agent-{uuid.uuid4().hex}"
