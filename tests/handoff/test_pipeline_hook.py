"""The pipeline's handover hooks with the real runtime: the 'nobody online' notice and its ticket (zh and
en), contact details left afterwards, no notice while an agent is online, customers' messages reaching the
consoles live while the bot stays silent, a failing desk never costing the turn, and a model's summary."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, update

from kefu.channels.base import AGENTS, conversation_topic
from kefu.core.protocols import Handover
from kefu.core.types import InboundMessage, Locale, Parse
from kefu.handoff.domain import Agent
from kefu.handoff.service import HandoffService
from kefu.runtime import Runtime, build_runtime
from kefu.store.models import AgentPresenceRow, ConversationRow
from tests.conftest import make_settings, message
from tests.llm.scripted import Script, scripted_server

pytestmark = pytest.mark.asyncio
EVENT_TIMEOUT_S = 5.0
AGENT = Agent("hook-agent", "小王")


def _cid() -> str:
    return f"hook-{uuid.uuid4().hex[:10]}"


def desk_of(runtime: Runtime) -> HandoffService:
    assert runtime.handoff is not None
    return runtime.handoff


@pytest.fixture
async def nobody_online(runtime: Runtime) -> AsyncIterator[Runtime]:
    async with runtime.engine.begin() as connection:
        await connection.execute(delete(AgentPresenceRow))
    yield runtime


async def _next(events: AsyncIterator[dict[str, Any]], kind: str, cid: str) -> dict[str, Any]:
    async def find() -> dict[str, Any]:
        async for event in events:
            if event.get("event") == kind and event.get("conversation_id") == cid:
                return event
        raise AssertionError("subscription ended")

    return await asyncio.wait_for(find(), EVENT_TIMEOUT_S)


async def _events(runtime: Runtime, cid: str) -> list[tuple[str, dict[str, Any]]]:
    return [(kind, payload) for _seq, kind, _mid, payload in await runtime.store.events(cid)]


async def test_nobody_online_zh_notice_and_ticket_with_the_phone_given(nobody_online: Runtime) -> None:
    runtime, cid = nobody_online, _cid()
    async with AsyncExitStack() as stack:
        agents = await stack.enter_async_context(runtime.hub.subscribe(AGENTS))
        topic = await stack.enter_async_context(runtime.hub.subscribe(conversation_topic(cid)))
        result = await runtime.pipeline.handle(message(cid, "转人工，我的电话是13812345678"))
        assert result.owner == "agent" and result.handoff
        assert "目前没有人工客服在线" in result.reply.text and "138****5678" in result.reply.text
        assert "13812345678" not in result.reply.text
        added = await _next(agents, "queue", cid)
        assert added["action"] == "added" and added["entry"]["agents_online"] is False
        assert added["entry"]["language"] == "zh" and added["entry"]["status"] == "waiting"
        ticket = await _next(agents, "ticket", cid)
        assert ticket["ticket"]["phone"] == "13812345678" and not ticket["ticket"]["contact_needed"]
        owner = await _next(topic, "owner", cid)
        assert (owner["owner"], owner["agent"]) == ("agent", None)
    handover = [p for kind, p in await _events(runtime, cid) if kind == "handover"]
    assert handover == [{"reason": handover[0]["reason"], "agents_online": False, "notice": True}]


async def test_nobody_online_en_asks_for_contact_and_takes_the_next_one(nobody_online: Runtime) -> None:
    runtime, cid = nobody_online, _cid()
    service = desk_of(runtime)
    first = await runtime.pipeline.handle(message(cid, "I want to talk to a person"))
    assert first.owner == "agent" and "leave a phone number or an e-mail address" in first.reply.text
    tickets = [t for t in await service.tickets("open") if t.conversation_id == cid]
    assert len(tickets) == 1 and not tickets[0].contact.known

    second = await runtime.pipeline.handle(message(cid, "sure, you can reach me at Li.Lei@Example.com"))
    assert second.owner == "agent" and second.reply.text.startswith("Thank you, I've added l***@example.com")
    assert [t.contact.email for t in await service.tickets("open") if t.conversation_id == cid] == [
        "li.lei@example.com"
    ]

    third = await runtime.pipeline.handle(message(cid, "or call 13812345678"))  # the ticket has one already
    assert third.reply.text == "" and third.owner == "agent"
    kinds = [kind for kind, _ in await _events(runtime, cid)]
    assert kinds.count("bot_silent") == 1
    transcript = await runtime.store.transcript(cid)
    assert transcript is not None and [m.role for m in transcript] == ["user", "bot", "user", "bot", "user"]


async def test_no_notice_and_no_ticket_while_an_agent_is_online(nobody_online: Runtime) -> None:
    runtime, cid = nobody_online, _cid()
    service = desk_of(runtime)
    await service.seen(AGENT)
    try:
        result = await runtime.pipeline.handle(message(cid, "转人工"))
    finally:
        await service.gone(AGENT)
    assert result.owner == "agent" and "没有人工客服在线" not in result.reply.text
    entry = next(e for e in (await service.queue())["waiting"] if e["conversation_id"] == cid)
    assert entry["agents_online"] is True
    assert not [t for t in await service.tickets(None) if t.conversation_id == cid]


async def test_customer_messages_reach_the_console_while_the_bot_stays_silent(runtime: Runtime) -> None:
    cid = _cid()
    service = desk_of(runtime)
    await runtime.pipeline.handle(message(cid, "我要投诉，转人工"))
    await service.claim(cid, AGENT)
    async with runtime.hub.subscribe(conversation_topic(cid)) as topic:
        result = await runtime.pipeline.handle(message(cid, "我的手机号是13812345678，订单100002", "c-2"))
        assert result.reply.text == "" and result.owner == "agent"  # claimed: no acknowledgement either
        live = await _next(topic, "customer_message", cid)
    assert live["message_id"] == "c-2" and live["role"] == "user"
    assert live["text"] == "我的手机号是[PHONE]，订单100002"  # as stored: PII redacted
    replayed = await runtime.pipeline.handle(message(cid, "我的手机号是13812345678，订单100002", "c-2"))
    assert replayed.reply.text == ""


class BrokenDesk:
    """A desk whose store is unreachable."""

    async def handover(self, message: InboundMessage, parse: Parse, reason: str, locale: Locale) -> Handover:
        raise ConnectionError("database unreachable")

    async def while_waiting(self, message: InboundMessage, parse: Parse, locale: Locale) -> str | None:
        raise ConnectionError("database unreachable")

    async def turn_stored(self, message: InboundMessage, result: Any, handover: Handover | None) -> None:
        raise ConnectionError("database unreachable")


async def test_a_failing_desk_never_costs_the_turn(runtime: Runtime) -> None:
    pipeline = runtime.pipeline
    saved = pipeline.desk, pipeline.announcer
    broken = BrokenDesk()
    pipeline.desk, pipeline.announcer = broken, broken
    cid = _cid()
    try:
        handed = await pipeline.handle(message(cid, "转人工"))
        waiting = await pipeline.handle(message(cid, "13812345678"))
    finally:
        pipeline.desk, pipeline.announcer = saved
    assert handed.owner == "agent" and handed.reply.text and "没有人工客服" not in handed.reply.text
    assert waiting.reply.text == "" and waiting.owner == "agent"
    transcript = await runtime.store.transcript(cid)
    assert transcript is not None and [m.role for m in transcript] == ["user", "bot", "user"]


async def test_a_model_writes_the_summary_when_one_is_configured(tmp_path: Path) -> None:
    script = Script(reply="客户要求转人工，想为订单 100004 的耳机质量问题申请售后。")
    with scripted_server(script) as url:
        runtime = await build_runtime(
            make_settings(tmp_path, llm_base_url=url, llm_model="scripted", llm_answers=False)
        )
        try:
            cid = _cid()
            await runtime.pipeline.handle(message(cid, "订单100004的耳机左耳没声音了"))
            await runtime.pipeline.handle(message(cid, "转人工"))
            await desk_of(runtime).settle()
            entry = next(e for e in (await desk_of(runtime).queue())["waiting"] if e["conversation_id"] == cid)
        finally:
            await runtime.close()
    assert entry["summary"]["source"] == "llm" and entry["summary"]["text"] == script.reply
    assert entry["summary"]["orders"] == ["100004"]  # the extractive facts stay beside it
    assert "订单100004的耳机左耳没声音了" in script.sent_text()


async def test_a_handover_left_without_its_queue_entry_is_queued_again(runtime: Runtime) -> None:
    """A replica stopped between a handing-over turn and its queue entry: the queue picks it up later."""
    cid = _cid()
    await runtime.pipeline.handle(message(cid, "帮我查一下订单100003"))
    assert await runtime.store.set_owner(cid, "agent", "customer_request")  # no queue entry written
    service = desk_of(runtime)
    assert not [e for e in (await service.queue())["waiting"] if e["conversation_id"] == cid]  # may be in flight
    async with runtime.engine.begin() as connection:
        await connection.execute(
            update(ConversationRow)
            .where(ConversationRow.id == cid)
            .values(updated_at=datetime.now(UTC) - timedelta(minutes=5))
        )
    entry = next(e for e in (await service.queue())["waiting"] if e["conversation_id"] == cid)
    assert entry["reason"] == "requeued" and "100003" in entry["summary"]["text"]
    assert len([e for e in (await service.queue())["waiting"] if e["conversation_id"] == cid]) == 1
