"""The agent's summary: extractive (zh and en, pure) and written by a model through the real LLM gateway
(a real OpenAI-compatible server on 127.0.0.1), with every failure falling back to the extractive one."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from kefu.handoff.summary import (
    ConversationFacts,
    GatewaySummarizer,
    extractive_summary,
    facts_from_events,
    key_sentences,
    main_intent,
    summary_prompt,
    usable_summary,
)
from kefu.llm.gateway import LlmGateway
from kefu.llm.registry import ModelRegistry
from kefu.llm.types import ModelVersion
from kefu.store.models import LlmCallRow
from tests.llm.misbehaving import misbehaving_server
from tests.llm.scripted import Script, scripted_server

ZH_EVENTS = [
    ("message_received", {"text": "你好"}),
    ("nlu_parsed", {"intent": "greeting", "entities": []}),
    ("reply_sent", {"text": "您好！请问有什么可以帮您？"}),
    ("message_received", {"text": "我的订单100004的耳机坏了，左耳完全没有声音。已经过了退货期吗？"}),
    ("nlu_parsed", {"intent": "return_refund", "entities": [{"type": "order_id", "value": "100004"}]}),
    ("tool_called", {"tool": "lookup_order", "args": {"order_id": "100004"}}),
    ("reply_sent", {"text": "订单 100004 已签收 45 天，超过了 7 天无理由退货期。"}),
    ("message_received", {"text": "转人工"}),
    ("nlu_parsed", {"intent": "human_agent", "entities": []}),
    ("reply_sent", {"text": ""}),  # a silent turn is not a transcript line
]
EN_EVENTS = [
    ("message_received", {"text": "hello"}),
    ("nlu_parsed", {"intent": "greeting", "entities": []}),
    ("message_received", {"text": "I was charged twice for order 100002. Can you refund one of the payments?"}),
    ("nlu_parsed", {"intent": "payment_issue", "entities": [{"type": "order_id", "value": "100002"}]}),
    ("reply_sent", {"text": "Sorry about that, let me check."}),
    ("message_received", {"text": "I want to talk to a person"}),
    ("nlu_parsed", {"intent": "human_agent", "entities": []}),
]


def test_extractive_summary_zh() -> None:
    facts = facts_from_events(ZH_EVENTS, "zh")
    assert facts.orders == ("100004",) and facts.intents[-1] == "human_agent"
    assert [role for role, _ in facts.transcript] == ["customer", "bot", "customer", "bot", "customer"]
    summary = extractive_summary(facts, "human_agent")
    assert summary.source == "extractive" and summary.intent == "return_refund"
    assert summary.text.startswith("诉求：return refund；订单：100004；客户原话：")
    assert "左耳完全没有声音" in summary.text and "转人工" not in summary.text and "你好" not in summary.text
    assert summary.key_sentences[0] == "我的订单100004的耳机坏了"  # the order is named: it ranks first


def test_extractive_summary_en() -> None:
    summary = extractive_summary(facts_from_events(EN_EVENTS, "en"), "human_agent")
    assert summary.intent == "payment_issue" and summary.orders == ("100002",)
    assert summary.text.startswith("Wants: payment issue; orders: 100002; in their words: ")
    assert '"I was charged twice for order 100002."' in summary.text
    assert "talk to a person" not in summary.text and "hello" not in summary.text


def test_intent_and_sentences_edge_cases() -> None:
    assert main_intent([], "human_agent") == "human_agent"
    assert main_intent(["greeting", "human_agent"], None) == "human_agent"
    assert main_intent(["order_status", "thanks"]) == "order_status"
    assert key_sentences(["转人工", "hi", "ok"]) == []
    long = "我想问一下" + "很长的描述" * 60
    assert all(len(s) <= 120 for s in key_sentences([long]))
    empty = extractive_summary(ConversationFacts("en", (), (), (), ()))
    assert empty.text == "Wants: not recognised." and empty.key_sentences == ()


def test_model_output_cleaned() -> None:
    assert usable_summary("<think>the customer...</think> The customer wants a refund for order 100002.") == (
        "The customer wants a refund for order 100002."
    )
    assert usable_summary("  ") is None and usable_summary("<think>x</think>ok") is None
    prompt = summary_prompt([("customer", "我要退货"), ("bot", "好的")], "zh")
    assert prompt[0]["role"] == "system" and "中文" in prompt[0]["content"]
    assert prompt[1]["content"] == "客户: 我要退货\n机器人: 好的"


async def _gateway(registry: ModelRegistry, base_url: str, *, promote: bool = True) -> LlmGateway:
    await registry.add(ModelVersion(name="summary-model", base_url=base_url, model="scripted"), actor="test")
    if promote:
        await registry.promote("summary-model", actor="test")
    gateway = LlmGateway(registry, call_timeout_s=2.0, retries=0)
    await gateway.refresh()
    return gateway


@pytest.mark.asyncio
@pytest.mark.parametrize("language", ["zh", "en"])
async def test_model_summary_through_the_gateway(sqlite_registry: ModelRegistry, language: str) -> None:
    reply = "客户的耳机 坏了，想退货。" if language == "zh" else "The customer's earbuds broke; they want a refund."
    script = Script(reply=reply)
    with scripted_server(script) as url:
        gateway = await _gateway(sqlite_registry, url)
        try:
            facts = facts_from_events(ZH_EVENTS if language == "zh" else EN_EVENTS, language)
            text = await GatewaySummarizer(gateway, 5.0).summarize(facts.transcript, language, "conv-1")
        finally:
            await gateway.close()
    assert text == reply
    sent = script.requests[0]["messages"]
    assert ("中文" if language == "zh" else "In English") in sent[0]["content"]
    assert ("100004" if language == "zh" else "100002") in sent[1]["content"]
    async with sqlite_registry.engine.connect() as connection:
        rows = (await connection.execute(select(LlmCallRow.outcome, LlmCallRow.conversation_id))).all()
    assert [tuple(r) for r in rows] == [("summary", "conv-1")]  # accounted like a turn's model call


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["hang", "error", "garbage"])
async def test_model_failures_give_no_summary(sqlite_registry: ModelRegistry, kind: str) -> None:
    with misbehaving_server() as root:
        gateway = await _gateway(sqlite_registry, f"{root}/{kind}/v1")
        try:
            started = time.monotonic()
            text = await GatewaySummarizer(gateway, 1.0).summarize([("customer", "我要退货")], "zh", "conv-2")
            elapsed = time.monotonic() - started
        finally:
            await gateway.close()
    assert text is None
    assert elapsed < 3.0  # bounded by the summarizer's timeout, not the model's hang


@pytest.mark.asyncio
async def test_no_stable_model_no_call(sqlite_registry: ModelRegistry) -> None:
    script = Script(reply="never asked")
    with scripted_server(script) as url:
        gateway = await _gateway(sqlite_registry, url, promote=False)
        try:
            assert await GatewaySummarizer(gateway).summarize([("customer", "hi there friend")], "en", "c") is None
        finally:
            await gateway.close()
    assert script.requests == []
