"""The pipeline with every real step (SQLite store, USE encoder, demo shop)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from kefu.core.types import MessageIdConflict
from kefu.runtime import Runtime
from tests.conftest import message

pytestmark = pytest.mark.asyncio


async def test_every_step_is_an_event(runtime: Runtime) -> None:
    cid = f"p-{uuid.uuid4().hex}"
    result = await runtime.pipeline.handle(message(cid, "where is order 100001?", "m1"))
    assert "SF1234567890" in result.reply.text
    events = await runtime.store.events(cid)
    kinds = [kind for _, kind, _, _ in events]
    assert kinds[:3] == ["message_received", "guard_inbound", "nlu_parsed"]
    assert kinds[-3:] == ["dialogue_step", "guard_outbound", "reply_sent"]
    assert "tool_called" in kinds
    assert [seq for seq, *_ in events] == list(range(1, len(events) + 1))
    assert {mid for _, _, mid, _ in events} == {"m1"}


async def test_retried_message_is_answered_once(runtime: Runtime) -> None:
    cid = f"p-{uuid.uuid4().hex}"
    first = await runtime.pipeline.handle(message(cid, "hello", "same"))
    count = len(await runtime.store.events(cid))
    again = await runtime.pipeline.handle(message(cid, "hello", "same"))
    assert again.reply == first.reply and again.replayed
    assert len(await runtime.store.events(cid)) == count


async def test_reused_message_id_with_other_text_is_refused(runtime: Runtime) -> None:
    cid = f"p-{uuid.uuid4().hex}"
    await runtime.pipeline.handle(message(cid, "hello", "same"))
    count = len(await runtime.store.events(cid))
    with pytest.raises(MessageIdConflict):
        await runtime.pipeline.handle(message(cid, "something else", "same"))
    assert len(await runtime.store.events(cid)) == count


async def test_fifty_concurrent_messages_keep_arrival_order(runtime: Runtime) -> None:
    cid = f"p-{uuid.uuid4().hex}"
    texts = [f"how much is shipping to Shanghai? (question {i})" for i in range(50)]
    results = await asyncio.gather(
        *(runtime.pipeline.handle(message(cid, t, f"m{i:02d}")) for i, t in enumerate(texts))
    )
    assert len({r.message_id for r in results}) == 50
    transcript = await runtime.store.transcript(cid)
    assert transcript is not None
    roles = [m.role for m in transcript]
    assert roles == ["user", "bot"] * 50
    assert [m.text for m in transcript if m.role == "user"] == texts
    # Each bot line answers the user line right before it.
    by_id = {r.message_id: r.reply.text for r in results}
    assert [m.text for m in transcript if m.role == "bot"] == [by_id[f"m{i:02d}"] for i in range(50)]


async def test_bot_is_silent_while_an_agent_owns_the_conversation(runtime: Runtime) -> None:
    cid = f"p-{uuid.uuid4().hex}"
    handed = await runtime.pipeline.handle(message(cid, "转人工"))
    assert handed.handoff and handed.owner == "agent" and handed.reply.text
    quiet = await runtime.pipeline.handle(message(cid, "还在吗？"))
    assert quiet.reply.text == "" and quiet.owner == "agent" and quiet.state == "handoff"
    transcript = await runtime.store.transcript(cid)
    assert transcript is not None and [m.role for m in transcript] == ["user", "bot", "user"]


async def test_closed_conversation_reopens_when_the_customer_writes(runtime: Runtime) -> None:
    cid = f"p-{uuid.uuid4().hex}"
    await runtime.pipeline.handle(message(cid, "track order 100001 please"))
    closed = await runtime.pipeline.handle(message(cid, "yes thanks, that solved it"))
    assert closed.owner == "closed"
    reopened = await runtime.pipeline.handle(message(cid, "how much is the Smart Watch S3?"))
    assert reopened.owner == "bot" and "1299" in reopened.reply.text.replace(",", "")


async def test_reply_language_follows_the_customer(runtime: Runtime) -> None:
    cid = f"p-{uuid.uuid4().hex}"
    zh = await runtime.pipeline.handle(message(cid, "你好"))
    en = await runtime.pipeline.handle(message(cid, "hello there"))
    digits = await runtime.pipeline.handle(message(cid, "where is my order"))
    number = await runtime.pipeline.handle(message(cid, "100001"))
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh.reply.text)
    assert en.reply.text.isascii() or "Hi" in en.reply.text
    assert "order" in digits.reply.text.lower()
    assert "shipped" in number.reply.text  # digits only: the conversation's language (English) is kept


async def test_flow_position_is_kept_between_turns(runtime: Runtime) -> None:
    cid = f"p-{uuid.uuid4().hex}"
    await runtime.pipeline.handle(message(cid, "where is my order"))
    state = await runtime.store.load(cid)
    assert state is not None and state.dialogue.waiting == "slot:order_id"


class _BrokenDialogue:
    """Stands for a flow bug: every step raises."""

    def step(self, state: object, parse: object) -> object:
        raise RuntimeError("flow bug")

    def resume(self, decision: object, results: object, parse: object) -> object:
        raise RuntimeError("flow bug")


async def test_a_failing_turn_keeps_the_message_and_hands_over(runtime: Runtime) -> None:
    from kefu.core.pipeline import Pipeline

    broken = Pipeline(
        locks=runtime.pipeline.locks,
        guard=runtime.pipeline.guard,
        nlu=runtime.nlu,
        dialogue=_BrokenDialogue(),  # type: ignore[arg-type]
        actions=runtime.tools,
        responder=runtime.responder,
        store=runtime.store,
    )
    cid = f"p-{uuid.uuid4().hex}"
    result = await broken.handle(message(cid, "where is order 100001"))
    assert result.handoff and result.owner == "agent" and "human colleague" in result.reply.text
    kinds = [kind for _, kind, _, _ in await runtime.store.events(cid)]
    assert "turn_failed" in kinds and kinds[0] == "message_received"


async def test_a_write_without_the_lock_makes_the_turn_run_again(runtime: Runtime) -> None:
    from typing import Any

    from kefu.actions.runner import ToolRunner
    from kefu.core.pipeline import Pipeline
    from kefu.core.types import Event

    cid = f"p-{uuid.uuid4().hex}"
    await runtime.pipeline.handle(message(cid, "hello"))
    real = runtime.tools.tools["lookup_order"]
    interrupted: list[bool] = []

    class Interloper:
        """lookup_order that, the first time, lets another writer append to the conversation meanwhile."""

        name, description, parameters = real.name, real.description, real.parameters

        async def __call__(self, args: dict[str, Any], context: Any) -> dict[str, Any]:
            if not interrupted:
                interrupted.append(True)
                await runtime.store.append_events(cid, [Event("note", {"by": "someone without the lock"})])
            return await real(args, context)

    tools = ToolRunner([*(t for t in runtime.tools.tools.values() if t.name != "lookup_order"), Interloper()])
    pipeline = Pipeline(
        locks=runtime.pipeline.locks,
        guard=runtime.pipeline.guard,
        nlu=runtime.nlu,
        dialogue=runtime.pipeline.dialogue,
        actions=tools,
        responder=runtime.responder,
        store=runtime.store,
    )
    result = await pipeline.handle(message(cid, "where is order 100001"))
    assert "SF1234567890" in result.reply.text and interrupted
    events = await runtime.store.events(cid)
    assert [seq for seq, *_ in events] == list(range(1, len(events) + 1))
    assert [kind for _, kind, _, _ in events].count("message_received") == 2
